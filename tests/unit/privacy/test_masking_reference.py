"""The detectors against a reference kept here: the masking of 2026-12-07 (issue 15) written
the plain way, each detector one `re.sub` over the whole text with a replacement function that
checks the character before a match and validates it (Luhn, mod 97, address ranges), in the
order given. Every faster path (`mask_detected`, the batch path of ingest, `apply_rules_many`)
must give byte for byte what the reference gives, on generated text that mixes e-mails, card
numbers, IBANs, IP addresses, UUIDs, long digit runs, query strings and noise.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Sequence
from functools import partial

from hypothesis import given, settings
from hypothesis import strategies as st

from contract.privacy.detectors import ALL, DetectorName, mask_detected, mask_detected_many
from contract.privacy.rules import ProcessingRule, apply_rules, apply_rules_many


def _luhn(found: str) -> bool:
    digits = [int(c) for c in found if c not in " -"]
    if not 13 <= len(digits) <= 19:
        return False
    total = sum(digits[-1::-2]) + sum(2 * d - 9 * (d > 4) for d in digits[-2::-2])
    return total % 10 == 0


def _iban(found: str) -> bool:
    iban = found.replace(" ", "")
    moved = iban[4:] + iban[:4]
    return int("".join(str(int(c, 36)) for c in moved)) % 97 == 1


def _ipv4(found: str) -> bool:
    return all(int(part) <= 255 for part in found.split("."))


def _ipv6(found: str) -> bool:
    if found == "::":
        return False  # an address, but the detector's choice: no one is named by it
    try:
        ipaddress.IPv6Address(found)
    except ValueError:
        return False
    return True


ALNUM = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
#: name: (pattern, characters that may not stand right before a match, validation)
REFERENCE: dict[str, tuple[str, str, Callable[[str], bool] | None]] = {
    "email": (
        r"[A-Za-z0-9._%+-]+(?:@|%40)[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}",
        "",
        None,
    ),
    "uuid": (
        r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}"
        r"(?![0-9A-Fa-f])",
        "0123456789ABCDEFabcdef",
        None,
    ),
    "iban": (r"[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}(?![A-Za-z0-9])", ALNUM, _iban),
    "card": (r"\d(?:[ -]?\d){12,18}(?!\d)", "0123456789-", _luhn),
    "ipv6": (r"(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![0-9A-Za-z:])", ALNUM + ":", _ipv6),
    "ipv4": (r"\d{1,3}(?:\.\d{1,3}){3}(?![\d.])", "0123456789.", _ipv4),
    "id": (r"\d{5,}(?![0-9A-Za-z])", ALNUM, None),
}


def _replace(not_after: str, valid: Callable[[str], bool] | None, match: re.Match[str]) -> str:
    start, found = match.start(), match.group()
    if start and match.string[start - 1] in not_after:
        return found  # refused, and the text it spans is not searched again
    return "<masked>" if valid is None or valid(found) else found


def reference(text: str, names: Sequence[str]) -> str:
    for name in names:
        pattern, not_after, valid = REFERENCE[name]
        text = re.sub(pattern, partial(_replace, not_after, valid), text)
    return text


#: Whole pieces of personal data and near misses (wrong check digits, out of range, too short
#: or too long, separators doubled), to glue to each other and to noise.
DATA = ["4111111111111111", "4111 1111 1111 1111", "4111-1111-1111-1111", "5500 0000 0000 0004"]
DATA += ["4111111111111112", "41111111111111111", "4111  1111 1111 1111", "4111--1111-1111-1111"]
DATA += ["378282246310005", "4000 0566 5566 5556 1", "1733580000000", "12345678901234567890"]
DATA += ["DE89370400440532013000", "DE89 3704 0044 0532 0130 00", "GB82WEST12345698765432"]
DATA += ["GB82WEST1234569876543X", "DE88370400440532013000", "NL91ABNA0417164300"]
DATA += ["ann@example.com", "john.doe+shop@example.co.uk", "john%40example.com", "a@b"]
DATA += ["192.168.1.10", "203.0.113.77", "256.1.1.1", "1.2.3", "1.2.3.4.5", "010.001.0.9"]
DATA += ["2001:db8::17", "fe80::1:2:3:4", "::1", "1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7::", "12:30:45"]
DATA += [":::", "1::2::3", "2001:db8:85a3::8a2e:370:7334"]
DATA += ["123e4567-e89b-12d3-a456-426614174000", "123E4567-E89B-12D3-A456-426614174000"]
DATA += ["123e4567-e89b-12d3-a456-42661417400", "12345", "1234", "000123", "9" * 25]
DATA += ["?card=4111111111111111&ip=10.0.0.1", "&mail=ann%40example.com#top", "?id=12345&x"]
DATA += ["١٢٣٤٥٦", "é", "<masked>"]
NOISE = [*"0123456789 -.:@%_+=&?/#\nabcdefxyzABCDEFXYZ", "%40", "::", "DE", "-a456-", "customer="]
PIECES = st.one_of(st.sampled_from(NOISE), st.sampled_from(DATA))
TEXT = st.lists(PIECES, max_size=14).map("".join)
ORDERS = st.lists(st.sampled_from(ALL), max_size=9)
BENCHMARK_ORDER: tuple[DetectorName, ...] = ("card", "ipv6", "ipv4", "email", "iban", "uuid", "id")


@settings(max_examples=1500, deadline=None)
@given(text=TEXT, names=ORDERS)
def test_one_text_is_masked_as_the_reference_masks_it(text: str, names: list[DetectorName]) -> None:
    assert mask_detected(text, names) == reference(text, names)
    assert mask_detected(text) == reference(text, ALL)


@settings(max_examples=500, deadline=None)
@given(texts=st.lists(TEXT, min_size=1, max_size=8), names=ORDERS)
def test_a_batch_is_masked_as_the_reference_masks_each_text(
    texts: list[str], names: list[DetectorName]
) -> None:
    for order in (names, ALL, BENCHMARK_ORDER):
        assert mask_detected_many(texts, order) == [reference(t, order) for t in texts]


@settings(max_examples=200, deadline=None)
@given(texts=st.lists(TEXT, min_size=1, max_size=8))
def test_processing_rules_mask_a_batch_as_the_reference(texts: list[str]) -> None:
    rules = (
        ProcessingRule("cards", detector="card"),
        ProcessingRule("ips", detector="ip"),
        ProcessingRule("mails", detector="email"),
        ProcessingRule("customer", pattern=r"customer=\w+", replacement="customer=<masked>"),
        ProcessingRule("ibans", detector="iban"),
        ProcessingRule("uuids", detector="uuid"),
        ProcessingRule("ids", detector="id"),
    )
    expected = [
        reference(re.sub(r"customer=\w+", "customer=<masked>", reference(t, BENCHMARK_ORDER[:4])),
                  BENCHMARK_ORDER[4:])
        for t in texts
    ]  # fmt: skip
    assert apply_rules_many(texts, rules) == expected
    assert [apply_rules(t, rules) for t in texts] == expected
