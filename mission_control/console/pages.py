"""Page handlers: translate the query string into a service query, render the template.

Bad query parameters get a 400 page naming the parameter; nothing here writes to the database.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import urlencode

from aiohttp import web
from markupsafe import Markup
from pydantic import BaseModel

from mission_control.app_keys import CONTEXT
from mission_control.console import plots
from mission_control.console.abilities import Abilities
from mission_control.console.access_pages import ACCESS_ROLES, DURATIONS
from mission_control.console.forms import parse_fields
from mission_control.console.keys import CONSOLE_SETTINGS, PREFIX, current_session
from mission_control.console.render import page
from mission_control.service.exchange.alert_store import ACKNOWLEDGED_BY_HAND, acknowledge_alert
from mission_control.service.fleet.alert_list import AlertFilter, alert_page
from mission_control.service.fleet.cluster_view import ClusterView, cluster_page
from mission_control.service.fleet.history import HourlyConsumption
from mission_control.service.fleet.overview import FleetQuery, FleetStatus, fleet_page
from mission_control.service.rules.policy import AlertPolicy
from mission_control.service.support import access_requests

Q = TypeVar("Q", bound=BaseModel)
BUCKETS = 360
RECENT_REQUESTS = 5


def parse_query(model: type[Q], request: web.Request) -> Q:
    """The query string as `model`, or a 400 naming the first bad parameter."""
    return parse_fields(model, request.query)


def page_link(request: web.Request, **changes: Any) -> str:
    """This page's URL with some query parameters changed (empty values dropped)."""
    params = {**request.query, **{k: str(v) for k, v in changes.items()}}
    query = urlencode({k: v for k, v in params.items() if v not in ("", None)})
    return f"{request.path}?{query}" if query else request.path


async def fleet(request: web.Request) -> web.StreamResponse:
    ctx = request.config_dict[CONTEXT]
    settings = request.app[CONSOLE_SETTINGS]
    query = parse_query(FleetQuery, request)
    now = ctx.clock()
    result = await fleet_page(ctx, query, page_size=settings.page_size)
    return page(
        request,
        "fleet.html",
        {
            "active": "fleet",
            "query": query,
            "fleet": result,
            "statuses": list(FleetStatus),
            "first_row": (result.page - 1) * settings.page_size + 1,
            "link": lambda **kw: page_link(request, **kw),
        },
        now=now,
    )


def resource_limits(alerts: AlertPolicy) -> list[plots.Threshold]:
    """The alert thresholds of the resource plot's series, in percent."""
    return plots.thresholds(
        [
            ("CPU", alerts.cpu_threshold * 100),
            ("Memory", alerts.memory_threshold * 100),
            ("Disk", alerts.disk_threshold * 100),
        ]
    )


def history_plots(view: ClusterView, limits: Sequence[plots.Threshold]) -> dict[str, Markup]:
    """The resource plot (CPU, memory, disk %, with the alert thresholds) and the consumption
    plot of one cluster."""
    start, end = view.window

    def series(label: str, values: Sequence[tuple[datetime, float | None]]) -> plots.Series:
        return plots.Series(label, [(at, v * 100) for at, v in values if v is not None])

    # Break a line only where whole buckets are missing (a silent cluster), not between them.
    gap = max(
        timedelta(minutes=15), timedelta(seconds=plots.bucket_width(start, end, BUCKETS)) * 2.5
    )
    points = view.history
    resources = plots.line_chart(
        [
            series("CPU", [(p.at, p.cpu_fraction) for p in points]),
            series("Memory", [(p.at, p.memory_fraction) for p in points]),
            series("Disk", [(p.at, p.disk_fraction) for p in points]),
        ],
        start=start,
        end=end,
        gap=gap,
        limits=limits,
        label="CPU, memory and disk use of the cluster, percent",
    )
    usage = plots.bar_chart(
        consumption_series(view.consumption),
        start=start,
        end=end,
        y_title="host-unit hours",
        label="Host-unit hours consumed per hour, by environment",
    )
    return {"resources": resources, "consumption": usage}


def consumption_series(rows: Sequence[HourlyConsumption]) -> list[plots.Series]:
    by_environment: dict[str, list[plots.Point]] = {}
    for row in rows:
        by_environment.setdefault(row.environment, []).append(
            (row.period_start, row.host_unit_hours)
        )
    return [plots.Series(env, points) for env, points in sorted(by_environment.items())]


async def cluster(request: web.Request) -> web.StreamResponse:
    ctx = request.config_dict[CONTEXT]
    settings = request.app[CONSOLE_SETTINGS]
    now = ctx.clock()
    view = await cluster_page(ctx, request.match_info["cluster"], settings.history, BUCKETS)
    if view is None:
        raise web.HTTPNotFound(text=f"no cluster {request.match_info['cluster']!r}")
    session = current_session(request)
    requests = await access_requests.list_requests(
        ctx, session.identity, view.id, limit=RECENT_REQUESTS + 1
    )
    environments = [s.label for s in consumption_series(view.consumption)]
    limits = resource_limits(ctx.alerts)
    total_hours = sum(r.host_unit_hours for r in view.consumption)
    return page(
        request,
        "cluster.html",
        {
            "active": "fleet",
            "c": view,
            "plots": history_plots(view, limits),
            "limits": limits,
            "latest": view.latest,
            "environments": environments,
            "consumed": total_hours,
            "history_days": settings.history_days,
            "thresholds": ctx.alerts,
            "requests": requests[:RECENT_REQUESTS],
            "more_requests": len(requests) > RECENT_REQUESTS,
            "saved": request.query.get("saved") == "license",
            "access_roles": ACCESS_ROLES,
            "durations": DURATIONS,
        },
        now=now,
    )


async def alert_list(request: web.Request) -> web.StreamResponse:
    ctx = request.config_dict[CONTEXT]
    settings = request.app[CONSOLE_SETTINGS]
    query = parse_query(AlertFilter, request)
    now = ctx.clock()
    result = await alert_page(ctx, query, page_size=settings.page_size)
    return page(
        request,
        "alerts.html",
        {
            "active": "alerts",
            "query": query,
            "result": result,
            "first_row": (result.page - 1) * settings.page_size + 1,
            "acknowledged_by_hand": ACKNOWLEDGED_BY_HAND,
            "link": lambda **kw: page_link(request, **kw),
        },
        now=now,
    )


async def acknowledge(request: web.Request) -> web.StreamResponse:
    """Close a setting_changed alert (operators and admins), then back to the open alerts."""
    session = current_session(request)
    if not Abilities.of(session.role).acknowledge_alerts:
        raise web.HTTPForbidden(text="only operators and admins acknowledge alerts")
    ctx = request.config_dict[CONTEXT]
    alert = request.match_info["alert_id"]
    await acknowledge_alert(ctx, alert, by=session.identity.actor, role=session.role)
    raise web.HTTPSeeOther(f"{PREFIX}/alerts")
