"""The commit of one run, fenced end to end (blocking: it runs on the leader's worker thread).

Guarantees:
- The manifest is written only after every part was checked on every target and, right before
  the first manifest byte, a fenced no-op proved this node still leads with the run's epoch.
- Once written, the run is recorded `ok` in one fenced ZooKeeper transaction (with the guard's
  release and the Mission Control event). If that transaction is refused (another leader took
  over, or it failed as a whole), the manifest is withdrawn again, primary first, so storage
  and ZooKeeper agree: ZooKeeper never says `failed` for a backup that is listed as committed.
- If the transaction's outcome is unknown (the connection broke while it was in flight), the
  run's record is read back after a `sync`; only a record that is not `ok` withdraws the
  manifest. If it cannot be read either, the manifest is kept (a complete, verifiable backup)
  and `CommitUncertain` is raised: the caller must then leave the run's objects alone; the next
  leader records the run `failed`.
Does not guarantee: that a process killed between writing the manifest and recording the run
leaves no manifest; that backup is complete (every part was checked) but its run is `failed`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from backup.engine import PartRecord, TargetSet, commit_manifest
from backup.writer import withdraw_manifest
from cluster.backups.runs import RunRecord
from cluster.backups.work import context_for
from cluster.errors import ClusterError, FencedOut, ZooKeeperUnavailable
from cluster.zk.errors import (
    ConnectionClosedError,
    ConnectionLoss,
    OperationTimeoutError,
    SessionExpiredError,
    ZooKeeperError,
)

log = logging.getLogger(__name__)
# Errors after which a ZooKeeper transaction may or may not have been applied.
UNCERTAIN = (
    ZooKeeperUnavailable,
    ConnectionLoss,
    ConnectionClosedError,
    SessionExpiredError,
    OperationTimeoutError,
)
Settled = Literal["ok", "not recorded", "unknown"]


class CommitUncertain(ClusterError):
    """The manifest is written, and whether the run was recorded `ok` cannot be found out."""


def settle(
    read_status: Callable[[], str | None],
    attempts: int = 5,
    delay: float = 1.0,
    sleep: Callable[[float], None] = time.sleep,
) -> Settled:
    """Whether a run whose `ok` record had an unknown outcome was recorded after all."""
    for attempt in range(attempts):
        try:
            status = read_status()
        except (ZooKeeperError, ZooKeeperUnavailable) as exc:
            log.info("reading the run back failed (%s); retrying", type(exc).__name__)
        else:
            if status == "ok":
                return "ok"
            if status is not None:
                return "not recorded"
        if attempt + 1 < attempts:
            sleep(delay)
    return "unknown"


def commit_run(
    run: RunRecord,
    parts: Sequence[PartRecord],
    targets: TargetSet,
    *,
    cluster: str,
    signing_key: Ed25519PrivateKey,
    check_fence: Callable[[], None],
    record: Callable[[RunRecord], None],
    read_status: Callable[[], str | None],
    clock: Callable[[], float],
    sleep: Callable[[float], None] = time.sleep,
) -> RunRecord:
    """Commit `run` and record it `ok`; returns the final record (see the module docstring).

    `check_fence` raises FencedOut unless this node still leads with the run's epoch; `record`
    applies the fenced transaction that records the final run; `read_status` reads the run's
    stored status after a sync (None if the record is missing).
    """
    assert run.plan is not None
    commit_manifest(
        ctx=context_for(run.id, run.plan),
        cluster=cluster,
        epoch=run.epoch,
        created=datetime.fromtimestamp(run.started, UTC),
        parts=parts,
        targets=targets,
        signing_key=signing_key,
        missing_nodes=run.missing,
        before_publish=check_fence,
    )
    done = run.finish("ok", clock(), None, sum(p.size_cipher for p in parts))
    try:
        record(done)
    except Exception as exc:
        outcome: Settled = (
            settle(read_status, sleep=sleep) if isinstance(exc, UNCERTAIN) else ("not recorded")
        )
        if outcome == "ok":
            log.info("backup %s: recorded ok despite %s", run.id, type(exc).__name__)
            return done
        if outcome == "unknown":
            log.error(
                "backup %s: manifest written but recording the run failed (%s) and its record "
                "cannot be read; the manifest is kept",
                run.id,
                exc,
            )
            raise CommitUncertain(
                f"backup {run.id}: manifest written, recording the run failed ({exc})"
            ) from exc
        failures = withdraw_manifest(run.id, targets)
        log.warning(
            "backup %s: manifest withdrawn, the run could not be recorded (%s)%s",
            run.id,
            exc if not isinstance(exc, FencedOut) else "another leader took over",
            f"; left on {'; '.join(failures)}" if failures else "",
        )
        raise
    return done
