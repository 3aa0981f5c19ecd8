"""Login and logout handlers.

Login: the form posts username, password and TOTP code with a double-submit CSRF token; the
`StaffDirectory` decides; on success a fresh session is created (any session cookie the browser
had is replaced) and the browser goes to the page it came for (console paths only). A refusal
re-renders the form with the directory's one line and status 401, and creates nothing.
Logout (POST, CSRF-checked by the guard) deletes the session and clears the cookie.
"""

from __future__ import annotations

from collections.abc import Mapping

import aiohttp_jinja2
from aiohttp import web

from mission_control.api.keys import CONTEXT
from mission_control.console import csrf
from mission_control.console.guard import safe_next
from mission_control.console.keys import DIRECTORY, PREFIX, SESSION_POLICY, current_session
from mission_control.console.sessions import COOKIE, close_session, open_session

MAX_FIELD = 1024
LOGIN_PATH = PREFIX + "/login"


def _login_form(
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
            "username": username,
            "next": safe_next(request.query.get("next")),
        },
        status=status,
    )
    response.set_cookie(
        csrf.LOGIN_COOKIE,
        token,
        path=LOGIN_PATH,
        httponly=True,
        samesite="Strict",
        secure=request.secure,
    )
    return response


async def login_form(request: web.Request) -> web.StreamResponse:
    return _login_form(request)


def _field(form: Mapping[str, object], name: str) -> str:
    value = form.get(name)
    return value[:MAX_FIELD] if isinstance(value, str) else ""


async def login_submit(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    if not csrf.tokens_match(_field(form, csrf.FIELD), request.cookies.get(csrf.LOGIN_COOKIE)):
        return _login_form(
            request,
            error="The login form expired or did not come from this page: try again.",
            status=403,
        )
    username = _field(form, "username").strip()
    password = _field(form, "password")
    code = _field(form, "totp").replace(" ", "")
    if not username or not password or not code:
        return _login_form(
            request,
            error="Enter your username, password and the 6-digit code.",
            username=username,
            status=400,
        )
    outcome = await request.app[DIRECTORY].verify(username, password, code)
    if isinstance(outcome, str):
        return _login_form(request, error=outcome, username=username, status=401)
    ctx = request.config_dict[CONTEXT]
    cookie, _session = await open_session(ctx.engine, outcome, ctx.clock())
    response = web.Response(status=303, headers={"Location": safe_next(_field(form, "next"))})
    response.set_cookie(
        COOKIE,
        cookie,
        path=PREFIX + "/",
        httponly=True,
        samesite="Strict",
        secure=request.secure,
    )
    response.del_cookie(csrf.LOGIN_COOKIE, path=LOGIN_PATH)
    return response


async def logout(request: web.Request) -> web.StreamResponse:
    ctx = request.config_dict[CONTEXT]
    await close_session(ctx.engine, current_session(request))
    response = web.Response(status=303, headers={"Location": LOGIN_PATH})
    response.del_cookie(COOKIE, path=PREFIX + "/")
    return response
