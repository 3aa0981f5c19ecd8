"""Support commands: queued by the engineer holding a grant, pulled and answered by the cluster.

Guarantees:
- Only the engineer who made the request may queue a command, only while the grant is approved,
  not closed and inside its window, and only a command the grant's role allows
  (`contract.support.commands.authorize`); `config set` names only a key of the cluster's
  allowlist (`contract.support.settable`), never a secret key; the value itself is checked by the
  cluster against its config. Refusals, including another person's attempt on a grant that is
  not theirs, are audited too (`support.command.refused`), in a transaction of their own.
- A command is listed to its cluster until the cluster answers it; the first answer per command
  id is kept, later ones change nothing (the cluster answers each id once, a resend is harmless).
- Output is stored as the cluster sent it (already redacted there); the audit entry keeps only
  the redacted summary and the output's size.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import Any

from sqlalchemy import Row, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from contract.audit.canonical import JsonValue
from contract.audit.events import AuditEvent
from contract.messages import SupportAck, SupportCommandResult
from contract.support.commands import Decision, authorize, check_config_key, command_event
from contract.support.requests import RequestState
from contract.support.settable import SettingRefused, check_key
from mission_control.db.schema import support_commands
from mission_control.errors import Forbidden, NotFound
from mission_control.service.accounts import audit_log
from mission_control.service.context import ServiceContext
from mission_control.service.refusals import CommandRefused, InvalidInput, InvalidState, Refused
from mission_control.service.support import access_store
from mission_control.service.support.access_requests import visible_to
from mission_control.service.support.events import result_event
from mission_control.staff.auth import AUDIT_SCOPE
from mission_control.staff.identity import StaffIdentity
from mission_control.staff_protocol import CommandCreate, CommandView


def _view(row: Row[Any]) -> CommandView:
    return CommandView.model_validate({**row._mapping, "status": row.status or "queued"})


def _not_theirs(
    identity: StaffIdentity, stored: access_store.StoredRequest | None, request_id: str
) -> NotFound | Forbidden | None:
    if stored is None or not visible_to(identity, stored):
        return NotFound(f"no access request {request_id}")
    if stored.request.engineer != identity.user:
        return Forbidden(f"only {stored.request.engineer} can run commands under this grant")
    return None


async def issue_command(
    ctx: ServiceContext, identity: StaffIdentity, request_id: str, body: CommandCreate
) -> CommandView:
    """Queue `body` for the cluster of the caller's running grant `request_id`."""
    now = ctx.clock()
    arguments = body.argument_map()
    refusal: tuple[Refused, AuditEvent] | None = None
    async with ctx.engine.begin() as conn:
        stored = await access_store.load(conn, request_id, lock=True)
        foreign = _not_theirs(identity, stored, request_id)
        if foreign is None:
            assert stored is not None
            request = stored.request
            grant = request.grant if request.state is RequestState.APPROVED else None
            decision = authorize(grant, body.command, request.cluster_id, now)
            error: Refused = CommandRefused(decision.reason)
            if grant is None:
                error = InvalidState(
                    f"request {request_id} is {request.state.value}: commands need a running grant"
                )
            elif not grant.is_open(now):
                error = InvalidState(decision.reason)
            elif decision.allowed and body.command == "config set":
                key_check = _settable(str(arguments["key"]))
                if not key_check.allowed:
                    decision, error = key_check, InvalidInput(key_check.reason)
            event = command_event(
                grant, identity.user, body.command, request.cluster_id, decision, now,
                arguments=dict(arguments),
            )  # fmt: skip
            if not decision.allowed:
                refusal = (error, replace(event, subject=request_id))
            else:
                command_id = str(uuid.uuid4())
                values = {
                    "id": command_id,
                    "request_id": request_id,
                    "cluster_id": request.cluster_id,
                    "engineer": identity.user,
                    "command": body.command,
                    "arguments": arguments,
                    "issued_at": now,
                }
                await conn.execute(insert(support_commands).values(**values))
                detail: dict[str, JsonValue] = {**event.detail, "command_id": command_id}
                await audit_log.record(conn, ctx, [replace(event, detail=detail)])
    if foreign is not None:
        await _refused_attempt(ctx, identity, request_id, body, foreign, stored)
        raise foreign
    if refusal is not None:
        await audit_log.record_alone(ctx, [refusal[1]])
        raise refusal[0]
    return CommandView.model_validate(
        {**values, "status": "queued", "summary": None, "output": None, "answered_at": None}
    )


def _settable(key: str) -> Decision:
    """`config set` may name only a non-secret key of the cluster's allowlist."""
    secret = check_config_key(key)
    if not secret.allowed:
        return secret
    try:
        check_key(key)
    except SettingRefused as refused:
        return Decision.refuse(str(refused))
    return Decision.allow(f"{key} may be changed")


async def _refused_attempt(
    ctx: ServiceContext,
    identity: StaffIdentity,
    request_id: str,
    body: CommandCreate,
    error: Exception,
    stored: access_store.StoredRequest | None,
) -> None:
    """Audit a command attempt on a request that is not the caller's (or does not exist)."""
    cluster = stored.request.cluster_id if stored is not None else AUDIT_SCOPE
    decision = Decision.refuse(str(error))
    event = command_event(
        None, identity.user, body.command, cluster, decision, ctx.clock(),
        arguments=dict(body.argument_map()),
    )  # fmt: skip
    detail: dict[str, JsonValue] = {**event.detail, "request": request_id}
    actor = replace(event.actor, kind=identity.actor.kind, via=identity.actor.via)
    await audit_log.record_alone(
        ctx, [replace(event, actor=actor, subject=request_id, detail=detail)]
    )


async def list_commands(
    ctx: ServiceContext, identity: StaffIdentity, request_id: str
) -> list[CommandView]:
    """The request's commands, oldest first, with the cluster's answers."""
    async with ctx.engine.connect() as conn:
        stored = await access_store.load(conn, request_id)
        if stored is None or not visible_to(identity, stored):
            raise NotFound(f"no access request {request_id}")
        rows = (
            await conn.execute(
                select(support_commands)
                .where(support_commands.c.request_id == request_id)
                .order_by(support_commands.c.issued_at, support_commands.c.id)
            )
        ).all()
    return [_view(row) for row in rows]


async def record_result(
    conn: AsyncConnection, ctx: ServiceContext, cluster_id: str, result: SupportCommandResult
) -> SupportAck:
    """Store the cluster's first answer to a command of its own (in the message transaction)."""
    row = (
        await conn.execute(
            select(support_commands)
            .where(
                support_commands.c.id == result.command_id,
                support_commands.c.cluster_id == cluster_id,
            )
            .with_for_update()
        )
    ).first()
    if row is None:
        raise NotFound(f"no command {result.command_id} for this cluster")
    if row.request_id != result.request_id:
        raise InvalidInput(f"command {result.command_id} belongs to request {row.request_id}")
    if row.status is not None:
        return SupportAck(recorded=False)
    now = ctx.clock()
    await conn.execute(
        update(support_commands)
        .where(support_commands.c.id == result.command_id)
        .values(
            status=result.status,
            summary=result.summary,
            output=result.output,
            answered_at=result.at,
            received_at=now,
        )
    )
    event = result_event(
        row.engineer,
        cluster_id,
        row.request_id,
        row.id,
        row.command,
        result.status,
        result.summary,
        len(result.output.encode("utf-8", "surrogatepass")),
        now,
    )
    await audit_log.record(conn, ctx, [event])
    return SupportAck(recorded=True)
