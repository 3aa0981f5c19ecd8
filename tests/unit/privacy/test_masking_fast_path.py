"""Ingest's fast path (`Detector.mask_ascii` on a batch joined by newlines, with its shortcuts
per run: whole-run detectors decided by one `fullmatch`, card numbers without the pattern's
backtracking, a UUID that is its whole run) against the plain path (`Detector.mask`, the
pattern over the whole text) on generated text: the same result for every detector."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from contract.privacy.detectors import ALL, DETECTORS, mask_detected, mask_detected_many

#: Characters at every detector's edges, and whole pieces of personal data (and near misses)
#: to cut and glue: half of the pieces drawn are data.
CHARS = [*"0123456789 -.:@%_+\nabcdefxyzABCDEFXYZ", "%40", "::"]
DATA = ["4111111111111111", "4111 1111 1111 1111", "4111-1111-1111-1111", "41111111111111111"]
DATA += ["4111  1111 1111 1111", "4111--1111-1111-1111", "5500 0000 0000 0004"]
DATA += ["DE89370400440532013000", "DE89 3704 0044 0532 0130 00"]
DATA += ["ann@example.com", "192.168.1.10", "203.0.113.77", "256.1.1.1", "2001:db8::17"]
DATA += ["fe80::1:2:3:4", "123e4567-e89b-12d3-a456-426614174000", "12345", "1234", "000123"]
PIECES = st.one_of(st.sampled_from(CHARS), st.sampled_from(DATA))
ASCII = st.lists(PIECES, max_size=16).map("".join)
TEXT = st.one_of(ASCII, st.text(alphabet="0123456789 -.:@abcDEF\n", max_size=60))


@settings(max_examples=600, deadline=None)
@given(text=ASCII)
def test_each_detector_masks_ascii_text_as_its_pattern_does(text: str) -> None:
    for name in ALL:
        detector = DETECTORS[name]
        assert detector.mask_ascii(text) == detector.mask(text), name


@settings(max_examples=300, deadline=None)
@given(texts=st.lists(TEXT, min_size=1, max_size=6))
def test_a_batch_is_masked_as_each_text_alone(texts: list[str]) -> None:
    assert mask_detected_many(texts) == [mask_detected(t) for t in texts]
    rules = ("card", "ipv6", "ipv4", "email", "iban", "uuid", "id")  # the benchmark's order
    assert mask_detected_many(texts, rules) == [mask_detected(t, rules) for t in texts]
