"""The cluster settings a support engineer may change with `config set`: an explicit allowlist.

Everything else is refused, by name: residency (`geography`, backup targets and mirrors), keys,
schedules, retention, `environments`, where the cluster dials out to, the support policy (its
own znode anyway) and secrets. A setting is on the list only if a wrong value cannot move data,
weaken access or lose backups.

Values are what the wire carries (`VALUE_TYPES`): a string, an integer, a boolean or null; one
rule for Mission Control (which refuses a bad key or type before queueing) and the cluster
(which then checks the value as the operator's own command would: `cluster.support.settable`).
Pure: no I/O.
"""

from __future__ import annotations

from typing import Any

from contract.support.errors import SupportError

#: Types a `config set` value may have, on both sides of the wire.
VALUE_TYPES = "a string, an integer, a boolean or null"
MAX_VALUE_LENGTH = 1024


class SettingRefused(SupportError):
    """The key is not settable by support, or the value fails the operator's own check."""


_INTERVALS = "mission_control.intervals."
#: Each settable key and what it is.
SETTABLE: dict[str, str] = {
    _INTERVALS + "heartbeat": "seconds between heartbeats",
    _INTERVALS + "health": "seconds between health checks",
    _INTERVALS + "license": "seconds between license checks",
    _INTERVALS + "consumption": "seconds between consumption reports",
    "backup.bandwidth_limit": "backup bandwidth per node (e.g. 100MiB/s, off)",
    "backup.part_timeout": "seconds a backup waits for each node's part",
}


def check_key(key: str) -> None:
    """Refuse a key that is not on the allowlist (Mission Control runs this before queueing)."""
    if key not in SETTABLE:
        known = ", ".join(sorted(SETTABLE))
        raise SettingRefused(f"support access cannot change {key}; it may change only: {known}")


def check_value_type(value: Any) -> None:
    """The wire rule for a value (both sides): see `VALUE_TYPES`."""
    if value is not None and not isinstance(value, str | int | bool):
        raise SettingRefused(f"config set takes a single value: {VALUE_TYPES}")
    if isinstance(value, str) and (
        len(value) > MAX_VALUE_LENGTH or any(ord(c) < 32 for c in value)
    ):
        raise SettingRefused(
            f"value too long or not printable (at most {MAX_VALUE_LENGTH} characters)"
        )
