"""The cluster settings a support engineer may change with `config set`: an explicit allowlist.

Everything else is refused, by name: residency (`geography`, backup targets and mirrors), keys,
schedules, retention, `environments`, where the cluster dials out to, the support policy (its
own znode anyway) and secrets. A setting is on the list only if a wrong value cannot move data,
weaken access or lose backups, and each value goes through the same check the operator's own
command applies (`managed backup configure`, `managed mc enroll`) before anything is stored.

Values are what the wire carries (`VALUE_TYPES`): a string, an integer, a boolean or null; one
rule for Mission Control (which refuses a bad key or type before queueing) and the cluster
(which checks the value against the config it holds). Pure: no I/O.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from cluster.support.errors import SupportError

#: Types a `config set` value may have, on both sides of the wire.
VALUE_TYPES = "a string, an integer, a boolean or null"
MAX_VALUE_LENGTH = 1024


class SettingRefused(SupportError):
    """The key is not settable by support, or the value fails the operator's own check."""


Check = Callable[[Any, dict[str, Any]], Any]


@dataclass(frozen=True)
class Settable:
    """One key support may set: what it is, and the check that returns the value to store."""

    key: str
    what: str
    check: Check


def _seconds(low: int, high: int) -> Check:
    """A whole number of seconds in [low, high]; the operator's floor (`mc enroll`) is 0.1 s,
    support gets a narrower range so a typo cannot flood or silence Mission Control."""

    def check(value: Any, _config: dict[str, Any]) -> float:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise SettingRefused(f"give a whole number of seconds from {low} to {high}")
        return float(value)

    return check


def _backup(field: str) -> Check:
    """Checked as `managed backup configure` checks it: the whole backup section, in the
    cluster's geography (`BackupSettings.checked`)."""

    def check(value: Any, config: dict[str, Any]) -> Any:
        from cluster.backups.errors import BackupConfigError
        from cluster.backups.settings import SECTION, BackupSettings

        if field == "bandwidth_limit":
            if isinstance(value, str) and value.strip().lower() == "off":
                value = None  # as the operator's --bandwidth-limit off
            if value is not None and not isinstance(value, str):
                raise SettingRefused("give a rate such as 100MiB/s, or off")
        elif isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise SettingRefused("give a whole number of seconds, at least 1")
        section = config.get(SECTION) or {}
        if not isinstance(section, dict):
            raise SettingRefused("the cluster config's backup section is not an object")
        trial = {**config, SECTION: {**section, field: value}}
        geography = config.get("geography")
        try:
            BackupSettings.from_config(trial).checked(
                geography if isinstance(geography, str) else None
            )
        except BackupConfigError as error:
            raise SettingRefused(str(error)) from None
        return value

    return check


_INTERVALS = "mission_control.intervals."
SETTABLE: dict[str, Settable] = {
    s.key: s
    for s in (
        Settable(_INTERVALS + "heartbeat", "seconds between heartbeats", _seconds(5, 300)),
        Settable(_INTERVALS + "health", "seconds between health checks", _seconds(30, 3600)),
        Settable(_INTERVALS + "license", "seconds between license checks", _seconds(60, 86400)),
        Settable(
            _INTERVALS + "consumption",
            "seconds between consumption reports",
            _seconds(300, 86400),
        ),
        Settable(
            "backup.bandwidth_limit",
            "backup bandwidth per node (e.g. 100MiB/s, off)",
            _backup("bandwidth_limit"),
        ),
        Settable(
            "backup.part_timeout",
            "seconds a backup waits for each node's part",
            _backup("part_timeout"),
        ),
    )
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


def apply(config: Mapping[str, Any], key: str, value: Any) -> tuple[dict[str, Any], Any, Any]:
    """The config after setting `key` to `value`, the value before and the value stored.

    Raises `SettingRefused` (one line) when the key is not settable or the value fails its
    check; `config` is never changed.
    """
    check_key(key)
    check_value_type(value)
    new = copy.deepcopy(dict(config))
    stored = SETTABLE[key].check(value, new)
    parts = key.split(".")
    node: dict[str, Any] = new
    old: Any = None
    for depth, part in enumerate(parts[:-1], start=1):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise SettingRefused(f"{'.'.join(parts[:depth])} is a value, not a section")
        node = child
    old = node.get(parts[-1])
    node[parts[-1]] = stored
    return new, old, stored
