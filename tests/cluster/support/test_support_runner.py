"""`run_command` and friends: pure, no server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cluster.cli.support import MODES, ROLES
from cluster.model import ClusterSnapshot, Epoch, Leader, LiveMember, NodeHealth, RosterEntry
from cluster.support.policy import AccessRole, SupportMode
from cluster.support.runner import (
    MAX_OUTPUT_BYTES,
    CommandResult,
    CommandStatus,
    limit_output,
    run_command,
    tail_lines,
)

SNAPSHOT = ClusterSnapshot(
    cluster="c1",
    roster=(
        RosterEntry("n1", "dc1", "127.0.0.1:1", 0.0),
        RosterEntry("n2", "dc2", "127.0.0.1:2", 0.0),
    ),
    live=(LiveMember("n1", "1.0", 0.0, NodeHealth(cpu_count=4)),),
    leader=Leader("n1", 3, 0.0),
    epoch=Epoch(3, 2),
)
HEALTH = {"leader": "n1", "at": 1.0, "nodes": {"n1": {"live": True, "health": {"cpu_count": 4}}}}
CONFIG = {
    "backup": {"retention_days": 7, "target": "s3://ak:topsecret@bucket/x", "enabled": True},
    "mission_control": {"url": "https://mc.example", "api_token": "abc"},
    "geography": "EU",
}


def run(command: str, log: Path | None = None, **arguments: object) -> CommandResult:
    return run_command(command, arguments, SNAPSHOT, HEALTH, CONFIG, log)


def test_cli_choices_match_the_domain() -> None:
    assert tuple(m.value for m in SupportMode) == MODES
    assert tuple(r.value for r in AccessRole) == ROLES


def test_diagnostics_reports_status_and_health() -> None:
    result = run("diagnostics")
    assert result.status is CommandStatus.OK
    assert result.summary == "1/2 nodes live, quorum NOT MET (1/2), leader n1 (epoch 3)"
    doc = json.loads(result.output)
    assert doc["cluster"]["leader"] == "n1"
    assert doc["health"]["nodes"]["n1"]["health"]["cpu_count"] == 4


def test_config_get_redacts_secrets_whole_or_by_key() -> None:
    whole = run("config get")
    text = whole.output
    assert "topsecret" not in text and '"api_token": "[REDACTED]"' in text
    assert '"retention_days": 7' in text
    one = run("config get", key="mission_control.api_token")
    assert json.loads(one.output) == {"mission_control.api_token": "[REDACTED]"}
    missing = run("config get", key="backup.nope")
    assert missing.status is CommandStatus.ERROR


@pytest.mark.parametrize(
    ("key", "value", "reason"),
    [
        ("backup.password", "x", "is a secret setting"),
        ("mission_control.url", "https://evil", "support access cannot change"),
        ("support.mode", "allowed", "support access cannot change"),
        ("backup.retention_days", "14", "holds a integer; give a string"),
        ("backup.enabled", 1, "holds a boolean; give a integer"),
        ("backup", 1, "is a section"),
        ("geography.zone", "x", "geography is a value, not a section"),
        ("Bad..key", 1, "invalid config key"),
        ("a.b.c.d.e", 1, "invalid config key"),
        ("backup.note", {"nested": 1}, "single value"),
        ("backup.note", "line\nbreak", "not printable"),
    ],
)
def test_config_set_refuses_and_changes_nothing(key: str, value: object, reason: str) -> None:
    before = json.dumps(CONFIG, sort_keys=True)
    result = run("config set", key=key, value=value)
    assert result.status is CommandStatus.REFUSED, result
    assert reason in result.summary
    assert result.new_config is None
    assert json.dumps(CONFIG, sort_keys=True) == before


def test_config_set_returns_the_new_config() -> None:
    result = run("config set", key="backup.retention_days", value=30)
    assert result.status is CommandStatus.OK
    assert result.new_config["backup"]["retention_days"] == 30
    assert CONFIG["backup"]["retention_days"] == 7  # type: ignore[index]
    fresh = run("config set", key="alerts.cpu.threshold", value=90)
    assert fresh.new_config["alerts"] == {"cpu": {"threshold": 90}}


def test_logs_tail_bounds_lines_and_bytes(tmp_path: Path) -> None:
    log = tmp_path / "node.log"
    log.write_text("".join(f"{i} Authorization: Bearer abc.def{i}\n" for i in range(10_000)))
    result = run("logs tail", log, lines=5)
    lines = result.output.splitlines()
    assert len(lines) == 5 and lines[-1].startswith("9999 Authorization: [REDACTED]")
    assert "abc.def" not in result.output
    big = run("logs tail", log, lines=5000)
    assert len(big.output.encode()) <= MAX_OUTPUT_BYTES
    assert big.output.endswith("9999 Authorization: [REDACTED]")
    for bad in (0, -1, 5001, "many", True):
        assert run("logs tail", log, lines=bad).status is CommandStatus.REFUSED
    missing = run("logs tail", tmp_path / "none.log")
    assert missing.status is CommandStatus.ERROR
    assert run("logs tail", None).status is CommandStatus.ERROR


def test_tail_lines_of_small_and_empty_files(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    log.write_text("one\ntwo\n")
    assert tail_lines(log, 10) == ["one", "two"]
    log.write_text("")
    assert tail_lines(log, 3) == []


def test_limit_output_keeps_utf8_whole() -> None:
    text = "é" * MAX_OUTPUT_BYTES
    assert len(limit_output(text).encode()) <= MAX_OUTPUT_BYTES
    assert limit_output(text, keep_end=True).endswith("é")


def test_unknown_command_is_refused() -> None:
    assert run("shell").status is CommandStatus.REFUSED
