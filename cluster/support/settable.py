"""How the cluster checks and applies a support engineer's `config set`.

The allowlist and the wire rule for values are `contract.support.settable`'s (Mission Control
applies them before queueing); here each value goes through the same check the operator's own
command applies (`managed backup configure`, `managed mc enroll`) before anything is stored.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import Any

from cluster.backups.errors import BackupConfigError
from cluster.backups.settings import SECTION, BackupSettings
from contract.support.settable import (
    SETTABLE,
    SettingRefused,
    check_key,
    check_value_type,
)

Check = Callable[[Any, dict[str, Any]], Any]


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
CHECKS: dict[str, Check] = {
    _INTERVALS + "heartbeat": _seconds(5, 300),
    _INTERVALS + "health": _seconds(30, 3600),
    _INTERVALS + "license": _seconds(60, 86400),
    _INTERVALS + "consumption": _seconds(300, 86400),
    "backup.bandwidth_limit": _backup("bandwidth_limit"),
    "backup.part_timeout": _backup("part_timeout"),
}
# One check per key of the shared allowlist, no more, no fewer.
assert CHECKS.keys() == SETTABLE.keys()


def apply(config: Mapping[str, Any], key: str, value: Any) -> tuple[dict[str, Any], Any, Any]:
    """The config after setting `key` to `value`, the value before and the value stored.

    Raises `SettingRefused` (one line) when the key is not settable or the value fails its
    check; `config` is never changed.
    """
    check_key(key)
    check_value_type(value)
    new = copy.deepcopy(dict(config))
    stored = CHECKS[key](value, new)
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
