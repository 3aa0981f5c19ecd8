"""The checks a detector's candidate must pass: Luhn for card numbers, ISO 13616 (mod 97) for
IBANs, the ranges and group structure of IP addresses. Pure functions, no patterns of their own
beyond the shape of an IBAN: the detectors (`contract.privacy.detectors`) find the candidates.
"""

from __future__ import annotations

import re

_DOUBLED = (0, 2, 4, 6, 8, 1, 3, 5, 7, 9)  # each digit doubled, its digits summed


#: Each ASCII digit as the digit sum of its double, plus 48 (so both tables sum alike).
_DOUBLE = bytes(48 + _DOUBLED[b - 48] if 48 <= b <= 57 else b for b in range(256))


def luhn_valid(digits: str) -> bool:
    """The Luhn check every payment card number passes (13 to 19 digits)."""
    if not 13 <= len(digits) <= 19 or not digits.isdigit():
        return False
    if not digits.isascii():  # digits of another script (`\d` matches them)
        digits = "".join(str(int(d)) for d in digits)
    return luhn_ascii(digits.encode())


def luhn_ascii(data: bytes) -> bool:
    """`luhn_valid` for ASCII digits of the right length, as bytes."""
    kept, doubled = data[-1::-2], data[-2::-2]  # sums of bytes run in C: ingest checks often
    return (sum(kept) + sum(doubled.translate(_DOUBLE)) - 48 * len(data)) % 10 == 0


_IBAN = re.compile(r"[A-Z]{2}\d{2}[A-Z0-9]+")
_IBAN_DIGITS = {ord(c): str(int(c, 36)) for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ"}


def iban_valid(text: str) -> bool:
    """ISO 13616: country letters, two check digits, up to 30 letters or digits; mod 97 == 1."""
    iban = text.replace(" ", "").upper()
    return 15 <= len(iban) <= 34 and _IBAN.fullmatch(iban) is not None and _mod97(iban)


def iban_match_valid(found: str) -> bool:
    """`iban_valid` for what the IBAN pattern matched: its letters are capitals, and it has the
    length and the shape already."""
    return _mod97(found.replace(" ", ""))


def _mod97(iban: str) -> bool:
    bban = iban[4:]
    if bban.isdigit():  # the usual case, without a translation: the country's letters only
        return int(f"{bban}{ord(iban[0]) - 55}{ord(iban[1]) - 55}{iban[2:4]}") % 97 == 1
    return int((bban + iban[:4]).translate(_IBAN_DIGITS)) % 97 == 1


def ipv4_valid(text: str) -> bool:
    """For what the IPv4 pattern matched: each of the four numbers is at most 255."""
    # The pattern guarantees four dot-separated runs of 1-3 digits: only the range is left
    # (ipaddress.ip_address would take 20 times as long, and ingest runs this per record).
    return max(map(int, text.split("."))) <= 255


def ipv6_valid(text: str) -> bool:
    """For what the IPv6 pattern matched: the groups make an address (8, or fewer and one
    "::"), and it is not "::" alone."""
    # The pattern guarantees hex groups of at most 4 digits between colons: what is left is
    # what `ipaddress.IPv6Address` checks of the group structure (8 groups, or fewer and one
    # "::"), at a tenth of its cost.
    halves = text.split("::")
    if len(text) <= 2:
        return False
    if len(halves) == 1:
        groups = text.split(":")
        return len(groups) == 8 and all(groups)
    if len(halves) > 2:
        return False
    head, tail = halves
    groups = (head.split(":") if head else []) + (tail.split(":") if tail else [])
    return len(groups) <= 7 and all(groups)
