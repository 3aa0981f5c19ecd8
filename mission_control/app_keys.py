"""Typed application state (aiohttp `AppKey`s) that the app factory sets and both the API and
the console read: the settings, the service context, the OpenAPI document."""

from __future__ import annotations

from aiohttp import web

from mission_control.service.context import ServiceContext
from mission_control.settings import Settings

SETTINGS = web.AppKey("settings", Settings)
CONTEXT = web.AppKey("context", ServiceContext)
OPENAPI = web.AppKey("openapi", bytes)
