"""Pure decisions of the backup orchestration, without servers: settings validation, the cron
catch-up rule, what a new leader does with a run in progress, when a run commits or fails."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from backup.keys import key_id, public_key_pem
from cluster.backups import zkdump
from cluster.backups.cron import due, parse_schedule
from cluster.backups.errors import BackupConfigError, BackupRunError
from cluster.backups.restore import parse_mappings
from cluster.backups.runs import PartOutcome, RunRecord, assess, recover
from cluster.backups.settings import BackupSettings, RunPlan, plan_run

EU = "s3://b-eu/x?region=eu-west-1&endpoint=http://127.0.0.1:1"
FRANKFURT = "s3://b-de/x?region=eu-central-1&endpoint=http://127.0.0.1:2"
VIRGINIA = "s3://b-us/x?region=us-east-1&endpoint=http://127.0.0.1:3"
PLAN = RunPlan(geography="EU", target=EU, public_key="pem", part_timeout=60)


@pytest.mark.parametrize(
    ("settings", "geography", "words"),
    [
        (BackupSettings(target="http://x"), "EU", "use file:///path or s3://"),
        (BackupSettings(target=EU, mirrors=(VIRGINIA,)), "EU", "outside the cluster's geography"),
        (BackupSettings(target=VIRGINIA), "EU", "us-east-1"),
        (BackupSettings(target=EU, mirrors=(EU,)), "EU", "given twice"),
        (BackupSettings(target=EU), None, "--geography"),
        (BackupSettings(target=EU), "XX", "unknown geography"),
        (BackupSettings(mirrors=(EU,)), "EU", "need a primary"),
        (BackupSettings(target=EU, schedule="0 2 * *"), "EU", "5 cron fields"),
        (BackupSettings(target=EU, schedule="61 2 * * *"), "EU", "61"),
        (BackupSettings(target=EU, bandwidth_limit="fast"), "EU", "100MiB/s"),
        (BackupSettings(target=EU, public_key="not a key"), "EU", "PEM public key"),
    ],
)
def test_bad_settings_are_refused_with_one_line(
    settings: BackupSettings, geography: str | None, words: str
) -> None:
    with pytest.raises(BackupConfigError, match=words) as caught:
        settings.checked(geography)
    assert "\n" not in str(caught.value)


def test_good_settings_and_plan() -> None:
    key = X25519PrivateKey.generate().public_key()
    settings = BackupSettings(
        target=EU,
        mirrors=(FRANKFURT,),
        schedule="*/5 * * * * *",
        keep_last=7,
        bandwidth_limit="100MiB/s",
        public_key=public_key_pem(key).decode(),
        key_id=key_id(key),
        signing_public_key="AAAA",
    ).checked("EU")
    assert settings.retention.keep_last == 7
    plan = plan_run({"geography": "EU", "backup": settings.to_config()})
    assert plan.urls == (EU, FRANKFURT) and plan.bandwidth_limit == 100 * 1024 * 1024
    with pytest.raises(BackupConfigError, match="keygen"):
        plan_run({"geography": "EU", "backup": {"target": EU}})
    with pytest.raises(BackupConfigError, match="configure"):
        plan_run({})


def test_catch_up_runs_once_for_any_number_of_missed_fires() -> None:
    daily = parse_schedule("0 2 * * *")
    now = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)
    assert not due(daily, None, now).run  # no mark yet: start counting from now
    assert not due(daily, datetime(2025, 3, 10, 2, 0, tzinfo=UTC), now).run
    missed = due(daily, now - timedelta(days=3), now)
    assert missed.run and "2025-03-08T02:00:00Z" in missed.reason
    seconds = parse_schedule("*/10 * * * * *")  # the 6-field form, seconds first
    assert due(seconds, now - timedelta(seconds=11), now).run
    assert not due(seconds, now - timedelta(seconds=5), now - timedelta(seconds=1)).run


def _run(**changes: object) -> RunRecord:
    base = RunRecord(
        id="20250101T020000Z-0a1b2c3d",
        status="running",
        epoch=4,
        leader="n1",
        trigger="manual",
        started=1000.0,
        expected=("n1", "n2", "zookeeper"),
        plan=PLAN,
    )
    return base.model_copy(update=changes)


def test_a_new_leader_fails_the_run_it_finds_in_progress() -> None:
    assert not recover(None, 5).fail
    decision = recover(_run(), 5)
    assert decision.fail and "leader changed" in decision.reason and "epoch 4" in decision.reason
    assert recover(_run(), 4).fail  # the same leader restarted its work: nobody drives it
    assert not recover(_run(status="ok"), 5).fail


def _written(part: str) -> PartOutcome:
    from backup.keys import WrappedKey
    from backup.manifest import PartRecord

    wrapped = WrappedKey(algorithm="rsa-oaep-sha256", key_id="0" * 64, ciphertext="AA==")
    record = PartRecord(
        name=part, node=part, size_plain=1, size_cipher=2, frames=1, sha256="0" * 64,
        wrapped_key=wrapped,
    )  # fmt: skip
    return PartOutcome(part=part, node=part, record=record)


def test_assess_waits_commits_or_fails_with_a_reason() -> None:
    run, live = _run(), frozenset({"n1", "n2"})
    assert assess(run, {}, live, 1001).action == "wait"
    done = {p: _written(p) for p in run.expected}
    assert assess(run, done, live, 1001).action == "commit"
    broken = {**done, "n2": PartOutcome(part="n2", node="n2", error="disk on fire")}
    verdict = assess(run, broken, live, 1001)
    assert verdict.action == "fail" and "disk on fire" in verdict.reason
    verdict = assess(run, {"n1": done["n1"]}, frozenset({"n1"}), 1001)
    assert verdict.action == "fail" and "n2 went down" in verdict.reason
    verdict = assess(run, {"n1": done["n1"]}, live, 1000 + 61)
    assert verdict.action == "fail" and "timed out" in verdict.reason


def test_list_json_fields() -> None:
    summary = _run(status="ok", finished=1002.5, bytes=10).summary()
    assert {"id", "status", "started", "finished", "bytes"} <= set(summary)
    assert summary["duration"] == 2.5 and summary["targets"] == [EU]


def test_zookeeper_dump_round_trips_and_rejects_garbage() -> None:
    znodes = [
        zkdump.Znode("", b"", False),
        zkdump.Znode("config", b'{"geography":"EU"}', False),
        zkdump.Znode("secrets/backup-signing-key", b"\x00\xff", True),
    ]
    dump = zkdump.parse(zkdump.encode("c1", znodes))
    assert list(dump.znodes) == znodes and dump.config() == {"geography": "EU"}
    assert dump.children_of("secrets") == ["backup-signing-key"]
    with pytest.raises(BackupRunError, match="unknown format|not a readable dump"):
        zkdump.parse(b"{}")


def test_data_dir_mappings() -> None:
    assert parse_mappings(["n1=/tmp/a"]) == {"n1": Path("/tmp/a")}
    for bad in ("n1", "n1=", "N_1=/tmp/a"):
        with pytest.raises(BackupRunError, match="--data-dir"):
            parse_mappings([bad])


def test_keygen_files_passphrase_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from backup.keys import KeyFileError, key_id, read_public_key
    from cluster.backups import keyfiles

    monkeypatch.setenv(keyfiles.PASSPHRASE_ENV, "correct horse")
    path = tmp_path / "k"
    kid, pub = keyfiles.generate(path, "x25519", protect=True)
    assert oct(path.stat().st_mode & 0o777) == "0o600" and pub == tmp_path / "k.pub"
    assert b"MANAGED BACKUP ENCRYPTED PRIVATE KEY" in path.read_bytes()
    assert key_id(keyfiles.load_private(path).public_key()) == kid == key_id(read_public_key(pub))
    monkeypatch.setenv(keyfiles.PASSPHRASE_ENV, "wrong")
    with pytest.raises(KeyFileError, match="wrong passphrase"):
        keyfiles.load_private(path)
    with pytest.raises(BackupConfigError, match="already exists"):
        keyfiles.generate(path, "x25519", protect=False)
