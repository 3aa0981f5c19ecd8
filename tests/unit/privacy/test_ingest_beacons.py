"""What storage keeps of a beacon (pure): Do Not Track as the application chooses, opt-in
consent, IP masking modes, URI masking, user tags only when captured; malformed beacons refused
whole."""

from __future__ import annotations

import json
from typing import Any

import pytest

from cluster.data.ingest import BadInput, prepare_beacon, prepare_log_lines, prepare_otlp
from cluster.data.settings import AppPrivacy, Environment

PAGE = "https://shop.example.com/orders/123456?card=4111111111111111"


def doc(**extra: Any) -> dict[str, Any]:
    event = {"type": "load", "at": 1_700_000_000_000, "name": "page load", "page": PAGE}
    return {"app": "shop", "session": "sess-0000001", "events": [event], **extra}


def env(**app: Any) -> Environment:
    return Environment("prod").with_app("shop", AppPrivacy(**app))


def test_defaults_mask_the_address_and_keep_no_user_tag() -> None:
    beacon = prepare_beacon(doc(user_tag="ann@example.com"), env(), "203.0.113.77", None, False, 0)
    assert beacon is not None
    assert beacon.session.ip == "203.0.113.0" and beacon.session.user_tag is None
    assert beacon.actions[0].page == PAGE  # URI masking is off by default


def test_uri_masking_and_user_tags_when_the_application_says_so() -> None:
    app = env(uri_masking=True, user_tags=True, ip_masking="public")
    beacon = prepare_beacon(doc(user_tag="ann@example.com"), app, "10.1.2.3", "UA", False, 0)
    assert beacon is not None
    assert beacon.actions[0].page == "https://shop.example.com/orders/<masked>?card=<masked>"
    assert beacon.session.user_tag == "ann@example.com" and beacon.session.ip == "10.1.2.3"


@pytest.mark.parametrize("by_header", [True, False])
def test_do_not_track_anonymous_or_nothing(by_header: bool) -> None:
    flags = {} if by_header else {"dnt": True}
    app = env(user_tags=True, ip_masking="off")
    beacon = prepare_beacon(doc(user_tag="ann@example.com", **flags), app, "203.0.113.77", None,
                            by_header, 0)  # fmt: skip
    assert beacon is not None and beacon.session.anonymous
    assert beacon.session.user_tag is None and beacon.session.ip == "203.0.113.0"
    quiet = env(dnt="nothing")
    assert prepare_beacon(doc(**flags), quiet, "203.0.113.77", None, by_header, 0) is None


def test_opt_in_needs_consent() -> None:
    app = env(opt_in=True)
    assert prepare_beacon(doc(), app, "127.0.0.1", None, False, 0) is None
    assert prepare_beacon(doc(consent=True), app, "127.0.0.1", None, False, 0) is not None


@pytest.mark.parametrize(
    "bad",
    [
        {"session": "short"},
        {"app": "Shop"},
        {"events": []},
        {"events": [{"type": "keypress", "at": 1}]},
        {"events": [{"type": "load", "at": "yesterday", "page": "/"}]},
        {"events": [{"type": "load", "at": 1, "page": "x" * 3000}]},
        {"dnt": "yes"},
        {"user_tag": 5},
    ],
)
def test_malformed_beacons_are_refused_even_when_nothing_would_be_stored(
    bad: dict[str, Any],
) -> None:
    with pytest.raises(BadInput):
        prepare_beacon({**doc(), **bad}, env(dnt="nothing"), "127.0.0.1", None, True, 0)


def test_log_lines_are_masked_by_the_rules_and_refused_whole() -> None:
    body = (
        b'{"message": "card 4111111111111111", "level": "WARN"}\n\n'
        b'{"message": "x", "attributes": {"ip": "10.0.0.1"}}'
    )
    rows = prepare_log_lines(body, Environment("prod"), 5.0)
    assert [(r.message, r.level, r.at) for r in rows] == [
        ("card <masked>", "warn", 5.0),
        ("x", "info", 5.0),
    ]
    assert rows[1].attributes == {"ip": "<masked>"}
    with pytest.raises(BadInput, match="line 2"):
        prepare_log_lines(b'{"message": "ok"}\n{"message": "x", "level": "loud"}',
                          Environment("prod"), 0)  # fmt: skip


def test_otlp_json_logs_are_read_and_masked() -> None:
    record = {
        "timeUnixNano": "1700000000000000000",
        "severityText": "ERROR",
        "body": {"stringValue": "declined 4111111111111111"},
        "attributes": [{"key": "client", "value": {"stringValue": "203.0.113.7"}},
                       {"key": "retries", "value": {"intValue": "3"}}],
    }  # fmt: skip
    body = json.dumps({"resourceLogs": [{"scopeLogs": [{"logRecords": [record]}]}]}).encode()
    [row] = prepare_otlp(body, Environment("prod"), 0)
    assert (row.message, row.level, row.at) == ("declined <masked>", "error", 1_700_000_000.0)
    assert row.attributes == {"client": "<masked>", "retries": "3"}
    for bad in (b"[]", b'{"resourceLogs": 5}', b'{"resourceLogs": []}',
                json.dumps({"resourceLogs": [{"scopeLogs": [{"logRecords": [
                    {"body": {"kvlistValue": {}}}]}]}]}).encode()):  # fmt: skip
        with pytest.raises(BadInput):
            prepare_otlp(bad, Environment("prod"), 0)
