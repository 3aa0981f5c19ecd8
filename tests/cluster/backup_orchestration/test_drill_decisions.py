"""Pure decisions of restore drills, without servers: settings, which backup and node a drill
takes, when it fails, what proves a backup, and how the RTO trend reads."""

from __future__ import annotations

import pytest

from cluster.backups.drill_settings import DrillSettings
from cluster.backups.drills import DrillOutcome, DrillRecord, assess, choose, is_drill, proofs
from cluster.backups.errors import BackupConfigError
from cluster.backups.runs import RunRecord, recover
from cluster.backups.settings import BackupSettings, RunPlan
from contract.drills import rto_trend

PLAN = RunPlan(geography="EU", target="file:///b", public_key="pem")


def run(backup_id: str, status: str, started: float) -> RunRecord:
    return RunRecord.model_validate(
        {
            "id": backup_id,
            "status": status,
            "epoch": 1,
            "leader": "n1",
            "trigger": "manual",
            "started": started,
            "expected": ["n1", "zookeeper"],
            "plan": PLAN.model_dump(),
        }
    )


def drill(**fields: object) -> DrillRecord:
    base: dict[str, object] = {
        "id": "drill-20261207T020000Z-00000001",
        "status": "running",
        "epoch": 2,
        "leader": "n1",
        "trigger": "manual",
        "started": 1000.0,
        "node": "n2",
        "backup_id": "20261207T010000Z-0a0b0c0d",
        "backup_started": 400.0,
        "timeout": 60.0,
    }
    return DrillRecord.model_validate({**base, **fields})


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"scratch": "relative/dir"}, "absolute path"),
        ({"key_file": "key.pem"}, "absolute path"),
        ({"timeout": 0}, "greater than 0"),
    ],
)
def test_bad_drill_settings_are_refused(fields: dict[str, object], words: str) -> None:
    with pytest.raises(ValueError, match=words):
        DrillSettings.model_validate(fields)


@pytest.mark.parametrize(
    ("settings", "words"),
    [(DrillSettings(schedule="61 * * * *"), "61"), (DrillSettings(node="N 1"), "drill node")],
)
def test_checked_refuses_bad_schedule_and_node(settings: DrillSettings, words: str) -> None:
    with pytest.raises(BackupConfigError, match=words):
        BackupSettings(drill=settings).checked(None)


def test_choose_takes_the_newest_ok_backup_and_a_live_node() -> None:
    runs = [run("a", "ok", 1.0), run("b", "ok", 3.0), run("c", "failed", 5.0)]
    settings = DrillSettings(scratch="/s", node="n2")
    chosen = choose(settings, runs, frozenset({"n1", "n2"}), "n1")
    assert chosen.backup is not None and chosen.backup.id == "b" and chosen.node == "n2"
    assert choose(DrillSettings(scratch="/s"), runs, frozenset({"n1"}), "n1").node == "n1"
    assert "is down" in (choose(settings, runs, frozenset({"n1"}), "n1").refusal or "")
    assert "no successful" in (choose(settings, runs[2:], frozenset({"n2"}), "n1").refusal or "")
    assert "not configured" in (choose(None, runs, frozenset({"n1"}), "n1").refusal or "")


def test_assess_fails_a_drill_whose_node_went_down_or_that_timed_out() -> None:
    d = drill()
    assert assess(d, None, frozenset({"n2"}), 1010.0).action == "wait"
    assert assess(d, None, frozenset({"n1"}), 1010.0).reason == "drill node n2 went down"
    assert "timed out" in assess(d, None, frozenset({"n2"}), 1061.0).reason
    assert assess(d, DrillOutcome(node="n2"), frozenset(), 2000.0).action == "finish"


def test_finish_records_rto_and_rpo_only_for_a_clean_outcome() -> None:
    good = drill().finish(1100.0, DrillOutcome(node="n2", rto=12.5, files=3), None)
    assert (good.status, good.rto, good.rpo, good.files) == ("ok", 12.5, 700.0, 3)
    assert "ok, every stored byte checked, RTO 12.5s, RPO 11.7min" in good.describe()
    bad = drill().finish(1100.0, DrillOutcome(node="n2", error="part n1: digest"), None)
    assert (bad.status, bad.reason, bad.rpo) == ("failed", "part n1: digest", None)
    late = drill().finish(1100.0, None, "drill node n2 went down")
    assert late.status == "failed" and late.describe().endswith("drill node n2 went down")


def test_a_new_leader_fails_a_drill_left_running() -> None:
    decision = recover(drill(epoch=2), 3)
    assert decision.fail and "leader changed" in decision.reason


def test_proofs_and_guard_names() -> None:
    ok = drill(status="ok", finished=1010.0)
    later = drill(id="drill-20261207T030000Z-00000002", status="ok", started=2000.0)
    failed = drill(id="drill-20261207T040000Z-00000003", status="failed", started=3000.0)
    assert proofs([ok, later, failed]) == {ok.backup_id: later}
    assert is_drill(ok.id) and not is_drill("20261207T010000Z-0a0b0c0d") and not is_drill(None)


def test_rto_trend() -> None:
    assert rto_trend([10.0]) == "not enough drills yet"
    assert rto_trend([10.0, 10.5]) == "steady"
    assert rto_trend([10.0, 12.0, 11.0, 20.0]) == "slower: 1.82x the median before"
    assert rto_trend([10.0, 5.0]) == "faster: 0.50x the median before"
