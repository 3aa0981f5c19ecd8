"""Local S3 endpoints for development and tests: one `moto_server` process per region.

Guarantees: `start_s3` returns only once the endpoint answers HTTP (or raises after
`timeout` seconds, having killed the process); `stop` kills exactly that process by PID and
waits for it. Everything binds to 127.0.0.1. Buckets created with `create_bucket` report their
region through GetBucketLocation as AWS does (None for us-east-1).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import boto3

from cluster.dev.processes import free_port, stop_popen

DEV_ACCESS_KEY = "managed-dev"
DEV_SECRET_KEY = "managed-dev-secret"


@dataclass(frozen=True)
class DevS3:
    region: str
    port: int
    pid: int
    process: subprocess.Popen[bytes]

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def target_url(self, bucket: str, prefix: str = "") -> str:
        path = f"/{prefix}" if prefix else ""
        return f"s3://{bucket}{path}?region={self.region}&endpoint={self.endpoint}"

    def stop(self, timeout: float = 10.0) -> None:
        stop_popen(self.process, timeout, kill_wait=timeout)


def moto_server_command() -> str:
    beside = Path(sys.executable).parent / "moto_server"
    found = str(beside) if beside.exists() else shutil.which("moto_server")
    if found is None:
        raise RuntimeError(
            "moto_server not found; install the dev extras (pip install -e '.[dev]')"
        )
    return found


def use_dev_credentials() -> None:
    """Point boto3 at fixed dummy credentials unless real ones are configured."""
    os.environ.setdefault("AWS_ACCESS_KEY_ID", DEV_ACCESS_KEY)
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", DEV_SECRET_KEY)


def start_s3(region: str, *, port: int | None = None, timeout: float = 20.0) -> DevS3:
    """Start `moto_server -H 127.0.0.1 -p PORT` for `region` and wait until it answers."""
    use_dev_credentials()
    port = port or free_port()
    process = subprocess.Popen(
        [moto_server_command(), "-H", "127.0.0.1", "-p", str(port)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    server = DevS3(region=region, port=port, pid=process.pid, process=process)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"moto_server for {region} exited with {process.returncode}")
        try:
            with urllib.request.urlopen(server.endpoint + "/moto-api/", timeout=1):
                return server
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"moto_server for {region} did not answer within {timeout:.0f}s")


def create_bucket(server: DevS3, bucket: str, region: str | None = None) -> None:
    """Create `bucket` on `server`, located in `region` (default: the server's own region).

    `region="EU"` makes a bucket with the legacy location constraint `EU` (which S3 accepts only
    through the us-east-1 endpoint), so GetBucketLocation answers "EU" as old AWS buckets do."""
    use_dev_credentials()
    region = region or server.region
    signing_region = "us-east-1" if region == "EU" else region
    client = boto3.session.Session().client(
        "s3", region_name=signing_region, endpoint_url=server.endpoint
    )
    if region == "us-east-1":
        client.create_bucket(Bucket=bucket)
    else:
        client.create_bucket(
            Bucket=bucket,
            CreateBucketConfiguration={"LocationConstraint": region},  # type: ignore[typeddict-item]
        )


def count_objects(server: DevS3) -> int:
    """Objects in every bucket of this endpoint (to prove nothing was written there)."""
    use_dev_credentials()
    client = boto3.session.Session().client(
        "s3", region_name=server.region, endpoint_url=server.endpoint
    )
    total = 0
    for bucket in client.list_buckets().get("Buckets", []):
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket["Name"])
        total += sum(len(page.get("Contents", [])) for page in pages)
    return total
