"""The rollouts page: each fleet rollout, its waves and each cluster's version and state, with
pause and resume for the staff who may (`Abilities.steer_rollouts`: operators and admins).

Reads `service.releases.rollout_views.list_rollouts`; the buttons post (with the session's CSRF
token, checked by the guard as for every console form) to handlers that check the same ability
before calling `pause` / `resume`, which refuse a rollout in the wrong state (409 page).
"""

from __future__ import annotations

from aiohttp import web

from mission_control.app_keys import CONTEXT
from mission_control.console.abilities import Abilities
from mission_control.console.keys import PREFIX, current_session
from mission_control.console.render import page
from mission_control.service.releases import rollouts as store
from mission_control.service.releases.rollout_views import list_rollouts


async def rollout_list(request: web.Request) -> web.StreamResponse:
    ctx = request.config_dict[CONTEXT]
    found = await list_rollouts(ctx)
    return page(
        request, "rollouts.html", {"active": "rollouts", "rollouts": found}, now=ctx.clock()
    )


async def _steer(request: web.Request, resume: bool) -> web.StreamResponse:
    session = current_session(request)
    if not Abilities.of(session.role).steer_rollouts:
        raise web.HTTPForbidden(text="only operators and admins pause or resume rollouts")
    ctx = request.config_dict[CONTEXT]
    rollout = request.match_info["rollout_id"]
    by = session.identity.actor
    await (store.resume if resume else store.pause)(ctx, rollout, by)
    raise web.HTTPSeeOther(f"{PREFIX}/rollouts")


async def pause(request: web.Request) -> web.StreamResponse:
    return await _steer(request, resume=False)


async def resume(request: web.Request) -> web.StreamResponse:
    return await _steer(request, resume=True)
