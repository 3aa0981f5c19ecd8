"""Recording what a verification found, for every caller alike (the operator's `managed
upgrade verify|apply`, the leader installing an offered release).

A verified release: the trusted metadata moved forward, `upgrade.verified` and whatever the
release leads to (a rolling upgrade plan: `plan_then`) in one transaction. A refused one: an
`upgrade.refused` audit entry and a `release_refused` event for Mission Control (which raises
that alert) in one transaction, then the refusal is raised again. With a fence (the leader),
both are fenced writes.

Guarantees: nothing is recorded for a release that could not be had (`ReleaseUnavailable`);
a plan is created only compare-and-set, while `plan.refusal` finds nothing against it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from packaging.version import InvalidVersion, Version

from cluster import zk
from cluster.audit.store import AuditLog
from cluster.errors import ConfigError
from cluster.link.outbox import Outbox
from cluster.model import ClusterSnapshot
from cluster.paths import ClusterPaths
from cluster.upgrade import plan as plans
from cluster.upgrade.errors import ReleaseRefused
from cluster.upgrade.fetchers import ReleaseFetcher
from cluster.upgrade.verify import VerifiedRelease, verify_release
from cluster.version import VERSION
from cluster.zk import Fence, OpFailed, ZooKeeper
from contract.audit.events import Actor, AuditEvent
from contract.messages import ClusterEventBody

#: What a verified release leads to: an audit entry and an operation in the same transaction
#: (it raises to refuse, and then nothing is written).
Then = Callable[[VerifiedRelease], tuple[AuditEvent, zk.Op]]


def newest_running(snap: ClusterSnapshot) -> str:
    """The newest version a live node runs, or this program's own when none is live."""
    found = [VERSION] + [m.version for m in snap.live if m.version]
    try:
        return str(max(found, key=Version))
    except InvalidVersion:
        return VERSION


def newer_than(version: str, other: str) -> bool:
    try:
        return Version(version) > Version(other)
    except InvalidVersion:
        return True  # a base installation without a version (a source tree)


def verify_and_record(
    client: ZooKeeper,
    paths: ClusterPaths,
    source: tuple[str, Callable[[], ReleaseFetcher]],
    actor: Actor,
    installed: str,
    *,
    into: Path | None = None,
    node_runs: str | None = None,
    then: Then | None = None,
    fence: Fence | None = None,
) -> VerifiedRelease:
    """Verify the release of `source` (its name, and how to open its fetcher) and record it,
    or record the refusal and raise it. `installed`: the newest version the cluster runs (the
    release must be newer); `node_runs`: the version of the node being upgraded (the release
    must be newer than it, and may equal `installed`: another node already runs it); `into`:
    where the verified files go."""
    now = datetime.now(UTC)
    name, open_fetcher = source
    try:
        fetcher = open_fetcher()
        try:
            release, ops = verify_release(
                client, paths, fetcher, installed, into, equal_ok=node_runs is not None
            )
        finally:
            fetcher.close()
        if node_runs is not None and not newer_than(release.version, node_runs):
            raise ReleaseRefused(
                "rollback", f"release {release.version} is not newer than the node's {node_runs}"
            )
    except ReleaseRefused as refused:
        record_refusal(client, paths, actor, refused, name, now, fence)
        raise
    detail: dict[str, Any] = {"version": release.version, "bundle": name}
    events = [AuditEvent(now, actor, "upgrade.verified", paths.cluster, release.version, detail)]
    if then is not None:
        event, op = then(release)
        events.append(event)
        ops.append(op)
    try:
        AuditLog(client, paths, fence=fence).append(events, now, ops)
    except OpFailed as e:
        raise ReleaseRefused(
            "bundle", f"the trusted metadata or the plan changed meanwhile ({e}); try again"
        ) from None
    return release


def record_refusal(
    client: ZooKeeper,
    paths: ClusterPaths,
    actor: Actor,
    refused: ReleaseRefused,
    source: str,
    now: datetime,
    fence: Fence | None = None,
) -> None:
    """The audit entry and the Mission Control event of a refusal, in one transaction."""
    detail: dict[str, Any] = {"kind": refused.kind, "reason": refused.line, "bundle": source}
    event = AuditEvent(now, actor, "upgrade.refused", paths.cluster, source, detail)
    outbox = Outbox(paths)
    outbox.ensure(client)
    body = ClusterEventBody(kind="release_refused", detail=f"{refused.kind}: {refused.line}"[:4000])
    AuditLog(client, paths, fence=fence).append(
        [event], now, [outbox.message(body, now.timestamp())]
    )


def plan_then(
    client: ZooKeeper,
    paths: ClusterPaths,
    actor: Actor,
    bundle: str,
    timeout: float,
    made: list[plans.Plan],
) -> Then:
    """What a verified release leads to for `managed upgrade apply` and the leader: the
    rolling upgrade plan (`bundle`: its path, or `plans.MISSION_CONTROL`), created
    compare-and-set with its `upgrade.planned` entry; refused (ConfigError, one line) while
    `plans.refusal` says so. The plan made is appended to `made`."""

    def plan_for(release: VerifiedRelease) -> tuple[AuditEvent, zk.Op]:
        snap = zk.read_snapshot(client, paths)
        got = client.find(paths.upgrade_plan)
        current = plans.Plan.from_bytes(got[0]) if got else None
        refused = plans.refusal(snap, current, release.version)
        if refused is not None:
            raise ConfigError(f"upgrade refused: {refused}")
        now = datetime.now(UTC)
        order = plans.node_order(snap)
        plan = plans.Plan(
            id=f"{release.version}-{int(now.timestamp())}",
            version=release.version,
            bundle=bundle,
            order=order,
            nodes={n: plans.NodeStep() for n in order},
            started=now.timestamp(),
            by=actor.name,
            timeout=timeout,
        )
        op: zk.Op = (
            zk.Create(paths.upgrade_plan, plan.to_bytes())
            if got is None
            else zk.SetData(paths.upgrade_plan, plan.to_bytes(), got[1].version)
        )
        made.append(plan)
        detail: dict[str, Any] = {"order": list(order), "bundle": bundle}
        return AuditEvent(now, actor, "upgrade.planned", paths.cluster, plan.version, detail), op

    return plan_for
