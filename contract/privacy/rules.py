"""Processing rules of an environment: what ingest (and the log forwarder, at capture) masks
in a log record before it is stored or sent.

A rule is either a pattern and its replacement (Python `re` syntax, `\\1` groups allowed) or a
built-in detector (`card`, `iban`, `email`, `ip`, `uuid`, `id`) whose matches become
`<masked>`. Rules apply in order, each to the previous one's output. A new environment starts
with `DEFAULT_RULES`: Luhn-valid card numbers and IP addresses masked, so card data is never
stored. Patterns come from operators (trusted, audited), are compiled once and are limited in
length; a pattern that does not compile is refused when it is set, never when a record arrives.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from contract.privacy.detectors import (
    CHOICES,
    DetectorName,
    expand,
    mask_detected,
    mask_detected_many,
)

MAX_PATTERN = 500
MAX_RULES = 50


@dataclass(frozen=True)
class ProcessingRule:
    """One masking step. Exactly one of `pattern` (with `replacement`) or `detector`."""

    name: str
    pattern: str | None = None
    replacement: str = "<masked>"
    detector: str | None = None
    _compiled: re.Pattern[str] | None = field(default=None, compare=False, repr=False)
    _detectors: tuple[DetectorName, ...] = field(default=(), compare=False, repr=False)

    def __post_init__(self) -> None:
        if not self.name or len(self.name) > 64 or not self.name.isprintable():
            raise ValueError("a rule needs a printable name of at most 64 characters")
        if (self.pattern is None) == (self.detector is None):
            raise ValueError(f"rule {self.name}: give either a pattern or a detector")
        if self.detector is not None:
            if self.detector not in CHOICES:
                raise ValueError(
                    f"rule {self.name}: unknown detector {self.detector!r} "
                    f"(known: {', '.join(CHOICES)})"
                )
            object.__setattr__(self, "_detectors", expand([self.detector]))
            return
        assert self.pattern is not None
        if not self.pattern or len(self.pattern) > MAX_PATTERN:
            raise ValueError(f"rule {self.name}: a pattern has 1 to {MAX_PATTERN} characters")
        try:
            compiled = re.compile(self.pattern)
            compiled.sub(self.replacement, "")  # refuses a replacement naming a missing group
        except (re.error, IndexError) as e:
            raise ValueError(f"rule {self.name}: {e}") from None
        object.__setattr__(self, "_compiled", compiled)

    def apply(self, text: str) -> str:
        if self.detector is not None:
            return mask_detected(text, self._detectors)
        assert self._compiled is not None
        return self._compiled.sub(self.replacement, text)

    def to_json(self) -> dict[str, str]:
        doc = {"name": self.name}
        if self.detector is not None:
            doc["detector"] = self.detector
        else:
            assert self.pattern is not None
            doc["pattern"] = self.pattern
            doc["replacement"] = self.replacement
        return doc

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> ProcessingRule:
        if not isinstance(doc, Mapping):
            raise ValueError("a rule is a JSON object")
        return cls(
            name=str(doc.get("name", "")),
            pattern=None if doc.get("pattern") is None else str(doc["pattern"]),
            replacement=str(doc.get("replacement", "<masked>")),
            detector=None if doc.get("detector") is None else str(doc["detector"]),
        )


DEFAULT_RULES: tuple[ProcessingRule, ...] = (
    ProcessingRule("card numbers", detector="card"),
    ProcessingRule("ip addresses", detector="ip"),
)


def parse_rules(docs: Iterable[Any]) -> tuple[ProcessingRule, ...]:
    rules = tuple(ProcessingRule.from_json(d) for d in docs)
    if len(rules) > MAX_RULES:
        raise ValueError(f"at most {MAX_RULES} rules per environment")
    names = [r.name for r in rules]
    if len(set(names)) != len(names):
        raise ValueError("rule names must be unique within an environment")
    return rules


def apply_rules(text: str, rules: Sequence[ProcessingRule]) -> str:
    """`text` after every rule, in order."""
    for rule in rules:
        text = rule.apply(text)
    return text


def apply_rules_many(texts: list[str], rules: Sequence[ProcessingRule]) -> list[str]:
    """`[apply_rules(t, rules) for t in texts]`, faster for a batch: the detectors of
    consecutive detector rules run over all texts at once (`mask_detected_many`), patterns on
    each text (an operator's pattern may span or look at whatever joins texts)."""
    detectors: list[DetectorName] = []
    for rule in rules:
        if rule.detector is not None:
            detectors += rule._detectors
            continue
        if detectors:
            texts, detectors = mask_detected_many(texts, detectors), []
        assert rule._compiled is not None
        texts = list(map(partial(rule._compiled.sub, rule.replacement), texts))
    return mask_detected_many(texts, detectors) if detectors else texts
