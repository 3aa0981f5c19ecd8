"""Console sign-in through the customer's OpenID Connect provider (`MISSION_CONTROL_OIDC`).

`GET login/oidc` asks the provider where to go and sends the browser there with a fresh state,
nonce and PKCE challenge (`service.accounts.oidc_login.start`, authlib's client); what the
callback needs comes back in a cookie sealed with the server's secrets key (SameSite=Lax: the
provider's redirect is a navigation from another site), so any instance can finish the flow.
`GET login/oidc/callback` redeems the code and verifies the ID token; a support role whose
provider asserted no trusted second factor then types the built-in TOTP code
(`POST login/oidc/totp`, CSRF-checked, within five minutes; the verified person waits in
another sealed cookie). A refusal re-renders the login page with one line and status 401.
What the sign-in methods share (sealed state, the refusal and signed-in pages, the TOTP
step) is `sso`.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict

from aiohttp import web

from contract.identity import VerifiedPerson
from mission_control.app_keys import CONTEXT, SETTINGS
from mission_control.console import sso
from mission_control.console.guard import safe_next
from mission_control.console.keys import PREFIX
from mission_control.errors import NotFound
from mission_control.request_source import request_source
from mission_control.service.accounts.directory_admission import needs_totp
from mission_control.service.accounts.oidc_documents import OidcRefused
from mission_control.service.accounts.oidc_login import (
    FLOW_TTL_S,
    Flow,
    finish,
    login_oidc,
    start,
)
from mission_control.staff.directory import role_for
from mission_control.staff.oidc import OidcProvider, provider_second_factor

FLOW_PATH = PREFIX + "/login/oidc"
FLOW_COOKIE = "mc_oidc_flow"
PENDING_COOKIE = "mc_oidc_pending"
_COOKIES = ((FLOW_COOKIE, FLOW_PATH), (PENDING_COOKIE, FLOW_PATH))
_FLOW_CONTEXT = "console oidc flow"
_METHOD = sso.SsoMethod(
    "OpenID Connect",
    PENDING_COOKIE,
    FLOW_PATH,
    "console oidc second factor",
    "/login/oidc/totp",
    _COOKIES,
)


def _provider(request: web.Request) -> OidcProvider:
    provider = request.config_dict[SETTINGS].oidc
    if provider is None:
        raise NotFound("OpenID Connect sign-in is not configured on this server")
    return provider


def _refused(request: web.Request, reason: str) -> web.Response:
    return sso.refused(request, _METHOD.method, reason, _COOKIES)


async def start_sign_in(request: web.Request) -> web.StreamResponse:
    provider = _provider(request)
    ctx = request.config_dict[CONTEXT]
    redirect_uri = provider.redirect_uri or f"{request.url.origin()}{FLOW_PATH}/callback"
    next_path = safe_next(request.query.get("next"))
    try:
        url, flow = await asyncio.to_thread(
            start, provider, redirect_uri, next_path, sso.now_s(ctx)
        )
    except OidcRefused as e:
        return _refused(request, str(e))
    sealed = sso.seal(ctx, flow.dump(), _FLOW_CONTEXT)
    return sso.to_provider(request, url, (FLOW_COOKIE, FLOW_PATH, sealed), FLOW_TTL_S, False)


async def _admit(
    request: web.Request, provider: OidcProvider, person: VerifiedPerson, code: str, nxt: str
) -> web.Response:
    ctx = request.config_dict[CONTEXT]
    result = await login_oidc(ctx, provider, person, code, source=request_source(request))
    return await sso.outcome(request, _METHOD, result, nxt)


async def callback(request: web.Request) -> web.StreamResponse:
    provider = _provider(request)
    ctx = request.config_dict[CONTEXT]
    try:
        flow = Flow.load(sso.unseal(ctx, request.cookies.get(FLOW_COOKIE), _FLOW_CONTEXT))
        callback_url = flow.redirect_uri + "?" + request.query_string
        person = await asyncio.to_thread(finish, provider, flow, callback_url, sso.now_s(ctx))
    except (OidcRefused, sso.SignInStateLost) as e:
        return _refused(request, str(e))
    role = role_for(person.groups, provider.roles)
    if not needs_totp(role, provider_second_factor(person.amr, provider.trusted_amr)):
        return await _admit(request, provider, person, "", flow.next)
    return sso.ask_for_code(request, _METHOD, person.label, asdict(person), flow.next)


async def second_factor(request: web.Request) -> web.StreamResponse:
    waiting = await sso.code_and_person(request, _METHOD)
    if isinstance(waiting, web.Response):
        return waiting
    code, fields, next_path = waiting
    fields.update(groups=tuple(fields["groups"]), amr=tuple(fields["amr"]))
    return await _admit(request, _provider(request), VerifiedPerson(**fields), code, next_path)
