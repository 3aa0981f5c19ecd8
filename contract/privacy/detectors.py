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


_DOUBLED = (0, 2, 4, 6, 8, 1, 3, 5, 7, 9)  # each digit doubled, its digits summed


def luhn_valid(digits: str) -> bool:
    """The Luhn check every payment card number passes (13 to 19 digits)."""
    if not digits.isdigit() or not 13 <= len(digits) <= 19:
        return False
    backwards = digits[::-1]
    total = sum(map(int, backwards[0::2])) + sum(_DOUBLED[int(d)] for d in backwards[1::2])
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


def _has(*needles: str) -> Callable[[str], bool]:
    return lambda text: any(n in text for n in needles)


DIGITS = "0123456789"
_HEX_COLON = re.compile(r":[0-9A-Fa-f]{1,4}:")  # what every IPv6 address without "::" holds
ALNUM = DIGITS + "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
HEX = DIGITS + "ABCDEFabcdef"


@dataclass(frozen=True)
class Detector:
    """A pattern, the check a match must pass, the characters that may not stand right before
    a match (`not_after`), and `possible`: a cheap necessary condition (text failing it cannot
    match, so the pattern is not run).

    Speed matters: ingest masks every record. So the patterns begin with a character class
    rather than a look-behind (the regular expression engine then skips to the next character
    that can start a match instead of trying every position), and the look-behind is checked
    on each candidate in `_replace`."""

    name: DetectorName
    pattern: re.Pattern[str]
    accept: Callable[[str], bool] | None = None
    possible: Callable[[str], bool] | None = None
    not_after: str = ""

    def mask(self, text: str) -> str:
        if self.possible is not None and not self.possible(text):
            return text
        if self.accept is None and not self.not_after:
            return self.pattern.sub(MASKED, text)
        return self.pattern.sub(self._replace, text)

    def _replace(self, match: re.Match[str]) -> str:
        found = match.group(0)
        start = match.start()
        if start and match.string[start - 1] in self.not_after:
            return found
        return MASKED if self.accept is None or self.accept(found) else found


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
                r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}"
                r"-[0-9A-Fa-f]{12}(?![0-9A-Fa-f])"
            ),
            possible=_has("-"),
            not_after=HEX,
        ),
        Detector(
            "iban",
            re.compile(r"[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}(?![A-Za-z0-9])"),
            iban_valid,
            lambda text: text.lower() != text,
            ALNUM,
        ),
        Detector(
            "card",
            re.compile(r"\d(?:[ -]?\d){12,18}(?!\d)"),
            lambda text: luhn_valid(text.replace(" ", "").replace("-", "")),
            not_after=DIGITS + "-",
        ),
        Detector(
            "ipv6",
            re.compile(r"(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![0-9A-Za-z:])"),
            _ipv6_valid,
            possible=lambda text: "::" in text or _HEX_COLON.search(text) is not None,
            not_after=ALNUM + ":",
        ),
        Detector(
            "ipv4",
            re.compile(r"\d{1,3}(?:\.\d{1,3}){3}(?![\d.])"),
            _ipv4_valid,
            possible=_has("."),
            not_after=DIGITS + ".",
        ),
        Detector(
            "id",
            re.compile(r"\d{5,}(?![0-9A-Za-z])"),
            not_after=ALNUM,
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
