"""What the console's single sign-on methods (OpenID Connect, SAML) share.

- State the browser carries between the console and the provider travels in cookies sealed
  with the server's secrets key (`seal`/`unseal`), so any instance can finish a flow and a
  browser can neither read nor alter it.
- A refusal is the login page with one line, status 401, and the method's cookies cleared;
  no session is created.
- A success opens a session and answers with a page that moves itself to the console: the
  session cookie is SameSite=Strict, so the signed-in browser goes on with a same-site
  navigation, not with a response still part of the provider's.
- A support role the provider vouched no trusted second factor for types the built-in TOTP
  code on a second page (`ask_for_code`, its post checked by `code_and_person`: CSRF first);
  the verified person waits meanwhile in a sealed cookie for at most `PENDING_TTL_S`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from mission_control.app_keys import CONTEXT
from mission_control.console import cookies, csrf
from mission_control.console.login import render_login_form
from mission_control.service.accounts.console_sessions import open_session
from mission_control.service.accounts.staff import LoginResult
from mission_control.service.context import ServiceContext
from mission_control.staff.identity import StaffIdentity
from mission_control.staff.secretbox import SealedSecretUnreadable

log = logging.getLogger(__name__)

PENDING_TTL_S = 300
#: A method's cookies, as (name, path): cleared on every outcome.
Cookies = Sequence[tuple[str, str]]


class SignInStateLost(Exception):
    """The state this browser should carry is missing or was altered (one line)."""


def now_s(ctx: ServiceContext) -> int:
    return int(ctx.clock().timestamp())


def seal(ctx: ServiceContext, text: str, context: str) -> str:
    return ctx.secrets.box(ctx.engine.url).seal(text, context)


def unseal(ctx: ServiceContext, sealed: str | None, context: str) -> str:
    if not sealed or not sealed.startswith("sealed:"):
        raise SignInStateLost("no sign-in is under way in this browser: start again")
    try:
        return ctx.secrets.box(ctx.engine.url).open(sealed, context)
    except SealedSecretUnreadable:
        raise SignInStateLost("the sign-in state was altered: start again") from None


def _clear(response: web.StreamResponse, names: Cookies) -> None:
    for name, path in names:
        response.del_cookie(name, path=path)


def refused(
    request: web.Request, method: str, reason: str, names: Cookies, status: int = 401
) -> web.Response:
    log.info("%s sign-in refused: %s", method, reason)
    response = render_login_form(request, error=f"Sign-in refused: {reason}", status=status)
    _clear(response, names)
    return response


def to_provider(
    request: web.Request, url: str, flow: tuple[str, str, str], max_age: int, cross_site: bool
) -> web.Response:
    """Send the browser to the provider at `url`; `flow` is (cookie name, path, sealed
    state) it must bring back: SameSite=Lax for a redirect back, None for a cross-site POST."""
    response = web.Response(status=303, headers={"Location": url})
    name, path, sealed = flow
    keep = cookies.set_cross_site if cross_site else cookies.set_lax
    keep(response, name, sealed, path, max_age)
    return response


async def outcome(
    request: web.Request, method: SsoMethod, result: LoginResult, next_path: str
) -> web.Response:
    """The signed-in page for an admitted person, the refusal page otherwise."""
    if result.identity is None:
        return refused(request, method.method, result.message, method.names)
    return await signed_in(request, result.identity, next_path, method.names)


async def signed_in(
    request: web.Request, identity: StaffIdentity, next_path: str, names: Cookies
) -> web.Response:
    ctx = request.config_dict[CONTEXT]
    cookie, _session = await open_session(ctx.engine, identity, ctx.clock())
    response = aiohttp_jinja2.render_template("signed_in.html", request, {"next": next_path})
    cookies.set_session(response, cookie)
    _clear(response, names)
    return response


@dataclass(frozen=True)
class SsoMethod:
    """A sign-in method's cookies: where its verified person waits for their code (the sealed
    cookie's name, path and sealing context, the code form's action), and all its cookies,
    cleared on any outcome."""

    method: str
    cookie: str
    path: str
    context: str
    action: str
    names: Cookies


def ask_for_code(
    request: web.Request,
    step: SsoMethod,
    user: str,
    person: Mapping[str, object],
    next_path: str,
) -> web.Response:
    """The second-factor page; `person` (JSON-able) waits in the step's sealed cookie."""
    ctx = request.config_dict[CONTEXT]
    until = now_s(ctx) + PENDING_TTL_S
    pending = json.dumps({"person": person, "next": next_path, "until": until})
    token = csrf.new_token()
    response = aiohttp_jinja2.render_template(
        "sso_totp.html", request, {"csrf_token": token, "user": user, "action": step.action}
    )
    cookies.set_login_token(response, token)
    _clear(response, [n for n in step.names if n[0] != step.cookie])
    sealed = seal(ctx, pending, step.context)
    cookies.set_lax(response, step.cookie, sealed, step.path, PENDING_TTL_S)
    return response


async def code_and_person(
    request: web.Request, step: SsoMethod
) -> tuple[str, dict[str, Any], str] | web.Response:
    """The typed code, the waiting person and where they were going; or the refusal page
    when the form did not come from the console's own page (checked first: a forged post
    learns nothing else), nobody waits in this browser, or the code came too late."""
    form = await request.post()
    sent = form.get(csrf.FIELD)
    if not isinstance(sent, str) or not csrf.tokens_match(
        sent, request.cookies.get(csrf.LOGIN_COOKIE)
    ):
        return refused(
            request, step.method, "the form did not come from this page", step.names, 403
        )
    ctx = request.config_dict[CONTEXT]
    try:
        pending = json.loads(unseal(ctx, request.cookies.get(step.cookie), step.context))
    except SignInStateLost as e:
        return refused(request, step.method, str(e), step.names)
    if now_s(ctx) > pending["until"]:
        return refused(request, step.method, "the code came too late: start again", step.names)
    code = form.get("totp")
    code = code.replace(" ", "")[:16] if isinstance(code, str) else ""
    return code, pending["person"], pending["next"]
