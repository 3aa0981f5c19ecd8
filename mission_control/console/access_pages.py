"""Remote-access pages: the list of requests, one request with its grant and commands, and the
actions of the engineer who asked (request access, run a command, end the grant) and of staff
who oversee (revoke a running grant: support-l3, operators and admins).

Handlers only translate forms to calls of the staff services (`access_requests`,
`support_commands`), which check roles, ownership and grant state again and write the audit
log; a refusal becomes a one-line page (see `guard`). Every action answers with a redirect to
the request's page (post/redirect/get), which reloads itself while the cluster is awaited.
"""

from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from mission_control.app_keys import CONTEXT
from mission_control.console import forms
from mission_control.console.abilities import Abilities
from mission_control.console.access_view import is_running, refresh_after, runnable_commands
from mission_control.console.guard import AUTO_REFRESH
from mission_control.console.keys import CONSOLE_SETTINGS, PREFIX, current_session
from mission_control.console.render import page
from mission_control.service.support import access_requests, commands
from mission_control.staff.roles import can_revoke_grants

ACCESS_ROLES = ("viewer", "user", "admin")
DURATIONS = (("30m", "30 minutes"), ("1h", "1 hour"), ("2h", "2 hours"), ("4h", "4 hours"),
             ("8h", "8 hours"), ("1d", "1 day"), ("3d", "3 days"))  # fmt: skip


class AccessListQuery(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    cluster: str = Field(default="", max_length=128)


def request_path(request_id: str) -> str:
    return f"{PREFIX}/access/{request_id}"


def _engineer_only(request: web.Request) -> None:
    if not Abilities.of(current_session(request).role).request_access:
        raise web.HTTPForbidden(text="only support engineers (support-l2/l3) use remote access")


async def access_list(request: web.Request) -> web.StreamResponse:
    ctx = request.config_dict[CONTEXT]
    session = current_session(request)
    query = forms.parse_fields(AccessListQuery, request.query)
    found = await access_requests.list_requests(
        ctx, session.identity, query.cluster.strip() or None
    )
    return page(
        request,
        "access_list.html",
        {"active": "access", "query": query, "requests": found},
        now=ctx.clock(),
    )


async def access_create(request: web.Request) -> web.StreamResponse:
    _engineer_only(request)
    body = forms.access_request(await request.post())
    ctx = request.config_dict[CONTEXT]
    view = await access_requests.create_request(ctx, current_session(request).identity, body)
    raise web.HTTPSeeOther(request_path(view.id))


async def access_detail(request: web.Request) -> web.StreamResponse:
    ctx = request.config_dict[CONTEXT]
    settings = request.app[CONSOLE_SETTINGS]
    session = current_session(request)
    request_id = request.match_info["request_id"]
    view = await access_requests.get_request(ctx, session.identity, request_id)
    command_views = await commands.list_commands(ctx, session.identity, request_id)
    now = ctx.clock()
    refresh = refresh_after(
        view, command_views, now, quick_s=settings.refresh_s, slow_s=settings.running_refresh_s
    )
    return page(
        request,
        "access_detail.html",
        {
            "active": "access",
            "r": view,
            "commands": command_views,
            "running": is_running(view, now),
            "runnable": runnable_commands(view, session.user, now),
            "mine": view.engineer == session.user,
            "may_revoke": can_revoke_grants(session.role) and view.engineer != session.user,
            "refresh": refresh,
            "refresh_url": f"{request_path(view.id)}?{AUTO_REFRESH}=1",
        },
        now=now,
    )


async def command_submit(request: web.Request) -> web.StreamResponse:
    _engineer_only(request)
    body = forms.command(await request.post())
    ctx = request.config_dict[CONTEXT]
    request_id = request.match_info["request_id"]
    await commands.issue_command(ctx, current_session(request).identity, request_id, body)
    raise web.HTTPSeeOther(request_path(request_id) + "#commands")


async def end_submit(request: web.Request) -> web.StreamResponse:
    _engineer_only(request)
    ctx = request.config_dict[CONTEXT]
    request_id = request.match_info["request_id"]
    await access_requests.end_request(ctx, current_session(request).identity, request_id)
    raise web.HTTPSeeOther(request_path(request_id))


class RevokeForm(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    reason: str = Field(default="", max_length=2000)


async def revoke_submit(request: web.Request) -> web.StreamResponse:
    """Staff revoke a running grant (the service checks the role again and audits)."""
    ctx = request.config_dict[CONTEXT]
    request_id = request.match_info["request_id"]
    form = forms.parse_fields(RevokeForm, await request.post())
    reason = form.reason.strip() or None
    await access_requests.revoke_request(ctx, current_session(request).identity, request_id, reason)
    raise web.HTTPSeeOther(request_path(request_id))
