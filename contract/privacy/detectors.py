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
from functools import partial
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
_DIGIT_GROUPS = re.compile(r"[0-9]+(?:[ -][0-9]+)*")  # one number, single separators
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
    #: `not_after` are drawn from; and an anchor every match contains: one of some patterns
    #: (`anchors`: each with a literal prefix, so the regular expression engine finds it at
    #: memchr speed; an alternation of different first characters scans several times slower) or
    #: a run of bytes (`needle`) in the text translated through `table` (character classes).
    token: str = ""
    anchors: tuple[re.Pattern[str], ...] = ()
    table: bytes | None = None
    needle: bytes = b""
    #: True when `not_after` and the look-ahead both refuse every `token` character: then a
    #: match inside a maximal run of `token` characters can only be the whole run (it can
    #: neither start after a run character nor end before one), so `mask_ascii` decides a run
    #: with one `fullmatch` instead of a substitution.
    whole_runs: bool = False
    _classes: bytes = field(init=False, repr=False, compare=False)
    _mask_run: Callable[[str], str] = field(init=False, repr=False, compare=False)
    _needle: re.Pattern[bytes] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        classes = bytearray(self.table or b" " * 256)
        for byte in set(range(256)).difference(self.token.encode("ascii")):
            classes[byte] = 0
        object.__setattr__(self, "_classes", bytes(classes))
        object.__setattr__(self, "_mask_run", self._run_masker())
        object.__setattr__(self, "_needle", re.compile(re.escape(self.needle)))

    def mask_ascii(self, text: str) -> str:
        """`mask(text)` for an ASCII `text`, the same result found faster on long text (a
        batch of records joined by newlines): a match never leaves a maximal run of `token`
        characters, and masking such a run alone gives what masking it inside `text` gives
        (its neighbours are not `token` characters, so neither `not_after` nor the pattern's
        look-ahead can tell them from the ends of a text). So only runs around an anchor go
        through the pattern; the rest is copied. The runs are found in `text` translated
        through `_classes` (`table`, with every character outside `token` a NUL byte), so
        finding a run's ends is a byte search, not Python per character."""
        classes = text.encode("ascii").translate(self._classes) + b"\0"  # a run ends at the end
        find, rfind, mask_run = classes.find, classes.rfind, self._mask_run
        pieces: list[str] = []
        last = 0
        for at in self._anchors(text, classes):
            if at >= last:  # not in the run just masked
                start = rfind(b"\0", last, at) + 1 or last
                end = find(b"\0", at)
                pieces += (text[last:start], mask_run(text[start:end]))
                last = end
        if not pieces:
            return text
        pieces.append(text[last:])
        return "".join(pieces)

    def _mask_card_run(self, text: str) -> str:
        """What the card pattern does to a run of digits, spaces and dashes, without its
        backtracking for the usual runs: one number, in groups split by single spaces or
        dashes. With 13 to 19 digits the pattern's one match is that whole number (it takes up
        to 19 digits, at most one separator between two, and nothing before the number is a
        digit or a dash); with more bare digits, no match it finds may be masked (a match
        that does not start the number follows a digit)."""
        core = text.strip(" ")
        digits = len(core) - core.count(" ") - core.count("-")
        if digits < 13 or (digits > 19 and core.isdigit()):
            return text
        if digits <= 19 and _DIGIT_GROUPS.fullmatch(core):
            found = luhn_valid(core.replace(" ", "").replace("-", ""))
            return text.replace(core, MASKED) if found else text
        return self.pattern.sub(self._replace, text)

    def _anchors(self, text: str, classes: bytes) -> list[int]:
        """Where the anchors are, left to right (overlapping ones may be left out, never the
        first one after a run)."""
        if self.anchors:
            found = [m.start() for anchor in self.anchors for m in anchor.finditer(text)]
            return sorted(found) if len(self.anchors) > 1 else found
        return [m.start() for m in self._needle.finditer(classes)]

    def _run_masker(self) -> Callable[[str], str]:
        """What masks one run for `mask_ascii`: `mask` without `possible` (the run holds an
        anchor, so it passes), through a shortcut where one is exact."""
        if self.whole_runs:
            return self._mask_whole_run
        if self.name == "card":
            return self._mask_card_run
        if self.name == "uuid":
            return self._mask_uuid_run
        if self.accept is None and not self.not_after:
            return partial(self.pattern.sub, MASKED)
        return partial(self.pattern.sub, self._replace)

    def _mask_whole_run(self, text: str) -> str:
        found = self.pattern.fullmatch(text) and (self.accept is None or self.accept(text))
        return MASKED if found else text

    def _mask_uuid_run(self, text: str) -> str:
        if len(text) == 36 and self.pattern.fullmatch(text):
            return MASKED  # the pattern's length: the run is its one match
        return self.pattern.sub(self._replace, text)

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
            anchors=(re.compile("@"), re.compile("%40")),
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
            anchors=(re.compile("-[0-9A-Fa-f]{4}-"),),
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
            anchors=(_HEX_COLON_OR_PAIR,),
            whole_runs=True,
        ),
        Detector(
            "ipv4",
            re.compile(r"\d{1,3}(?:\.\d{1,3}){3}(?![\d.])"),
            _ipv4_valid,
            possible=_has("."),
            not_after=DIGITS + ".",
            token=DIGITS + ".",
            anchors=(re.compile(r"\.\d{1,3}\.\d{1,3}\."),),
            whole_runs=True,
        ),
        Detector(
            "id",
            re.compile(r"\d{5,}(?![0-9A-Za-z])"),
            not_after=ALNUM,
            token=ALNUM,
            table=_table(D=DIGITS),
            needle=b"DDDDD",
            whole_runs=True,
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
    text = "\n".join(texts)
    if text.isascii() and text.count("\n") == len(texts) - 1:  # the usual batch: one join
        return _mask_ascii(text, names).split("\n")
    joined = [i for i, t in enumerate(texts) if t.isascii() and "\n" not in t]
    out = list(texts)
    for i in set(range(len(texts))).difference(joined):
        out[i] = mask_detected(texts[i], names)
    if joined:
        masked = _mask_ascii("\n".join([texts[i] for i in joined]), names)
        for i, text in zip(joined, masked.split("\n"), strict=True):
            out[i] = text
    return out


def _mask_ascii(text: str, names: Sequence[DetectorName]) -> str:
    for name in names:
        text = DETECTORS[name].mask_ascii(text)
    return text
