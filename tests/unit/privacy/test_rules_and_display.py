"""Processing rules (pattern or detector, validated when set) and display masking."""

from __future__ import annotations

import pytest

from contract.privacy.detectors import expand, iban_valid, luhn_valid
from contract.privacy.display import HIDDEN, shown, shown_record
from contract.privacy.rules import ProcessingRule, apply_rules, parse_rules


def test_rules_apply_in_order_each_to_the_previous_output() -> None:
    rules = parse_rules(
        [
            {"name": "customer", "pattern": r"customer=(\w+)", "replacement": r"customer=<\1>"},
            {"name": "mail", "detector": "email"},
        ]
    )
    assert apply_rules("customer=ann mail ann@example.com", rules) == (
        "customer=<ann> mail <masked>"
    )
    assert [r.to_json() for r in rules][1] == {"name": "mail", "detector": "email"}


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"name": "x", "pattern": "("}, r"missing \)"),
        ({"name": "x", "pattern": "a", "replacement": r"\2"}, "invalid group reference"),
        ({"name": "x"}, "either a pattern or a detector"),
        ({"name": "x", "pattern": "a", "detector": "card"}, "either a pattern or a detector"),
        ({"name": "x", "detector": "names"}, "unknown detector"),
        ({"name": "", "detector": "card"}, "printable name"),
        ({"name": "x", "pattern": "a" * 501}, "1 to 500 characters"),
    ],
)
def test_a_bad_rule_is_refused_with_one_clear_line(doc: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ProcessingRule.from_json(doc)


def test_rule_names_are_unique() -> None:
    with pytest.raises(ValueError, match="unique"):
        parse_rules([{"name": "a", "detector": "card"}, {"name": "a", "detector": "ip"}])


def test_check_digits() -> None:
    assert luhn_valid("4111111111111111") and not luhn_valid("4111111111111112")
    assert not luhn_valid("4111")
    assert iban_valid("DE89 3704 0044 0532 0130 00") and not iban_valid("DE88370400440532013000")
    assert expand(["ip", "card"]) == ("card", "ipv6", "ipv4")
    with pytest.raises(ValueError, match="unknown detector"):
        expand(["phone"])


def test_display_hides_sensitive_fields_without_the_permission() -> None:
    record = {"user_tag": "ann@example.com", "page": "/cart", "other": None}
    assert shown_record(record, ["user_tag", "other"], may_see=False) == {
        "user_tag": HIDDEN,
        "page": "/cart",
        "other": None,
    }
    assert shown_record(record, ["user_tag"], may_see=True) == record
    assert shown("x", False) == HIDDEN and shown(None, False) is None
