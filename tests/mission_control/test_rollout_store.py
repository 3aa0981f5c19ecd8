"""Fleet rollouts in the database (SQLite and PostgreSQL), stepped in-process with a fake clock:
a cluster that misses the deadline pauses the rollout with its alert, resume offers it again
and closes the alert; a release withdrawn from the repository pauses instead of failing every
sweep."""

from __future__ import annotations

from datetime import timedelta

from mc_kit import FakeClock
from mc_messages import health_json
from test_mc_store import enrolled

from contract.audit.events import Actor, ActorKind
from contract.messages import HealthReport
from mission_control.service.context import ServiceContext
from mission_control.service.exchange import alert_store
from mission_control.service.exchange.cluster_messages import health as record_health
from mission_control.service.releases import offers, rollouts
from mission_control.service.releases.rollout_views import show

V = "2.0.0"
VENDOR = Actor("vendor-ops", ActorKind.STAFF)


async def test_a_late_cluster_pauses_and_resume_offers_again(
    ctx: ServiceContext, clock: FakeClock
) -> None:
    first, second = await enrolled(ctx, "r-one"), await enrolled(ctx, "r-two")
    made = await rollouts.create(ctx, V, "all", "1,100%", timedelta(hours=1), [V], VENDOR)
    assert made.sizes == (1, 2) and [c.state for c in made.clusters] == ["waiting"] * 2

    assert await rollouts.advance(ctx, [V]) == [
        f"rollout {made.id}: wave 1 of 2: offering {V} to 1 cluster(s)"
    ]
    assert (await offers.offer_for(ctx, first)).version == V
    assert (await offers.offer_for(ctx, second)).version is None
    assert await rollouts.advance(ctx, [V]) == [
        f"rollout {made.id}: wave 1 of 2: waiting for r-one"
    ]
    assert await rollouts.advance(ctx, [V]) == []  # the same wait: nothing written or logged

    clock.advance(hours=2)
    await rollouts.advance(ctx, [V])
    paused = await show(ctx, made.id)
    assert paused.state == "paused" and paused.clusters[0].state == "failed"
    assert "r-one did not reach 2.0.0 healthy in time" in paused.reason
    open_kinds = [a.kind for a in await alert_store.list_alerts(ctx, cluster="r-one")]
    assert "rollout_failed" in open_kinds
    assert await rollouts.advance(ctx, [V]) == []  # paused: nothing offered

    await rollouts.resume(ctx, made.id, VENDOR)
    assert "rollout_failed" not in [a.kind for a in await alert_store.list_alerts(ctx)]
    report = health_json()
    for node in report["nodes"]:
        node["version"] = V
    await record_health(ctx, first, HealthReport.model_validate(report))
    await rollouts.advance(ctx, [V])  # offered again, then finished healthy
    await rollouts.advance(ctx, [V])
    assert (await offers.offer_for(ctx, second)).version == V
    assert (await show(ctx, made.id)).wave == 2


async def test_a_withdrawn_release_pauses(ctx: ServiceContext) -> None:
    await enrolled(ctx, "w-one")
    made = await rollouts.create(ctx, V, "w-one", "1", timedelta(hours=1), [V], VENDOR)
    assert await rollouts.advance(ctx, []) == [
        f"rollout {made.id}: paused: release {V} is no longer published"
    ]
    assert (await show(ctx, made.id)).state == "paused"
