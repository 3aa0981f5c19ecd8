"""`TargetSet`: the primary target and its mirrors, opened only after residency checks.

Guarantees: `open_targets` parses every URL, refuses duplicates, checks every declared region
against the cluster's geography (configure-time rule) and, unless told not to, asks every S3
bucket where it really is (run-time rule) before returning. Nothing is written by opening.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from backup.errors import ConfigError
from backup.residency import ResidencyPolicy
from backup.targets import Target, TargetLocation, open_target, parse_target_url


@dataclass(frozen=True)
class TargetSet:
    primary: Target
    mirrors: tuple[Target, ...] = ()

    @property
    def all(self) -> tuple[Target, ...]:
        return (self.primary, *self.mirrors)

    @property
    def urls(self) -> tuple[str, ...]:
        return tuple(t.location.url for t in self.all)


def check_configuration(
    primary: str, mirrors: Sequence[str], policy: ResidencyPolicy
) -> tuple[TargetLocation, ...]:
    """Configure-time validation (pure): parse, de-duplicate, check declared regions."""
    locations = tuple(parse_target_url(url) for url in (primary, *mirrors))
    seen: set[str] = set()
    for location in locations:
        if location.url in seen:
            raise ConfigError(f"target {location.url} is given twice")
        seen.add(location.url)
        policy.check(location)
    return locations


def open_targets(
    primary: str,
    mirrors: Sequence[str],
    policy: ResidencyPolicy,
    *,
    check_location: bool = True,
    opener: Callable[[TargetLocation], Target] = open_target,
) -> TargetSet:
    """Open the targets for a run, after the configure-time and run-time residency checks."""
    targets = [opener(location) for location in check_configuration(primary, mirrors, policy)]
    if check_location:
        for target in targets:
            policy.check_actual(target.location, target.bucket_location())
    return TargetSet(primary=targets[0], mirrors=tuple(targets[1:]))
