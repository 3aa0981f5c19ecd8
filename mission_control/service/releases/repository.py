"""The vendor's release repository: TUF metadata signed with the vendor's keys, on disk.

Layout of a repository directory (what `mission-control releases` writes and a cluster reads,
through the API or inside an offline bundle):
```
metadata/<n>.root.json   every root version (a client walks them to rotate keys)
metadata/{timestamp,snapshot,targets}.json
targets/releases/<version>/<file>     each file of a release (wheels), named in targets.json
bundles/managed-<version>.tar          metadata/ + that release's targets/, for offline install
```
Every role (root, targets, snapshot, timestamp) is signed by the same vendor keys with the same
k-of-n threshold, fixed in root. Each target carries `custom: {"release": V}`.

Guarantees: metadata is made with python-tuf's `tuf.api.metadata` (never written by hand) and
verified with it before it is written; a publish signed by fewer keys than the threshold, or
by keys root does not name, is refused with one line and writes nothing; files are written
beside and renamed over (a crash leaves the previous repository whole); a version is
published once.
"""

from __future__ import annotations

import io
import os
import tarfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from contract.certs import atomic_write
from contract.releases import RELEASE_VERSION
from mission_control.errors import ServiceError

if TYPE_CHECKING:
    from securesystemslib.signer import CryptoSigner
    from tuf.api.metadata import Metadata, Root, Targets

# python-tuf is imported where it is used: `mission-control serve` never needs it, and its
# securesystemslib probes every cloud SDK that happens to be installed (boto3...) on import.

TOP_LEVEL = ("root", "targets", "snapshot", "timestamp")


@dataclass(frozen=True)
class Expiry:
    """How long each role's metadata stays valid after it is signed."""

    root: timedelta = timedelta(days=365)
    targets: timedelta = timedelta(days=90)
    snapshot: timedelta = timedelta(days=30)
    timestamp: timedelta = timedelta(days=7)


@dataclass(frozen=True)
class Release:
    version: str
    files: tuple[tuple[str, int, str], ...]  # (name, length, sha256)


class ReleaseRefused(ServiceError):
    code = "release_refused"


def generate_key(path: Path) -> str:
    """A new Ed25519 vendor key: private PEM (PKCS#8) at `path`, 0600; returns its key id."""
    from securesystemslib.signer import SSlibKey

    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise
    except OSError as e:
        raise ReleaseRefused(f"cannot write the key to {path}: {e.strerror}") from None
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    return str(SSlibKey.from_crypto(key.public_key()).keyid)


def load_signer(path: Path) -> CryptoSigner:
    from securesystemslib.signer import CryptoSigner

    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (ValueError, TypeError) as e:
        raise ReleaseRefused(f"{path}: not an unencrypted PEM private key") from e
    if not isinstance(key, Ed25519PrivateKey):
        raise ReleaseRefused(f"{path}: not an Ed25519 key")
    return CryptoSigner(key)


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, data, 0o644)


def _sign(md: Metadata[Any], signers: Sequence[CryptoSigner], root: Root) -> bytes:
    """Sign `md` with every signer root names for its role; refuse below the threshold."""
    from tuf.api.exceptions import UnsignedMetadataError
    from tuf.api.serialization.json import JSONSerializer

    role = root.get_delegated_role(md.signed.type)
    md.signatures.clear()
    for signer in signers:
        if signer.public_key.keyid in role.keyids:
            md.sign(signer, append=True)
    try:
        root.verify_delegate(md.signed.type, md.signed_bytes, md.signatures)
    except UnsignedMetadataError:
        have = len(md.signatures)
        raise ReleaseRefused(
            f"threshold not met for {md.signed.type}: {have} of the {role.threshold} "
            "signatures root requires (give more --key files the root names)"
        ) from None
    return md.to_bytes(JSONSerializer(compact=False))


