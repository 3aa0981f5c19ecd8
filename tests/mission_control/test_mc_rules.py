"""Pure rules: sizing advice, health status, license evaluation, alert rules (no servers)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from contract.messages import AlertKind, HealthStatus, LicenseState, NodeHealth
from mission_control.service.rules.alerts import (
    SEVERITY,
    event_alerts,
    health_alerts,
    license_alerts,
    silence_alert,
)
from mission_control.service.rules.licensing import License, evaluate_license
from mission_control.service.rules.policy import GIB, AlertPolicy, SizingPolicy
from mission_control.service.rules.sizing import advise, assess


def node(
    name: str,
    *,
    cores: int = 8,
    cpu: float = 30,
    mem_gib: int = 32,
    mem_used_gib: float = 8,
    disk_used: float = 0.2,
    state: str = "healthy",
) -> NodeHealth:
    return NodeHealth.model_validate(
        {
            "node": name,
            "version": "1.0",
            "state": state,
            "cpu_cores": cores,
            "cpu_percent": cpu,
            "memory_total_bytes": mem_gib * GIB,
            "memory_used_bytes": int(mem_used_gib * GIB),
            "disk_total_bytes": 1000,
            "disk_used_bytes": int(1000 * disk_used),
        }
    )


SIZING = SizingPolicy()
ALERTS = AlertPolicy()


def test_lightly_loaded_three_node_cluster_is_healthy() -> None:
    nodes = [node(f"n{i}") for i in range(3)]
    result = assess(nodes, SIZING, ALERTS)
    assert result.status is HealthStatus.HEALTHY
    assert result.reasons == []
    assert result.advice.min_nodes == 3
    assert result.advice.min_cpu_cores == 12  # floor: 3 nodes x 4 cores
    assert result.advice.min_memory_bytes == 48 * GIB


def test_advice_grows_with_load_keeping_headroom() -> None:
    # 3 x 8 cores at 80 % = 19.2 cores used; / 0.7 target = 27.4 -> 28 cores -> 4 nodes of 8.
    nodes = [node(f"n{i}", cpu=80) for i in range(3)]
    advice = advise(nodes, SIZING)
    assert advice.min_cpu_cores == 28
    assert advice.min_nodes == 4
    result = assess(nodes, SIZING, ALERTS)
    assert result.status is HealthStatus.UNDERSIZED
    assert any("3 nodes up, 4 advised" in r for r in result.reasons)


def test_memory_drives_node_count_too() -> None:
    nodes = [node(f"n{i}", mem_used_gib=30) for i in range(3)]  # 90 GiB used / 0.7 = 128.6
    advice = advise(nodes, SIZING)
    assert advice.min_memory_bytes == pytest.approx(90 * GIB / 0.7, abs=1)
    assert advice.min_nodes == 5  # 128.6 GiB / 32 GiB per node
    reasons = assess(nodes, SIZING, ALERTS).reasons
    assert any(r.startswith("memory at 94%") for r in reasons)


def test_too_few_small_nodes_are_undersized() -> None:
    nodes = [node("a", cores=2, mem_gib=4, mem_used_gib=1)]
    result = assess(nodes, SIZING, ALERTS)
    assert result.status is HealthStatus.UNDERSIZED
    assert result.advice.min_nodes == 12  # 48 GiB floor / 4 GiB nodes
    assert "1 nodes up, 12 advised" in result.reasons
    assert "2 CPU cores, 12 advised" in result.reasons


def test_cpu_and_disk_thresholds() -> None:
    nodes = [node("a", cpu=90), node("b", cpu=90), node("c", cpu=90, disk_used=0.9)]
    reasons = assess(nodes, SIZING, ALERTS).reasons
    assert "CPU at 90%, over 85%" in reasons
    assert "disk of c at 90%, over 85%" in reasons
    relaxed = AlertPolicy(cpu_threshold=0.95, disk_threshold=0.95)
    relaxed_reasons = assess(nodes, SIZING, relaxed).reasons
    assert not any("CPU at" in r or "disk of" in r for r in relaxed_reasons)


def test_down_node_degrades_and_does_not_count_as_capacity() -> None:
    nodes = [node("a"), node("b"), node("c", state="down")]
    result = assess(nodes, SIZING, ALERTS)
    assert result.status is HealthStatus.DEGRADED
    assert result.reasons[0] == "node c is down"
    assert "2 nodes up, 3 advised" in result.undersized


def test_all_nodes_down_still_gives_advice() -> None:
    advice = advise([node("a", state="down")], SIZING)
    assert (advice.min_nodes, advice.min_cpu_cores) == (3, 12)


TODAY = date(2030, 6, 1)


@pytest.mark.parametrize(
    ("expires", "in_use", "state", "conditions"),
    [
        (date(2031, 1, 1), 5, LicenseState.VALID, set()),
        (TODAY + timedelta(days=29), 5, LicenseState.EXPIRING, {LicenseState.EXPIRING}),
        (TODAY, 5, LicenseState.EXPIRING, {LicenseState.EXPIRING}),  # last valid day
        (TODAY - timedelta(days=1), 5, LicenseState.EXPIRED, {LicenseState.EXPIRED}),
        (date(2031, 1, 1), 11, LicenseState.OVERAGE, {LicenseState.OVERAGE}),
        (date(2031, 1, 1), 10, LicenseState.VALID, set()),  # exactly at quota is fine
        (
            TODAY + timedelta(days=3),
            11,
            LicenseState.OVERAGE,
            {LicenseState.OVERAGE, LicenseState.EXPIRING},
        ),
        (
            TODAY - timedelta(days=3),
            11,
            LicenseState.EXPIRED,
            {LicenseState.OVERAGE, LicenseState.EXPIRED},
        ),
        (date(2031, 1, 1), None, LicenseState.VALID, set()),
    ],
)
def test_license_states(
    expires: date, in_use: float | None, state: LicenseState, conditions: set[LicenseState]
) -> None:
    result = evaluate_license(License(10, expires), in_use, TODAY, 30)
    assert result.state is state
    assert result.conditions == conditions


def test_days_left_counts_the_last_day() -> None:
    assert evaluate_license(License(1, TODAY), 0, TODAY, 30).days_left == 1
    assert evaluate_license(License(1, TODAY - timedelta(days=5)), 0, TODAY, 30).days_left == 0


def test_no_license_is_expired() -> None:
    result = evaluate_license(None, 3, TODAY, 30)
    assert result.state is LicenseState.EXPIRED
    changes = license_alerts(result)
    assert changes[AlertKind.LICENSE_EXPIRED] == "no license is set"
    assert changes[AlertKind.LICENSE_OVERAGE] is None


def test_license_alerts_raise_each_condition_and_clear_the_rest() -> None:
    result = evaluate_license(License(10, TODAY + timedelta(days=3)), 12, TODAY, 30)
    changes = license_alerts(result)
    assert changes[AlertKind.LICENSE_OVERAGE] == "12 host units in use, 10 licensed"
    assert changes[AlertKind.LICENSE_EXPIRING] is not None
    assert "4 days left" in changes[AlertKind.LICENSE_EXPIRING]
    assert changes[AlertKind.LICENSE_EXPIRED] is None


def test_health_alerts_clear_silence_and_track_undersized() -> None:
    healthy = assess([node(f"n{i}") for i in range(3)], SIZING, ALERTS)
    assert health_alerts(healthy) == {
        AlertKind.CLUSTER_UNDERSIZED: None,
        AlertKind.CLUSTER_SILENT: None,
    }
    small = assess([node("a")], SIZING, ALERTS)
    assert health_alerts(small)[AlertKind.CLUSTER_UNDERSIZED]


def test_silence_after_three_intervals() -> None:
    now = datetime(2030, 1, 1, tzinfo=UTC)
    interval = timedelta(minutes=2)
    assert silence_alert(now - timedelta(minutes=6), now, interval, 3) == {
        AlertKind.CLUSTER_SILENT: None
    }
    raised = silence_alert(now - timedelta(minutes=7), now, interval, 3)
    assert raised[AlertKind.CLUSTER_SILENT] == "no health check for 7 min (expected every 120 s)"


def test_backup_events() -> None:
    assert event_alerts("backup_failed", "disk full") == {AlertKind.BACKUP_FAILED: "disk full"}
    assert event_alerts("backup_succeeded", "") == {AlertKind.BACKUP_FAILED: None}


def test_a_refused_release_raises_its_alert() -> None:
    detail = "expired: timestamp.json is expired"
    assert event_alerts("release_refused", detail) == {AlertKind.RELEASE_REFUSED: detail}
    assert set(SEVERITY) == set(AlertKind)  # every kind can be stored
