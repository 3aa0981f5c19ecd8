"""The cluster's audit log in ZooKeeper: appends serialized by a compare-and-set on a head znode.

Layout (under `<cluster>/audit/`)::

    head                   {"entry": <newest entry>, "checkpoint": <newest checkpoint>}
    entries/<seq:010d>     one `AuditEntry` (JSON) per znode, never changed once written
    checkpoints/<seq:010d> one signed `Checkpoint` (JSON) over the entry with that seq

Guarantees:
- `AuditLog.append` writes its entries in ONE transaction that checks the head's version, sets
  the head and creates the entries (plus a checkpoint when `CheckpointSchedule` says one is due
  and a signing key was given, plus any operations the caller adds: the state change the entries
  describe). Concurrent appenders (the leader and an operator's CLI) therefore serialize: the
  loser re-reads the head and tries again. A state change and its audit entry are applied
  together or not at all.
- With a `Fence`, the transaction also checks the epoch znode's version: a deposed leader
  cannot append (`FencedOut`).
- `AuditLog.verify` runs `verify_chain` over the stored entries and checkpoints and also compares
  the chain with the head, so deleting or adding entries at the end is found even before a
  checkpoint covers them (unless the head is rewritten too: see `contract.audit.chain` for what
  the chain cannot guarantee).

- Each new checkpoint is queued for Mission Control (outbox message `audit/checkpoint`) in
  the same transaction, so Mission Control keeps a copy the cluster cannot take back:
  `managed audit verify` compares the local checkpoints with it.

Does not guarantee: secrecy (anyone who can read the cluster's subtree can read the log).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from cluster.errors import ClusterError, FencedOut
from cluster.link.outbox import Outbox
from cluster.paths import ClusterPaths
from cluster.zk import Check, Create, Fence, Op, OpFailed, SetData, ZooKeeper
from cluster.zk.errors import BadVersionError, NodeExistsError, NoNodeError
from contract.audit.chain import (
    AuditEntry,
    AuditFormatError,
    ChainProblem,
    Checkpoint,
    CheckpointProblem,
    CheckpointSchedule,
    ProblemKind,
    VerifyResult,
    append,
    verify_chain,
)
from contract.audit.copies import compare_copies
from contract.audit.events import AuditEvent
from contract.messages import AuditCheckpointCopyBody
from contract.routes import AUDIT_CHECKPOINT

MAX_ATTEMPTS = 50
CHECKPOINT_KIND = AUDIT_CHECKPOINT.kind


class AuditStoreError(ClusterError):
    """The stored log cannot be appended to or read as a whole (damaged head, missing key)."""


@dataclass(frozen=True)
class Head:
    """The newest entry and checkpoint, and the head znode's version (-1: no head yet)."""

    entry: AuditEntry | None
    checkpoint: Checkpoint | None
    version: int

    def to_bytes(self) -> bytes:
        doc = {
            "entry": self.entry.to_json() if self.entry else None,
            "checkpoint": self.checkpoint.to_json() if self.checkpoint else None,
        }
        return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, data: bytes, version: int) -> Head:
        try:
            doc = json.loads(data or b"{}")
            entry = doc.get("entry")
            cp = doc.get("checkpoint")
            return cls(
                AuditEntry.from_json(entry) if entry else None,
                Checkpoint.from_json(cp) if cp else None,
                version,
            )
        except (ValueError, AttributeError, AuditFormatError) as exc:
            raise AuditStoreError(
                f"the audit head is unreadable ({exc}); run `managed audit verify`"
            ) from None


