"""What a cluster's heartbeat reply carries: its open support requests and unanswered commands.

Listed requests (see docs/support-protocol): every request of this cluster that is `pending`
and not past Mission Control's deadline (the cluster has not decided yet; the item carries that
deadline, `pending_until`, so the cluster never lets an operator approve it later), plus every
request whose state Mission Control changed (the engineer ended the grant, staff revoked it, or
Mission Control refused the cluster's approval) until the cluster confirms it or the grant's
window is over anyway. Commands: every one of this cluster not yet answered.

Heartbeats are the most frequent message and are written in batches
(`mission_control.service.exchange.ingest`), so `open_heartbeat_items` lists the items of
every cluster of a batch with ONE indexed query (a UNION ALL, built once per dialect) in the batch's
transaction, each cluster's list as of its own heartbeat's time; nothing is written.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any, TypeAlias

from sqlalchemy import (
    CompoundSelect,
    Text,
    and_,
    bindparam,
    cast,
    literal,
    null,
    or_,
    select,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from contract.messages import PendingCommand, PendingSupportRequest
from contract.support.requests import RequestState, request_from_json
from mission_control.db.engine import in_values
from mission_control.db.schema import UTCDateTime, access_requests, support_commands

HeartbeatItems: TypeAlias = tuple[list[PendingSupportRequest], list[PendingCommand]]

_R, _C = access_requests.c, support_commands.c
_PENDING = RequestState.PENDING.value
_STATEMENTS: dict[str, CompoundSelect[Any]] = {}


def _open_items(dialect_name: str) -> CompoundSelect[Any]:
    """The open items of the clusters ``b_clusters`` as of ``b_now``, by cluster, oldest first.
    Built once per dialect, so compiled and prepared statements are reused."""
    found = _STATEMENTS.get(dialect_name)
    if found is not None:
        return found
    now = bindparam("b_now", type_=UTCDateTime())
    requests = select(
        _R.cluster_id,
        literal("r").label("kind"),
        _R.id,
        _R.requested_at.label("at"),
        _R.record.label("body"),
        _R.engineer_role.label("a"),
        _R.sync_state.label("b"),
        _R.state_changed_by.label("c"),
        _R.state_reason.label("d"),
        _R.state.label("state"),
        _R.pending_until.label("pending_until"),
        _R.ends_at.label("ends_at"),
    ).where(
        in_values(_R.cluster_id, "b_clusters", dialect_name),
        or_(
            and_(_R.state == _PENDING, _R.pending_until > now),
            and_(_R.sync_state.is_not(None), or_(_R.ends_at.is_(None), _R.ends_at > now)),
        ),
    )
    commands = select(
        _C.cluster_id,
        literal("s").label("kind"),
        _C.id,
        _C.issued_at.label("at"),
        cast(_C.arguments, Text).label("body"),
        _C.request_id.label("a"),
        _C.engineer.label("b"),
        _C.command.label("c"),
        cast(null(), Text).label("d"),
        cast(null(), Text).label("state"),
        cast(null(), UTCDateTime()).label("pending_until"),
        cast(null(), UTCDateTime()).label("ends_at"),
    ).where(in_values(_C.cluster_id, "b_clusters", dialect_name), _C.status.is_(None))
    found = union_all(requests, commands).order_by("cluster_id", "kind", "at", "id")
    _STATEMENTS[dialect_name] = found
    return found


def _listed_at(row: Any, now: datetime) -> bool:
    """The query's request condition for one row at `now` (the query ran at the batch's
    earliest time, so it may return requests a later heartbeat must no longer list)."""
    if row.kind != "r":
        return True
    if row.state == _PENDING and row.pending_until > now:
        return True
    return row.b is not None and (row.ends_at is None or row.ends_at > now)


def _request(row: Any) -> PendingSupportRequest:
    request = request_from_json(json.loads(row.body))
    changed = row.b is not None  # a state set here, for the cluster to apply
    return PendingSupportRequest.model_validate(
        {
            "id": request.id,
            "cluster": request.cluster_id,
            "engineer": request.engineer,
            "engineer_role": row.a,
            "reason": request.reason,
            "role": request.role.value,
            "duration_seconds": int(request.duration.total_seconds()),
            "requested_at": request.requested_at,
            "pending_until": request.pending_until,
            "state": row.b if changed else request.state.value,
            "state_changed_by": row.c if changed else None,
            "state_reason": row.d if changed else None,
        }
    )


def _command(row: Any) -> PendingCommand:
    return PendingCommand.model_validate(
        {
            "id": row.id,
            "request_id": row.a,
            "engineer": row.b,
            "command": row.c,
            "arguments": json.loads(row.body),
            "issued_at": row.at,
        }
    )


async def open_heartbeat_items(
    conn: AsyncConnection, clusters_at: Mapping[str, datetime]
) -> dict[str, HeartbeatItems]:
    """(support_requests, commands) for the heartbeat reply of each cluster in `clusters_at`,
    oldest first, as of that cluster's time; clusters with nothing open are left out.
    A `BatchRead` (see `service.exchange.ingest`): one query for all the clusters."""
    if not clusters_at:
        return {}
    params = {"b_clusters": sorted(clusters_at), "b_now": min(clusters_at.values())}
    found: dict[str, HeartbeatItems] = {}
    for row in await conn.execute(_open_items(conn.dialect.name), params):
        if not _listed_at(row, clusters_at[row.cluster_id]):
            continue
        requests, commands = found.setdefault(row.cluster_id, ([], []))
        if row.kind == "r":
            requests.append(_request(row))
        else:
            commands.append(_command(row))
    return found
