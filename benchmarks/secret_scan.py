"""Secret scanner benchmark: `managed secrets scan` against `grep -r` over the same large tree.

A generated tree of `--files` text files (source-like lines, `--file-kib` each, in nested
directories; every tenth with decoys that start like a credential, a few with planted
credentials, some with near misses: the right prefix and length with a wrong checksum) is
scanned, alternating who goes first, `--rounds` times:
  (a) `managed secrets scan TREE`  vs  `grep -rEo 'mc[cter]_[0-9A-Za-z]{36,68}' TREE`
       (grep finds the same prefixes; it cannot check a checksum, so it reports the near misses
       too)                                                              goal: ours <= 2x grep
Both run as processes, start-up included, output to a pipe that is drained. Before each round
both read the tree once (warm page cache for both sides). The ratio is ours / grep per round.
Run: .venv/bin/python benchmarks/secret_scan.py [--files 20000] [--file-kib 16] [--rounds 5]
     [--workdir D] [--json]
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from contract.credentials import CredentialKind, issue

LINE = "    result = compute_total(items, factor=0.5)  # running totals, line {n}\n"
#: Every tenth file also mentions things that start like a credential but are none.
DECOYS = "# see mcp_server and mco_ tools; mc_version = 3; emcc_flags = []\n" * 8
PATTERN = r"mc[cter]_[0-9A-Za-z]{36,68}"


def make_tree(root: Path, files: int, file_kib: int, seed: int = 7) -> tuple[int, int]:
    """The tree; (planted credentials, near misses)."""
    rng = random.Random(seed)
    body = "".join(LINE.format(n=i) for i in range(file_kib * 1024 // len(LINE) + 1))
    planted = misses = 0
    for i in range(files):
        directory = root / f"d{i % 50:02d}" / f"e{i % 7}"
        directory.mkdir(parents=True, exist_ok=True)
        text = body + (DECOYS if i % 10 == 0 else "")
        if i % 997 == 0:
            text += f"token = {issue(CredentialKind.STAFF_TOKEN)}\n"
            planted += 1
        if i % 501 == 0:
            near = "mce_" + "".join(rng.choice("abcXYZ0129") for _ in range(36))
            text += f"not_a_token = {near}\n"
            misses += 1
        (directory / f"f{i}.py").write_text(text)
    return planted, misses


def timed(argv: list[str]) -> tuple[float, bytes]:
    t0 = time.perf_counter()
    done = subprocess.run(argv, capture_output=True)
    return time.perf_counter() - t0, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=20000)
    parser.add_argument("--file-kib", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="scan-bench-", dir=args.workdir))
    try:
        tree = work / "tree"
        planted, misses = make_tree(tree, args.files, args.file_kib)
        size = sum(p.stat().st_size for p in tree.rglob("*") if p.is_file())
        managed = str(Path(sys.executable).parent / "managed")
        ours_argv = [managed, "secrets", "scan", str(tree)]
        grep_argv = ["grep", "-rEo", PATTERN, str(tree)]
        rounds = []
        for n in range(args.rounds):
            subprocess.run(["cat", *map(str, tree.rglob("*.py"))], capture_output=True)
            pair = [("ours", ours_argv), ("grep", grep_argv)]
            if n % 2:
                pair.reverse()
            times: dict[str, float] = {}
            outputs: dict[str, bytes] = {}
            for name, argv in pair:
                times[name], outputs[name] = timed(argv)
            found = len(outputs["ours"].splitlines())
            grepped = len(outputs["grep"].splitlines())
            rounds.append({**times, "ratio": times["ours"] / times["grep"], "found": found,
                           "grep_lines": grepped})  # fmt: skip
        result = {
            "files": args.files,
            "bytes": size,
            "planted": planted,
            "near_misses": misses,
            "rounds": rounds,
            "median_ratio": statistics.median(r["ratio"] for r in rounds),
        }
        if args.json:
            print(json.dumps(result, indent=2))
        else:
            print(f"tree: {args.files} files, {size / 2**20:.0f} MiB; {planted} planted "
                  f"credentials, {misses} near misses")  # fmt: skip
            for r in rounds:
                print(f"  ours {r['ours']:.2f} s ({r['found']} found)   grep {r['grep']:.2f} s "
                      f"({r['grep_lines']} matches)   ours/grep {r['ratio']:.2f}")  # fmt: skip
            print(f"median ours/grep: {result['median_ratio']:.2f} (goal <= 2)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
