"""Data residency: which S3 regions a cluster's geography allows (pure).

Guarantees:
- `normalise_region` turns what S3's GetBucketLocation returns into a region name: `None` or ""
  means us-east-1 and the legacy `EU` means eu-west-1.
- `ResidencyPolicy.check` refuses an S3 target whose configured region lies outside the
  geography (configure time); `check_actual` refuses a bucket whose real location does (run
  time). `file://` targets are paths inside the customer's own data center and always allowed.
"""

from __future__ import annotations

from dataclasses import dataclass

from backup.errors import ConfigError, ResidencyError
from backup.targets.location import FileLocation, TargetLocation

# Region name prefixes (ending in "-") or exact names, per geography.
GEOGRAPHIES: dict[str, tuple[str, ...]] = {
    "EU": ("eu-",),
    "US": ("us-east-", "us-west-"),
    "CA": ("ca-",),
    "UK": ("eu-west-2",),
    "AU": ("ap-southeast-2", "ap-southeast-4"),
    "JP": ("ap-northeast-1", "ap-northeast-3"),
    "IN": ("ap-south-1", "ap-south-2"),
    "SG": ("ap-southeast-1",),
    "BR": ("sa-east-1",),
}


def normalise_region(location: str | None) -> str:
    """S3 GetBucketLocation's answer as a region name."""
    if not location:
        return "us-east-1"
    if location == "EU":
        return "eu-west-1"
    return location.lower()


def region_in(geography: str, region: str) -> bool:
    return any(
        region.startswith(rule) if rule.endswith("-") else region == rule
        for rule in GEOGRAPHIES[geography]
    )


@dataclass(frozen=True)
class ResidencyPolicy:
    geography: str

    def __post_init__(self) -> None:
        if self.geography not in GEOGRAPHIES:
            known = ", ".join(sorted(GEOGRAPHIES))
            raise ConfigError(f"unknown geography {self.geography!r}; known: {known}")

    @property
    def allowed(self) -> str:
        return ", ".join(r + "*" if r.endswith("-") else r for r in GEOGRAPHIES[self.geography])

    def check(self, location: TargetLocation) -> None:
        """Configure-time check of a target's declared region."""
        if isinstance(location, FileLocation):
            return
        region = normalise_region(location.region)
        if not region_in(self.geography, region):
            raise ResidencyError(
                f"target {location.url} is in region {region}, outside the cluster's geography "
                f"{self.geography} (allowed: {self.allowed})"
            )

    def check_actual(self, location: TargetLocation, bucket_location: str | None) -> None:
        """Run-time check of the bucket's real location as S3 reports it."""
        if isinstance(location, FileLocation):
            return
        actual = normalise_region(bucket_location)
        if not region_in(self.geography, actual):
            raise ResidencyError(
                f"bucket {location.bucket} really lives in {actual} (configured as "
                f"{location.region}), outside the cluster's geography {self.geography}; "
                "nothing was written"
            )
