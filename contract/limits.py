"""Limits that both sides of the wire apply, so a value one side accepts the other can store.

A cluster truncates what it sends to these bounds before it sends it; Mission Control refuses
anything beyond them with a 4xx. Changing one is a protocol change: both sides read it from here.
"""

from __future__ import annotations

import re

#: Nodes one health report may list; with byte counts below 2^53 per node their sums fit a
#: BIGINT (see `contract.messages.Bytes`).
MAX_NODES = 1000
#: What free text may not hold: control characters other than tab, newline and return.
CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
#: The captured output of one support command, in UTF-8 bytes.
MAX_OUTPUT_BYTES = 64 * 1024
#: The one-line summary of a support command's result, in characters.
MAX_SUMMARY_CHARS = 16_000
#: Lines `logs tail` may return.
MAX_LOG_LINES = 5000
#: The largest epoch either side accepts: JSON numbers are exact only up to 2^53 - 1, and a
#: cluster must never be able to store an epoch it cannot move past.
MAX_EPOCH = 2**53 - 1


def printable(text: str, limit: int | None = None) -> str:
    """`text` as free text both sides accept: disallowed control characters shown as U+FFFD,
    cut to `limit` characters (the last one an ellipsis) when longer."""
    text = CONTROL_CHARACTERS.sub("\ufffd", text)
    if limit is not None and len(text) > limit:
        text = text[: limit - 1] + "\u2026"
    return text
