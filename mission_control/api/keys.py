"""Typed application state (aiohttp `AppKey`s) of the API alone; see `mission_control.app_keys`
for what the console shares."""

from __future__ import annotations

from aiohttp import web

from mission_control.api.auth import CredentialCache
from mission_control.service.fleet.leak_reporters import ReporterKeys

CREDENTIALS = web.AppKey("credentials", CredentialCache)
LEAK_REPORTERS = web.AppKey("leak_reporters", ReporterKeys)
