"""Parsing and printing of target URLs (pure).

Accepted forms:
- `file:///absolute/path` (an NFS mount or local disk; no region, it stays in the data center)
- `s3://bucket/optional/prefix?region=eu-west-1&endpoint=https://host:port`
  (`region` required, `endpoint` optional: AWS's own endpoint when absent)
Anything else is a ConfigError with one line saying what is wrong.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit

from backup.errors import ConfigError

BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
REGION_NAME = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d+$")


@dataclass(frozen=True)
class FileLocation:
    path: str  # absolute, without trailing slash

    @property
    def url(self) -> str:
        return "file://" + quote(self.path)

    @property
    def region(self) -> None:
        return None


@dataclass(frozen=True)
class S3Location:
    bucket: str
    prefix: str  # "" or "a/b" (no leading or trailing slash)
    region: str
    endpoint: str | None = None

    @property
    def url(self) -> str:
        query = {"region": self.region}
        if self.endpoint:
            query["endpoint"] = self.endpoint
        path = f"/{quote(self.prefix)}" if self.prefix else ""
        return f"s3://{self.bucket}{path}?{urlencode(query, safe=':/')}"


TargetLocation = FileLocation | S3Location


def parse_target_url(text: str) -> TargetLocation:
    """Parse a target URL, or raise ConfigError naming the problem."""
    parts = urlsplit(text.strip())
    if parts.scheme == "file":
        return _parse_file(text, parts.netloc, unquote(parts.path), parts.query)
    if parts.scheme == "s3":
        return _parse_s3(text, parts.netloc, unquote(parts.path), parts.query)
    raise ConfigError(f"target {text!r}: use file:///path or s3://bucket/prefix?region=REGION")


def _parse_file(text: str, host: str, path: str, query: str) -> FileLocation:
    if host not in ("", "localhost"):
        raise ConfigError(f"target {text!r}: file URLs take no host; write file:///path")
    if query:
        raise ConfigError(f"target {text!r}: file URLs take no query parameters")
    if not path.startswith("/") or path.rstrip("/") == "":
        raise ConfigError(f"target {text!r}: needs an absolute directory, e.g. file:///mnt/nfs/x")
    if ".." in path.split("/"):
        raise ConfigError(f"target {text!r}: the path must not contain '..'")
    return FileLocation(path=path.rstrip("/"))


def _parse_s3(text: str, bucket: str, path: str, query: str) -> S3Location:
    if not BUCKET_NAME.match(bucket):
        raise ConfigError(f"target {text!r}: {bucket!r} is not a valid S3 bucket name")
    params = parse_qs(query, keep_blank_values=True, strict_parsing=False)
    unknown = set(params) - {"region", "endpoint"}
    if unknown:
        raise ConfigError(f"target {text!r}: unknown parameter(s) {', '.join(sorted(unknown))}")
    if any(len(values) != 1 for values in params.values()):
        raise ConfigError(f"target {text!r}: each parameter may appear once")
    region = params.get("region", [""])[0]
    if not region:
        raise ConfigError(f"target {text!r}: add ?region=... (for example region=eu-west-1)")
    if not REGION_NAME.match(region):
        raise ConfigError(f"target {text!r}: {region!r} is not a region name like eu-west-1")
    endpoint = params.get("endpoint", [""])[0] or None
    if endpoint is not None:
        ep = urlsplit(endpoint)
        if ep.scheme not in ("http", "https") or not ep.netloc:
            raise ConfigError(f"target {text!r}: endpoint must be an http(s)://host[:port] URL")
    prefix = path.strip("/")
    if ".." in prefix.split("/") or "//" in prefix:
        raise ConfigError(f"target {text!r}: the prefix must not contain '..' or empty segments")
    return S3Location(bucket=bucket, prefix=prefix, region=region, endpoint=endpoint)
