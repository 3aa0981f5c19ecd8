"""Pure logic of the rolling upgrade: when a plan may start, how the leader moves it (order,
quorum, the leader's own turn, rollback and timeout), what a node does for it, and the
launcher's trial and rollback in a data directory; no servers."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from cluster.model import ClusterSnapshot, Epoch, Leader, LiveMember, RosterEntry, Switchover
from cluster.upgrade import install
from cluster.upgrade.plan import (
    NodeStep,
    NodeWork,
    Plan,
    Report,
    advance,
    node_order,
    node_work,
    refusal,
)
from contract.resources import UNMEASURED

NODES = ("a", "b", "c")
UPGRADED = {"a": "2.0", "b": "2.0", "c": "1.0"}  # the leader's turn


def snap(
    versions: dict[str, str] | None = None,
    leader: str = "c",
    maintenance: bool = False,
    sw: Switchover | None = None,
) -> ClusterSnapshot:
    versions = dict.fromkeys(NODES, "1.0") if versions is None else versions
    config: dict[str, Any] = (
        {"operator": {"maintenance": {"since": 1.0, "by": "ops"}}} if maintenance else {}
    )
    return ClusterSnapshot(
        cluster="c",
        roster=tuple(
            RosterEntry(n, "dc1", f"127.0.0.1:{9000 + i}", 0.0) for i, n in enumerate(NODES)
        ),
        live=tuple(
            LiveMember(n, v, 0.0, UNMEASURED, 10 + i) for i, (n, v) in enumerate(versions.items())
        ),
        leader=Leader(leader, 3, 0.0, 12),
        epoch=Epoch(3, 3),
        config=config,
        switchover=sw,
    )


def plan(**states: str) -> Plan:
    order = node_order(snap())
    nodes = {n: NodeStep(states.get(n, "pending"), deadline=100.0) for n in order}
    return Plan("p1", "2.0", "/b.tar", order, nodes, 0.0, "ops")


def test_a_plan_goes_followers_first_and_is_refused_when_it_may_not_start() -> None:
    assert node_order(snap()) == ("a", "b", "c")
    assert node_order(snap(leader="a")) == ("b", "c", "a")
    assert refusal(snap(), None, "2.0") is None
    assert "is running" in (refusal(snap(), plan(), "2.0") or "")
    assert refusal(snap(), Plan.from_bytes(plan().to_bytes()), "2.0") is not None
    assert "maintenance" in (refusal(snap(maintenance=True), None, "2.0") or "")
    three = snap({"a": "1.0", "b": "1.1", "c": "1.0"})
    assert "three versions" in (refusal(three, None, "2.0") or "")
    assert "not live" in (refusal(snap({"a": "1.0", "b": "1.0"}), None, "2.0") or "")


def test_the_leader_moves_one_node_at_a_time_and_only_with_quorum_without_it() -> None:
    s = snap()
    step = advance(plan(), s, {}, 0.0)
    assert step.plan.nodes["a"].state == "installing" and step.actions == (
        ("upgrade.node_installing", "a"),
    )
    installing = step.plan
    assert advance(installing, s, {}, 0.0).waiting == "a installing"
    reports = {"a": Report("p1", "2.0", "installed")}
    stale = {"a": Report("older-plan", "2.0", "installed")}
    assert advance(installing, s, stale, 0.0).plan == installing
    lonely = snap({"a": "1.0", "c": "1.0"})  # b is down: without a, no quorum
    assert "quorum" in advance(installing, lonely, reports, 0.0).waiting
    restarting = advance(installing, s, reports, 5.0).plan
    assert restarting.nodes["a"].state == "restarting" and restarting.nodes["a"].deadline == 125.0
    assert advance(restarting, s, reports, 6.0).waiting == "a restarting"
    done = advance(restarting, snap({"a": "2.0", "b": "1.0", "c": "1.0"}), reports, 6.0).plan
    assert done.nodes["a"].state == "done" and done.turn == "b"


def test_the_leaders_turn_is_a_switchover_to_an_upgraded_node_and_the_last_step_ends_it() -> None:
    p = plan(a="done", b="done")
    upgraded = snap(UPGRADED)
    step = advance(p, upgraded, {}, 0.0)
    assert step.switchover_to == "a" and step.plan == p
    open_sw = Switchover("a", 0.0, 0.0, "upgrade")
    assert advance(p, snap(UPGRADED, sw=open_sw), {}, 0.0).switchover_to is None
    after = snap(UPGRADED, leader="a")
    assert advance(p, after, {}, 0.0).plan.nodes["c"].state == "installing"
    finished = advance(plan(a="done", b="done", c="done"), after, {}, 0.0)
    assert finished.plan.state == "done" and finished.actions == (("upgrade.done", ""),)
    assert advance(p, snap(maintenance=True), {}, 0.0).waiting == "maintenance is on"


def test_a_node_that_went_back_or_did_not_come_up_stops_the_plan_with_an_alert() -> None:
    p = plan(a="restarting")
    back = {"a": Report("p1", "2.0", "rolled-back", "it stopped")}
    step = advance(p, snap(), back, 50.0)
    assert step.plan.state == "failed" and step.plan.nodes["a"].state == "rolled-back"
    assert step.actions == (("upgrade.node_rolled_back", "a"),)
    assert "2.0 stopped" in step.alert and "went back" in step.alert
    late = advance(p, snap(), {}, 101.0)
    assert late.plan.state == "failed" and "within" in late.alert
    failed = advance(
        plan(a="installing"), snap(), {"a": Report("p1", "2.0", "install-failed", "x")}, 0
    )
    assert failed.plan.nodes["a"].state == "failed" and failed.plan.state == "failed"
    assert advance(failed.plan, snap(), {}, 0.0).plan == failed.plan  # stopped: no more steps


def test_what_a_node_does_for_the_plan() -> None:
    installed = Report("p1", "2.0", "installed")
    assert node_work(plan(), "b", "1.0", None).install  # ahead of its turn
    assert not node_work(plan(), "b", "1.0", installed).install  # once per plan
    assert node_work(plan(a="restarting"), "a", "1.0", installed).restart
    assert not node_work(plan(a="restarting"), "a", "2.0", installed).restart  # came up
    went_back = Report("p1", "2.0", "rolled-back")
    assert not node_work(plan(a="restarting"), "a", "1.0", went_back).restart
    assert node_work(plan(a="done"), "a", "2.0", installed).confirm
    finalized = Plan.from_bytes(plan(a="done", b="done", c="done").to_bytes())
    assert node_work(replace(finalized, state="done", finalized=True), "a", "2.0", None).prune
    assert node_work(None, "a", "1.0", None) == node_work(
        replace(plan(), state="failed"), "a", "1.0", None
    )
    # Up on the new version but not healthy by the deadline: the leader failed the step.
    late = replace(plan(a="failed"), state="failed")
    assert node_work(late, "a", "2.0", installed) == NodeWork(give_up=True)
    assert node_work(late, "a", "1.0", installed) == NodeWork()  # already back
    assert node_work(late, "b", "2.0", installed) == NodeWork()  # not this node's step


def _fake_install(data: Path, version: str) -> None:
    entry = install.entry_point(data, version)
    entry.parent.mkdir(parents=True)
    entry.write_text("#!/bin/sh\n")
    (install.version_dir(data, version) / install.COMPLETE).write_text(version)


def test_a_trial_not_confirmed_is_rolled_back_by_the_next_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_install(tmp_path, "1.1")
    _fake_install(tmp_path, "1.2")
    install.make_current(tmp_path, "1.1", "1.0")
    install.start_trial(tmp_path, "1.2", "p1", "1.1")
    assert install.current_version(tmp_path) == "1.2"
    assert install.settle_trial(tmp_path) is None  # the same process (exec keeps the PID)
    monkeypatch.setattr(os, "getpid", lambda: -1)  # a start by the supervisor
    note = install.settle_trial(tmp_path)
    assert note is not None and note["version"] == "1.2" and note["plan"] == "p1"
    assert install.current_version(tmp_path) == "1.1"
    assert install.rolled_back_note(tmp_path) == note
    assert install.settle_trial(tmp_path) is None  # settled once
    install.forget_rollback(tmp_path)
    assert install.rolled_back_note(tmp_path) is None

    install.start_trial(tmp_path, "1.2", "p2", "1.1")
    install.confirm_trial(tmp_path)
    assert install.settle_trial(tmp_path) is None  # confirmed: it stays
    assert install.current_version(tmp_path) == "1.2"
    assert install.prune_previous(tmp_path)
    assert install.previous_version(tmp_path) is None
    assert not install.version_dir(tmp_path, "1.1").exists()
    assert not install.prune_previous(tmp_path)


def test_a_trial_the_leader_gave_up_goes_back_in_the_same_process(tmp_path: Path) -> None:
    _fake_install(tmp_path, "1.1")
    _fake_install(tmp_path, "1.2")
    install.make_current(tmp_path, "1.1", "1.0")
    install.start_trial(tmp_path, "1.2", "p1", "1.1")
    assert install.trial_plan(tmp_path) == "p1"
    note = install.abandon_trial(tmp_path, "the leader gave it up")
    assert note is not None and note["error"] == "the leader gave it up; back on 1.1"
    assert install.current_version(tmp_path) == "1.1" and install.trial_plan(tmp_path) is None
    assert install.abandon_trial(tmp_path, "again") is None  # nothing open: nothing changes
    assert install.current_version(tmp_path) == "1.1"


def test_a_trial_from_the_base_installation_goes_back_to_the_base(tmp_path: Path) -> None:
    _fake_install(tmp_path, "1.1")
    install.start_trial(tmp_path, "1.1", "p1", "1.0")  # the node runs its base installation
    install.abandon_trial(tmp_path, "the leader gave it up")
    assert install.current_version(tmp_path) == "1.0"  # not installed here: the base runs
    assert install.launch_target(tmp_path, "1.0") is None


def test_versions_no_start_can_need_are_removed(tmp_path: Path) -> None:
    for version in ("1.1", "1.2", "1.3", "1.4"):
        _fake_install(tmp_path, version)
    install.make_current(tmp_path, "1.2", "1.1")
    (install.versions_dir(tmp_path) / ".incoming-7").mkdir()  # an install being staged
    assert install.remove_unused(tmp_path, "1.2") == ["1.3", "1.4"]
    assert install.is_installed(tmp_path, "1.1") and install.is_installed(tmp_path, "1.2")
    assert (install.versions_dir(tmp_path) / ".incoming-7").is_dir()
    assert install.remove_unused(tmp_path, "1.2") == []
    with install.install_lock(tmp_path):  # another install runs: nothing is touched
        _fake_install(tmp_path, "1.5")
        assert install.remove_unused(tmp_path, "1.2") == []
    assert install.remove_unused(tmp_path, "1.2") == ["1.5"]


def test_a_release_that_cannot_be_fetched_is_tried_again_then_reported_failed(
    tmp_path: Path,
) -> None:
    from cluster.upgrade.errors import ReleaseUnavailable
    from cluster.upgrade.rollout import INSTALL_RETRY_DELAYS, UpgradeNode, install_retry_delay

    assert [install_retry_delay(n) for n in range(1, len(INSTALL_RETRY_DELAYS) + 2)] == [
        *INSTALL_RETRY_DELAYS,
        None,
    ]
    node, p = UpgradeNode(tmp_path), plan()
    away = ReleaseUnavailable("Mission Control is unreachable")
    assert [node._unavailable(p, away) for _ in INSTALL_RETRY_DELAYS] == [None] * 6
    report = node._unavailable(p, away)
    assert report is not None and report.state == "install-failed"
    assert report.error == "could not fetch it (7 tries): Mission Control is unreachable"
    assert node._unavailable(replace(p, id="p2"), away) is None  # a new plan: tries anew
