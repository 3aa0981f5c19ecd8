"""Who may change the cluster's support state in ZooKeeper: only the holder of its credential.

Everything under `<cluster>/support/` (the policy, the public key that verifies approvals and
checkpoints, request records, the open index, answered commands) is readable and changeable
only with the cluster's ZooKeeper credential (`--zk-auth`, env `MANAGED_ZK_AUTH`), like every
znode of the cluster: each carries `cluster.secrets.protected_acl`. The parents are protected
too, since ZooKeeper decides who may create or delete a child by the PARENT's ACL: without
that, someone could delete `support/policy` and create an open one with mode `allowed`.

`protect` migrates clusters made before this rule (open, or world-readable as an earlier
version made them): it gives every existing support znode the protected ACL (the leader runs it
once per term; `managed support mode` runs it before a change). It trusts what is there at
that moment, so it reports which znodes were open and the caller records that in the audit log.

Does not guarantee: protection from someone who holds the credential or ZooKeeper's data files.
"""

from __future__ import annotations

from cluster.paths import ClusterPaths
from cluster.secrets import SecretsUnavailable, is_protected, protected_acl
from cluster.zk import ZooKeeper
from cluster.zk.acl import Acl
from cluster.zk.errors import NoAuthError, NoNodeError

READ_TIMEOUT = 10.0  # seconds for each ACL read
MISSING_CREDENTIAL = (
    "changing remote-support settings or decisions needs the cluster's ZooKeeper credential: "
    "pass --zk-auth USER:PASSWORD or set MANAGED_ZK_AUTH"
)
WRONG_CREDENTIAL = (
    "the cluster's support state is protected by another ZooKeeper credential than the one "
    "given (--zk-auth / MANAGED_ZK_AUTH)"
)


def write_acl(auth: str | None) -> list[Acl]:
    """The ACL every support znode is created with; `SecretsUnavailable` without a credential."""
    if not auth:
        raise SecretsUnavailable(MISSING_CREDENTIAL)
    return protected_acl(auth)


def parents(paths: ClusterPaths) -> tuple[str, ...]:
    return (paths.support, paths.support_requests, paths.support_open, paths.support_commands)


def ensure_parents(client: ZooKeeper, paths: ClusterPaths, auth: str | None) -> None:
    """Create the protected support parents that are missing (existing ones are left as is)."""
    acl = write_acl(auth)
    for path in parents(paths):
        if client.exists(path) is None:
            client.ensure_path(path, acl=acl)


def _children(client: ZooKeeper, parent: str) -> list[str]:
    try:
        return [f"{parent}/{name}" for name in client.children(parent)]
    except NoNodeError:
        return []


def protect(client: ZooKeeper, paths: ClusterPaths, auth: str | None) -> list[str]:
    """Give every existing support znode the protected ACL; returns those that were open.

    Raises `SecretsUnavailable` without the credential, or when another credential holds them.
    """
    acl = write_acl(auth)
    ensure_parents(client, paths, auth)
    candidates = [
        *parents(paths),
        paths.support_policy,
        paths.support_public_key,
        *_children(client, paths.support_requests),
        *_children(client, paths.support_open),
        *_children(client, paths.support_commands),
    ]
    pending = [(path, client.request_acls(path, READ_TIMEOUT)) for path in candidates]
    opened: list[str] = []
    for path, request in pending:
        got = request.get_or_none()
        if got is None:
            continue
        acls, _ = got
        if is_protected(acls, auth):
            continue
        try:
            client.set_acls(path, acl)
        except NoNodeError:
            continue
        except NoAuthError:
            raise SecretsUnavailable(WRONG_CREDENTIAL) from None
        opened.append(path)
    return opened
