"""Checking the cluster's audit log against Mission Control's copies of its checkpoints.

Someone who can write the cluster's ZooKeeper can rewrite the entries, the head and the local
checkpoints, and even replace `support/public-key` to re-sign them. They cannot change what
Mission Control already holds: every checkpoint the cluster signed (`audit/checkpoint` messages)
and the key it pinned at first sight. `compare_copies` reports local checkpoints that are
missing or differ from those copies and merges them (the copies win), so `verify_chain` then
checks the entries against checkpoints the attacker could not touch, with the pinned key.

Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from contract.audit.chain import Checkpoint, CheckpointProblem


@dataclass(frozen=True)
class CopyComparison:
    """What differs between the local checkpoints and Mission Control's copies."""

    problems: tuple[CheckpointProblem, ...]
    merged: tuple[Checkpoint, ...]
    copies: int


def compare_copies(local: Sequence[Checkpoint], copies: Sequence[Checkpoint]) -> CopyComparison:
    """Local checkpoints missing or different from Mission Control's copy, and the merged set."""
    here = {c.seq: c for c in local}
    merged = dict(here)
    problems: list[CheckpointProblem] = []
    for copy in sorted(copies, key=lambda c: c.seq):
        mine = here.get(copy.seq)
        if mine is None:
            problems.append(
                CheckpointProblem(
                    copy.seq, "missing here, but Mission Control keeps a copy (deleted?)"
                )
            )
        elif mine != copy:
            problems.append(
                CheckpointProblem(copy.seq, "differs from Mission Control's copy (rewritten?)")
            )
        merged[copy.seq] = copy
    return CopyComparison(tuple(problems), tuple(merged.values()), len(copies))
