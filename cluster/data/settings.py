"""Environments and their privacy settings, as the cluster config holds them (section `data`).

Defaults follow the product's promise: IP addresses masked (`all`), URIs not masked (off, as
the anchor has it), Do Not Track honoured with an anonymous session, opt-in off, user tags not
captured, log records with card numbers and IP addresses masked, 35 days of retention.
Guarantees: `from_config` accepts only what `to_config` writes; anything else is a
`DataSettingsError` naming the field, so a bad change is refused before it is written.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal, get_args

from cluster.errors import ClusterError
from contract.privacy.ip import IP_MODES, IpMasking
from contract.privacy.rules import DEFAULT_RULES, ProcessingRule, parse_rules

SECTION = "data"
DntChoice = Literal["anonymous", "nothing"]
DNT_CHOICES: tuple[str, ...] = get_args(DntChoice)
NAME = re.compile(r"[a-z][a-z0-9-]{0,31}")
DEFAULT_RETENTION_DAYS = 35
MAX_RETENTION_DAYS = 3650


class DataSettingsError(ClusterError):
    """A data setting is missing, malformed or out of range."""


def check_data_name(kind: str, name: str) -> str:
    if not NAME.fullmatch(name):
        raise DataSettingsError(
            f"{kind} name {name!r}: 1 to 32 of a-z, 0-9 and '-', starting with a letter"
        )
    return name


@dataclass(frozen=True)
class AppPrivacy:
    """One application's privacy settings (what `/rum.js` and storage obey)."""

    dnt: DntChoice = "anonymous"
    opt_in: bool = False
    ip_masking: IpMasking = "all"
    uri_masking: bool = False
    user_tags: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "dnt": self.dnt,
            "opt_in": self.opt_in,
            "ip_masking": self.ip_masking,
            "uri_masking": self.uri_masking,
            "user_tags": self.user_tags,
        }

    @classmethod
    def from_json(cls, doc: Any, where: str) -> AppPrivacy:
        if not isinstance(doc, Mapping):
            raise DataSettingsError(f"{where}: not an object")
        base = cls()
        dnt = doc.get("dnt", base.dnt)
        if dnt not in DNT_CHOICES:
            raise DataSettingsError(f"{where}.dnt: one of {', '.join(DNT_CHOICES)}")
        ip = doc.get("ip_masking", base.ip_masking)
        if ip not in IP_MODES:
            raise DataSettingsError(f"{where}.ip_masking: one of {', '.join(IP_MODES)}")
        flags = {}
        for name in ("opt_in", "uri_masking", "user_tags"):
            value = doc.get(name, getattr(base, name))
            if not isinstance(value, bool):
                raise DataSettingsError(f"{where}.{name}: true or false")
            flags[name] = value
        return cls(dnt=dnt, ip_masking=ip, **flags)


@dataclass(frozen=True)
class Environment:
    """A tenant of monitoring data: its retention, log processing rules and applications."""

    name: str
    retention_days: int = DEFAULT_RETENTION_DAYS
    rules: tuple[ProcessingRule, ...] = DEFAULT_RULES
    applications: Mapping[str, AppPrivacy] = field(default_factory=dict)

    def app(self, name: str) -> AppPrivacy:
        """An application's settings; one never configured gets the defaults."""
        return self.applications.get(name, AppPrivacy())

    def to_json(self) -> dict[str, Any]:
        return {
            "retention_days": self.retention_days,
            "rules": [r.to_json() for r in self.rules],
            "applications": {k: v.to_json() for k, v in sorted(self.applications.items())},
        }

    @classmethod
    def from_json(cls, name: str, doc: Any) -> Environment:
        where = f"data.environments.{name}"
        check_data_name("environment", name)
        if not isinstance(doc, Mapping):
            raise DataSettingsError(f"{where}: not an object")
        days = doc.get("retention_days", DEFAULT_RETENTION_DAYS)
        if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= 3650:
            raise DataSettingsError(f"{where}.retention_days: 1 to {MAX_RETENTION_DAYS} days")
        try:
            rules = parse_rules(doc.get("rules", [r.to_json() for r in DEFAULT_RULES]))
        except (ValueError, TypeError) as e:
            raise DataSettingsError(f"{where}.rules: {e}") from None
        apps = doc.get("applications", {})
        if not isinstance(apps, Mapping):
            raise DataSettingsError(f"{where}.applications: not an object")
        applications = {
            check_data_name("application", k): AppPrivacy.from_json(v, f"{where}.applications.{k}")
            for k, v in apps.items()
        }
        return cls(name, days, rules, applications)

    def with_app(self, name: str, app: AppPrivacy) -> Environment:
        return replace(self, applications={**self.applications, name: app})


@dataclass(frozen=True)
class DataSettings:
    """Every environment, and the operators who hold the `sensitive-data` permission."""

    environments: Mapping[str, Environment] = field(default_factory=dict)
    sensitive_data: frozenset[str] = frozenset()

    def environment(self, name: str) -> Environment:
        env = self.environments.get(name)
        if env is None:
            known = ", ".join(sorted(self.environments)) or "none yet"
            raise DataSettingsError(
                f"no environment {name!r} (known: {known}); create it with `managed env create`"
            )
        return env

    def to_config(self) -> dict[str, Any]:
        return {
            "environments": {k: v.to_json() for k, v in sorted(self.environments.items())},
            "sensitive_data": sorted(self.sensitive_data),
        }

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> DataSettings:
        section = config.get(SECTION) or {}
        if not isinstance(section, Mapping):
            raise DataSettingsError("data: not an object")
        envs = section.get("environments", {})
        if not isinstance(envs, Mapping):
            raise DataSettingsError("data.environments: not an object")
        operators = section.get("sensitive_data", [])
        if not isinstance(operators, list) or not all(isinstance(o, str) for o in operators):
            raise DataSettingsError("data.sensitive_data: a list of operator names")
        return cls({k: Environment.from_json(k, v) for k, v in envs.items()}, frozenset(operators))
