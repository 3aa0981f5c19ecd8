"""Fleet rollouts in the database: create, pause, resume and the sweep's step (reads: views).

`create` checks everything before writing (a published version, a selector that picks enrolled
clusters, a waves spec, no cluster already in an active or paused rollout) and writes the
rollout and its clusters in wave order with a `rollout.created` audit entry, or nothing.
`advance` reads each active rollout into a `RolloutSnapshot` (the clusters' last health checks
and `release_refused` events), asks `rules.rollouts.step` what to do, offers the release with
`offers.offer` (the one way an offer is made), then records the step; a failed cluster raises
its `rollout_failed` alert in the same transaction as the pause. An offer made just before a
crash is made again by the next step, which is harmless (an offer replaces the last one).
Only worker 0 runs `advance` (the app's sweeper), so steps never race.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from contract.audit.events import SYSTEM, Actor, AuditEvent
from contract.messages import AlertKind, HealthStatus
from mission_control.db.schema import clusters, rollout_clusters, rollouts
from mission_control.errors import NotFound
from mission_control.service.accounts import audit_log
from mission_control.service.context import ServiceContext
from mission_control.service.exchange.alert_store import apply_alert_changes
from mission_control.service.refusals import InvalidInput, InvalidState
from mission_control.service.releases import offers
from mission_control.service.releases.repository import Repository
from mission_control.service.releases.rollout_views import (
    MEMBERS,
    Rollout,
    read_rollout,
    rollout_id_of,
    versions_of,
)
from mission_control.service.rules.rollouts import (
    ClusterProgress,
    ClusterRecord,
    RolloutSnapshot,
    RolloutSpecError,
    RolloutState,
    RolloutStep,
    parse_selector,
    parse_waves,
    step,
    wave_sizes,
)

SCOPE = "mission-control"  # the audit scope of rollout-wide entries
UNFINISHED = (RolloutState.ACTIVE.value, RolloutState.PAUSED.value)


async def create(
    ctx: ServiceContext,
    version: str,
    selector: str,
    waves: str,
    deadline: timedelta,
    published: Collection[str],
    by: Actor,
) -> Rollout:
    """A new active rollout (its first wave is offered by the next sweep). Refused with one
    line, nothing written: an unpublished version, a bad selector or waves spec, an empty
    selection, or a selected cluster already in an active or paused rollout."""
    if version not in published:
        raise NotFound(
            f"release {version[:64]} is not published (see `mission-control releases list`)"
        )
    try:
        chosen = parse_selector(selector)
        steps = parse_waves(waves)
    except RolloutSpecError as e:
        raise InvalidInput(str(e)) from None
    now = ctx.clock()
    async with ctx.engine.begin() as conn:
        rows = await conn.execute(
            select(clusters.c.id, clusters.c.name, clusters.c.geography).where(
                clusters.c.enrolled_at.is_not(None)
            )
        )
        known = [ClusterRecord(r.id, r.name, r.geography) for r in rows]
        try:
            picked = chosen.pick(known)
            sizes = wave_sizes(steps, len(picked))
        except RolloutSpecError as e:
            raise InvalidInput(f"{e} (enrolled clusters only)") from None
        busy = (
            await conn.execute(
                select(rollouts.c.id, clusters.c.name)
                .join(rollout_clusters, rollout_clusters.c.rollout_id == rollouts.c.id)
                .join(clusters, clusters.c.id == rollout_clusters.c.cluster_id)
                .where(
                    rollouts.c.state.in_(UNFINISHED),
                    rollout_clusters.c.cluster_id.in_([c.id for c in picked]),
                )
            )
        ).first()
        if busy is not None:
            raise InvalidState(
                f"{busy.name} is already in rollout {busy.id}, which has not completed"
            )
        rollout_id = await conn.scalar(
            rollouts.insert()
            .returning(rollouts.c.id)
            .values(
                version=version,
                selector=selector[:512],
                waves=waves[:256],
                sizes=list(sizes),
                state=RolloutState.ACTIVE.value,
                wave=0,
                reason="created; the next sweep offers the first wave",
                deadline_s=deadline.total_seconds(),
                created_at=now,
                created_by=by.name[:256],
                updated_at=now,
            )
        )
        assert rollout_id is not None
        await conn.execute(
            rollout_clusters.insert(),
            [
                {"rollout_id": rollout_id, "cluster_id": c.id, "position": i}
                for i, c in enumerate(picked)
            ],
        )
        detail: dict[str, Any] = {"version": version, "clusters": len(picked)}
        detail["sizes"] = list(sizes)
        event = AuditEvent(now, by, "rollout.created", SCOPE, str(rollout_id), detail)
        await audit_log.record(conn, ctx, [event])
        return await read_rollout(conn, rollout_id)


async def pause(ctx: ServiceContext, rollout: str | int, by: Actor) -> Rollout:
    """Pause an active rollout: nothing more is offered until `resume`."""
    return await _set_state(ctx, rollout, by, RolloutState.PAUSED)


async def resume(ctx: ServiceContext, rollout: str | int, by: Actor) -> Rollout:
    """Resume a paused rollout: its failed clusters are offered the release again (a new
    deadline) and their `rollout_failed` alerts close."""
    return await _set_state(ctx, rollout, by, RolloutState.ACTIVE)


async def _set_state(
    ctx: ServiceContext, rollout: str | int, by: Actor, to: RolloutState
) -> Rollout:
    rollout_id = rollout_id_of(rollout)
    now = ctx.clock()
    async with ctx.engine.begin() as conn:
        row = (
            await conn.execute(
                select(rollouts.c.state).where(rollouts.c.id == rollout_id).with_for_update()
            )
        ).first()
        if row is None:
            raise NotFound(f"no rollout {rollout_id}: see `mission-control rollouts list`")
        want_from = RolloutState.ACTIVE if to is RolloutState.PAUSED else RolloutState.PAUSED
        if row.state != want_from.value:
            raise InvalidState(f"rollout {rollout_id} is {row.state}, not {want_from.value}")
        verb = "paused" if to is RolloutState.PAUSED else "resumed"
        await conn.execute(
            rollouts.update()
            .where(rollouts.c.id == rollout_id)
            .values(state=to.value, reason=f"{verb} by {by.name[:128]}", updated_at=now)
        )
        if to is RolloutState.ACTIVE:
            failed = (
                await conn.scalars(
                    select(rollout_clusters.c.cluster_id).where(
                        rollout_clusters.c.rollout_id == rollout_id,
                        rollout_clusters.c.failed_at.is_not(None),
                    )
                )
            ).all()
            await conn.execute(
                rollout_clusters.update()
                .where(
                    rollout_clusters.c.rollout_id == rollout_id,
                    rollout_clusters.c.failed_at.is_not(None),
                )
                .values(offered_at=None, failed_at=None, failure=None)
            )
            for cluster_id in failed:
                await apply_alert_changes(conn, cluster_id, {AlertKind.ROLLOUT_FAILED: None}, now)
        event = AuditEvent(now, by, f"rollout.{verb}", SCOPE, str(rollout_id), {})
        await audit_log.record(conn, ctx, [event])
        return await read_rollout(conn, rollout_id)


async def _snapshot(conn: AsyncConnection, row: Any) -> RolloutSnapshot:
    members = await conn.execute(
        MEMBERS.add_columns(clusters.c.release_refused_at).where(
            rollout_clusters.c.rollout_id == row.id
        )
    )
    progress = tuple(
        ClusterProgress(
            id=m.cluster_id,
            name=m.name,
            offered_at=m.offered_at,
            versions=versions_of(m.last_health),
            healthy=m.health_status == HealthStatus.HEALTHY.value,
            refused_at=m.release_refused_at,
            finished=m.finished_at is not None,
        )
        for m in members
    )
    return RolloutSnapshot(
        version=row.version,
        state=RolloutState(row.state),
        wave=row.wave,
        sizes=tuple(int(s) for s in row.sizes),
        clusters=progress,
        deadline=timedelta(seconds=row.deadline_s),
    )


ROLLOUT_ACTOR = SYSTEM
log = logging.getLogger(__name__)


async def advance_forever(ctx: ServiceContext, interval_s: float, repo: Path | None) -> None:
    """`advance` every `interval_s` seconds until cancelled, with the versions the release
    repository `repo` holds now; without a repository nothing is published, so no step is
    taken at all. Failures are logged and retried."""
    if repo is None:
        return
    while True:
        try:
            published = [r.version for r in Repository(repo, ctx.clock()).releases()]
            for reason in await advance(ctx, published):
                log.info("%s", reason)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("rollout step failed; retrying in %s s", interval_s)
        await asyncio.sleep(interval_s)


async def advance(ctx: ServiceContext, published: Collection[str]) -> list[str]:
    """One step of every active rollout; returns the reasons that changed (for the log)."""
    async with ctx.engine.connect() as conn:
        active = (
            await conn.execute(
                select(rollouts).where(rollouts.c.state == RolloutState.ACTIVE.value)
            )
        ).all()
        snapshots = [(row.id, await _snapshot(conn, row)) for row in active]
    reasons_before = {row.id: row.reason for row in active}
    reasons = []
    for rollout_id, snapshot in snapshots:
        now = ctx.clock()
        decided = step(snapshot, now)
        if decided.offer and snapshot.version not in published:  # withdrawn since `create`
            why = f"paused: release {snapshot.version} is no longer published"
            decided = RolloutStep(RolloutState.PAUSED, snapshot.wave, (), decided.finished, (), why)
        moved = decided.offer or decided.finished or decided.failed or decided.wave != snapshot.wave
        if (
            not moved
            and decided.state is snapshot.state
            and reasons_before[rollout_id] == decided.reason
        ):
            continue  # nothing to write: the same wait as the last sweep
        for cluster_id in decided.offer:
            await offers.offer(ctx, cluster_id, snapshot.version, published, ROLLOUT_ACTOR)
        await _record(ctx, rollout_id, decided, now)
        if decided.reason != reasons_before[rollout_id]:  # log changes, not every sweep
            reasons.append(f"rollout {rollout_id}: {decided.reason}")
    return reasons


async def _record(
    ctx: ServiceContext, rollout_id: int, decided: RolloutStep, now: datetime
) -> None:
    members = rollout_clusters.c
    mine = members.rollout_id == rollout_id
    async with ctx.engine.begin() as conn:
        await conn.execute(
            rollouts.update()
            .where(rollouts.c.id == rollout_id, rollouts.c.state == RolloutState.ACTIVE.value)
            .values(
                state=decided.state.value, wave=decided.wave, reason=decided.reason, updated_at=now
            )
        )
        if decided.offer:
            await conn.execute(
                rollout_clusters.update()
                .where(mine, members.cluster_id.in_(decided.offer))
                .values(offered_at=now)
            )
        if decided.finished:
            await conn.execute(
                rollout_clusters.update()
                .where(mine, members.cluster_id.in_(decided.finished))
                .values(finished_at=now)
            )
        events = []
        for cluster_id, why in decided.failed:
            await conn.execute(
                rollout_clusters.update()
                .where(mine, members.cluster_id == cluster_id)
                .values(failed_at=now, failure=why[:4000])
            )
            detail = f"rollout {rollout_id} paused: {why}"
            await apply_alert_changes(conn, cluster_id, {AlertKind.ROLLOUT_FAILED: detail}, now)
            events.append(
                AuditEvent(now, SYSTEM, "rollout.failed", cluster_id, str(rollout_id), {"why": why})
            )
        if events:
            await audit_log.record(conn, ctx, events)