class Repository:
    """One release repository directory (see the module docstring)."""

    def __init__(self, path: Path, now: datetime, expiry: Expiry = Expiry()) -> None:
        self.path = path
        self.now = now
        self.expiry = expiry

    @property
    def metadata(self) -> Path:
        return self.path / "metadata"

    def _load(self, role: str) -> Metadata[Any]:
        from tuf.api.metadata import Metadata

        file = self.metadata / f"{role}.json"
        if role == "root":
            file = self.metadata / f"{self._root_version()}.root.json"
        try:
            return Metadata.from_bytes(file.read_bytes())
        except FileNotFoundError:
            raise ReleaseRefused(
                f"{self.path} is not a release repository: run `releases init` first"
            ) from None

    def _root_version(self) -> int:
        found = [int(p.name.split(".")[0]) for p in self.metadata.glob("*.root.json")]
        return max(found, default=0)

    def init(self, signers: Sequence[CryptoSigner], threshold: int) -> str:
        """A new repository: root (version 1) naming the signers' keys for every role with
        `threshold`, signed by all of them; empty targets, snapshot and timestamp."""
        from tuf.api.metadata import Metadata, Root, Targets

        if self._root_version():
            raise ReleaseRefused(f"{self.path} already holds a release repository")
        keys = {s.public_key.keyid: s.public_key for s in signers}
        if not 1 <= threshold <= len(keys):
            raise ReleaseRefused(
                f"threshold {threshold} is impossible with {len(keys)} distinct key(s)"
            )
        root = Root(expires=self.now + self.expiry.root, consistent_snapshot=False)
        for key in keys.values():
            for role in TOP_LEVEL:
                root.add_key(key, role)
        for role in TOP_LEVEL:
            root.roles[role].threshold = threshold
        root_md = Metadata(root)
        _write(self.metadata / "1.root.json", _sign(root_md, signers, root))
        self._write_chain(self._signed_chain(Targets(), signers, root))
        return f"repository {self.path}: root v1, {len(keys)} keys, threshold {threshold}"

    def _signed_chain(
        self, targets: Targets, signers: Sequence[CryptoSigner], root: Root
    ) -> dict[str, bytes]:
        """Sign targets, then a snapshot naming it, then a timestamp naming that (each checked
        against root's threshold); nothing is written."""
        from tuf.api.metadata import Metadata, MetaFile, Snapshot, Timestamp

        targets.expires = self.now + self.expiry.targets
        files = {"targets": _sign(Metadata(targets), signers, root)}
        old_snapshot = self._version_of("snapshot")
        snapshot = Snapshot(
            version=old_snapshot + 1,
            expires=self.now + self.expiry.snapshot,
            meta={"targets.json": MetaFile(version=targets.version)},
        )
        files["snapshot"] = _sign(Metadata(snapshot), signers, root)
        timestamp = Timestamp(
            version=self._version_of("timestamp") + 1,
            expires=self.now + self.expiry.timestamp,
            snapshot_meta=MetaFile(version=snapshot.version),
        )
        files["timestamp"] = _sign(Metadata(timestamp), signers, root)
        return files

    def _write_chain(self, files: dict[str, bytes]) -> None:
        """Timestamp last: a client starts from it, so it never names a snapshot not written."""
        for role in ("targets", "snapshot", "timestamp"):
            _write(self.metadata / f"{role}.json", files[role])

    def _version_of(self, role: str) -> int:
        from tuf.api.metadata import Metadata

        file = self.metadata / f"{role}.json"
        return Metadata.from_bytes(file.read_bytes()).signed.version if file.exists() else 0

    def _root(self) -> Root:
        from tuf.api.metadata import Root

        signed = self._load("root").signed
        assert isinstance(signed, Root)
        return signed

    def _targets(self) -> Targets:
        from tuf.api.metadata import Targets

        signed = self._load("targets").signed
        assert isinstance(signed, Targets)
        return signed

    def publish(self, version: str, dists: Sequence[Path], signers: Sequence[CryptoSigner]) -> Path:
        """Add release `version` (its files) to targets, re-sign the chain, write the bundle."""
        from tuf.api.metadata import TargetFile

        if not RELEASE_VERSION.match(version):
            raise ReleaseRefused(f"version {version!r} is not a release version (e.g. 1.4.2)")
        if not dists:
            raise ReleaseRefused("a release needs at least one file")
        root, targets = self._root(), self._targets()
        if version in self.versions(targets):
            raise ReleaseRefused(f"release {version} is already published")
        names = [d.name for d in dists]
        if len(set(names)) != len(names):
            raise ReleaseRefused("two files of the release have the same name")
        for dist in dists:
            if not dist.is_file():
                raise ReleaseRefused(f"{dist}: no such file")
            target_path = f"releases/{version}/{dist.name}"
            info = TargetFile.from_file(target_path, str(dist), ["sha256"])
            info.unrecognized_fields["custom"] = {"release": version}
            targets.targets[target_path] = info
        targets.version += 1
        chain = self._signed_chain(targets, signers, root)  # refused here: nothing written
        for dist in dists:
            _write(self.path / "targets" / "releases" / version / dist.name, dist.read_bytes())
        self._write_chain(chain)
        return self.bundle(version)

    @staticmethod
    def versions(targets: Targets) -> list[str]:
        found = {
            str((t.unrecognized_fields.get("custom") or {}).get("release", ""))
            for t in targets.targets.values()
        }
        return sorted(v for v in found if v)

    def releases(self) -> list[Release]:
        targets = self._targets()
        by_version: dict[str, list[tuple[str, int, str]]] = {}
        for path, t in sorted(targets.targets.items()):
            v = str((t.unrecognized_fields.get("custom") or {}).get("release", ""))
            by_version.setdefault(v, []).append(
                (path.rsplit("/", 1)[-1], t.length, t.hashes["sha256"])
            )
        return [Release(v, tuple(files)) for v, files in sorted(by_version.items()) if v]

    def expires(self) -> dict[str, datetime]:
        found = {}
        for role in TOP_LEVEL:
            found[role] = self._load(role).signed.expires
        return found

    def bundle(self, version: str) -> Path:
        """`bundles/managed-<version>.tar`: every metadata file and the release's files."""
        out = self.path / "bundles" / f"managed-{version}.tar"
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            for file in sorted(self.metadata.glob("*.json")):
                tar.add(file, arcname=f"metadata/{file.name}")
            release = self.path / "targets" / "releases" / version
            for file in sorted(release.iterdir()):
                tar.add(file, arcname=f"targets/releases/{version}/{file.name}")
        _write(out, buffer.getvalue())
        return out


def signers_of(paths: Iterable[Path]) -> list[CryptoSigner]:
    return [load_signer(p) for p in paths]
