"""Cluster records, one-time enrollment tokens and cluster credentials.

Guarantees:
- An enrollment token works once: the exchange is a conditional UPDATE that also clears the
  token, so two clusters racing with the same token cannot both get a credential.
- Tokens expire (`ServiceContext.enrollment_token_ttl`); only digests are stored.
- Enrolling gives the cluster its credential and its renewal secret (`credentials`).
- A credential names its cluster (``mcc_<cluster id><random><checksum>``, `contract.credentials`;
  credentials of the older ``mcc.<cluster id>.<secret>`` form keep working until rotated) so the
  client knows which cluster it speaks for; the server trusts only the stored digest, never the
  embedded id.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from contract.audit.events import Actor, AuditEvent
from contract.credentials import CredentialKind, issue
from contract.messages import EnrollReply, Geography, cluster_id_of
from mission_control.db.schema import clusters
from mission_control.errors import AlreadyExists, InvalidCredential
from mission_control.service.accounts import audit_log
from mission_control.service.accounts.bearer import digest
from mission_control.service.context import ServiceContext
from mission_control.service.fleet import credential_lookup, credentials


@dataclass(frozen=True)
class CreatedCluster:
    id: str
    name: str
    enrollment_token: str


async def create_cluster(
    ctx: ServiceContext, name: str, geography: Geography, *, by: Actor | None = None
) -> CreatedCluster:
    """Create a cluster record and return its one-time enrollment token; audited (in the same
    transaction) as done `by` this person when given."""
    now = ctx.clock()
    cluster_id = str(uuid.uuid4())
    token = issue(CredentialKind.ENROLLMENT)
    try:
        async with ctx.engine.begin() as conn:
            await conn.execute(
                insert(clusters).values(
                    id=cluster_id,
                    name=name,
                    geography=geography,
                    created_at=now,
                    enrollment_token_hash=digest(token),
                    enrollment_expires_at=now + ctx.enrollment_token_ttl,
                )
            )
            if by is not None:
                detail = {"name": name, "geography": geography}
                event = AuditEvent(now, by, "cluster.created", cluster_id, name, detail)
                await audit_log.record(conn, ctx, [event])
    except IntegrityError:
        raise AlreadyExists(f"a cluster named {name!r} exists already") from None
    return CreatedCluster(cluster_id, name, token)


async def enroll(ctx: ServiceContext, token: str) -> EnrollReply:
    """Exchange a one-time enrollment token for the cluster's own credential."""
    now = ctx.clock()
    async with ctx.engine.begin() as conn:
        row = (
            await conn.execute(
                select(clusters.c.id, clusters.c.name, clusters.c.geography).where(
                    clusters.c.enrollment_token_hash == digest(token),
                    clusters.c.enrollment_expires_at > now,
                )
            )
        ).first()
        if row is None:
            raise InvalidCredential("unknown, expired or already used enrollment token")
        credential, renewal = credentials.new_pair(row.id)
        result = await conn.execute(
            update(clusters)
            .where(clusters.c.id == row.id, clusters.c.enrollment_token_hash == digest(token))
            .values(
                enrollment_token_hash=None,
                enrollment_expires_at=None,
                credential_hash=digest(credential),
                renewal_hash=digest(renewal),
                enrolled_at=now,
            )
        )
        if result.rowcount != 1:
            raise InvalidCredential("unknown, expired or already used enrollment token")
    return EnrollReply(
        cluster_id=row.id,
        name=row.name,
        geography=row.geography,
        credential=credential,
        renewal_secret=renewal,
    )


async def authenticate_cluster(ctx: ServiceContext, credential: str) -> str:
    """The id of the cluster this credential belongs to; InvalidCredential otherwise."""
    if cluster_id_of(credential) is None:
        raise InvalidCredential("not a cluster credential")
    cluster_id = await credential_lookup.lookup(ctx.engine, digest(credential))
    if cluster_id is None:
        await credentials.check_not_revoked(ctx, credential)
        raise InvalidCredential("unknown cluster credential")
    return str(cluster_id)
