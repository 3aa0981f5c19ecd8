"""Built-in detectors of personal data in free text: e-mail addresses, card numbers (Luhn),
IBANs (mod 97), IPv4 and IPv6 addresses, UUIDs and IDs of five or more digits.

Guarantees: `mask_detected` replaces each match a detector accepts with `<masked>` and leaves
everything else byte for byte; a number that only looks like a card (fails Luhn) or an IBAN
(fails mod 97) is not a card or an IBAN (the `id` detector may still take it). Detectors run in
a fixed order (e-mail, UUID, IBAN, card, IPv6, IPv4, ID) so a longer match wins over the digits
inside it. Does not guarantee: finding personal data the patterns do not describe (names,
street addresses): those need processing rules of the environment's own.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

MASKED = "<masked>"

DetectorName = Literal["email", "uuid", "iban", "card", "ipv6", "ipv4", "id"]
#: Every detector, in the order they run.
ALL: tuple[DetectorName, ...] = ("email", "uuid", "iban", "card", "ipv6", "ipv4", "id")
#: What a new environment masks in log records from the start: card data is never stored.
LOG_DEFAULT: tuple[DetectorName, ...] = ("card", "ipv6", "ipv4")
#: The names an operator may give (`ip` stands for both address families).
CHOICES = ("email", "uuid", "iban", "card", "ip", "id")


def luhn_valid(digits: str) -> bool:
    """The Luhn check every payment card number passes (13 to 19 digits)."""
    if not digits.isdigit() or not 13 <= len(digits) <= 19:
        return False
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def iban_valid(text: str) -> bool:
    """ISO 13616: country letters, two check digits, up to 30 letters or digits; mod 97 == 1."""
    iban = text.replace(" ", "").upper()
    if not 15 <= len(iban) <= 34 or not re.fullmatch(r"[A-Z]{2}\d{2}[A-Z0-9]+", iban):
        return False
    moved = iban[4:] + iban[:4]
    return int("".join(str(int(c, 36)) for c in moved)) % 97 == 1


def _ipv4_valid(text: str) -> bool:
    # The pattern guarantees four dot-separated runs of 1-3 digits: only the range is left
    # (ipaddress.ip_address would take 20 times as long, and ingest runs this per record).
    return all(int(part) <= 255 for part in text.split("."))


def _ipv6_valid(text: str) -> bool:
    if len(text) <= 2:
        return False
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


def _digits(text: str) -> int:
    return sum(map(text.count, "0123456789"))


def _has(*needles: str) -> Callable[[str], bool]:
    return lambda text: any(n in text for n in needles)


@dataclass(frozen=True)
class Detector:
    """A pattern, the check a match must pass, and `possible`: a cheap necessary condition
    (text failing it cannot match, so the pattern is not run: ingest masks every record)."""

    name: DetectorName
    pattern: re.Pattern[str]
    accept: Callable[[str], bool] | None = None
    possible: Callable[[str], bool] | None = None

    def mask(self, text: str) -> str:
        if self.possible is not None and not self.possible(text):
            return text
        if self.accept is None:
            return self.pattern.sub(MASKED, text)
        return self.pattern.sub(self._replace, text)

    def _replace(self, match: re.Match[str]) -> str:
        found = match.group(0)
        assert self.accept is not None
        return MASKED if self.accept(found) else found


DETECTORS: dict[DetectorName, Detector] = {
    d.name: d
    for d in (
        Detector(
            "email",
            re.compile(
                r"[A-Za-z0-9._%+-]+(?:@|%40)[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"
            ),
            possible=_has("@", "%40"),
        ),
        Detector(
            "uuid",
            re.compile(
                r"(?<![0-9A-Fa-f])[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}"
                r"-[0-9A-Fa-f]{12}(?![0-9A-Fa-f])"
            ),
            possible=_has("-"),
        ),
        Detector(
            "iban",
            re.compile(r"(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}(?![A-Za-z0-9])"),
            iban_valid,
            lambda text: text.lower() != text and _digits(text) >= 2,
        ),
        Detector(
            "card",
            re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d])"),
            lambda text: luhn_valid(text.replace(" ", "").replace("-", "")),
            lambda text: _digits(text) >= 13,
        ),
        Detector(
            "ipv6",
            re.compile(
                r"(?<![0-9A-Za-z:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![0-9A-Za-z:])"
            ),
            _ipv6_valid,
            possible=_has(":"),
        ),
        Detector(
            "ipv4",
            re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])"),
            _ipv4_valid,
            possible=_has("."),
        ),
        Detector(
            "id",
            re.compile(r"(?<![0-9A-Za-z])\d{5,}(?![0-9A-Za-z])"),
            possible=lambda text: _digits(text) >= 5,
        ),
    )
}


def expand(names: Iterable[str]) -> tuple[DetectorName, ...]:
    """The detectors `names` stand for (`ip` is both families), in running order.
    ValueError names an unknown one."""
    wanted: set[str] = set()
    for name in names:
        if name == "ip":
            wanted |= {"ipv4", "ipv6"}
        elif name in DETECTORS:
            wanted.add(name)
        else:
            raise ValueError(f"unknown detector {name!r} (known: {', '.join(CHOICES)})")
    return tuple(d for d in ALL if d in wanted)


def mask_detected(text: str, names: Iterable[DetectorName] = ALL) -> str:
    """`text` with every accepted match of the named detectors replaced by `<masked>`."""
    for name in names:
        text = DETECTORS[name].mask(text)
    return text
