"""`run_command` and friends: pure, no server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cluster.cli.support import MODES, ROLES
from cluster.model import ClusterSnapshot, Epoch, Leader, LiveMember, RosterEntry
from cluster.support.runner import (
    MAX_OUTPUT_BYTES,
    CommandResult,
    CommandStatus,
    limit_output,
    run_command,
    tail_lines,
)
from contract.resources import UNMEASURED
from contract.support.policy import AccessRole, SupportMode

SNAPSHOT = ClusterSnapshot(
    cluster="c1",
    roster=(
        RosterEntry("n1", "dc1", "127.0.0.1:1", 0.0),
        RosterEntry("n2", "dc2", "127.0.0.1:2", 0.0),
    ),
    live=(LiveMember("n1", "1.0", 0.0, UNMEASURED.replaced(cpu_cores=4)),),
    leader=Leader("n1", 3, 0.0),
    epoch=Epoch(3, 2),
)
HEALTH = {"leader": "n1", "at": 1.0, "nodes": {"n1": {"live": True, "health": {"cpu_cores": 4}}}}
CONFIG = {
    "backup": {"retention_days": 7, "target": "s3://ak:topsecret@bucket/x", "enabled": True},
    "mission_control": {"url": "https://mc.example", "api_token": "abc"},
    "geography": "EU",
}


#: A cluster config as the operator's commands write it (what `config set` validates against).
LIVE = {
    "geography": "EU",
    "backup": {"target": "file:///mnt/backups", "schedule": "0 2 * * *", "keep_last": 7},
    "mission_control": {"url": "https://mc.example", "cluster_id": "c1"},
}


def run(command: str, log: Path | None = None, **arguments: object) -> CommandResult:
    return run_command(command, arguments, SNAPSHOT, HEALTH, CONFIG, log)


def set_live(**arguments: object) -> CommandResult:
    return run_command("config set", arguments, SNAPSHOT, HEALTH, LIVE, None)


def test_cli_choices_match_the_domain() -> None:
    assert tuple(m.value for m in SupportMode) == MODES
    assert tuple(r.value for r in AccessRole) == ROLES


def test_diagnostics_reports_status_and_health() -> None:
    result = run("diagnostics")
    assert result.status is CommandStatus.OK
    assert result.summary == "1/2 nodes live, quorum NOT MET (1/2), leader n1 (epoch 3)"
    doc = json.loads(result.output)
    assert doc["cluster"]["leader"] == "n1"
    assert doc["health"]["nodes"]["n1"]["health"]["cpu_cores"] == 4


def test_config_get_redacts_secrets_whole_or_by_key() -> None:
    whole = run("config get")
    text = whole.output
    assert "topsecret" not in text and '"api_token": "[REDACTED]"' in text
    assert '"retention_days": 7' in text
    one = run("config get", key="mission_control.api_token")
    assert json.loads(one.output) == {"mission_control.api_token": "[REDACTED]"}
    missing = run("config get", key="backup.nope")
    assert missing.status is CommandStatus.ERROR


EU_KEY = (
    "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VuAyEA3p7bfXt9wbTTW2HC7OQ1Nz+DQ8hbeGdNrfx+FG+IK08=\n"
    "-----END PUBLIC KEY-----\n"
)
NOT_SETTABLE = "support access cannot change"


@pytest.mark.parametrize(
    ("key", "value", "reason"),
    [
        ("backup.password", "x", "is a secret setting"),
        # Residency, keys, schedule, where the cluster dials out to, policy: never settable.
        ("geography", "US", NOT_SETTABLE),
        ("backup.target", "s3://evil/p?region=us-east-1", NOT_SETTABLE),
        ("backup.mirrors", "s3://evil/q", NOT_SETTABLE),
        ("backup.signing_public_key", "AAAA", NOT_SETTABLE),
        ("backup.public_key", EU_KEY, NOT_SETTABLE),
        ("backup.schedule", "garbage", NOT_SETTABLE),
        ("backup.foo", "x", NOT_SETTABLE),
        ("backup.keep_last", 1, NOT_SETTABLE),
        ("backup.paused", True, NOT_SETTABLE),
        ("environments.prod", 5, NOT_SETTABLE),
        ("mission_control.url", "https://evil", NOT_SETTABLE),
        ("mission_control.outage_limit_days", 999, NOT_SETTABLE),
        ("support.mode", "allowed", NOT_SETTABLE),
        ("backup.retention_days", "14", NOT_SETTABLE),
        ("backup", 1, NOT_SETTABLE),
        ("Bad..key", 1, "invalid config key"),
        ("a.b.c.d.e", 1, "invalid config key"),
        # Settable keys, with values their check refuses.
        ("backup.bandwidth_limit", "fast", "bandwidth limit 'fast'"),
        ("backup.bandwidth_limit", 5, "give a rate"),
        ("backup.bandwidth_limit", {"nested": 1}, "single value"),
        ("backup.bandwidth_limit", "line\nbreak", "not printable"),
        ("backup.part_timeout", 0, "at least 1"),
        ("backup.part_timeout", True, "at least 1"),
        ("mission_control.intervals.heartbeat", 1, "from 5 to 300"),
        ("mission_control.intervals.heartbeat", "30", "from 5 to 300"),
        ("mission_control.intervals.health", 10**9, "from 30 to 3600"),
    ],
)
def test_config_set_refuses_and_changes_nothing(key: str, value: object, reason: str) -> None:
    before = json.dumps(LIVE, sort_keys=True)
    result = set_live(key=key, value=value)
    assert result.status is CommandStatus.REFUSED, result
    assert reason in result.summary
    assert result.new_config is None
    assert json.dumps(LIVE, sort_keys=True) == before


def test_config_set_allowlist_changes_only_checked_values() -> None:
    result = set_live(key="mission_control.intervals.heartbeat", value=60)
    assert result.status is CommandStatus.OK, result
    assert result.new_config is not None
    assert result.new_config["mission_control"]["intervals"] == {"heartbeat": 60.0}
    assert result.new_config["mission_control"]["cluster_id"] == "c1"  # the rest is kept
    assert "intervals" not in LIVE["mission_control"]
    limited = set_live(key="backup.bandwidth_limit", value="100MiB/s")
    assert limited.status is CommandStatus.OK, limited
    assert limited.new_config is not None
    assert limited.new_config["backup"]["bandwidth_limit"] == "100MiB/s"
    assert limited.summary == 'set backup.bandwidth_limit to "100MiB/s" (was null)'
    off = set_live(key="backup.bandwidth_limit", value="off")
    assert off.new_config is not None and off.new_config["backup"]["bandwidth_limit"] is None
    cleared = set_live(key="backup.bandwidth_limit", value=None)
    assert cleared.status is CommandStatus.OK
    timeout = set_live(key="backup.part_timeout", value=600)
    assert timeout.new_config is not None and timeout.new_config["backup"]["part_timeout"] == 600


def test_config_get_never_shows_secrets() -> None:
    config = {
        "mission_control": {"url": "https://u:pw@mc.example", "credential": "mcc.x.y"},
        "backup": {"target": "s3://ak:topsecret@bucket/x", "passphrase": "two words"},
    }
    whole = run_command("config get", {}, SNAPSHOT, HEALTH, config, None).output
    assert "topsecret" not in whole and "mcc.x.y" not in whole and ":pw@" not in whole
    assert "two words" not in whole
    for key in ("backup.passphrase", "mission_control.credential"):
        one = run_command("config get", {"key": key}, SNAPSHOT, HEALTH, config, None)
        assert json.loads(one.output) == {key: "[REDACTED]"}


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
