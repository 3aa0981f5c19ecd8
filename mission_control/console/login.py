"""Login and logout handlers.

Login: the form posts username, password and TOTP code with a double-submit CSRF token; the
`StaffDirectory` decides (or, when `MISSION_CONTROL_LDAP` is set and the form's `method` is
``ldap``, the customer's directory: `service.accounts.ldap_login`, the code needed for support
roles only); on success a fresh session is created (any session cookie the browser
had is replaced) and the browser goes to the page it came for (console paths only). A refusal
re-renders the form with the directory's one line and status 401, and creates nothing.
Logout (POST, CSRF-checked by the guard) deletes the session, clears the cookie and writes a
``staff.logout`` audit entry, in one transaction. Cookies: see `cookies`.
"""

from __future__ import annotations

from collections.abc import Mapping

import aiohttp_jinja2
from aiohttp import web

from mission_control.app_keys import CONTEXT, SETTINGS
from mission_control.console import cookies, csrf
from mission_control.console.guard import safe_next
from mission_control.console.keys import DIRECTORY, SESSION_POLICY, current_session
from mission_control.request_source import request_source
from mission_control.service.accounts.console_sessions import log_out, open_session
from mission_control.service.accounts.ldap_login import login_ldap
from mission_control.staff.identity import StaffIdentity

MAX_FIELD = 1024
LOGIN_PATH = cookies.LOGIN_PATH
INSECURE_NOTICE = (
    "This page was reached over plain HTTP: browsers keep the session cookie only over HTTPS "
    "(or on localhost), so logging in here cannot work. Use the https:// address."
)


def render_login_form(
    request: web.Request, *, error: str = "", username: str = "", status: int = 200
) -> web.Response:
    token = csrf.new_token()
    policy = request.app[SESSION_POLICY]
    notice = ""
    if request.query.get("expired"):
        minutes = int(policy.idle_timeout.total_seconds() // 60)
        notice = f"Your session expired (after {minutes} min without activity). Log in again."
    response = aiohttp_jinja2.render_template(
        "login.html",
        request,
        {
            "csrf_token": token,
            "error": error,
            "notice": notice if not error else "",
            "insecure": INSECURE_NOTICE if cookies.insecure_origin(request) else "",
            "username": username,
            "next": safe_next(request.query.get("next")),
            "ldap": request.config_dict[SETTINGS].ldap is not None,
            "oidc": request.config_dict[SETTINGS].oidc,
            "saml": request.config_dict[SETTINGS].saml,
        },
        status=status,
    )
    cookies.set_login_token(response, token)
    return response


async def login_form(request: web.Request) -> web.StreamResponse:
    return render_login_form(request)


def _field(form: Mapping[str, object], name: str) -> str:
    value = form.get(name)
    return value[:MAX_FIELD] if isinstance(value, str) else ""


async def login_submit(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    if not csrf.tokens_match(_field(form, csrf.FIELD), request.cookies.get(csrf.LOGIN_COOKIE)):
        return render_login_form(
            request,
            error="The login form expired or did not come from this page: try again.",
            status=403,
        )
    username = _field(form, "username").strip()
    password = _field(form, "password")
    code = _field(form, "totp").replace(" ", "")
    ldap = request.config_dict[SETTINGS].ldap if _field(form, "method") == "ldap" else None
    if not username or not password or not (code or ldap):
        return render_login_form(
            request,
            error="Enter your username, password and the 6-digit code.",
            username=username,
            status=400,
        )
    ctx = request.config_dict[CONTEXT]
    source = request_source(request)
    outcome: StaffIdentity | str
    if ldap is not None:
        result = await login_ldap(ctx, ldap, username, password, code, source=source)
        outcome = result.identity if result.identity is not None else result.message
    else:
        outcome = await request.app[DIRECTORY].verify(username, password, code, source=source)
    if isinstance(outcome, str):
        return render_login_form(request, error=outcome, username=username, status=401)
    cookie, _session = await open_session(ctx.engine, outcome, ctx.clock())
    response = web.Response(status=303, headers={"Location": safe_next(_field(form, "next"))})
    cookies.set_session(response, cookie)
    cookies.clear_login_token(response)
    return response


async def logout(request: web.Request) -> web.StreamResponse:
    await log_out(request.config_dict[CONTEXT], current_session(request))
    response = web.Response(status=303, headers={"Location": LOGIN_PATH})
    cookies.clear_session(response)
    return response
