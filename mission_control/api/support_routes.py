"""Routes of staff accounts and remote support: login/logout, access requests, commands, the
audit log (staff), and the cluster's support messages. Handlers only translate HTTP to one
service call; `SUPPORT_ROUTES` joins the main route table (and so the OpenAPI document).
"""

from __future__ import annotations

from aiohttp import web

from contract.messages import (
    AuditCheckpointCopy,
    ClusterCheckpoints,
    SupportAck,
    SupportCommandResult,
    SupportDecision,
    SupportPolicyReport,
    SupportPublicKey,
)
from mission_control.api.auth import bearer, require_own_cluster
from mission_control.api.bodies import json_reply, read_body, read_query
from mission_control.api.handlers import (
    CLUSTER_ERRORS,
    authenticate_cluster,
    authenticate_staff_request,
    cluster_message,
)
from mission_control.app_keys import CONTEXT
from mission_control.openapi import Route
from mission_control.request_source import request_source
from mission_control.service.accounts import audit_log, staff
from mission_control.service.fleet.admin import cluster_id_or_scope
from mission_control.service.refusals import LoginRefused, LoginThrottled
from mission_control.service.support import access_requests, cluster_audit, commands
from mission_control.service.support.sync import command_result, decision, policy, public_key
from mission_control.staff_protocol import (
    AccessRequestCreate,
    AccessRequestList,
    AccessRequestQuery,
    AccessRequestView,
    AuditList,
    AuditQuery,
    CommandCreate,
    CommandList,
    CommandView,
    LoginReply,
    LoginRequest,
    LogoutReply,
    RevokeRequest,
)

PREFIX = "/api/v1"
_REQUESTS = PREFIX + "/access-requests"
_ONE = _REQUESTS + "/{request_id}"
_CLUSTER = PREFIX + "/clusters/{cluster_id}/support"
_CLUSTER_AUDIT = PREFIX + "/clusters/{cluster_id}/audit"
_STAFF_ERRORS = (401, 404, 503)
_STAFF_WRITE_ERRORS = (400, 401, 403, 404, 409, 413, 422, 503)


async def login(request: web.Request) -> web.StreamResponse:
    body = await read_body(request, LoginRequest)
    ctx = request.app[CONTEXT]
    source = request_source(request)
    result = await staff.login(ctx, body.username, body.password, body.totp, source=source)
    return await session_reply(request, result)


async def session_reply(request: web.Request, result: staff.LoginResult) -> web.Response:
    """A session token for an accepted login (any method), or its refusal."""
    ctx = request.app[CONTEXT]
    if result.identity is None:
        raise (LoginThrottled if result.throttled else LoginRefused)(result.message)
    identity = result.identity
    issued = await staff.create_staff_token(
        ctx,
        identity.user,
        by=identity.actor,
        kind="session",
        expires_at=ctx.clock() + ctx.support.session_ttl,
    )
    assert issued.expires_at is not None
    return json_reply(
        LoginReply(
            token=issued.token, user=issued.user, role=issued.role, expires_at=issued.expires_at
        )
    )


async def logout(request: web.Request) -> web.StreamResponse:
    identity = await authenticate_staff_request(request)
    await staff.logout(request.app[CONTEXT], bearer(request), identity)
    return json_reply(LogoutReply(logged_out=True))


async def create_request(request: web.Request) -> web.StreamResponse:
    identity = await authenticate_staff_request(request)
    body = await read_body(request, AccessRequestCreate)
    return json_reply(await access_requests.create_request(request.app[CONTEXT], identity, body))


async def list_requests(request: web.Request) -> web.StreamResponse:
    identity = await authenticate_staff_request(request)
    query = read_query(request, AccessRequestQuery)
    found = await access_requests.list_requests(request.app[CONTEXT], identity, query.cluster)
    return json_reply(AccessRequestList(requests=found))


async def get_request(request: web.Request) -> web.StreamResponse:
    identity = await authenticate_staff_request(request)
    request_id = request.match_info["request_id"]
    return json_reply(await access_requests.get_request(request.app[CONTEXT], identity, request_id))


async def end_request(request: web.Request) -> web.StreamResponse:
    identity = await authenticate_staff_request(request)
    request_id = request.match_info["request_id"]
    return json_reply(await access_requests.end_request(request.app[CONTEXT], identity, request_id))


async def revoke_request(request: web.Request) -> web.StreamResponse:
    identity = await authenticate_staff_request(request)
    body = await read_body(request, RevokeRequest) if request.can_read_body else RevokeRequest()
    request_id = request.match_info["request_id"]
    ctx = request.app[CONTEXT]
    return json_reply(await access_requests.revoke_request(ctx, identity, request_id, body.reason))


async def cluster_checkpoints(request: web.Request) -> web.StreamResponse:
    cluster_id = await authenticate_cluster(request)
    require_own_cluster(cluster_id, request.match_info["cluster_id"])
    return json_reply(await cluster_audit.list_checkpoints(request.app[CONTEXT], cluster_id))


async def issue_command(request: web.Request) -> web.StreamResponse:
    identity = await authenticate_staff_request(request)
    body = await read_body(request, CommandCreate)
    request_id = request.match_info["request_id"]
    ctx = request.app[CONTEXT]
    return json_reply(await commands.issue_command(ctx, identity, request_id, body))


async def list_commands(request: web.Request) -> web.StreamResponse:
    identity = await authenticate_staff_request(request)
    request_id = request.match_info["request_id"]
    found = await commands.list_commands(request.app[CONTEXT], identity, request_id)
    return json_reply(CommandList(commands=found))


