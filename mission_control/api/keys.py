"""Typed application state (aiohttp `AppKey`s) shared by the app factory and the handlers."""

from __future__ import annotations

from aiohttp import web

from mission_control.api.auth import CredentialCache
from mission_control.service.context import ServiceContext
from mission_control.settings import Settings

SETTINGS = web.AppKey("settings", Settings)
CONTEXT = web.AppKey("context", ServiceContext)
CREDENTIALS = web.AppKey("credentials", CredentialCache)
OPENAPI = web.AppKey("openapi", bytes)
