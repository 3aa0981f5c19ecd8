"""Console sign-in through the customer's SAML 2.0 identity provider (`MISSION_CONTROL_SAML`).

`GET login/saml` sends the browser to the provider with a fresh AuthnRequest (HTTP-Redirect
binding: the console's pages run no script and post forms only to themselves, so the request
travels in the URL); the request's ID comes back in a sealed cookie. The provider posts its
response to `POST login/saml/acs` (HTTP-POST binding) from its own site, a cross-site POST that
carries only SameSite=None cookies: the flow cookie is one (sealed, path-bound, ten minutes,
spent at the first answer). There pysaml2 checks the response against that request ID
(`service.accounts.saml_login.finish`), which also stops a response made for someone else's
browser from logging this one in. A support role whose assertion carries no trusted
``AuthnContextClassRef`` then types the built-in TOTP (`POST login/saml/totp`).
`GET login/saml/metadata` is this server's SP metadata, for the provider's administrator.
Sealed state, refusal and signed-in pages, the TOTP step: `sso`.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict

from aiohttp import web

from mission_control.app_keys import CONTEXT, SETTINGS
from mission_control.console import sso
from mission_control.console.guard import safe_next
from mission_control.console.keys import PREFIX
from mission_control.errors import NotFound
from mission_control.request_source import request_source
from mission_control.service.accounts.directory_admission import needs_totp
from mission_control.service.accounts.saml_login import (
    FLOW_TTL_S,
    SamlFlow,
    SamlPerson,
    SamlRefused,
    finish,
    login_saml,
    sp_metadata,
    start,
)
from mission_control.staff.directory import role_for
from mission_control.staff.oidc import provider_second_factor
from mission_control.staff.saml import SamlProvider

FLOW_PATH = PREFIX + "/login/saml"
FLOW_COOKIE = "mc_saml_flow"
PENDING_COOKIE = "mc_saml_pending"
_COOKIES = ((FLOW_COOKIE, FLOW_PATH), (PENDING_COOKIE, FLOW_PATH))
_FLOW_CONTEXT = "console saml flow"
_METHOD = sso.SsoMethod(
    "SAML", PENDING_COOKIE, FLOW_PATH, "console saml second factor", "/login/saml/totp", _COOKIES
)


def _provider(request: web.Request) -> SamlProvider:
    provider = request.config_dict[SETTINGS].saml
    if provider is None:
        raise NotFound("SAML sign-in is not configured on this server")
    return provider


def _acs_url(request: web.Request, provider: SamlProvider) -> str:
    return provider.acs_url or f"{request.url.origin()}{FLOW_PATH}/acs"


def _refused(request: web.Request, reason: str) -> web.Response:
    return sso.refused(request, _METHOD.method, reason, _COOKIES)


async def start_sign_in(request: web.Request) -> web.StreamResponse:
    provider = _provider(request)
    ctx = request.config_dict[CONTEXT]
    next_path = safe_next(request.query.get("next"))
    acs_url = _acs_url(request, provider)
    try:
        url, flow = await asyncio.to_thread(start, provider, acs_url, next_path, sso.now_s(ctx))
    except SamlRefused as e:
        return _refused(request, str(e))
    sealed = sso.seal(ctx, flow.dump(), _FLOW_CONTEXT)
    return sso.to_provider(request, url, (FLOW_COOKIE, FLOW_PATH, sealed), FLOW_TTL_S, True)


async def _admit(
    request: web.Request, provider: SamlProvider, person: SamlPerson, code: str, nxt: str
) -> web.Response:
    ctx = request.config_dict[CONTEXT]
    result = await login_saml(ctx, provider, person, code, source=request_source(request))
    return await sso.outcome(request, _METHOD, result, nxt)


async def assertion_consumer(request: web.Request) -> web.StreamResponse:
    provider = _provider(request)
    ctx = request.config_dict[CONTEXT]
    form = await request.post()
    response = form.get("SAMLResponse")
    try:
        flow = SamlFlow.load(sso.unseal(ctx, request.cookies.get(FLOW_COOKIE), _FLOW_CONTEXT))
        text = response if isinstance(response, str) else ""
        person = await asyncio.to_thread(finish, provider, flow, text, sso.now_s(ctx))
    except (SamlRefused, sso.SignInStateLost) as e:
        return _refused(request, str(e))
    role = role_for(person.groups, provider.roles)
    factor = provider_second_factor(person.authn_contexts, provider.trusted_authn_contexts)
    if not needs_totp(role, factor):
        return await _admit(request, provider, person, "", flow.next)
    return sso.ask_for_code(request, _METHOD, person.username, asdict(person), flow.next)


async def second_factor(request: web.Request) -> web.StreamResponse:
    waiting = await sso.code_and_person(request, _METHOD)
    if isinstance(waiting, web.Response):
        return waiting
    code, fields, next_path = waiting
    fields.update(groups=tuple(fields["groups"]), authn_contexts=tuple(fields["authn_contexts"]))
    return await _admit(request, _provider(request), SamlPerson(**fields), code, next_path)


async def metadata(request: web.Request) -> web.StreamResponse:
    provider = _provider(request)
    try:
        text = await asyncio.to_thread(sp_metadata, provider, _acs_url(request, provider))
    except SamlRefused as e:
        raise NotFound(str(e)) from None
    return web.Response(text=text, content_type="application/samlmetadata+xml")
