"""Residency against real S3 endpoints: refused when configured and again at run time."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from backup.destinations import open_targets
from backup.errors import ResidencyError
from backup.residency import ResidencyPolicy
from backup.targets import parse_target_url
from cluster.dev import s3 as devs3

EU = ResidencyPolicy("EU")
US = ResidencyPolicy("US")


def test_us_mirror_refused_at_configure_time(new_bucket: Callable[..., str]) -> None:
    with pytest.raises(ResidencyError, match="outside the cluster's geography EU"):
        open_targets(new_bucket("eu-west-1"), [new_bucket("us-east-1")], EU)


def test_bucket_really_in_us_east_1_refused_at_run_time(
    new_bucket: Callable[..., str], s3_endpoints: Callable[[str], devs3.DevS3]
) -> None:
    us = s3_endpoints("us-east-1")
    eu = s3_endpoints("eu-west-1")
    before = {server.region: devs3.count_objects(server) for server in (us, eu)}
    # The bucket lives on the us-east-1 endpoint (no LocationConstraint); the configuration
    # lies and calls it eu-west-1.
    honest = new_bucket("us-east-1")
    lying = honest.replace("region=us-east-1", "region=eu-west-1")
    EU.check(parse_target_url(lying))  # the declared region passes the configure-time rule
    with pytest.raises(ResidencyError, match="really lives in us-east-1"):
        open_targets(new_bucket("eu-west-1"), [lying], EU)
    with pytest.raises(ResidencyError, match="really lives in us-east-1"):
        open_targets(lying, [], EU)
    after = {server.region: devs3.count_objects(server) for server in (us, eu)}
    assert after == before  # nothing written in either region


def test_legacy_eu_location_is_eu_west_1(new_bucket: Callable[..., str]) -> None:
    # A bucket made with the legacy LocationConstraint "EU": GetBucketLocation answers "EU".
    legacy = new_bucket("eu-west-1", located_in="EU")
    targets = open_targets(legacy, [new_bucket("eu-central-1")], EU)
    assert targets.primary.bucket_location() == "EU"
    assert len(targets.all) == 2
    targets.primary.put("probe", [b"x"])  # usable as an Irish bucket
    assert targets.primary.size("probe") == 1
    with pytest.raises(ResidencyError, match="really lives in eu-west-1"):
        open_targets(legacy.replace("region=eu-west-1", "region=us-east-1"), [], US)
