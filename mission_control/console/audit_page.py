"""The audit page: Mission Control's own audit log, filtered by who, cluster, action and time.

Entries come from `audit_log.list_entries` with the logged-in person as the viewer (the same
call and the same visibility rule as `GET /api/v1/audit`: support engineers see only entries
they acted in or are the subject of; only admins read why a login failed), newest first, at
most `audit_rows`; a cluster is given by name or id (an unknown one is matched as
written, for scopes such as ``mission-control``). Cluster ids are shown with the cluster's
name. Nothing here writes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from aiohttp import web

from contract.audit.chain import AuditEntry
from mission_control.app_keys import CONTEXT
from mission_control.console.forms import AuditFilter, parse_fields
from mission_control.console.keys import CONSOLE_SETTINGS, current_session
from mission_control.console.render import page
from mission_control.service.accounts import audit_log as audit_service
from mission_control.service.fleet.admin import cluster_id_or_scope, cluster_names


def detail_items(detail: Mapping[str, Any]) -> list[tuple[str, str]]:
    """An entry's detail as (key, text) pairs, sorted by key; nested values as compact JSON."""
    items = []
    for key in sorted(detail):
        value = detail[key]
        text = value if isinstance(value, str) else json.dumps(value, separators=(", ", ": "))
        items.append((key, text))
    return items


def _minutes(moment: datetime | None) -> str:
    """A time as a datetime-local field shows it."""
    return moment.strftime("%Y-%m-%dT%H:%M") if moment else ""


async def audit(request: web.Request) -> web.StreamResponse:
    ctx = request.config_dict[CONTEXT]
    limit = request.app[CONSOLE_SETTINGS].audit_rows
    query = parse_fields(AuditFilter, request.query)
    viewer = current_session(request).identity
    cluster = await cluster_id_or_scope(ctx, query.cluster) if query.cluster else None
    entries: list[AuditEntry] = await audit_service.list_entries(
        ctx,
        viewer=viewer,
        actor=query.actor or None,
        cluster=cluster,
        action=query.action or None,
        since=query.since,
        until=query.until,
        limit=limit + 1,
    )
    names = await cluster_names(ctx, [e.cluster for e in entries])
    return page(
        request,
        "audit.html",
        {
            "active": "audit",
            "query": query,
            "entries": entries[:limit],
            "more": len(entries) > limit,
            "limit": limit,
            "names": names,
            "actions": await audit_service.known_actions(ctx),
            "whole_log": audit_service.sees_whole_log(viewer),
            "detail_items": detail_items,
            "since_value": _minutes(query.since),
            "until_value": _minutes(query.until),
        },
        now=ctx.clock(),
    )
