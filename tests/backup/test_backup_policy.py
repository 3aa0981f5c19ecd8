"""Pure rules: target URLs, residency, retention, bandwidth parsing and the token bucket."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from backup.destinations import check_configuration
from backup.errors import ConfigError, ResidencyError
from backup.layout import backup_id_of, new_backup_id, part_object
from backup.residency import ResidencyPolicy, normalise_region
from backup.retention import (
    BackupStamp,
    OrphanRule,
    RetentionPolicy,
    apply_policy,
    orphaned_ids,
)
from backup.targets import FileLocation, S3Location, parse_target_url
from backup.throttle import TokenBucket, parse_rate


def test_parse_s3_url() -> None:
    loc = parse_target_url("s3://bucket-a/x/y?region=eu-west-1&endpoint=http://127.0.0.1:9000")
    assert loc == S3Location("bucket-a", "x/y", "eu-west-1", "http://127.0.0.1:9000")
    assert parse_target_url(loc.url) == loc


def test_parse_file_url() -> None:
    assert parse_target_url("file:///mnt/nfs/x/") == FileLocation("/mnt/nfs/x")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://x", "use file:///path or s3://"),
        ("file://host/x", "no host"),
        ("file:///", "absolute directory"),
        ("file:///a/../b", "'..'"),
        ("s3://bucket-a/p", "add \\?region="),
        ("s3://bucket-a/p?region=mars", "not a region name"),
        ("s3://B!/p?region=eu-west-1", "not a valid S3 bucket name"),
        ("s3://bucket-a/p?region=eu-west-1&colour=red", "unknown parameter"),
        ("s3://bucket-a/p?region=eu-west-1&endpoint=ftp://h", "endpoint must be"),
        ("s3://bucket-a/a/../b?region=eu-west-1", "must not contain"),
    ],
)
def test_bad_urls_get_one_clear_line(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        parse_target_url(url)
    assert "\n" not in str(info.value)


def test_region_normalisation() -> None:
    assert normalise_region(None) == "us-east-1"
    assert normalise_region("") == "us-east-1"
    assert normalise_region("EU") == "eu-west-1"
    assert normalise_region("eu-central-1") == "eu-central-1"


def test_eu_policy_refuses_us_targets_at_configure_time() -> None:
    policy = ResidencyPolicy("EU")
    with pytest.raises(ResidencyError, match="us-east-1, outside the cluster's geography EU"):
        check_configuration(
            "s3://bucket-a/p?region=eu-west-1",
            ["s3://bucket-b/p?region=us-east-1"],
            policy,
        )
    locations = check_configuration(
        "s3://bucket-a/p?region=eu-west-1", ["s3://bucket-b?region=eu-central-1"], policy
    )
    assert [loc.region for loc in locations] == ["eu-west-1", "eu-central-1"]
    check_configuration("file:///mnt/nfs/backups", [], policy)  # on-premise: always allowed


def test_run_time_location_check() -> None:
    policy = ResidencyPolicy("EU")
    location = S3Location("bucket-a", "", "eu-west-1")
    policy.check_actual(location, "EU")
    policy.check_actual(location, "eu-central-1")
    with pytest.raises(ResidencyError, match="really lives in us-east-1"):
        policy.check_actual(location, None)


def test_other_geographies() -> None:
    au = ResidencyPolicy("AU")
    au.check(S3Location("bucket-a", "", "ap-southeast-2"))
    with pytest.raises(ResidencyError):
        au.check(S3Location("bucket-a", "", "ap-southeast-1"))
    with pytest.raises(ConfigError, match="unknown geography"):
        ResidencyPolicy("MARS")


def test_duplicate_targets_refused() -> None:
    with pytest.raises(ConfigError, match="given twice"):
        check_configuration("file:///a", ["file:///a/"], ResidencyPolicy("EU"))


def test_object_layout() -> None:
    backup_id = new_backup_id(datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC), lambda n: b"\xab" * n)
    assert backup_id == "20250102T030405Z-abababab"
    assert part_object(backup_id, "node-a") == f"data/{backup_id}/node-a.part"
    assert backup_id_of(f"manifests/{backup_id}.json") == backup_id
    assert backup_id_of("manifests/junk.json") is None
    with pytest.raises(ConfigError, match="not a part name"):
        part_object(backup_id, "../x")


def stamps(times: list[datetime]) -> list[BackupStamp]:
    return [BackupStamp(f"{t:%Y%m%dT%H%M%SZ}-00000000", t) for t in times]


def test_keep_last() -> None:
    start = datetime(2025, 3, 1, tzinfo=UTC)
    backups = stamps([start + timedelta(hours=h) for h in range(10)])
    decision = apply_policy(backups, RetentionPolicy(keep_last=3))
    assert [k.id for k in decision.keep] == [b.id for b in backups[::-1][:3]]
    assert len(decision.remove) == 7


def test_keep_daily_keeps_newest_of_each_day() -> None:
    start = datetime(2025, 3, 1, tzinfo=UTC)
    # Three backups a day for five days.
    backups = stamps([start + timedelta(days=d, hours=h) for d in range(5) for h in (1, 9, 17)])
    decision = apply_policy(backups, RetentionPolicy(keep_daily=3))
    kept = sorted(k.id for k in decision.keep)
    assert kept == sorted(
        [
            "20250305T170000Z-00000000",
            "20250304T170000Z-00000000",
            "20250303T170000Z-00000000",
        ]
    )


def test_daily_with_counts_left_keeps_the_oldest_too() -> None:
    start = datetime(2025, 3, 1, tzinfo=UTC)
    backups = stamps([start, start + timedelta(hours=1), start + timedelta(days=1)])
    decision = apply_policy(backups, RetentionPolicy(keep_daily=7))
    # Restic: with counts left, the oldest backup is kept as well (longest history).
    assert len(decision.keep) == 3


def test_weekly_and_monthly_and_reasons() -> None:
    start = datetime(2025, 1, 1, 2, tzinfo=UTC)
    backups = stamps([start + timedelta(days=d) for d in range(90)])
    decision = apply_policy(
        backups, RetentionPolicy(keep_last=2, keep_daily=7, keep_weekly=4, keep_monthly=3)
    )
    reasons = {k.id: k.reasons for k in decision.keep}
    newest = backups[-1].id
    assert reasons[newest] == ("last", "daily", "weekly", "monthly")
    # 7 dailies (incl. the 2 last), 4 weekly Sundays-ish, 3 month ends, overlapping.
    assert 7 <= len(decision.keep) <= 7 + 4 + 3
    assert len(decision.keep) + len(decision.remove) == 90
    assert "20250131T020000Z-00000000" in reasons  # last backup of January: monthly


def test_keep_within_is_relative_to_newest_backup() -> None:
    start = datetime(2020, 1, 1, tzinfo=UTC)
    backups = stamps([start + timedelta(days=d) for d in range(10)])
    decision = apply_policy(backups, RetentionPolicy(keep_within=timedelta(days=2)))
    assert len(decision.keep) == 3


def test_empty_policy_keeps_everything() -> None:
    backups = stamps([datetime(2025, 1, d, tzinfo=UTC) for d in range(1, 5)])
    decision = apply_policy(backups, RetentionPolicy())
    assert decision.remove == ()
    with pytest.raises(ConfigError, match="--keep-last must be 0 or more"):
        RetentionPolicy(keep_last=-1)


def test_orphans_are_only_older_than_the_newest_commit() -> None:
    old, committed, newer = (
        "20250101T000000Z-00000001",
        "20250102T000000Z-00000002",
        "20250103T000000Z-00000003",
    )
    present = [old, committed, newer]
    later = OrphanRule(now=datetime(2025, 2, 1, tzinfo=UTC))
    assert orphaned_ids(present, [committed], later) == [old]
    assert orphaned_ids(present, [], later) == []


def test_orphans_spare_runs_in_progress_and_recent_unknown_runs() -> None:
    old, committed = "20250101T000000Z-00000001", "20250102T000000Z-00000002"
    failed_newer = "20250103T000000Z-00000003"
    soon = datetime(2025, 1, 2, 12, tzinfo=UTC)  # `old` is 36 h old: maybe another cluster's
    assert orphaned_ids([old, committed], [committed], OrphanRule(now=soon)) == []
    # Known to have failed: gone at once, even when newer than the newest commit.
    rule = OrphanRule(now=soon, ended=frozenset({old, failed_newer}))
    assert orphaned_ids([old, committed, failed_newer], [committed], rule) == [old, failed_newer]
    # Known to be running: never, however old.
    rule = OrphanRule(now=datetime(2026, 1, 1, tzinfo=UTC), running=frozenset({old}))
    assert orphaned_ids([old, committed], [committed], rule) == []


@pytest.mark.parametrize(
    ("text", "rate"),
    [("100MiB/s", 100 * 1024**2), ("5MB/s", 5_000_000), ("1GiB", 1024**3), ("2048", 2048)],
)
def test_parse_rate(text: str, rate: int) -> None:
    assert parse_rate(text) == rate


@pytest.mark.parametrize("text", ["fast", "10 parsecs/s", "12", "-5MB/s"])
def test_parse_rate_rejects(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_rate(text)


def test_token_bucket_paces_to_the_rate() -> None:
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    bucket = TokenBucket(1000, burst=100, clock=lambda: now[0], sleep=sleep)
    for _ in range(50):
        bucket.consume(100)
    # 5000 bytes at 1000/s with a 100-byte head start.
    assert now[0] == pytest.approx(4.9)
