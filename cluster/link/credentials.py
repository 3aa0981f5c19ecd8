"""The cluster's Mission Control credential and renewal secret: where they live, rotation
(`managed mc rotate-credential`) and the leader's renewal after a leak.

Guarantees:
- Both are ZooKeeper secrets (`mc-credential`, `mc-renewal`; digest ACL of the cluster's
  credential only), written together in one transaction, so the cluster never holds a
  credential with another pair's renewal secret.
- The renewal secret is sent to Mission Control only to renew a credential Mission Control
  answered `credential_revoked` for (it was reported leaked); nothing else reads it.
- Rotation and renewal each void the old pair at Mission Control. What this module cannot
  guarantee: when Mission Control has issued a new pair and ZooKeeper then refuses the write,
  the new pair is lost with the old one: the cluster must be enrolled again (one logged line).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from cluster import zk
from cluster.errors import ClusterError
from cluster.paths import ClusterPaths
from cluster.secrets import read_secret, secret_acl
from cluster.zk import Create, Op, SetData, ZooKeeper

if TYPE_CHECKING:  # aiohttp: loaded only when Mission Control is spoken to (start-up time)
    from cluster.leadership import LeaderContext
    from cluster.link.settings import Link
    from contract.messages import CredentialReply

log = logging.getLogger(__name__)

CREDENTIAL_SECRET = "mc-credential"
RENEWAL_SECRET = "mc-renewal"


class CredentialError(ClusterError):
    """The credential could not be rotated or stored; the message is one line."""


def secret_op(
    client: ZooKeeper, paths: ClusterPaths, auth: str | None, name: str, value: str
) -> Op:
    """The write of secret `name` (create it, readable with `auth` only, or replace it)."""
    path = f"{paths.base}/secrets/{name}"
    if client.exists(path):
        return SetData(path, value.encode())
    return Create(path, value.encode(), acl=tuple(secret_acl(auth)))


def store_pair(
    client: ZooKeeper, paths: ClusterPaths, auth: str | None, credential: str, renewal: str
) -> None:
    """Replace the credential and the renewal secret in one transaction."""
    client.ensure_path(f"{paths.base}/secrets")
    ops = [
        secret_op(client, paths, auth, CREDENTIAL_SECRET, credential),
        secret_op(client, paths, auth, RENEWAL_SECRET, renewal),
    ]
    outcome = client.commit(ops)
    if not outcome.applied:
        failed = [type(r).__name__ for r in outcome.results]
        raise CredentialError(
            f"Mission Control issued a new credential but ZooKeeper refused it ({failed}): "
            "enroll the cluster again"
        )


def read_text(client: ZooKeeper, paths: ClusterPaths, auth: str | None, name: str) -> str | None:
    data = read_secret(client, paths, auth, name)
    return data.decode() if data else None


def _link(client: ZooKeeper, paths: ClusterPaths) -> Link:
    from cluster.link.settings import Link

    link = Link.from_config(zk.read_snapshot(client, paths).config)
    if link is None:
        raise CredentialError("not enrolled: run `managed mc enroll URL TOKEN` first")
    return link


def rotate(client: ZooKeeper, paths: ClusterPaths, auth: str | None) -> CredentialReply:
    """Ask Mission Control for a new pair with the current credential and store it."""
    from cluster.link.client import MissionControlClient
    from cluster.link.errors import MessageRejected, MissionControlUnavailable

    link = _link(client, paths)
    credential = read_text(client, paths, auth, CREDENTIAL_SECRET)
    if credential is None:
        raise CredentialError("this cluster holds no Mission Control credential: enroll again")

    async def ask() -> CredentialReply:
        async with MissionControlClient(link.url, credential=credential, ca_pem=link.ca_pem) as mc:
            return await mc.rotate_credential()

    try:
        reply = asyncio.run(ask())
    except MessageRejected as e:
        raise CredentialError(f"Mission Control refused the rotation: {e}") from e
    except (MissionControlUnavailable, ValueError) as e:
        raise CredentialError(str(e)) from e
    store_pair(client, paths, auth, reply.credential, reply.renewal_secret)
    return reply


async def renew_after_leak(ctx: LeaderContext, link: Link, auth: str | None) -> bool:
    """The leader's answer to `credential_revoked`: a new pair for the renewal secret, stored.
    False (logged) when there is no renewal secret or Mission Control refuses it: then an
    operator enrolls the cluster again."""
    from cluster.link.client import MissionControlClient
    from cluster.link.errors import MissionControlError

    renewal = await ctx.blocking(read_text, ctx.zookeeper, ctx.paths, auth, RENEWAL_SECRET)
    if renewal is None:
        log.error("the credential was revoked after a leak and no renewal secret is held")
        return False
    try:
        async with MissionControlClient(link.url, credential=None, ca_pem=link.ca_pem) as mc:
            reply = await mc.renew_credential(link.cluster_id, renewal)
        await ctx.blocking(
            store_pair, ctx.zookeeper, ctx.paths, auth, reply.credential, reply.renewal_secret
        )
    except (MissionControlError, ValueError) as e:
        log.error("the credential was revoked after a leak and renewing it failed: %s", e)
        return False
    log.warning("the credential was reported leaked and revoked: renewed it with Mission Control")
    return True
