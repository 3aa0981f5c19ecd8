"""Personal API tokens: whoever is signed in to the console (a local account, or a person of
the company directory through LDAP, OpenID Connect or SAML, who has no password Mission Control
could take at `POST /api/v1/login`) makes a staff token (`mct_`) for scripts.

Guarantees: the token is the signed-in person's own (never another's), acts with their current
role at each use (`staff.authenticate_staff`), expires after the days chosen (1 to
`MAX_DAYS`, no token without an expiry), is shown once on the page that made it and stored
only as a digest; making one is audited (`staff.token.issued`, via the console). The page lists
the person's tokens by hint, never in full. Revoking stays `mission-control tokens revoke` or
`POST /api/v1/logout` with the token.
"""

from __future__ import annotations

from datetime import timedelta

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from contract.audit.events import Actor
from mission_control.app_keys import CONTEXT
from mission_control.console.forms import parse_fields, pick
from mission_control.console.keys import current_session
from mission_control.console.render import page
from mission_control.service.accounts import staff

MAX_DAYS = 90


class TokenForm(BaseModel):
    """The form that makes a token: how many days it lasts."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    days: int = Field(ge=1, le=MAX_DAYS)


async def _render(request: web.Request, issued: staff.IssuedStaffToken | None) -> web.Response:
    ctx = request.config_dict[CONTEXT]
    user = current_session(request).user
    now = ctx.clock()
    mine = [t for t in await staff.list_tokens(ctx, user) if t.kind == "api"]
    live = [
        t for t in mine if t.revoked_at is None and (t.expires_at is None or t.expires_at > now)
    ]
    context = {"tokens": live, "issued": issued, "max_days": MAX_DAYS, "active": "tokens"}
    return page(request, "tokens.html", context, now=now)


async def tokens(request: web.Request) -> web.StreamResponse:
    return await _render(request, None)


async def token_create(request: web.Request) -> web.StreamResponse:
    ctx = request.config_dict[CONTEXT]
    form = parse_fields(TokenForm, pick(await request.post(), ("days",)))
    identity = current_session(request).identity
    console = identity.actor
    issued = await staff.create_staff_token(
        ctx,
        identity.user,
        by=Actor(console.name, console.kind, via="console"),
        kind="api",
        expires_at=ctx.clock() + timedelta(days=form.days),
    )
    return await _render(request, issued)
