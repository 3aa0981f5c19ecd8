"""Console sign-in through the customer's OpenID Connect provider (`MISSION_CONTROL_OIDC`).

`GET login/oidc` asks the provider where to go and sends the browser there with a fresh state,
nonce and PKCE challenge (`service.accounts.oidc_login.start`, authlib's client); what the
callback needs comes back in a cookie sealed with the server's secrets key (SameSite=Lax: the
provider's redirect is a navigation from another site), so any instance can finish the flow.
`GET login/oidc/callback` redeems the code and verifies the ID token; a support role whose
provider asserted no trusted second factor then types the built-in TOTP code
(`POST login/oidc/totp`, CSRF-checked, within five minutes; the verified person waits in
another sealed cookie). A refusal re-renders the login page with one line and status 401.
The session cookie is SameSite=Strict, so the signed-in browser is sent on with a page that
moves itself (a same-site navigation), not with a redirect still part of the provider's.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import asdict

import aiohttp_jinja2
from aiohttp import web

from contract.identity import VerifiedPerson
from mission_control.app_keys import CONTEXT, SETTINGS
from mission_control.console import cookies, csrf
from mission_control.console.guard import safe_next
from mission_control.console.keys import PREFIX
from mission_control.console.login import render_login_form
from mission_control.errors import NotFound
from mission_control.request_source import request_source
from mission_control.service.accounts.console_sessions import open_session
from mission_control.service.accounts.directory_admission import needs_totp
from mission_control.service.accounts.oidc_documents import OidcRefused
from mission_control.service.accounts.oidc_login import (
    FLOW_TTL_S,
    Flow,
    finish,
    login_oidc,
    start,
)
from mission_control.service.context import ServiceContext
from mission_control.staff.directory import role_for
from mission_control.staff.identity import StaffIdentity
from mission_control.staff.oidc import OidcProvider, provider_second_factor
from mission_control.staff.secretbox import SealedSecretUnreadable

log = logging.getLogger(__name__)

FLOW_PATH = PREFIX + "/login/oidc"
FLOW_COOKIE = "mc_oidc_flow"
PENDING_COOKIE = "mc_oidc_pending"
PENDING_TTL_S = 300
_FLOW_CONTEXT = "console oidc flow"
_PENDING_CONTEXT = "console oidc second factor"


def _provider(request: web.Request) -> OidcProvider:
    provider = request.config_dict[SETTINGS].oidc
    if provider is None:
        raise NotFound("OpenID Connect sign-in is not configured on this server")
    return provider


def _now(ctx: ServiceContext) -> int:
    return int(ctx.clock().timestamp())


def _seal(ctx: ServiceContext, text: str, context: str) -> str:
    return ctx.secrets.box(ctx.engine.url).seal(text, context)


def _open(ctx: ServiceContext, sealed: str | None, context: str) -> str:
    if not sealed or not sealed.startswith("sealed:"):
        raise OidcRefused("no sign-in is under way in this browser: start again")
    try:
        return ctx.secrets.box(ctx.engine.url).open(sealed, context)
    except SealedSecretUnreadable:
        raise OidcRefused("the sign-in state was altered: start again") from None


def _refused(request: web.Request, reason: str, status: int = 401) -> web.Response:
    log.info("OpenID Connect sign-in refused: %s", reason)
    response = render_login_form(request, error=f"Sign-in refused: {reason}", status=status)
    response.del_cookie(FLOW_COOKIE, path=FLOW_PATH)
    response.del_cookie(PENDING_COOKIE, path=FLOW_PATH)
    return response


async def start_sign_in(request: web.Request) -> web.StreamResponse:
    provider = _provider(request)
    ctx = request.config_dict[CONTEXT]
    redirect_uri = provider.redirect_uri or f"{request.url.origin()}{FLOW_PATH}/callback"
    next_path = safe_next(request.query.get("next"))
    try:
        url, flow = await asyncio.to_thread(start, provider, redirect_uri, next_path, _now(ctx))
    except OidcRefused as e:
        return _refused(request, str(e))
    response = web.Response(status=303, headers={"Location": url})
    sealed = _seal(ctx, flow.dump(), _FLOW_CONTEXT)
    cookies.set_lax(response, FLOW_COOKIE, sealed, FLOW_PATH, FLOW_TTL_S)
    return response


async def _signed_in(request: web.Request, identity: StaffIdentity, next_path: str) -> web.Response:
    ctx = request.config_dict[CONTEXT]
    cookie, _session = await open_session(ctx.engine, identity, ctx.clock())
    response = aiohttp_jinja2.render_template("signed_in.html", request, {"next": next_path})
    cookies.set_session(response, cookie)
    response.del_cookie(FLOW_COOKIE, path=FLOW_PATH)
    response.del_cookie(PENDING_COOKIE, path=FLOW_PATH)
    return response


async def _admit(
    request: web.Request, provider: OidcProvider, person: VerifiedPerson, code: str, nxt: str
) -> web.Response:
    ctx = request.config_dict[CONTEXT]
    result = await login_oidc(ctx, provider, person, code, source=request_source(request))
    if result.identity is None:
        return _refused(request, result.message)
    return await _signed_in(request, result.identity, nxt)


async def callback(request: web.Request) -> web.StreamResponse:
    provider = _provider(request)
    ctx = request.config_dict[CONTEXT]
    try:
        flow = Flow.load(_open(ctx, request.cookies.get(FLOW_COOKIE), _FLOW_CONTEXT))
        callback_url = flow.redirect_uri + "?" + request.query_string
        person = await asyncio.to_thread(finish, provider, flow, callback_url, _now(ctx))
    except OidcRefused as e:
        return _refused(request, str(e))
    role = role_for(person.groups, provider.roles)
    if not needs_totp(role, provider_second_factor(person.amr, provider.trusted_amr)):
        return await _admit(request, provider, person, "", flow.next)
    pending = json.dumps(
        {"person": asdict(person), "next": flow.next, "until": _now(ctx) + PENDING_TTL_S}
    )
    token = csrf.new_token()
    response = aiohttp_jinja2.render_template(
        "oidc_totp.html", request, {"csrf_token": token, "user": person.label, "error": ""}
    )
    cookies.set_login_token(response, token)
    sealed = _seal(ctx, pending, _PENDING_CONTEXT)
    cookies.set_lax(response, PENDING_COOKIE, sealed, FLOW_PATH, PENDING_TTL_S)
    response.del_cookie(FLOW_COOKIE, path=FLOW_PATH)
    return response


async def second_factor(request: web.Request) -> web.StreamResponse:
    # The form's origin first, as every console form: a forged post learns nothing else.
    form = await request.post()
    sent = form.get(csrf.FIELD)
    if not isinstance(sent, str) or not csrf.tokens_match(
        sent, request.cookies.get(csrf.LOGIN_COOKIE)
    ):
        return _refused(request, "the form did not come from this page", status=403)
    provider = _provider(request)
    ctx = request.config_dict[CONTEXT]
    try:
        pending = json.loads(_open(ctx, request.cookies.get(PENDING_COOKIE), _PENDING_CONTEXT))
        fields = pending["person"]
        fields.update(groups=tuple(fields["groups"]), amr=tuple(fields["amr"]))
        person = VerifiedPerson(**fields)
    except OidcRefused as e:
        return _refused(request, str(e))
    if _now(ctx) > pending["until"]:
        return _refused(request, "the code came too late: start again")
    code = form.get("totp")
    code = code.replace(" ", "")[:16] if isinstance(code, str) else ""
    return await _admit(request, provider, person, code, pending["next"])
