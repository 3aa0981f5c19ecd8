"""Handler building blocks shared by the route tables: who is calling, and cluster messages.

Authentication always happens before the body is read (see `mission_control.api.auth`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from aiohttp import web
from pydantic import BaseModel

from contract.messages import ClusterMessage
from mission_control.api.auth import bearer, require_own_cluster
from mission_control.api.bodies import json_reply, read_body
from mission_control.api.keys import CREDENTIALS
from mission_control.app_keys import CONTEXT
from mission_control.openapi import Handler
from mission_control.service.accounts.staff import authenticate_staff
from mission_control.service.context import ServiceContext
from mission_control.service.fleet import enrollment
from mission_control.staff.identity import StaffIdentity

M = TypeVar("M", bound=ClusterMessage)
R = TypeVar("R", bound=BaseModel)
CLUSTER_ERRORS = (400, 401, 403, 409, 413, 422, 503)


async def authenticate_cluster(request: web.Request) -> str:
    """The cluster id the request's credential belongs to (cached for a short time)."""
    credential = bearer(request)
    cache = request.app[CREDENTIALS]
    cluster_id = cache.get(credential)
    if cluster_id is None:
        cluster_id = await enrollment.authenticate_cluster(request.app[CONTEXT], credential)
        cache.put(credential, cluster_id)
    return cluster_id


async def authenticate_staff_request(request: web.Request) -> StaffIdentity:
    return await authenticate_staff(request.app[CONTEXT], bearer(request), remote=request.remote)


def cluster_message(
    model: type[M], action: Callable[[ServiceContext, str, M], Awaitable[R]]
) -> Handler:
    """A handler for one kind of cluster message: auth, then body, then the service call."""

    async def handle(request: web.Request) -> web.StreamResponse:
        cluster_id = await authenticate_cluster(request)
        require_own_cluster(cluster_id, request.match_info["cluster_id"])
        message = await read_body(request, model)
        return json_reply(await action(request.app[CONTEXT], cluster_id, message))

    return handle