def _dump(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


class AuditLog:
    """Append to and read one cluster's audit log. Blocking ZooKeeper calls, each bounded."""

    def __init__(
        self,
        client: ZooKeeper,
        paths: ClusterPaths,
        *,
        fence: Fence | None = None,
        signer: Ed25519PrivateKey | None = None,
        schedule: CheckpointSchedule | None = None,
        timeout: float = 5.0,
    ) -> None:
        self.client = client
        self.paths = paths
        self.fence = fence
        self.signer = signer
        self.schedule = schedule or CheckpointSchedule()
        self.timeout = timeout
        self.outbox = Outbox(paths)
        self._ensured = False

    def _ensure(self) -> None:
        if not self._ensured:
            for path in (self.paths.audit_entries, self.paths.audit_checkpoints):
                self.client.ensure_path(path)
            self.outbox.ensure(self.client)
            self._ensured = True

    def head(self) -> Head:
        got = self.client.find(self.paths.audit_head, self.timeout)
        if got is None:
            return Head(None, None, -1)
        return Head.from_bytes(got[0], got[1].version)

    def append(
        self, events: Sequence[AuditEvent], now: datetime, ops: Sequence[Op] = ()
    ) -> list[AuditEntry]:
        """Append `events` (in order) and apply `ops`, all in one transaction.

        Raises `OpFailed` when one of `ops` fails (nothing is applied), `FencedOut` when the
        fence is stale, `AuditStoreError` when the head and the entries disagree.
        """
        self._ensure()
        for _ in range(MAX_ATTEMPTS):
            head = self.head()
            written: list[AuditEntry] = []
            prev = head.entry
            for event in events:
                prev = append(prev, event)
                written.append(prev)
            checkpoint = head.checkpoint
            new_checkpoint: Checkpoint | None = None
            if self.signer is not None and self.schedule.due(checkpoint, prev, now):
                assert prev is not None
                new_checkpoint = Checkpoint.sign(prev, now, self.signer)
                checkpoint = new_checkpoint
            new_head = Head(prev, checkpoint, head.version)
            tx: list[Op] = []
            if self.fence is not None:
                tx.append(Check(self.paths.epoch, self.fence.epoch_version))
            if head.version < 0:
                tx.append(Create(self.paths.audit_head, new_head.to_bytes()))
            else:
                tx.append(SetData(self.paths.audit_head, new_head.to_bytes(), head.version))
            for entry in written:
                tx.append(Create(self.paths.audit_entry(entry.seq), _dump(entry.to_json())))
            if new_checkpoint is not None:
                path = self.paths.audit_checkpoint(new_checkpoint.seq)
                tx.append(Create(path, _dump(new_checkpoint.to_json())))
                tx.append(self._checkpoint_message(new_checkpoint, now))
            outcome = self.client.commit([*tx, *ops], self.timeout)
            failed = outcome.failure
            if failed is None:
                return written
            index, error = failed
            if self.fence is not None:
                if index == 0:
                    raise FencedOut(
                        f"epoch {self.fence.epoch} is no longer current: another leader took over"
                    )
                index -= 1
            if index == 0 and isinstance(error, BadVersionError | NodeExistsError):
                time.sleep(0.005)  # another appender won the head; read it again
                continue
            audit_ops = 1 + len(written) + (2 if new_checkpoint is not None else 0)
            if index < audit_ops:
                raise AuditStoreError(
                    f"the audit head and its entries disagree ({type(error).__name__}); "
                    "run `managed audit verify`"
                )
            raise OpFailed(ops[index - audit_ops], error)
        raise AuditStoreError(f"could not append to the audit log in {MAX_ATTEMPTS} attempts")

    def _checkpoint_message(self, checkpoint: Checkpoint, now: datetime) -> Create:
        """The outbox message copying `checkpoint` to Mission Control (deduplicated there by
        cluster and seq; the message id is derived from the checkpoint itself)."""
        mid = self.outbox.stable_id("checkpoint", str(checkpoint.seq), checkpoint.hash)
        copy = AuditCheckpointCopyBody.model_validate(checkpoint.to_json())
        return self.outbox.message(copy, now.timestamp(), message_id=mid)

    def _read_children(self, parent: str) -> list[tuple[str, bytes]]:
        try:
            names = sorted(self.client.children(parent, timeout=self.timeout))
        except NoNodeError:
            return []
        got = self.client.get_many((f"{parent}/{n}" for n in names), self.timeout)
        return [(name, read[0]) for name, read in zip(names, got, strict=True) if read]

    def stored_entries(self) -> list[tuple[str, AuditEntry | None]]:
        """Every znode under entries/ in name order, parsed (None when unreadable)."""
        out: list[tuple[str, AuditEntry | None]] = []
        for name, data in self._read_children(self.paths.audit_entries):
            try:
                out.append((name, AuditEntry.from_json(json.loads(data))))
            except (ValueError, AttributeError, AuditFormatError):
                out.append((name, None))
        return out

    def entries(self) -> list[AuditEntry]:
        """The readable entries in stored order (use `verify` to know they are sound)."""
        return [e for _, e in self.stored_entries() if e is not None]

    def checkpoints(self) -> tuple[list[Checkpoint], list[str]]:
        """Readable checkpoints, and the names of unreadable checkpoint znodes."""
        good: list[Checkpoint] = []
        bad: list[str] = []
        for name, data in self._read_children(self.paths.audit_checkpoints):
            try:
                good.append(Checkpoint.from_json(json.loads(data)))
            except (ValueError, AttributeError, AuditFormatError):
                bad.append(name)
        return good, bad

    def verify(
        self, public_key: Ed25519PublicKey | None, *, copies: Sequence[Checkpoint] | None = None
    ) -> VerifyResult:
        """Check the stored log; the result names the first altered, inserted or removed entry.

        `copies` are Mission Control's copies of the checkpoints (`contract.audit.copies`): a
        local checkpoint missing or different from its copy is reported, and the entries are
        checked against the copies."""
        for _ in range(3):
            head = self.head()
            result, readable = self._verify_stored(public_key, copies)
            if result.problem is not None:
                return result
            problem = _against_head(readable, head)
            # An append between our reads looks like a mismatch: read again before reporting it.
            if problem is None or self.head().version == head.version:
                return replace(result, problem=problem)
        return result

    def _verify_stored(
        self, public_key: Ed25519PublicKey | None, copies: Sequence[Checkpoint] | None
    ) -> tuple[VerifyResult, list[AuditEntry]]:
        stored = self.stored_entries()
        checkpoints, unreadable_cps = self.checkpoints()
        compared = compare_copies(checkpoints, copies) if copies is not None else None
        if compared is not None:
            checkpoints = list(compared.merged)
        if public_key is None:
            if checkpoints or unreadable_cps:
                raise AuditStoreError(
                    "the cluster's public key is missing from ZooKeeper: the signed "
                    "checkpoints cannot be checked (was support/public-key deleted?)"
                )
            # Nothing is signed yet, so no key is needed; verify_chain wants one anyway.
            public_key = Ed25519PrivateKey.generate().public_key()
        readable: list[AuditEntry] = []
        unreadable: ChainProblem | None = None
        for position, (name, entry) in enumerate(stored, start=1):
            if entry is None:
                unreadable = ChainProblem(
                    position, ProblemKind.ALTERED, f"znode entries/{name} is unreadable"
                )
                break
            readable.append(entry)
        result = verify_chain(readable, checkpoints, public_key)
        first = result.problem
        if unreadable is not None and (first is None or first.seq > unreadable.seq):
            result = replace(result, problem=unreadable, entries=len(stored))
        if unreadable_cps:
            extra = tuple(CheckpointProblem(0, f"znode {n} is unreadable") for n in unreadable_cps)
            result = replace(result, checkpoint_problems=result.checkpoint_problems + extra)
        if compared is not None and compared.problems:
            result = replace(
                result, checkpoint_problems=compared.problems + result.checkpoint_problems
            )
        return result, readable


def _against_head(entries: Sequence[AuditEntry], stored_head: Head) -> ChainProblem | None:
    """Compare the chain with the head written in the same transaction as the newest entry."""
    head = stored_head.entry
    last = entries[-1].seq if entries else 0
    if head is None:
        if entries:
            return ChainProblem(1, ProblemKind.INSERTED, "entries exist but the head is empty")
        return None
    if head.seq > last:
        return ChainProblem(
            last + 1,
            ProblemKind.REMOVED,
            f"the log ends at entry {last} but the head names entry {head.seq}",
        )
    if head.seq < last:
        return ChainProblem(
            head.seq + 1,
            ProblemKind.INSERTED,
            f"entries {head.seq + 1}..{last} were added after the newest appended entry",
        )
    if entries[-1].hash != head.hash:
        return ChainProblem(
            last, ProblemKind.REWRITTEN, "the newest entry differs from the head's copy"
        )
    return None
