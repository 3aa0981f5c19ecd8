"""The leader's commit, fenced end to end, and the part report's retries, without servers:
file:// targets, and the fence, the ZooKeeper record and the read-back injected as callables."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from kazoo.exceptions import ConnectionLoss

from backup.engine import ResidencyPolicy, TargetSet, open_targets, write_part
from backup.keys import public_key_pem
from backup.layout import manifest_object
from cluster.backups import zkdump
from cluster.backups.commit import CommitUncertain, commit_run
from cluster.backups.errors import BackupConfigError
from cluster.backups.keyfiles import read_signers, signers_path, trusted_signers, write_signers
from cluster.backups.node_part import retrying
from cluster.backups.restore import _prepared
from cluster.backups.runs import RunRecord
from cluster.backups.settings import RunPlan
from cluster.backups.text import restore_text
from cluster.backups.work import context_for
from cluster.errors import FencedOut, ZooKeeperUnavailable

BACKUP_ID = "20250101T020000Z-0a1b2c3d"


@pytest.fixture
def written(tmp_path: Path) -> tuple[RunRecord, list[object], TargetSet]:
    key = X25519PrivateKey.generate()
    targets = open_targets(f"file://{tmp_path}/p", [f"file://{tmp_path}/m"], ResidencyPolicy("EU"))
    plan = RunPlan(
        geography="EU",
        target=targets.urls[0],
        mirrors=targets.urls[1:],
        public_key=public_key_pem(key.public_key()).decode(),
    )
    run = RunRecord(
        id=BACKUP_ID,
        status="running",
        epoch=3,
        leader="n1",
        trigger="manual",
        started=1_700_000_000.0,
        expected=("n1", "zookeeper"),
        missing=("n3",),
        plan=plan,
    )
    ctx = context_for(BACKUP_ID, plan)
    parts: list[object] = [
        write_part(
            io.BytesIO(b"data of " + p.encode()), ctx=ctx, part=p, node="n1", targets=targets
        )
        for p in run.expected
    ]
    return run, parts, targets


def commit(
    written: tuple[RunRecord, list[object], TargetSet],
    *,
    check: Callable[[], None] = lambda: None,
    record: Callable[[RunRecord], None] = lambda _r: None,
    read_status: Callable[[], str | None] = lambda: None,
) -> RunRecord:
    run, parts, targets = written
    return commit_run(
        run,
        parts,  # type: ignore[arg-type]
        targets,
        cluster="c1",
        signing_key=Ed25519PrivateKey.generate(),
        check_fence=check,
        record=record,
        read_status=read_status,
        clock=lambda: 1_700_000_100.0,
        sleep=lambda _s: None,
    )


def manifests(targets: TargetSet) -> list[bool]:
    return [t.size(manifest_object(BACKUP_ID)) is not None for t in targets.all]


def test_commit_records_ok_and_keeps_the_manifest(
    written: tuple[RunRecord, list[object], TargetSet],
) -> None:
    recorded: list[RunRecord] = []
    done = commit(written, record=recorded.append)
    assert done.status == "ok" and recorded == [done] and done.bytes > 0
    assert manifests(written[2]) == [True, True]
    stored = written[2].primary.get(manifest_object(BACKUP_ID))
    assert b'"missing_nodes":["n3"]' in b"".join(stored)


def test_a_failed_fence_check_writes_no_manifest(
    written: tuple[RunRecord, list[object], TargetSet],
) -> None:
    def fenced_out() -> None:
        raise FencedOut("another leader took over")

    with pytest.raises(FencedOut):
        commit(written, check=fenced_out)
    assert manifests(written[2]) == [False, False]


def test_a_refused_record_withdraws_the_manifest(
    written: tuple[RunRecord, list[object], TargetSet],
) -> None:
    def refused(_run: RunRecord) -> None:
        raise FencedOut("epoch 3 is no longer current")

    with pytest.raises(FencedOut):
        commit(written, record=refused)
    assert manifests(written[2]) == [False, False]


@pytest.mark.parametrize(
    ("stored", "kept", "raised"),
    [("ok", True, False), ("failed", False, True), ("running", False, True), (None, True, True)],
)
def test_a_record_with_an_unknown_outcome_is_read_back(
    written: tuple[RunRecord, list[object], TargetSet],
    stored: str | None,
    kept: bool,
    raised: bool,
) -> None:
    def lost(_run: RunRecord) -> None:
        raise ConnectionLoss()

    def read_back() -> str | None:
        if stored is None:
            raise ZooKeeperUnavailable("still down")
        return stored

    if raised:
        with pytest.raises((ConnectionLoss, CommitUncertain)):
            commit(written, record=lost, read_status=read_back)
    else:
        assert commit(written, record=lost, read_status=read_back).status == "ok"
    assert manifests(written[2]) == [kept, kept]


def test_reports_are_retried_a_bounded_number_of_times() -> None:
    calls: list[int] = []
    slept: list[float] = []

    async def flaky() -> object:
        calls.append(1)
        if len(calls) < 3:
            raise ZooKeeperUnavailable("blip")
        return True

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    asyncio.run(retrying(flaky, attempts=5, delay=0.5, sleep=sleep))
    assert len(calls) == 3 and slept == [0.5, 1.0]

    async def down() -> object:
        raise ZooKeeperUnavailable("down")

    with pytest.raises(ZooKeeperUnavailable):
        asyncio.run(retrying(down, attempts=3, delay=0.1, sleep=sleep))


def test_restored_dump_is_paused_with_a_raised_epoch() -> None:
    dump = zkdump.Dump(
        "c1",
        (
            zkdump.Znode("", b"", False),
            zkdump.Znode("config", b'{"backup":{"paused":false,"target":"x"}}', False),
            zkdump.Znode("epoch", b"7", False),
        ),
    )
    prepared, epoch = _prepared(dump, backup_epoch=7, min_epoch=0)
    assert epoch == 8 and prepared.data_of("epoch") == b"8"
    assert prepared.config()["backup"] == {"paused": True, "target": "x"}
    assert _prepared(dump, backup_epoch=7, min_epoch=40)[1] == 40
    lines, warnings = restore_text(
        {
            "backup_id": BACKUP_ID,
            "cluster": "c2",
            "directories": [("n1", "/srv/n1")],
            "znodes": 3,
            "signer": "ab" * 32,
            "missing_nodes": ("n3",),
            "epoch": 8,
            "enrolled": True,
        }
    )
    assert "backup resume" in lines[1] and "re-enroll" in lines[2] and "epochs from 9" in lines[2]
    assert warnings and "no data from n3" in warnings[0]


def test_signers_file(tmp_path: Path) -> None:
    key = tmp_path / "k"
    with pytest.raises(BackupConfigError, match="--signer FINGERPRINT"):
        trusted_signers(key, ())
    write_signers(signers_path(key), "AB" * 32, "test")
    assert read_signers(signers_path(key)) == trusted_signers(key, ()) == {"ab" * 32}
    assert trusted_signers(key, ("cd" * 32,)) == {"cd" * 32}
    with pytest.raises(BackupConfigError, match="already exists"):
        write_signers(signers_path(key), "ab" * 32, "again")


def test_one_limiter_per_process_and_rate() -> None:
    from cluster.backups.work import limiter_for

    plan = RunPlan(geography="EU", target="file:///x", public_key="pem", bandwidth_limit=1 << 20)
    leader_part, node_part = limiter_for(plan), limiter_for(plan.model_copy())
    assert leader_part is not None and leader_part is node_part
    assert limiter_for(plan.model_copy(update={"bandwidth_limit": 2 << 20})) is not leader_part
    assert limiter_for(plan.model_copy(update={"bandwidth_limit": None})) is None