async def list_audit(request: web.Request) -> web.StreamResponse:
    viewer = await authenticate_staff_request(request)
    query = read_query(request, AuditQuery)
    ctx = request.app[CONTEXT]
    cluster = query.cluster
    if cluster is not None:
        cluster = await cluster_id_or_scope(ctx, cluster)
    entries = await audit_log.list_entries(
        ctx,
        viewer=viewer,
        actor=query.actor,
        cluster=cluster,
        action=query.action,
        since=query.since,
        limit=query.limit,
    )
    return json_reply(AuditList.model_validate({"entries": [e.to_json() for e in entries]}))


SUPPORT_ROUTES: tuple[Route, ...] = (
    Route(
        "POST",
        PREFIX + "/login",
        login,
        "login",
        "Staff login with password and TOTP code; returns a session bearer token.",
        reply=LoginReply,
        request=LoginRequest,
        errors=(400, 401, 413, 422, 429, 503),
    ),
    Route(
        "POST",
        PREFIX + "/logout",
        logout,
        "logout",
        "Revoke the bearer token of this request.",
        reply=LogoutReply,
        auth="staff",
        errors=(401, 503),
    ),
    Route(
        "POST",
        _REQUESTS,
        create_request,
        "createAccessRequest",
        "Request access to a cluster (support-l2/l3 only); pending until the cluster decides.",
        reply=AccessRequestView,
        request=AccessRequestCreate,
        auth="staff",
        errors=_STAFF_WRITE_ERRORS,
    ),
    Route(
        "GET",
        _REQUESTS,
        list_requests,
        "listAccessRequests",
        "Access requests, newest first: one's own, or all for operators and admins.",
        reply=AccessRequestList,
        query=AccessRequestQuery,
        auth="staff",
        errors=(401, 404, 422, 503),
    ),
    Route(
        "GET",
        _ONE,
        get_request,
        "getAccessRequest",
        "One access request with its state, decision and grant window.",
        reply=AccessRequestView,
        auth="staff",
        errors=_STAFF_ERRORS,
    ),
    Route(
        "POST",
        _ONE + "/end",
        end_request,
        "endAccessRequest",
        "The requesting engineer ends the running grant early; the cluster applies it.",
        reply=AccessRequestView,
        auth="staff",
        errors=(401, 403, 404, 409, 503),
    ),
    Route(
        "POST",
        _ONE + "/revoke",
        revoke_request,
        "revokeAccessRequest",
        "Staff end a running grant now (support-l3, operators and admins: any grant; an "
        "engineer: their own); the cluster applies it before its next command.",
        reply=AccessRequestView,
        request=RevokeRequest,
        auth="staff",
        errors=(400, 401, 403, 404, 409, 413, 422, 503),
    ),
    Route(
        "POST",
        _ONE + "/commands",
        issue_command,
        "issueCommand",
        "Queue a command under the caller's running grant (the role must allow it).",
        reply=CommandView,
        request=CommandCreate,
        auth="staff",
        errors=_STAFF_WRITE_ERRORS,
    ),
    Route(
        "GET",
        _ONE + "/commands",
        list_commands,
        "listCommands",
        "The request's commands with the cluster's answers (output already redacted).",
        reply=CommandList,
        auth="staff",
        errors=_STAFF_ERRORS,
    ),
    Route(
        "GET",
        PREFIX + "/audit",
        list_audit,
        "listAudit",
        "Mission Control's audit log, newest first, filtered by actor, cluster, action, time.",
        reply=AuditList,
        query=AuditQuery,
        auth="staff",
        errors=(401, 422, 503),
    ),
    Route(
        "POST",
        _CLUSTER + "/decision",
        cluster_message(SupportDecision, decision),
        "postSupportDecision",
        "The cluster's decision on a request; `approved` needs a signed approval.",
        reply=SupportAck,
        request=SupportDecision,
        auth="cluster",
        errors=(*CLUSTER_ERRORS, 404),
    ),
    Route(
        "POST",
        _CLUSTER + "/command-result",
        cluster_message(SupportCommandResult, command_result),
        "postSupportCommandResult",
        "The cluster's answer to a queued command (output already redacted).",
        reply=SupportAck,
        request=SupportCommandResult,
        auth="cluster",
        errors=(*CLUSTER_ERRORS, 404),
    ),
    Route(
        "POST",
        _CLUSTER + "/public-key",
        cluster_message(SupportPublicKey, public_key),
        "postSupportPublicKey",
        "The cluster's Ed25519 approval key; the first one is pinned.",
        reply=SupportAck,
        request=SupportPublicKey,
        auth="cluster",
        errors=CLUSTER_ERRORS,
    ),
    Route(
        "POST",
        _CLUSTER_AUDIT + "/checkpoint",
        cluster_message(AuditCheckpointCopy, cluster_audit.checkpoint),
        "postAuditCheckpoint",
        "A signed checkpoint of the cluster's audit log; Mission Control keeps a copy.",
        reply=SupportAck,
        request=AuditCheckpointCopy,
        auth="cluster",
        errors=CLUSTER_ERRORS,
    ),
    Route(
        "GET",
        _CLUSTER_AUDIT + "/checkpoints",
        cluster_checkpoints,
        "listAuditCheckpoints",
        "The cluster's own checkpoint copies and the key pinned for it (`managed audit verify`).",
        reply=ClusterCheckpoints,
        auth="cluster",
        errors=(401, 403, 503),
    ),
    Route(
        "POST",
        _CLUSTER + "/policy",
        cluster_message(SupportPolicyReport, policy),
        "postSupportPolicy",
        "The cluster's support policy, for display (the cluster decides on requests).",
        reply=SupportAck,
        request=SupportPolicyReport,
        auth="cluster",
        errors=CLUSTER_ERRORS,
    ),
)
