"""Storage of access requests: one row per request holding the whole `AccessRequest` record.

The record (JSON, `contract.support.requests.request_to_json`) is the source of truth; the
columns beside it (state, deadlines, engineer) are rewritten from it on every save so queries
can use them. `load(..., lock=True)` locks only the request's row (PostgreSQL `FOR UPDATE OF`),
never the cluster's, so it composes with the cluster-message path (cluster row, then request
row, then the audit log) without lock cycles.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from contract.messages import StaffRole
from contract.support.requests import AccessRequest, request_from_json, request_to_json
from mission_control.db.schema import access_requests, clusters
from mission_control.staff_protocol import AccessRequestView, GrantView


@dataclass(frozen=True)
class StoredRequest:
    """A request and what Mission Control keeps beside it."""

    request: AccessRequest
    engineer_role: str
    cluster_name: str
    sync_state: str | None = None  # set here (engineer ended it), not yet confirmed by the cluster
    state_changed_by: str | None = None
    state_reason: str | None = None


def _columns(stored: StoredRequest, now: datetime) -> dict[str, Any]:
    request = stored.request
    assert request.pending_until is not None
    return {
        "state": request.state.value,
        "pending_until": request.pending_until,
        "ends_at": request.grant.ends_at if request.grant else None,
        "sync_state": stored.sync_state,
        "state_changed_by": stored.state_changed_by,
        "state_reason": stored.state_reason,
        "record": json.dumps(request_to_json(request), sort_keys=True),
        "updated_at": now,
    }


def from_row(row: Row[Any]) -> StoredRequest:
    return StoredRequest(
        request=request_from_json(json.loads(row.record)),
        engineer_role=row.engineer_role,
        cluster_name=row.cluster_name,
        sync_state=row.sync_state,
        state_changed_by=row.state_changed_by,
        state_reason=row.state_reason,
    )


def select_requests() -> Any:
    """SELECT of request rows with their cluster's name (add WHERE and ORDER BY)."""
    return select(access_requests, clusters.c.name.label("cluster_name")).join(
        clusters, clusters.c.id == access_requests.c.cluster_id
    )


async def load(
    conn: AsyncConnection, request_id: str, *, cluster_id: str | None = None, lock: bool = False
) -> StoredRequest | None:
    query = select_requests().where(access_requests.c.id == request_id)
    if cluster_id is not None:
        query = query.where(access_requests.c.cluster_id == cluster_id)
    if lock:
        query = query.with_for_update(of=access_requests)
    row = (await conn.execute(query)).first()
    return None if row is None else from_row(row)


async def add(conn: AsyncConnection, stored: StoredRequest, now: datetime) -> None:
    request = stored.request
    await conn.execute(
        insert(access_requests).values(
            id=request.id,
            cluster_id=request.cluster_id,
            engineer=request.engineer,
            engineer_role=stored.engineer_role,
            requested_at=request.requested_at,
            **_columns(stored, now),
        )
    )


async def save(
    conn: AsyncConnection, stored: StoredRequest, now: datetime, *, approval: str | None = None
) -> None:
    values = _columns(stored, now)
    if approval is not None:
        values["approval"] = approval
    await conn.execute(
        update(access_requests).where(access_requests.c.id == stored.request.id).values(**values)
    )


def to_view(stored: StoredRequest) -> AccessRequestView:
    request = stored.request
    grant = request.grant
    assert request.pending_until is not None
    return AccessRequestView(
        id=request.id,
        cluster_id=request.cluster_id,
        cluster_name=stored.cluster_name,
        engineer=request.engineer,
        engineer_role=StaffRole(stored.engineer_role),
        reason=request.reason,
        role=request.role.value,
        duration_seconds=int(request.duration.total_seconds()),
        requested_at=request.requested_at,
        state=request.state.value,
        pending_until=request.pending_until,
        decided_at=request.decided_at,
        decided_by=request.decided_by.name if request.decided_by else None,
        note=request.note,
        grant=None
        if grant is None
        else GrantView(
            id=grant.grant_id,
            role=grant.role.value,
            starts_at=grant.starts_at,
            ends_at=grant.ends_at,
            approved_by=grant.approved_by.name,
            closed_at=grant.closed_at,
            closed_by=grant.closed_by.name if grant.closed_by else None,
            close_reason=grant.close_reason,
            sensitive_data=grant.sensitive_data,
        ),
        awaiting_cluster=stored.sync_state is not None,
    )
