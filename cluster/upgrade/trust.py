"""The cluster's trusted TUF metadata, kept in ZooKeeper under the cluster's ACL.

`upgrade/trust/pinned-root` is the vendor root pinned when the cluster was installed
(`managed upgrade trust ROOT`); `upgrade/trust/{root,timestamp,snapshot,targets}` is the newest
metadata the cluster has verified. A verification starts from these, whichever node or
operator runs it, so a new leader keeps the anti-rollback and anti-freeze state: metadata older
than what any of them trusted is refused.

Guarantees: the trusted set moves only forward and only as a whole (one transaction, each
znode compare-and-set at the version read before the verification: two verifications racing
cannot interleave their sets); pinning refuses to replace a pinned root.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from tuf.api.exceptions import RepositoryError
from tuf.api.metadata import Metadata, Root

from cluster.errors import ClusterError
from cluster.paths import ClusterPaths
from cluster.zk import Create, Op, SetData, ZooKeeper

ROLES = ("root", "timestamp", "snapshot", "targets")


class TrustError(ClusterError):
    """No root pinned, or a root that is not one."""


@dataclass(frozen=True)
class Trusted:
    """What the cluster trusts now: each role's bytes and its znode's version (-1: absent)."""

    files: dict[str, bytes]
    versions: dict[str, int]

    @property
    def root(self) -> bytes:
        return self.files["root"]

    def metadata_version(self, role: str) -> int | None:
        data = self.files.get(role)
        return None if data is None else int(Metadata.from_bytes(data).signed.version)

    def summary(self) -> dict[str, Any]:
        """Each role's version and expiry, for `upgrade status`."""
        out: dict[str, Any] = {}
        for role in ROLES:
            data = self.files.get(role)
            if data is not None:
                signed = Metadata.from_bytes(data).signed
                out[role] = {"version": signed.version, "expires": signed.expires.isoformat()}
        return out


def read(client: ZooKeeper, paths: ClusterPaths) -> Trusted:
    """The trusted set; `TrustError` when no root was pinned."""
    files: dict[str, bytes] = {}
    versions: dict[str, int] = {}
    for role in ROLES:
        got = client.find(paths.upgrade_trusted(role))
        versions[role] = -1 if got is None else got[1].version
        if got is not None:
            files[role] = got[0]
    if "root" not in files:
        raise TrustError(
            "no vendor root is pinned for this cluster: run `managed upgrade trust ROOT.json` "
            "with the root.json that came with the installation"
        )
    return Trusted(files, versions)


def check_root(data: bytes) -> Root:
    try:
        md = Metadata.from_bytes(data)
    except (RepositoryError, ValueError, KeyError, TypeError) as e:
        raise TrustError(f"not TUF root metadata: {e}") from None
    signed = md.signed
    if not isinstance(signed, Root):
        raise TrustError(f"not TUF root metadata: it is {signed.type} metadata")
    try:  # a root must carry its own threshold of signatures
        signed.verify_delegate(Root.type, md.signed_bytes, md.signatures)
    except RepositoryError as e:
        raise TrustError(f"the root is not signed by its own threshold: {e}") from None
    return signed


def pin_ops(client: ZooKeeper, paths: ClusterPaths, root: bytes) -> list[Op]:
    """Pin `root` (refused when one is pinned): the pinned copy and the trusted root."""
    check_root(root)
    client.ensure_path(paths.upgrade_trust)
    if client.exists(paths.upgrade_trusted("pinned-root")) is not None:
        raise TrustError("a vendor root is already pinned for this cluster")
    return [
        Create(paths.upgrade_trusted("pinned-root"), root),
        Create(paths.upgrade_trusted("root"), root),
    ]


def advance_ops(paths: ClusterPaths, before: Trusted, after: dict[str, bytes]) -> list[Op]:
    """Move the trusted set to `after`, each znode compare-and-set at its version in `before`."""
    ops: list[Op] = []
    for role in ROLES:
        data = after.get(role)
        if data is None or data == before.files.get(role):
            continue
        version = before.versions[role]
        path = paths.upgrade_trusted(role)
        ops.append(Create(path, data) if version < 0 else SetData(path, data, version))
    return ops


def verified_record(version: str, files: list[dict[str, Any]], at: float) -> bytes:
    return json.dumps({"version": version, "files": files, "at": at}, sort_keys=True).encode()
