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

from contract.privacy.checks import (
    iban_match_valid,
    ipv4_valid,
    ipv6_valid,
    luhn_ascii,
    luhn_valid,
)
from contract.privacy.checks import iban_valid as iban_valid  # part of this module's interface

MASKED = "<masked>"

DetectorName = Literal["email", "uuid", "iban", "card", "ipv6", "ipv4", "id"]
#: Every detector, in the order they run.
ALL: tuple[DetectorName, ...] = ("email", "uuid", "iban", "card", "ipv6", "ipv4", "id")
#: What a new environment masks in log records from the start: card data is never stored.
LOG_DEFAULT: tuple[DetectorName, ...] = ("card", "ipv6", "ipv4")
#: The names an operator may give (`ip` stands for both address families).
CHOICES = ("email", "uuid", "iban", "card", "ip", "id")


def _has(*needles: str) -> Callable[[str], bool]:
    return lambda text: any(n in text for n in needles)


DIGITS = "0123456789"
_HEX_COLON = re.compile(r":[0-9A-Fa-f]{1,4}:")  # what every IPv6 address without "::" holds
ALNUM = DIGITS + "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
HEX = DIGITS + "ABCDEFabcdef"
_DIGIT_GROUPS = re.compile(r"[0-9]+(?:[ -][0-9]+)*")  # one number, single separators
#: 0 to 255 (leading zeros allowed, as `ipv4_valid` allows them): ASCII digits only.
_OCTET = "(?:25[0-5]|2[0-4][0-9]|[01]?[0-9]?[0-9])"
_H = "[0-9A-Fa-f]{1,4}"
#: A whole IPv6 run that the pattern takes and `ipv6_valid` accepts: 8 groups, or `a` groups,
#: "::" and `b` groups with a + b <= 7 and at most 7 colons in all (so neither 0 nor 7 groups
#: on one side and none on the other: "::" alone is refused too).
_IPV6_RUN = "|".join(
    [rf"{_H}(?::{_H}){{7}}", rf"::{_H}(?::{_H}){{0,5}}"]
    + [rf"{_H}(?::{_H}){{{a - 1}}}::(?:{_H}(?::{_H}){{0,{6 - a}}})?" for a in range(1, 7)]
)
#: What every IPv6 match holds ("::" or ":h:"), written with one literal first: a fast scan.
_HEX_COLON_OR_PAIR = re.compile(r":(?::|[0-9A-Fa-f]{1,4}:)")


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
    #: with one `fullmatch` instead of a substitution: of `run_check` when given (a pattern
    #: whose full matches are exactly the runs `pattern` and `accept` take), else of `pattern`
    #: followed by `accept`.
    whole_runs: bool = False
    run_check: re.Pattern[str] | None = None
    #: True when every match starts at a `needle` (not merely holds one): `mask_ascii` then
    #: tries the pattern at each needle instead of finding runs.
    starts_at_needle: bool = False
    #: With `starts_at_needle`: a pattern whose match at a needle, when it has one, is the
    #: match `pattern` has there, found without `pattern`'s backtracking.
    quick: re.Pattern[str] | None = None
    _classes: bytes = field(init=False, repr=False, compare=False)
    _mask_run: Callable[[str, int, int], str | None] = field(init=False, repr=False, compare=False)
    #: When every `token` character has the needle's one class: the runs holding a needle,
    #: found whole by the regular expression engine (the needle, then the rest of the run).
    _runs: re.Pattern[bytes] | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        classes = bytearray(self.table or b" " * 256)
        for byte in set(range(256)).difference(self.token.encode("ascii")):
            classes[byte] = 0
        object.__setattr__(self, "_classes", bytes(classes))
        object.__setattr__(self, "_mask_run", self._run_masker())
        one_class = bool(self.needle) and set(self.needle) == {classes[ord(c)] for c in self.token}
        runs = re.escape(self.needle) + re.escape(self.needle[:1]) + b"*" if one_class else None
        object.__setattr__(self, "_runs", runs and re.compile(runs))

    def mask_ascii(self, text: str) -> str:
        """`mask(text)` for an ASCII `text`, the same result found faster on long text (a
        batch of records joined by newlines): a match never leaves a maximal run of `token`
        characters, and masking such a run alone gives what masking it inside `text` gives
        (its neighbours are not `token` characters, so neither `not_after` nor the pattern's
        look-ahead can tell them from the ends of a text). So only runs around an anchor go
        through the pattern; the rest is copied. The runs are found in `text` translated
        through `_classes` (`table`, with every character outside `token` a NUL byte), so
        finding a run's ends is a byte search, not Python per character."""
        if self.starts_at_needle:
            return self._mask_from_needles(text)
        mask_run = self._mask_run
        pieces: list[str] = []
        copied = 0
        for start, end in self._runs_to_mask(text):
            masked = mask_run(text, start, end)
            if masked is not None:
                pieces += (text[copied:start], masked)
                copied = end
        if not pieces:
            return text
        pieces.append(text[copied:])
        return "".join(pieces)

    def _runs_to_mask(self, text: str) -> list[tuple[int, int]]:
        """The runs holding an anchor, left to right, as (start, end)."""
        if self._runs is not None:
            classes = text.encode("ascii").translate(self._classes)
            return [run.span() for run in self._runs.finditer(classes)]
        if self.anchors:
            anchors = self._anchors(text)
            if not anchors:
                return []  # not even translated: most texts hold no anchor
        classes = text.encode("ascii").translate(self._classes) + b"\0"  # a run ends at the end
        find, rfind = classes.find, classes.rfind
        runs = []
        last = 0
        for at in anchors if self.anchors else self._needles(classes):
            if at >= last:  # not in the run just found
                start = rfind(b"\0", last, at) + 1 or last
                last = find(b"\0", at)
                runs.append((start, last))
        return runs

    def _mask_from_needles(self, text: str) -> str:
        """`mask_ascii` for a detector whose matches start at a needle: the pattern's matches
        are found by trying it at each needle, left to right, past the end of the previous
        match (refused or not), which is where `re.sub` finds them."""
        match, not_after, accept = self.pattern.match, self.not_after, self.accept
        quick = (self.quick or self.pattern).match
        find = text.encode("ascii").translate(self._classes).find
        pieces: list[str] = []
        copied = last = 0
        at = find(self.needle)
        while at >= 0:
            found = quick(text, at) or match(text, at)
            if found is None:
                at = find(self.needle, at + 1)
                continue
            last = found.end()
            if (not at or text[at - 1] not in not_after) and (accept is None or accept(found[0])):
                pieces += (text[copied:at], MASKED)
                copied = last
            at = find(self.needle, last)
        if not pieces:
            return text
        pieces.append(text[copied:])
        return "".join(pieces)

    def _mask_card_run(self, text: str, start: int, end: int) -> str | None:
        """What the card pattern does to a run of digits, spaces and dashes, without its
        backtracking for the usual runs: one number, in groups split by single spaces or
        dashes. With 13 to 19 digits the pattern's one match is that whole number (it takes up
        to 19 digits, at most one separator between two, and nothing before the number is a
        digit or a dash); with more bare digits, no match it finds may be masked (a match
        that does not start the number follows a digit)."""
        run = text[start:end]
        core = run.strip(" ")
        if core.isdigit():  # one bare number (a card, or a long ID or an IBAN's digits)
            digits = len(core)
            if not 13 <= digits <= 19:
                return None
            return run.replace(core, MASKED) if luhn_ascii(core.encode()) else None
        digits = len(core) - core.count(" ") - core.count("-")
        if digits < 13:
            return None
        if digits <= 19 and _DIGIT_GROUPS.fullmatch(core):
            found = luhn_ascii(core.replace(" ", "").replace("-", "").encode())
            return run.replace(core, MASKED) if found else None
        return self.pattern.sub(self._replace, run)

    def _needles(self, classes: bytes) -> list[int]:
        """Where a needle starts, the first one of each run (a byte search per run, as the
        run's end is a NUL byte and the next search starts there)."""
        find, needle = classes.find, self.needle
        found = []
        at = find(needle)
        while at >= 0:
            found.append(at)
            at = find(needle, find(b"\0", at))
        return found

    def _anchors(self, text: str) -> list[int]:
        """Where the anchors are, left to right (overlapping ones may be left out, never the
        first one after a run)."""
        found = [m.start() for anchor in self.anchors for m in anchor.finditer(text)]
        return sorted(found) if len(self.anchors) > 1 else found

    def _run_masker(self) -> Callable[[str, int, int], str | None]:
        """What masks one run, `text[start:end]`, for `mask_ascii`: `mask` without `possible`
        (the run holds an anchor, so it passes), through a shortcut where one is exact; None
        when the run stays as it is."""
        if self.whole_runs:
            return self._mask_whole_run
        if self.name == "card":
            return self._mask_card_run
        if self.name == "uuid":
            return self._mask_uuid_run
        if self.accept is None and not self.not_after:
            return self._sub_run
        return self._replace_run

    def _mask_whole_run(self, text: str, start: int, end: int) -> str | None:
        if self.run_check is not None:
            return MASKED if self.run_check.fullmatch(text, start, end) else None
        if not self.pattern.fullmatch(text, start, end):
            return None
        return MASKED if self.accept is None or self.accept(text[start:end]) else None

    def _mask_uuid_run(self, text: str, start: int, end: int) -> str | None:
        if end - start == 36 and self.pattern.fullmatch(text, start, end):
            return MASKED  # the pattern's length: the run is its one match
        return self._replace_run(text, start, end)

    def _sub_run(self, text: str, start: int, end: int) -> str:
        return self.pattern.sub(MASKED, text[start:end])

    def _replace_run(self, text: str, start: int, end: int) -> str:
        return self.pattern.sub(self._replace, text[start:end])

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
            iban_match_valid,
            lambda text: text.lower() != text,
            ALNUM,
            token=ALNUM + " ",
            table=_table(A=UPPER, D=DIGITS),
            needle=b"AADD",
            starts_at_needle=True,
            # Without spaces, and ending where `pattern` can take no further group: then it
            # took every letter and digit as its own group, as this one does.
            quick=re.compile(r"[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}(?![A-Za-z0-9]| [A-Z0-9])"),
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
            ipv6_valid,
            possible=lambda text: "::" in text or _HEX_COLON.search(text) is not None,
            not_after=ALNUM + ":",
            token=ALNUM + ":",
            anchors=(_HEX_COLON_OR_PAIR,),
            whole_runs=True,
            run_check=re.compile(_IPV6_RUN),
        ),
        Detector(
            "ipv4",
            re.compile(r"\d{1,3}(?:\.\d{1,3}){3}(?![\d.])"),
            ipv4_valid,
            possible=_has("."),
            not_after=DIGITS + ".",
            token=DIGITS + ".",
            anchors=(re.compile(r"\.\d{1,3}\.\d{1,3}\."),),
            whole_runs=True,
            run_check=re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}"),
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
