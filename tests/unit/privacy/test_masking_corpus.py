"""The golden masking corpus (`masking_corpus.json`) through the pure masking stages: built-in
detectors, a new environment's log rules (at capture by the forwarder, at ingest by a node),
URI masking and IP masking (at storage). `tests/cluster/data/test_data_e2e.py` sends the log
and URI cases through real nodes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cluster.cli.logs import capture_record
from contract.privacy.detectors import mask_detected
from contract.privacy.ip import mask_ip
from contract.privacy.rules import DEFAULT_RULES, apply_rules
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
