"""A cluster's credential after enrollment: rotation, revocation after a leak, renewal.

Guarantees:
- Every credential and renewal secret is issued in the format of `contract.credentials` and
  stored only as a SHA-256 digest; each issue voids the previous pair in the same UPDATE.
- Rotation (`managed mc rotate-credential`) needs the current credential; a credential of the
  older ``mcc.<id>.<secret>`` form rotates to the new format like any other.
- A leaked credential is revoked at once (`revoke_leaked_credential`): its digest moves to
  `leaked_credential_hash`, so its next use is answered 401 `credential_revoked` and the
  cluster knows to renew; a `credential_leaked` alert is raised and stays until a person
  acknowledges it.
- Renewal needs the renewal secret and works only while the credential stands revoked for a
  leak: the secret is never sent otherwise, so a leak of the credential alone (a log line, a
  pasted config) cannot take it. The secret works once (a conditional UPDATE), and the cluster
  gets a new one with its new credential. When the renewal secret itself is reported leaked, the
  credential is revoked with it and no renewal is possible: an operator enrolls again.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from contract.audit.canonical import JsonValue
from contract.audit.events import Actor, AuditEvent
from contract.credentials import CredentialKind, issue
from contract.messages import AlertKind, CredentialReply
from mission_control.db.schema import clusters
from mission_control.errors import InvalidCredential
from mission_control.service.accounts import audit_log
from mission_control.service.accounts.bearer import digest
from mission_control.service.context import ServiceContext
from mission_control.service.exchange.alert_store import apply_alert_changes
from mission_control.service.exchange.cluster_messages import CLUSTER_ACTOR


class CredentialRevoked(InvalidCredential):
    """The credential was reported leaked and revoked; the cluster renews it (401)."""

    code = "credential_revoked"
    http_status = 401


def new_pair(cluster_id: str) -> tuple[str, str]:
    """A new (credential, renewal secret) for `cluster_id`."""
    return issue(CredentialKind.CLUSTER, cluster_id=cluster_id), issue(CredentialKind.RENEWAL)


def _stored(credential: str, renewal: str) -> dict[str, object]:
    return {
        "credential_hash": digest(credential),
        "renewal_hash": digest(renewal),
        "leaked_credential_hash": None,
        "credential_leaked_at": None,
    }


async def rotate(ctx: ServiceContext, cluster_id: str, credential: str) -> CredentialReply:
    """A new credential and renewal secret for the cluster `credential` (its current one)
    opens; the old pair stops working at once. Audited (`cluster.credential.rotated`)."""
    now = ctx.clock()
    new_credential, renewal = new_pair(cluster_id)  # `cluster_id` is the caller's, authenticated
    async with ctx.engine.begin() as conn:
        done = await conn.execute(
            update(clusters)
            .where(clusters.c.id == cluster_id, clusters.c.credential_hash == digest(credential))
            .values(**_stored(new_credential, renewal))
        )
        if done.rowcount != 1:
            raise InvalidCredential("unknown cluster credential")
        event = AuditEvent(now, CLUSTER_ACTOR, "cluster.credential.rotated", cluster_id, "")
        await audit_log.record(conn, ctx, [event])
    return CredentialReply(cluster_id=cluster_id, credential=new_credential, renewal_secret=renewal)


async def renew(ctx: ServiceContext, cluster_id: str, renewal_secret: str) -> CredentialReply:
    """A new pair for a cluster whose credential was revoked for a leak, in exchange for its
    renewal secret (once). Audited (`cluster.credential.renewed`)."""
    now = ctx.clock()
    refused = InvalidCredential(
        "renewal refused: unknown renewal secret, or the credential was not revoked"
    )
    try:
        new_credential, renewal = new_pair(cluster_id)
    except ValueError:  # not a cluster id at all: no such cluster, and nothing to say more
        raise refused from None
    async with ctx.engine.begin() as conn:
        done = await conn.execute(
            update(clusters)
            .where(
                clusters.c.id == cluster_id,
                clusters.c.renewal_hash == digest(renewal_secret),
                clusters.c.credential_leaked_at.is_not(None),
            )
            .values(**_stored(new_credential, renewal))
        )
        if done.rowcount != 1:
            raise refused
        event = AuditEvent(now, CLUSTER_ACTOR, "cluster.credential.renewed", cluster_id, "")
        await audit_log.record(conn, ctx, [event])
    return CredentialReply(cluster_id=cluster_id, credential=new_credential, renewal_secret=renewal)


async def check_not_revoked(ctx: ServiceContext, credential: str) -> None:
    """Raise `CredentialRevoked` when `credential` is one revoked for a leak (it is otherwise
    unknown): the caller, the cluster, then renews instead of giving up."""
    async with ctx.engine.connect() as conn:
        found = await conn.scalar(
            select(clusters.c.id).where(clusters.c.leaked_credential_hash == digest(credential))
        )
    if found is not None:
        raise CredentialRevoked(
            "this cluster credential was reported leaked and revoked: the cluster renews it "
            "(automatic), or enroll again"
        )


async def revoke_leaked(
    conn: AsyncConnection,
    ctx: ServiceContext,
    secret_digest: str,
    now: datetime,
    *,
    by: Actor,
    where: dict[str, JsonValue],
) -> CredentialKind | None:
    """Revoke whichever of a cluster's secrets has `secret_digest` (credential, renewal secret
    or enrollment token), alert and audit, inside `conn`'s transaction; its kind, or None when
    no cluster has it."""
    for kind, column in (
        (CredentialKind.CLUSTER, clusters.c.credential_hash),
        (CredentialKind.RENEWAL, clusters.c.renewal_hash),
        (CredentialKind.ENROLLMENT, clusters.c.enrollment_token_hash),
    ):
        row = (
            await conn.execute(
                select(clusters.c.id, clusters.c.name, clusters.c.renewal_hash).where(
                    column == secret_digest
                )
            )
        ).first()
        if row is None:
            continue
        if kind is CredentialKind.ENROLLMENT:
            values: dict[str, object] = {
                "enrollment_token_hash": None,
                "enrollment_expires_at": None,
            }
            line = "enrollment token reported leaked: revoked before use; create the cluster again"
        else:
            values = {"credential_hash": None, "credential_leaked_at": now}
            if kind is CredentialKind.CLUSTER:
                values["leaked_credential_hash"] = secret_digest
            else:
                values["renewal_hash"] = None
            renewable = kind is CredentialKind.CLUSTER and row.renewal_hash is not None
            line = f"{kind.leak_type} reported leaked: revoked; " + (
                "the cluster renews its credential by itself"
                if renewable
                else "enroll the cluster again (managed mc enroll)"
            )
        await conn.execute(update(clusters).where(clusters.c.id == row.id).values(**values))
        await apply_alert_changes(conn, row.id, {AlertKind.CREDENTIAL_LEAKED: line}, now)
        detail: dict[str, JsonValue] = {"kind": kind.leak_type, **where}
        event = AuditEvent(now, by, "cluster.credential.leaked", row.id, row.name, detail)
        await audit_log.record(conn, ctx, [event])
        return kind
    return None
