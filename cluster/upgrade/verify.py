"""Verify a release bundle with the TUF client against the cluster's trusted metadata.

`python-tuf`'s `Updater` does the checks (the TUF client workflow: root rotation, then
timestamp, snapshot and targets, each against root's keys and threshold, its expiry, and the
version the cluster already trusts; each file against its length and hash); this module feeds it
the trusted set from ZooKeeper and the bundle, and turns each way a release can be refused
into one line with a kind:

| kind | what was wrong |
|---|---|
| `signature` | a bad or missing signature, or fewer than the threshold |
| `expired` | metadata past its expiry (a freeze attack, or a stale bundle) |
| `metadata-rollback` | metadata with a version lower than the one the cluster trusts |
| `rollback` | a release not newer than the version installed |
| `target` | a file not named in the signed targets, or with another length or hash, or missing |
| `bundle` | not a readable bundle, or not exactly one release in it |

Guarantees: nothing is trusted or recorded unless every check passed; then the new trusted
metadata and the verified release are written in one compare-and-set transaction. The files
are verified in a private temporary directory and kept only by the caller (`into`).
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.version import InvalidVersion, Version
from tuf.api import exceptions as tuf_errors
from tuf.api.metadata import Metadata, Targets
from tuf.ngclient import Updater

from cluster.paths import ClusterPaths
from cluster.upgrade import trust
from cluster.upgrade.bundle import BundleError, BundleFetcher
from cluster.upgrade.errors import ReleaseRefused, ReleaseUnavailable
from cluster.upgrade.fetchers import FetchFailed, ReleaseFetcher
from cluster.zk import Create, Op, SetData, ZooKeeper


@dataclass(frozen=True)
class VerifiedRelease:
    version: str
    files: tuple[tuple[str, int, str], ...]  # (name, length, sha256)

    def to_json(self) -> list[dict[str, Any]]:
        return [{"name": n, "length": size, "sha256": h} for n, size, h in self.files]


def _newer(version: str, installed: str | None, equal_ok: bool) -> bool:
    try:
        if installed is None:
            return True
        if equal_ok:
            return Version(version) >= Version(installed)
        return Version(version) > Version(installed)
    except InvalidVersion:
        raise ReleaseRefused("bundle", f"release version {version!r} is not a version") from None


def _check_with_tuf(
    fetcher: ReleaseFetcher,
    trusted: trust.Trusted,
    work: Path,
    installed: str | None,
    equal_ok: bool,
) -> tuple[VerifiedRelease, dict[str, bytes]]:
    mdir = work / "metadata"
    mdir.mkdir()
    for role in ("timestamp", "snapshot", "targets"):
        if role in trusted.files:  # the local state the Updater compares new metadata with
            (mdir / f"{role}.json").write_bytes(trusted.files[role])
    updater = Updater(
        str(mdir),
        fetcher.metadata_url,
        str(work / "targets"),
        fetcher.targets_url,
        fetcher,
        bootstrap=trusted.root,
    )
    updater.refresh()
    releases = fetcher.releases()
    if len(releases) != 1:
        raise ReleaseRefused("bundle", f"a bundle carries one release; this one has {releases}")
    version = releases[0]
    listed = fetcher.release_files(version)
    signed = Metadata[Targets].from_bytes((mdir / "targets.json").read_bytes()).signed
    named = {
        p
        for p, t in signed.targets.items()
        if (t.unrecognized_fields.get("custom") or {}).get("release") == version
    }
    if not named and listed is None:
        raise ReleaseUnavailable(f"release {version} is not published by {fetcher.name}")
    if not named:
        raise ReleaseRefused("target", f"release {version} is not in the signed targets")
    if not _newer(version, installed, equal_ok):
        raise ReleaseRefused(
            "rollback", f"release {version} is not newer than the installed {installed}"
        )
    files = []
    for path in sorted(named) if listed is None else listed:
        info = updater.get_targetinfo(path)
        if info is None or path not in named:
            raise ReleaseRefused("target", f"{path} is not in the signed targets")
        updater.download_target(info, str(work / "verified" / path.rsplit("/", 1)[-1]))
        files.append((path.rsplit("/", 1)[-1], info.length, info.hashes["sha256"]))
    missing = named - set(named if listed is None else listed)
    if missing:
        raise ReleaseRefused("target", f"the bundle lacks {sorted(missing)[0]}")
    after = {
        role: (mdir / f"{role}.json").read_bytes()
        for role in trust.ROLES
        if (mdir / f"{role}.json").exists()
    }
    return VerifiedRelease(version, tuple(files)), after


def check(
    fetcher: ReleaseFetcher,
    trusted: trust.Trusted,
    installed: str | None,
    into: Path | None = None,
    equal_ok: bool = False,
) -> tuple[VerifiedRelease, dict[str, bytes]]:
    """Verify the bundle against `trusted`; returns the release and the new trusted set.
    `into`: where the verified files go (a temporary directory, removed, when None);
    `equal_ok`: a release equal to `installed` is accepted (another node already runs it)."""
    with tempfile.TemporaryDirectory(prefix="managed-verify-") as tmp:
        work = Path(tmp)
        try:
            release, after = _check_with_tuf(fetcher, trusted, work, installed, equal_ok)
        except tuf_errors.UnsignedMetadataError as e:
            raise ReleaseRefused("signature", str(e)) from None
        except tuf_errors.ExpiredMetadataError as e:
            raise ReleaseRefused("expired", f"{e} (frozen metadata is never trusted)") from None
        except tuf_errors.BadVersionNumberError as e:
            raise ReleaseRefused("metadata-rollback", str(e)) from None
        except (tuf_errors.LengthOrHashMismatchError, tuf_errors.DownloadLengthMismatchError) as e:
            raise ReleaseRefused("target", f"a file differs from the signed targets: {e}") from None
        except FetchFailed as e:
            raise ReleaseUnavailable(str(e)) from None
        except tuf_errors.DownloadError as e:
            raise ReleaseRefused("bundle", f"{fetcher.name} lacks metadata: {e}") from None
        except tuf_errors.RepositoryError as e:
            raise ReleaseRefused("signature", f"metadata not valid: {e}") from None
        if into is not None:
            into.mkdir(parents=True, exist_ok=True)
            for name, _size, _hash in release.files:
                (work / "verified" / name).replace(into / name)
        return release, after


def open_bundle(bundle: Path) -> BundleFetcher:
    """The bundle as a fetcher; an unreadable one is refused (kind `bundle`)."""
    try:
        return BundleFetcher(bundle)
    except BundleError as e:
        raise ReleaseRefused("bundle", str(e)) from None


def verify_release(
    client: ZooKeeper,
    paths: ClusterPaths,
    fetcher: ReleaseFetcher,
    installed: str | None,
    into: Path | None = None,
    equal_ok: bool = False,
) -> tuple[VerifiedRelease, list[Op]]:
    """Verify the release `fetcher` carries; returns it and the operations that record it (the
    trusted set moved forward, the verified release), for the caller's transaction."""
    before = trust.read(client, paths)
    release, after = check(fetcher, before, installed, into, equal_ok)
    ops = trust.advance_ops(paths, before, after)
    record = trust.verified_record(release.version, release.to_json(), time.time())
    exists = client.exists(paths.upgrade_verified) is not None
    verified = paths.upgrade_verified
    ops.append(SetData(verified, record) if exists else Create(verified, record))
    return release, ops
