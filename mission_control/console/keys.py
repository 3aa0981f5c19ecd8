"""Typed state of the console sub-application, and the logged-in session of a request."""

from __future__ import annotations

from aiohttp import web

from mission_control.console.directory import StaffDirectory
from mission_control.console.settings import ConsoleSettings
from mission_control.service.accounts.console_sessions import ConsoleSession, SessionPolicy

CONSOLE_SETTINGS = web.AppKey("console_settings", ConsoleSettings)
SESSION_POLICY = web.AppKey("console_session_policy", SessionPolicy)
DIRECTORY = web.AppKey("console_staff_directory", StaffDirectory)
_SESSION = web.RequestKey("console_session", ConsoleSession)
PREFIX = "/console"


def set_session(request: web.Request, session: ConsoleSession) -> None:
    request[_SESSION] = session


def current_session(request: web.Request) -> ConsoleSession:
    """The session the guard admitted this request with (every page but login has one)."""
    try:
        return request[_SESSION]
    except KeyError:
        raise RuntimeError("no console session on this request") from None
