"""The console's two cookies, always with the same protections.

Both are ``Secure``, ``HttpOnly`` and ``SameSite=Strict`` whatever the listener: in production
`mission-control serve` speaks plain HTTP to the TLS proxy in front of it (docs/deployment.md),
so the request's own scheme says nothing about what the browser sees. Browsers treat
``http://localhost`` and ``http://127.0.0.1`` as secure contexts and keep Secure cookies there,
so local development over plain HTTP still works; on any other plain-HTTP address the browser
drops them and a login cannot stick (`insecure_origin` lets the login page say so).

- ``mc_session`` (path ``/console/``): the session (`service.accounts.console_sessions`);
- the login form's double-submit CSRF token (path ``/console/login``; see `csrf`).
"""

from __future__ import annotations

import ipaddress

from aiohttp import web

from mission_control.console import csrf
from mission_control.console.keys import PREFIX

COOKIE = "mc_session"
SESSION_PATH = PREFIX + "/"
LOGIN_PATH = PREFIX + "/login"
_LOCAL_NAMES = frozenset({"localhost"})


def _set(response: web.StreamResponse, name: str, value: str, path: str) -> None:
    response.set_cookie(name, value, path=path, httponly=True, samesite="Strict", secure=True)


def set_lax(response: web.StreamResponse, name: str, value: str, path: str, max_age: int) -> None:
    """A cookie the browser sends back on a top-level navigation from another site (an
    identity provider's redirect to the callback): SameSite=Lax, still HttpOnly and Secure."""
    response.set_cookie(
        name, value, path=path, httponly=True, samesite="Lax", secure=True, max_age=max_age
    )


def set_cross_site(
    response: web.StreamResponse, name: str, value: str, path: str, max_age: int
) -> None:
    """A cookie the browser sends back on a POST from another site (a SAML provider's form
    posting its response): SameSite=None, which browsers accept only with Secure; still
    HttpOnly. Only for sealed, single-use sign-in state, never for a session."""
    response.set_cookie(
        name, value, path=path, httponly=True, samesite="None", secure=True, max_age=max_age
    )


def _clear(response: web.StreamResponse, name: str, path: str) -> None:
    response.del_cookie(name, path=path, httponly=True, samesite="Strict", secure=True)


def set_session(response: web.StreamResponse, value: str) -> None:
    _set(response, COOKIE, value, SESSION_PATH)


def clear_session(response: web.StreamResponse) -> None:
    _clear(response, COOKIE, SESSION_PATH)


def set_login_token(response: web.StreamResponse, value: str) -> None:
    _set(response, csrf.LOGIN_COOKIE, value, LOGIN_PATH)


def clear_login_token(response: web.StreamResponse) -> None:
    _clear(response, csrf.LOGIN_COOKIE, LOGIN_PATH)


def _loopback(host: str) -> bool:
    name = host.strip("[]").lower()
    if name in _LOCAL_NAMES or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def insecure_origin(request: web.Request) -> bool:
    """True when the browser reached this page over plain HTTP on an address it will not keep
    Secure cookies for (not loopback, and no proxy saying it ended TLS). Only used to warn:
    a client can send any header, and nothing here grants access."""
    if request.secure or request.headers.get("X-Forwarded-Proto", "").lower() == "https":
        return False
    host = request.url.host or ""
    return not _loopback(host)
