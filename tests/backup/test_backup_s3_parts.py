"""S3 multipart part sizes grow with the object (S3 allows 10,000 parts): the pure choice, and
a real endpoint refusing an object that outgrows its plan without leaving anything behind."""

from __future__ import annotations

import base64
import zlib
from collections.abc import Callable

import boto3
import pytest

import backup.targets.s3 as s3
from backup.errors import TargetError
from backup.targets import S3Location, S3Target, parse_target_url

MIB = 1024 * 1024
GIB = 1024 * MIB


def test_part_size_for() -> None:
    assert s3.part_size_for(None) == 8 * MIB
    assert s3.part_size_for(0) == 8 * MIB
    assert s3.part_size_for(50 * GIB) == 8 * MIB  # 6,400 parts
    for size in (78 * GIB, 100 * GIB, 1024 * GIB, 5 * 1024 * GIB):
        part = s3.part_size_for(size)
        assert part % MIB == 0 and part > 8 * MIB
        assert -(-size // part) <= s3.PLANNED_PARTS  # leaves 10% of S3's limit spare
        assert -(-int(size * 1.1) // part) <= s3.MAX_PARTS
    assert s3.part_size_for(1024 * GIB) == 117 * MIB
    assert s3.part_size_for(10**15) == s3.MAX_PART_SIZE
    assert s3.part_size_for(10 * MIB, minimum=16 * MIB) == 16 * MIB


def test_an_object_that_outgrows_its_plan_is_refused_and_aborted(
    new_bucket: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> None:
    location = parse_target_url(new_bucket("eu-west-1"))
    assert isinstance(location, S3Location)
    target = S3Target(location, part_size=5 * MIB)
    monkeypatch.setattr(s3, "MAX_PARTS", 2)
    with pytest.raises(TargetError, match="outgrew its expected size"):
        target.put("big", [bytes(MIB)] * 12, size_hint=MIB)
    assert target.list() == []
    client = boto3.client("s3", region_name=location.region, endpoint_url=location.endpoint)
    assert client.list_multipart_uploads(Bucket=location.bucket).get("Uploads", []) == []


def test_a_multipart_object_keeps_the_composite_crc32_of_its_parts(
    new_bucket: Callable[..., str],
) -> None:
    location = parse_target_url(new_bucket("eu-west-1"))
    assert isinstance(location, S3Location)
    target = S3Target(location, part_size=5 * MIB)
    data = [bytes([n]) * MIB for n in range(12)]
    assert target.put("obj", data, size_hint=12 * MIB) == 12 * MIB
    client = boto3.client("s3", region_name=location.region, endpoint_url=location.endpoint)
    head = client.head_object(
        Bucket=location.bucket, Key=f"{location.prefix}/obj", ChecksumMode="ENABLED"
    )
    # Declared when the upload started: the CRC32 of the parts' CRC32s (S3 appends "-3"),
    # not a checksum computed over the assembled object.
    whole = b"".join(data)
    parts = [whole[i : i + 5 * MIB] for i in range(0, len(whole), 5 * MIB)]
    crcs = b"".join(zlib.crc32(part).to_bytes(4, "big") for part in parts)
    composite = base64.b64encode(zlib.crc32(crcs).to_bytes(4, "big")).decode()
    assert head["ChecksumCRC32"].split("-")[0] == composite
    assert b"".join(target.get("obj")) == b"".join(data)
