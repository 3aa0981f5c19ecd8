"""Staff sign-in through the customer's directory: `POST /api/v1/login/ldap` (configured with
`MISSION_CONTROL_LDAP`). The session token it returns is the same as a local login's, so the
API and the console take it alike."""

from __future__ import annotations

from aiohttp import web

from mission_control.api.bodies import read_body
from mission_control.api.support_routes import session_reply
from mission_control.app_keys import CONTEXT, SETTINGS
from mission_control.errors import NotFound
from mission_control.openapi import Route
from mission_control.request_source import request_source
from mission_control.service.accounts.ldap_login import login_ldap
from mission_control.staff_protocol import DirectoryLoginRequest, LoginReply

PREFIX = "/api/v1"


async def ldap_login(request: web.Request) -> web.StreamResponse:
    directory = request.app[SETTINGS].ldap
    if directory is None:
        raise NotFound("LDAP sign-in is not configured on this server")
    body = await read_body(request, DirectoryLoginRequest)
    result = await login_ldap(
        request.app[CONTEXT],
        directory,
        body.username,
        body.password,
        body.totp,
        source=request_source(request),
    )
    return await session_reply(request, result)


DIRECTORY_ROUTES: tuple[Route, ...] = (
    Route(
        "POST",
        PREFIX + "/login/ldap",
        ldap_login,
        "loginLdap",
        "Staff login with the directory's password (and TOTP code for support roles); the "
        "role comes from the person's directory groups; returns a session bearer token.",
        reply=LoginReply,
        request=DirectoryLoginRequest,
        errors=(400, 401, 404, 413, 422, 429, 503),
    ),
)
