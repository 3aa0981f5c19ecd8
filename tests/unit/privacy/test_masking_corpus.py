"""The golden masking corpus (`masking_corpus.json`) through the pure masking stages: built-in
detectors, a new environment's log rules (at capture by the forwarder, at ingest by a node),
URI masking and IP masking (at storage). `tests/cluster/data/test_data_e2e.py` sends the log
and URI cases through real nodes."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from cluster.cli.logs import capture_record
from contract.privacy.detectors import mask_detected, mask_detected_many
from contract.privacy.ip import mask_ip
from contract.privacy.rules import DEFAULT_RULES, ProcessingRule, apply_rules, apply_rules_many
from contract.privacy.uri import mask_uri

CORPUS: dict[str, Any] = json.loads((Path(__file__).parent / "masking_corpus.json").read_text())


@pytest.mark.parametrize(("text", "expected"), CORPUS["detect"])
def test_detectors(text: str, expected: str) -> None:
    assert mask_detected(text) == expected


@pytest.mark.parametrize(("text", "expected"), CORPUS["log_default"])
def test_a_new_environments_log_rules(text: str, expected: str) -> None:
    assert apply_rules(text, DEFAULT_RULES) == expected  # at ingest
    assert capture_record(text, DEFAULT_RULES) == {"message": expected}  # at capture


@pytest.mark.parametrize(("uri", "expected"), CORPUS["uri"])
def test_uri_masking(uri: str, expected: str) -> None:
    assert mask_uri(uri) == expected


@pytest.mark.parametrize(("address", "mode", "expected"), CORPUS["ip"])
def test_ip_masking(address: str, mode: Any, expected: str | None) -> None:
    assert mask_ip(address, mode) == expected


def test_a_batch_is_masked_as_each_text_alone() -> None:
    """Ingest masks a batch at once (`apply_rules_many`): joined texts must come out as each
    text masked alone, whatever stands next to them (newlines and non-ASCII texts included)."""
    texts = [t for t, _ in CORPUS["detect"]] + [t for t, _ in CORPUS["log_default"]]
    texts += ["a\n4111111111111111\nann@example.com", "é 4111 1111 1111 1111", ""]
    assert mask_detected_many(texts) == [mask_detected(t) for t in texts]
    assert apply_rules_many(texts, DEFAULT_RULES) == [apply_rules(t, DEFAULT_RULES) for t in texts]
    rules = (
        *DEFAULT_RULES,
        ProcessingRule("customer", pattern=r"customer=\w+"),
        ProcessingRule("rest", detector="email"),
        ProcessingRule("ids", detector="id"),
    )
    assert apply_rules_many(texts, rules) == [apply_rules(t, rules) for t in texts]


def test_random_batches_are_masked_as_each_text_alone() -> None:
    pieces = [*"0123456789 -.:@%abcdefABXYZ_+\n", "4111111111111111", "%40", "::", "é", "DE89"]
    pieces += ["DE89370400440532013000", "ann@example.com", "192.168.1.10", "١٢٣٤٥٦"]
    pieces += ["123e4567-e89b-12d3-a456-426614174000", "2001:db8::17"]
    rnd = random.Random(15)
    for _ in range(2000):
        batch = [
            "".join(rnd.choice(pieces) for _ in range(rnd.randint(0, 30)))
            for _ in range(rnd.randint(1, 5))
        ]
        assert mask_detected_many(batch) == [mask_detected(t) for t in batch], batch
