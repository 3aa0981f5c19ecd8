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

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
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


#: Each ASCII digit as the digit sum of its double, plus 48 (so both tables sum alike).
_DOUBLE = bytes(48 + _DOUBLED[b - 48] if 48 <= b <= 57 else b for b in range(256))


def luhn_valid(digits: str) -> bool:
    """The Luhn check every payment card number passes (13 to 19 digits)."""
    if not 13 <= len(digits) <= 19 or not digits.isdigit():
        return False
    if not digits.isascii():  # digits of another script (`\d` matches them)
        digits = "".join(str(int(d)) for d in digits)
    data = digits.encode()
    kept, doubled = data[-1::-2], data[-2::-2]  # sums of bytes run in C: ingest checks often
    return (sum(kept) + sum(doubled.translate(_DOUBLE)) - 48 * len(data)) % 10 == 0


_IBAN = re.compile(r"[A-Z]{2}\d{2}[A-Z0-9]+")
_IBAN_DIGITS = {ord(c): str(int(c, 36)) for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ"}


def iban_valid(text: str) -> bool:
    """ISO 13616: country letters, two check digits, up to 30 letters or digits; mod 97 == 1."""
    iban = text.replace(" ", "").upper()
    if not 15 <= len(iban) <= 34 or not _IBAN.fullmatch(iban):
        return False
    moved = iban[4:] + iban[:4]
    return int(moved.translate(_IBAN_DIGITS)) % 97 == 1


def _ipv4_valid(text: str) -> bool:
    # The pattern guarantees four dot-separated runs of 1-3 digits: only the range is left
    # (ipaddress.ip_address would take 20 times as long, and ingest runs this per record).
    return max(map(int, text.split("."))) <= 255


def _ipv6_valid(text: str) -> bool:
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


def _has(*needles: str) -> Callable[[str], bool]:
    return lambda text: any(n in text for n in needles)


DIGITS = "0123456789"
_HEX_COLON = re.compile(r":[0-9A-Fa-f]{1,4}:")  # what every IPv6 address without "::" holds
ALNUM = DIGITS + "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
HEX = DIGITS + "ABCDEFabcdef"
_HEX_COLON_OR_PAIR = re.compile(r"::|:[0-9A-Fa-f]{1,4}:")  # every IPv6 match holds one


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
    #: For `mask_ascii`: the characters every match, its look-ahead's refused characters and
    #: `not_after` are drawn from; and an anchor every match contains: a pattern (`anchor`) or
    #: a run of bytes (`needle`) in the text translated through `table` (character classes).
    token: str = ""
    anchor: re.Pattern[str] | None = None
    table: bytes | None = None
    needle: bytes = b""
    _run: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_run", re.compile(f"[{re.escape(self.token)}]*"))

    def mask_ascii(self, text: str) -> str:
        """`mask(text)` for an ASCII `text`, the same result found faster on long text (a
        batch of records joined by newlines): a match never leaves a maximal run of `token`
        characters, and masking such a run alone gives what masking it inside `text` gives
        (its neighbours are not `token` characters, so neither `not_after` nor the pattern's
        look-ahead can tell them from the ends of a text). So only runs around an anchor go
        through the pattern; the rest is copied."""
        classes = text.encode("ascii").translate(self.table) if self.table else b""
        pieces: list[str] = []
        last = 0
        at = self._next(text, classes, 0)
        while at >= 0:
            low = max(last, at - 64)
            start = low + len(text[low:at].rstrip(self.token))
            if start == low and low > last:  # a long run: it may begin further back
                start = last + len(text[last:at].rstrip(self.token))
            run = self._run.match(text, at)
            end = run.end() if run else at + 1
            pieces += (text[last:start], self._mask_run(text[start:end]))
            last = end
            at = self._next(text, classes, last)
        if not pieces:
            return text
        pieces.append(text[last:])
        return "".join(pieces)

    def _mask_run(self, text: str) -> str:
        # `mask` without `possible`: an anchor was found, so the text passes it
        if self.name == "card":
            core = text.strip(" ")
            if core.isdigit():  # what the pattern finds in bare digits, without its backtracking
                found = 13 <= len(core) <= 19 and luhn_valid(core)
                return text.replace(core, MASKED) if found else text
        if self.accept is None and not self.not_after:
            return self.pattern.sub(MASKED, text)
        return self.pattern.sub(self._replace, text)

    def _next(self, text: str, classes: bytes, start: int) -> int:
        if self.anchor is None:
            return classes.find(self.needle, start)
        found = self.anchor.search(text, start)
        return -1 if found is None else found.start()

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


def _table(**classes: str) -> bytes:
    """A `bytes.translate` table: each character of a class to the class's name, others
    to a space."""
    table = bytearray(b" " * 256)
    for name, chars in classes.items():
        for c in chars:
            table[ord(c)] = ord(name)
    return bytes(table)


UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_EMAIL = "._%+@-" + ALNUM

DETECTORS: dict[DetectorName, Detector] = {
    d.name: d
    for d in (
        Detector(
            "email",
            re.compile(
                r"[A-Za-z0-9._%+-]+(?:@|%40)[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"
            ),
            possible=_has("@", "%40"),
            token=_EMAIL,
            anchor=re.compile("@|%40"),
        ),
        Detector(
            "uuid",
            re.compile(
                r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}"
                r"-[0-9A-Fa-f]{12}(?![0-9A-Fa-f])"
            ),
            possible=_has("-"),
            not_after=HEX,
            token=HEX + "-",
            anchor=re.compile("-[0-9A-Fa-f]{4}-"),
        ),
        Detector(
            "iban",
            re.compile(r"[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}(?![A-Za-z0-9])"),
            iban_valid,
            lambda text: text.lower() != text,
            ALNUM,
            token=ALNUM + " ",
            table=_table(A=UPPER, D=DIGITS),
            needle=b"AADD",
        ),
        Detector(
            "card",
            re.compile(r"\d(?:[ -]?\d){12,18}(?!\d)"),
            lambda text: luhn_valid(text.replace(" ", "").replace("-", "")),
            not_after=DIGITS + "-",
            token=DIGITS + " -",
            table=_table(D=DIGITS + " -"),
            needle=b"D" * 13,
        ),
        Detector(
            "ipv6",
            re.compile(r"(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![0-9A-Za-z:])"),
            _ipv6_valid,
            possible=lambda text: "::" in text or _HEX_COLON.search(text) is not None,
            not_after=ALNUM + ":",
            token=ALNUM + ":",
            anchor=_HEX_COLON_OR_PAIR,
        ),
        Detector(
            "ipv4",
            re.compile(r"\d{1,3}(?:\.\d{1,3}){3}(?![\d.])"),
            _ipv4_valid,
            possible=_has("."),
            not_after=DIGITS + ".",
            token=DIGITS + ".",
            anchor=re.compile(r"\.\d{1,3}\.\d{1,3}\."),
        ),
        Detector(
            "id",
            re.compile(r"\d{5,}(?![0-9A-Za-z])"),
            not_after=ALNUM,
            token=ALNUM,
            table=_table(D=DIGITS),
            needle=b"DDDDD",
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


def mask_detected_many(texts: list[str], names: Sequence[DetectorName] = ALL) -> list[str]:
    """`[mask_detected(t, names) for t in texts]`, in one pass per detector: ASCII texts
    without newlines are joined by newlines (no match spans or touches one) and masked
    together with `Detector.mask_ascii`; any other text is masked on its own."""
    joined = [i for i, t in enumerate(texts) if t.isascii() and "\n" not in t]
    out = list(texts)
    if len(joined) < len(texts):
        for i in set(range(len(texts))).difference(joined):
            out[i] = mask_detected(texts[i], names)
    if joined:
        text = "\n".join([texts[i] for i in joined])
        for name in names:
            text = DETECTORS[name].mask_ascii(text)
        for i, masked in zip(joined, text.split("\n"), strict=True):
            out[i] = masked
    return out
