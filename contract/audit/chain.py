"""The hash-chained audit log and its verification.

What it guarantees
------------------
- Each entry's `hash` is SHA-256 over the canonical JSON of all its other fields, including
  `prev_hash`, the hash of the entry before it (64 zeros for entry 1). Sequence numbers start at 1
  and increase by exactly one.
- `verify_chain` walks the entries in order and reports the FIRST problem, by sequence number:
  an entry whose content does not match its hash (altered), a gap in the sequence (removed), a
  sequence that repeats or goes backwards (inserted), or an entry that does not link to its
  predecessor (inserted, or the one before replaced).
- A `Checkpoint` is an Ed25519 signature by the log's owner (the cluster key, or Mission Control's
  key for its own log) over (seq, hash, at) of one entry. Anyone who rewrites entries without the
  private key can recompute every hash after their edit, but cannot produce a matching checkpoint:
  a signed checkpoint at seq N pins entries 1..N exactly.

What it does not guarantee
--------------------------
- Entries after the newest valid checkpoint are protected only by the hash chain. Whoever can write
  the store can drop or rewrite that tail without detection. Checkpoints bound the loss: with a
  checkpoint every K entries or T minutes, at most K entries / T minutes are unanchored
  (`VerifyResult.unanchored`). Sending each checkpoint off the cluster (Mission Control keeps a
  copy) makes truncation below it detectable even if the attacker also deletes local
  checkpoints, as long as the verifier is given the copies.
- Times (`at`) are recorded, not verified: entries are written by whichever node leads, and clocks
  differ slightly between nodes.
- It is not confidentiality: entries are readable by anyone who can read the store.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from contract.audit.canonical import (
    CanonicalFormError,
    JsonValue,
    canonical_json,
    check_json_value,
    format_time,
    parse_time,
)
from contract.audit.events import Actor, AuditEvent

GENESIS_HASH = "0" * 64
_ENTRY_DOMAIN = b"managed-audit-entry-v1\n"
_CHECKPOINT_DOMAIN = b"managed-audit-checkpoint-v1\n"


class AuditFormatError(ValueError):
    """A stored audit record cannot be read (missing field, wrong type)."""


@dataclass(frozen=True)
class AuditEntry:
    """One record of the chain. Build new entries with `append`, never by hand."""

    seq: int
    at: datetime
    actor: Actor
    action: str
    cluster: str
    subject: str
    detail: Mapping[str, JsonValue]
    prev_hash: str
    hash: str

    def body(self) -> dict[str, JsonValue]:
        """The hashed fields, as canonical JSON-ready data."""
        return {
            "seq": self.seq,
            "at": format_time(self.at),
            "actor": self.actor.to_json(),
            "action": self.action,
            "cluster": self.cluster,
            "subject": self.subject,
            "detail": check_json_value(dict(self.detail)),
            "prev_hash": self.prev_hash,
        }

    def compute_hash(self) -> str:
        """The hash this entry should carry given its content."""
        return hashlib.sha256(_ENTRY_DOMAIN + canonical_json(self.body())).hexdigest()

    def to_json(self) -> dict[str, JsonValue]:
        """Storage form (a JSON object); `from_json` reads it back exactly."""
        return {**self.body(), "hash": self.hash}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AuditEntry:
        try:
            return cls(
                seq=int(data["seq"]),
                at=parse_time(str(data["at"])),
                actor=Actor.from_json(data["actor"]),
                action=str(data["action"]),
                cluster=str(data["cluster"]),
                subject=str(data["subject"]),
                detail=_detail(data["detail"]),
                prev_hash=str(data["prev_hash"]),
                hash=str(data["hash"]),
            )
        except (KeyError, TypeError, ValueError, CanonicalFormError) as exc:
            raise AuditFormatError(f"unreadable audit entry: {exc}") from exc

    def event(self) -> AuditEvent:
        return AuditEvent(self.at, self.actor, self.action, self.cluster, self.subject, self.detail)


def _detail(value: Any) -> dict[str, JsonValue]:
    checked = check_json_value(value)
    if not isinstance(checked, dict):
        raise AuditFormatError("audit entry detail must be a JSON object")
    return checked


def append(prev: AuditEntry | None, event: AuditEvent) -> AuditEntry:
    """The entry that follows `prev` (or the first entry when `prev` is None) recording `event`."""
    draft = AuditEntry(
        seq=1 if prev is None else prev.seq + 1,
        at=event.at,
        actor=event.actor,
        action=event.action,
        cluster=event.cluster,
        subject=event.subject,
        detail=event.detail,
        prev_hash=GENESIS_HASH if prev is None else prev.hash,
        hash="",
    )
    return replace(draft, hash=draft.compute_hash())


@dataclass(frozen=True)
class Checkpoint:
    """A signed statement "entry `seq` of this log has hash `hash`", made at time `at`."""

    seq: int
    hash: str
    at: datetime
    signature: bytes

    @staticmethod
    def signed_bytes(seq: int, entry_hash: str, at: datetime) -> bytes:
        body = {"seq": seq, "hash": entry_hash, "at": format_time(at)}
        return _CHECKPOINT_DOMAIN + canonical_json(body)

    @classmethod
    def sign(cls, entry: AuditEntry, at: datetime, key: Ed25519PrivateKey) -> Checkpoint:
        """Sign a checkpoint over `entry` (normally the newest one)."""
        signature = key.sign(cls.signed_bytes(entry.seq, entry.hash, at))
        return cls(seq=entry.seq, hash=entry.hash, at=at, signature=signature)

    def verify(self, public_key: Ed25519PublicKey) -> bool:
        """True when the signature is the owner's over exactly these fields."""
        try:
            public_key.verify(self.signature, self.signed_bytes(self.seq, self.hash, self.at))
        except (InvalidSignature, CanonicalFormError):
            return False
        return True

    def to_json(self) -> dict[str, JsonValue]:
        return {
            "seq": self.seq,
            "hash": self.hash,
            "at": format_time(self.at),
            "signature": base64.b64encode(self.signature).decode("ascii"),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Checkpoint:
        try:
            return cls(
                seq=int(data["seq"]),
                hash=str(data["hash"]),
                at=parse_time(str(data["at"])),
                signature=base64.b64decode(str(data["signature"]), validate=True),
            )
        except (KeyError, TypeError, ValueError, CanonicalFormError) as exc:
            raise AuditFormatError(f"unreadable audit checkpoint: {exc}") from exc


@dataclass(frozen=True)
class CheckpointSchedule:
    """When to sign the next checkpoint: after `every_entries` new entries or `every` time."""

    every_entries: int = 100
    every: timedelta = timedelta(minutes=15)

    def due(self, last: Checkpoint | None, head: AuditEntry | None, now: datetime) -> bool:
        if head is None:
            return False
        if last is None:
            return True
        if head.seq <= last.seq:
            return False
        return head.seq - last.seq >= self.every_entries or now - last.at >= self.every


class ProblemKind(StrEnum):
    ALTERED = "altered"
    INSERTED = "inserted"
    REMOVED = "removed"
    REWRITTEN = "rewritten"


@dataclass(frozen=True)
class ChainProblem:
    """The first place where the log stops being trustworthy."""

    seq: int
    kind: ProblemKind
    reason: str

    def __str__(self) -> str:
        return f"entry {self.seq} {self.kind.value}: {self.reason}"


@dataclass(frozen=True)
class CheckpointProblem:
    seq: int
    reason: str

    def __str__(self) -> str:
        return f"checkpoint at entry {self.seq}: {self.reason}"


@dataclass(frozen=True)
class VerifyResult:
    """Outcome of `verify_chain`. `ok` means no problem of any kind was found."""

    entries: int
    last_seq: int
    problem: ChainProblem | None = None
    checkpoint_problems: tuple[CheckpointProblem, ...] = ()
    anchored_seq: int = 0
    unanchored: int = 0

    @property
    def ok(self) -> bool:
        return self.problem is None and not self.checkpoint_problems

    def summary(self) -> str:
        """One line for the CLI."""
        if self.problem is not None:
            return str(self.problem)
        if self.checkpoint_problems:
            return str(self.checkpoint_problems[0])
        return (
            f"ok: {self.entries} entries; signed checkpoints cover up to entry "
            f"{self.anchored_seq} ({self.unanchored} newer entries not yet covered)"
        )


def _walk(entries: Sequence[AuditEntry]) -> tuple[int, ChainProblem | None]:
    """Check hashes, sequence and links; return the length of the sound prefix and any problem."""
    prev_hash = GENESIS_HASH
    for index, entry in enumerate(entries):
        expected = index + 1
        if entry.compute_hash() != entry.hash:
            return index, ChainProblem(
                expected, ProblemKind.ALTERED, "content does not match its hash"
            )
        if entry.seq > expected:
            return index, ChainProblem(
                expected,
                ProblemKind.REMOVED,
                f"entries {expected}..{entry.seq - 1} are missing (next present is {entry.seq})",
            )
        if entry.seq < expected:
            return index, ChainProblem(
                entry.seq,
                ProblemKind.INSERTED,
                f"sequence goes back from {expected - 1} to {entry.seq} "
                "(entry inserted or duplicated)",
            )
        if entry.prev_hash != prev_hash:
            return index, ChainProblem(
                expected,
                ProblemKind.INSERTED,
                f"does not link to entry {expected - 1} "
                "(entry inserted here or the previous one replaced)",
            )
        prev_hash = entry.hash
    return len(entries), None


def verify_chain(
    entries: Sequence[AuditEntry],
    checkpoints: Iterable[Checkpoint],
    public_key: Ed25519PublicKey,
) -> VerifyResult:
    """Verify a whole log (entries in stored order, starting at seq 1) against its checkpoints."""
    sound, problem = _walk(entries)
    last_seq = entries[-1].seq if entries else 0
    cp_problems: list[CheckpointProblem] = []
    anchored = 0
    for cp in sorted(checkpoints, key=lambda c: c.seq):
        if not cp.verify(public_key):
            cp_problems.append(CheckpointProblem(cp.seq, "signature does not verify (forged)"))
            continue
        if cp.seq <= 0:
            cp_problems.append(CheckpointProblem(cp.seq, "names no entry"))
            continue
        if cp.seq > sound:
            if problem is None:
                problem = ChainProblem(
                    sound + 1,
                    ProblemKind.REMOVED,
                    f"log ends at entry {sound} but a signed checkpoint covers entry {cp.seq}",
                )
            continue
        if entries[cp.seq - 1].hash != cp.hash:
            rewritten = ChainProblem(
                anchored + 1,
                ProblemKind.REWRITTEN,
                f"entries {anchored + 1}..{cp.seq} do not match the signed checkpoint "
                f"at entry {cp.seq} (rewritten and re-hashed)",
            )
            if problem is None or rewritten.seq < problem.seq:
                problem = rewritten
            continue
        if problem is None or problem.kind is not ProblemKind.REWRITTEN:
            anchored = cp.seq
    return VerifyResult(
        entries=len(entries),
        last_seq=last_seq,
        problem=problem,
        checkpoint_problems=tuple(cp_problems),
        anchored_seq=anchored,
        unanchored=max(0, sound - anchored),
    )
