"""Who sent a request, for the login throttle: the peer, or the client a trusted proxy names.

`serve` runs behind a TLS proxy in production (docs/deployment.md), so the peer of every
request is the proxy; `--trusted-proxy` / `MISSION_CONTROL_TRUSTED_PROXIES` names it, and its
`X-Forwarded-For` is believed (`mission_control.staff.throttle.client_address`). Without it the
peer's address is used and any `X-Forwarded-For` is ignored.
"""

from __future__ import annotations

from aiohttp import web

from mission_control.app_keys import SETTINGS
from mission_control.staff.throttle import client_address


def request_source(request: web.Request) -> str | None:
    trusted = request.config_dict[SETTINGS].trusted_proxies
    return client_address(request.remote, request.headers.get("X-Forwarded-For"), trusted)
