"""The console's middleware: sessions, CSRF on every POST, security headers, HTML errors.

For every route except the public ones (login, static files):
- no session cookie, or an unknown one: redirect to the login page (GET) or 403 (POST);
- a session idle for longer than the idle timeout, or older than its maximum age: deleted, the
  cookie cleared, and a redirect to the login page saying the session expired;
- a session whose account is now disabled (or gone): deleted, the cookie cleared, and a
  redirect to the login page; the account's current role applies to every request;
- a POST whose form lacks the session's CSRF token: 403, and nothing is done.
A page reloading itself (`<meta http-equiv="refresh">` to a URL with ``auto=1``) does not count
as activity, so a screen left open still reaches the idle timeout.
Refusals of the services (`ServiceError`: not found, forbidden, a state that does not allow the
action, a refused command) become one-line pages with their status.
Every response gets a strict Content-Security-Policy (no scripts at all, styles only from the
console's own stylesheet), no framing, no sniffing, and pages are never cached; a
``Server-Timing: app;dur=<ms>`` header says how long the server spent on it. Errors are
rendered as one-line HTML pages, never a traceback.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from urllib.parse import quote, unquote, urlsplit

import aiohttp_jinja2
from aiohttp import web
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from mission_control.app_keys import CONTEXT
from mission_control.console import cookies, csrf
from mission_control.console.cookies import COOKIE
from mission_control.console.keys import PREFIX, SESSION_POLICY, set_session
from mission_control.errors import DatabaseNotReady, Forbidden, NotFound, ServiceError
from mission_control.service.accounts.console_sessions import (
    Verdict,
    end_session,
    find_session,
    needs_touch,
    touch,
    verdict,
)
from mission_control.service.refusals import Refused

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
AUTO_REFRESH = "auto"
PUBLIC_ROUTES = frozenset(
    {
        "console.login",
        "console.login.submit",
        "console.login.oidc",
        "console.login.oidc.callback",
        "console.login.oidc.totp",
        "console.login.saml",
        "console.login.saml.acs",
        "console.login.saml.totp",
        "console.login.saml.metadata",
        "console.static",
    }
)

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def _console_path(target: str) -> bool:
    """True for a same-origin path that stays under the console once a browser resolves it:
    no scheme or host, no control characters or backslashes, and no `.` or `..` segment, also
    percent-encoded (browsers resolve `%2e%2e` as `..`)."""
    if not target.startswith(PREFIX + "/") or any(ord(c) < 0x20 or ord(c) == 0x7F for c in target):
        return False
    path = unquote(urlsplit(target).path)
    if "//" in path or "\\" in path or not path.startswith(PREFIX + "/"):
        return False
    return not any(segment in (".", "..") for segment in path.split("/"))


def safe_next(target: str | None) -> str:
    """Where to go after login: a path under the console only (never another site, never out
    of `/console/` after normalisation), else the fleet."""
    if target and _console_path(target):
        return target
    return PREFIX + "/"


def login_url(next_path: str, *, expired: bool = False) -> str:
    query = f"next={quote(safe_next(next_path), safe='/')}"
    return f"{PREFIX}/login?{'expired=1&' if expired else ''}{query}"


def back_link(request: web.Request) -> str:
    """The console page the browser came from (same-origin Referer), else the fleet."""
    referer = urlsplit(request.headers.get("Referer", ""))
    if referer.netloc and referer.netloc != request.host:
        return PREFIX + "/"
    return safe_next(referer.path + (f"?{referer.query}" if referer.query else ""))


def error_page(request: web.Request, status: int, message: str) -> web.Response:
    return aiohttp_jinja2.render_template(
        "error.html",
        request,
        {"status": status, "message": message, "back": back_link(request)},
        status=status,
    )


def refusal_status(error: ServiceError) -> int:
    """The HTTP status of a service's refusal, as the JSON API maps it."""
    if isinstance(error, NotFound):
        return 404
    if isinstance(error, Forbidden):
        return 403
    if isinstance(error, Refused):
        return error.http_status
    return 400


def _redirect(location: str, status: int = 303) -> web.Response:
    return web.Response(status=status, headers={"Location": location})


async def _admit(request: web.Request, handler: Handler) -> web.StreamResponse:
    ctx = request.config_dict[CONTEXT]
    policy = request.app[SESSION_POLICY]
    session = await find_session(ctx.engine, request.cookies.get(COOKIE, ""))
    if session is None:
        if request.method == "POST":
            return error_page(request, 403, "you are not logged in: log in and try again")
        return _redirect(login_url(request.path_qs))
    now = ctx.clock()
    judged = verdict(session, now, policy)
    if judged is not Verdict.ACTIVE:
        await end_session(ctx, session)
        target = request.path_qs if request.method == "GET" else PREFIX + "/"
        response = _redirect(login_url(target, expired=judged is not Verdict.DISABLED))
        cookies.clear_session(response)
        return response
    if request.method == "POST":
        form = await request.post()
        presented = form.get(csrf.FIELD)
        if not csrf.tokens_match(
            presented if isinstance(presented, str) else None, session.csrf_token
        ):
            return error_page(
                request, 403, "this form is missing its security token: reload the page and retry"
            )
    if needs_touch(session, now, policy) and not request.query.get(AUTO_REFRESH):
        await touch(ctx.engine, session, now)
    set_session(request, session)
    return await handler(request)


@web.middleware
async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    started = time.perf_counter()
    try:
        failure = request.match_info.http_exception
        if failure is not None:
            raise failure
        if request.match_info.route.name in PUBLIC_ROUTES:
            response = await handler(request)
        else:
            response = await _admit(request, handler)
    except web.HTTPMove as redirect:
        response = _redirect(str(redirect.location), redirect.status)
    except web.HTTPException as error:
        message = error.text if error.text and not error.text.startswith(str(error.status)) else ""
        response = error_page(request, error.status, message or error.reason)
        if "Allow" in error.headers:  # a 405 names the methods the route has
            response.headers["Allow"] = error.headers["Allow"]
    except (OperationalError, InterfaceError, PoolTimeout, DatabaseNotReady, OSError) as error:
        log.warning("console: database unavailable: %s", error)
        response = error_page(request, 503, "the database is unavailable: retry in a moment")
    except ServiceError as error:
        response = error_page(request, refusal_status(error), str(error))
    except Exception:
        log.exception("console: unexpected error on %s %s", request.method, request.path)
        response = error_page(request, 500, "something went wrong on our side; it was logged")
    response.headers.update(SECURITY_HEADERS)
    if request.match_info.route.name != "console.static":
        response.headers["Cache-Control"] = "no-store"
    # Time spent in the server (session, queries, template), for browsers' developer tools and
    # benchmarks/console.py.
    response.headers["Server-Timing"] = f"app;dur={(time.perf_counter() - started) * 1000:.1f}"
    return response
