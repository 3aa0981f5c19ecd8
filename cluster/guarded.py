"""Settings that decide where data and credentials go: every change audited and alerted.

A holder of the cluster's credential (a compromised node holds it) can change the cluster
config. Changing the backup public key, target or mirrors, the Mission Control URL or CA, or
the support mode could then quietly redirect backups, the cluster's credential or support
access. `SettingsGuard` (a leader-only service) notices each such change, whoever made it and
however (the CLI, a support `config set`, a raw ZooKeeper write), and in one fenced transaction
appends an audit entry, queues a `setting_changed` event for Mission Control (which raises an
alert) and records what it has now seen (`<cluster>/guarded`). A setting given for the first time
(enrolling, configuring backups) is audited but not alerted: it redirects nothing.

Guarantees: a change is reported once, by whichever leader first sees it (the record moves in
the same transaction); values that are keys or certificates are reported by fingerprint, never
in full. The first leader to run records what it finds without alerting (nothing to compare).
Does not guarantee: that the change is undone, or that a change made and reverted between two
looks (one second apart) is seen; nor, for a new Mission Control URL, that the alert reaches the
old one (the exchange delivers what is queued through the link it was using before it switches:
`cluster.link.exchange`).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, get_args

from cluster.audit.store import AuditLog
from cluster.leadership import LeaderContext, PollingService
from cluster.link.outbox import Outbox
from cluster.model import dump
from cluster.paths import ClusterPaths
from cluster.zk import Create, Op, OpFailed, SetData, ZooKeeper
from cluster.zk.errors import BadVersionError, NodeExistsError
from contract.audit.events import SYSTEM, AuditEvent
from contract.limits import printable
from contract.messages import GUARDED_SETTING_TITLES, ClusterEventBody, GuardedSetting
from contract.support.policy import SupportPolicy

log = logging.getLogger(__name__)

GUARDED: tuple[GuardedSetting, ...] = get_args(GuardedSetting)
LOOK_EVERY = 1.0  # seconds between looks


def _fingerprint(value: object) -> str | None:
    if not isinstance(value, str) or not value:
        return None
    return "sha256:" + hashlib.sha256(value.encode()).hexdigest()[:16]


def _section(config: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    section = config.get(name)
    return section if isinstance(section, dict) else {}


def guarded_values(
    config: Mapping[str, Any], support: Mapping[str, Any] | None
) -> dict[GuardedSetting, str | None]:
    """What each guarded setting is now, as it is reported (keys and CAs by fingerprint)."""
    backup, link = _section(config, "backup"), _section(config, "mission_control")
    mirrors = backup.get("mirrors")
    try:
        mode: str | None = SupportPolicy.from_config(support).mode.value
    except ValueError:
        mode = "unreadable"
    return {
        "backup.public_key": _fingerprint(backup.get("public_key")),
        "backup.target": str(backup["target"]) if backup.get("target") else None,
        "backup.mirrors": json.dumps(sorted(map(str, mirrors))) if mirrors else None,
        "mission_control.url": str(link["url"]) if link.get("url") else None,
        "mission_control.ca": _fingerprint(link.get("ca_pem")),
        "support.mode": mode,
    }


@dataclass(frozen=True)
class SettingChange:
    setting: GuardedSetting
    before: str | None
    after: str | None

    @property
    def detail(self) -> str:
        """From what to what (the event's detail; Mission Control names the setting)."""
        return printable(f"{self.before} -> {self.after}", 3900)

    @property
    def line(self) -> str:
        """One line for the log: what changed, from what to what."""
        return f"{GUARDED_SETTING_TITLES[self.setting]}: {self.detail}"


def changes(
    seen: Mapping[str, str | None], now: Mapping[GuardedSetting, str | None]
) -> list[SettingChange]:
    """The guarded settings whose value differs from what was `seen` (pure)."""
    return [
        SettingChange(setting, seen.get(setting), now[setting])
        for setting in GUARDED
        if seen.get(setting) != now[setting]
    ]


def guard_path(paths: ClusterPaths) -> str:
    return f"{paths.base}/guarded"


def look(
    zookeeper: ZooKeeper, paths: ClusterPaths, config: Mapping[str, Any]
) -> tuple[list[SettingChange], dict[GuardedSetting, str | None], int]:
    """What changed since the last record, the values now and the record's version (-1:
    none yet). Blocking."""
    found = zookeeper.find(paths.support_policy)
    support = json.loads(found[0]) if found is not None and found[0] else None
    now = guarded_values(config, support if isinstance(support, dict) else None)
    record = zookeeper.find(guard_path(paths))
    if record is None:
        return [], now, -1
    try:
        seen = json.loads(record[0])
    except ValueError:
        seen = {}
    return changes(seen if isinstance(seen, dict) else {}, now), now, record[1].version


def report_ops(
    paths: ClusterPaths,
    found: list[SettingChange],
    now: dict[GuardedSetting, str | None],
    version: int,
    enrolled: bool,
    at: datetime,
) -> tuple[list[AuditEvent], list[Op]]:
    """The audit events and operations that report `found` and record `now` (pure)."""
    record = dump({k: v for k, v in now.items()})
    ops: list[Op] = [
        Create(guard_path(paths), record)
        if version < 0
        else SetData(guard_path(paths), record, version)
    ]
    events = [
        AuditEvent(
            at,
            SYSTEM,
            "setting.changed",
            paths.cluster,
            change.setting,
            {"setting": change.setting, "before": change.before, "after": change.after},
        )
        for change in found
    ]
    if enrolled:
        outbox = Outbox(paths)
        ops += [
            outbox.message(
                ClusterEventBody(kind="setting_changed", setting=c.setting, detail=c.detail),
                at.timestamp(),
            )
            for c in found
            if c.before
            is not None  # a first setting (enrollment, first backup target) is audited only
        ]
    return events, ops


class SettingsGuard(PollingService):
    """A `LeaderService`: looks every second; reports each change of a guarded setting."""

    name = "settings-guard"
    every = LOOK_EVERY

    async def step(self, ctx: LeaderContext) -> list[SettingChange]:
        """One look; the changes it reported."""
        snap, fence = ctx.snapshot, ctx.fence
        if snap is None or fence is None or not ctx.leading:
            return []
        found, now, version = await ctx.blocking(look, ctx.zookeeper, ctx.paths, snap.config)
        if found or version < 0:
            at = datetime.now(UTC)
            enrolled = bool(_section(snap.config, "mission_control").get("cluster_id"))
            events, ops = report_ops(ctx.paths, found, now, version, enrolled, at)
            audit = AuditLog(ctx.zookeeper, ctx.paths, fence=fence)
            try:
                if events:
                    outbox = Outbox(ctx.paths)
                    await ctx.blocking(outbox.ensure, ctx.zookeeper)
                    await ctx.blocking(audit.append, events, at, ops)
                else:
                    await ctx.fenced(ops)
            except (OpFailed, NodeExistsError, BadVersionError):
                return []  # reported meanwhile by the exchange's own look: nothing twice
            for change in found:
                log.warning("%s", change.line)
        return found
