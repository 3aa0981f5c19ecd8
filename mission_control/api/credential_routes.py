"""Routes of credentials after enrollment: a cluster rotates or renews its own, anyone trusted
reports leaked ones (`POST /api/v1/leaks`, GitHub's secret scanning partner format).

A leak report is authenticated before its body is parsed: by a signature over the raw body
from a configured reporter key (`mission_control.service.fleet.leak_reporters`), or by the
staff token of an operator or admin. Revocations take effect in this request; this process's
cache of credentials is emptied with it (other workers stop accepting a revoked credential
within `credential_cache_s`).
"""

from __future__ import annotations

from aiohttp import web

from contract.audit.events import Actor, ActorKind
from contract.messages import CredentialReply, CredentialRequest, LeakReply, LeakReport
from mission_control.api.auth import bearer, require_own_cluster
from mission_control.api.bodies import json_reply, read_body
from mission_control.api.handlers import authenticate_cluster, authenticate_staff_request
from mission_control.api.keys import CREDENTIALS, LEAK_REPORTERS
from mission_control.app_keys import CONTEXT
from mission_control.errors import Forbidden
from mission_control.openapi import Route
from mission_control.service.fleet import credentials, leaks
from mission_control.service.fleet.leak_reporters import KEY_ID_HEADER, SIGNATURE_HEADER
from mission_control.staff.roles import can_acknowledge_alerts

PREFIX = "/api/v1"
_CREDENTIAL = PREFIX + "/clusters/{cluster_id}/credential"


async def rotate_credential(request: web.Request) -> web.StreamResponse:
    cluster_id = await authenticate_cluster(request)
    require_own_cluster(cluster_id, request.match_info["cluster_id"])
    await read_body(request, CredentialRequest)
    reply = await credentials.rotate(request.app[CONTEXT], cluster_id, bearer(request))
    request.app[CREDENTIALS].clear()
    return json_reply(reply)


async def renew_credential(request: web.Request) -> web.StreamResponse:
    secret = bearer(request)
    await read_body(request, CredentialRequest)
    reply = await credentials.renew(request.app[CONTEXT], request.match_info["cluster_id"], secret)
    return json_reply(reply)


async def _reporter(request: web.Request, body: bytes) -> Actor:
    if request.headers.get("Authorization"):
        identity = await authenticate_staff_request(request)
        if not can_acknowledge_alerts(identity.role):
            raise Forbidden("only operators and admins report leaked credentials")
        return identity.actor
    key_id = request.app[LEAK_REPORTERS].verify(
        body, request.headers.get(KEY_ID_HEADER), request.headers.get(SIGNATURE_HEADER)
    )
    return Actor(f"secret scanner {key_id[:16]}", ActorKind.SYSTEM, via="leak report")


async def report_leaks(request: web.Request) -> web.StreamResponse:
    reporter = await _reporter(request, await request.read())
    report = await read_body(request, LeakReport)
    reply = await leaks.report_leaks(request.app[CONTEXT], report, by=reporter)
    request.app[CREDENTIALS].clear()
    return json_reply(reply)


CREDENTIAL_ROUTES: tuple[Route, ...] = (
    Route(
        "POST",
        _CREDENTIAL + "/rotate",
        rotate_credential,
        "rotateCredential",
        "A new credential and renewal secret for the calling cluster; the old ones stop working.",
        reply=CredentialReply,
        request=CredentialRequest,
        auth="cluster",
        errors=(400, 401, 403, 413, 422, 503),
    ),
    Route(
        "POST",
        _CREDENTIAL + "/renew",
        renew_credential,
        "renewCredential",
        "After a leak revoked the credential: a new pair for the cluster's renewal secret "
        "(Authorization: Bearer mcr_...), once.",
        reply=CredentialReply,
        request=CredentialRequest,
        auth="cluster",
        errors=(400, 401, 413, 422, 503),
    ),
    Route(
        "POST",
        PREFIX + "/leaks",
        report_leaks,
        "reportLeaks",
        "Leaked tokens (GitHub secret scanning partner format), each revoked at once; signed "
        f"({KEY_ID_HEADER}, {SIGNATURE_HEADER}) or by an operator's or admin's staff token.",
        reply=LeakReply,
        request=LeakReport,
        auth="staff",
        errors=(400, 401, 403, 413, 422, 503),
    ),
)
