"""The /api/v1 routes: each handler authenticates, parses, calls one service function, replies.

The table `ROUTES` is the single source for the router and the OpenAPI document.
"""

from __future__ import annotations

from aiohttp import web

from contract.messages import (
    Alert,
    AlertList,
    AlertQuery,
    ClusterEvent,
    ClusterList,
    ConsumptionReply,
    ConsumptionReport,
    EnrollReply,
    EnrollRequest,
    EventReply,
    HealthReply,
    HealthReport,
    Heartbeat,
    HeartbeatReply,
    LicenseCheck,
    LicenseReply,
)
from mission_control.api.bodies import json_reply, read_body, read_query
from mission_control.api.credential_routes import CREDENTIAL_ROUTES
from mission_control.api.directory_routes import DIRECTORY_ROUTES
from mission_control.api.handlers import (
    CLUSTER_ERRORS,
    authenticate_staff_request,
    cluster_message,
)
from mission_control.api.release_routes import RELEASE_ROUTES
from mission_control.api.support_routes import SUPPORT_ROUTES
from mission_control.app_keys import CONTEXT, OPENAPI
from mission_control.openapi import Route
from mission_control.service.exchange import alert_store, cluster_messages
from mission_control.service.fleet import admin, enrollment

PREFIX = "/api/v1"
_CLUSTER_ERRORS = CLUSTER_ERRORS


async def enroll(request: web.Request) -> web.StreamResponse:
    body = await read_body(request, EnrollRequest)
    return json_reply(await enrollment.enroll(request.app[CONTEXT], body.token))


async def list_clusters(request: web.Request) -> web.StreamResponse:
    await authenticate_staff_request(request)
    clusters = await admin.list_clusters(request.app[CONTEXT])
    return json_reply(ClusterList(clusters=clusters))


async def list_alerts(request: web.Request) -> web.StreamResponse:
    await authenticate_staff_request(request)
    query = read_query(request, AlertQuery)
    found = await alert_store.list_alerts(
        request.app[CONTEXT], active_only=query.state == "active", cluster=query.cluster
    )
    return json_reply(AlertList(alerts=found))


async def acknowledge_alert(request: web.Request) -> web.StreamResponse:
    identity = await authenticate_staff_request(request)
    acknowledged = await alert_store.acknowledge_alert(
        request.app[CONTEXT], request.match_info["alert_id"], by=identity.actor, role=identity.role
    )
    return json_reply(acknowledged)


async def openapi_document(request: web.Request) -> web.StreamResponse:
    return web.Response(body=request.app[OPENAPI], content_type="application/json")


_CLUSTER = PREFIX + "/clusters/{cluster_id}"

ROUTES: tuple[Route, ...] = (
    Route(
        "POST",
        PREFIX + "/enroll",
        enroll,
        "enroll",
        "Exchange a one-time enrollment token for the cluster's credential.",
        reply=EnrollReply,
        request=EnrollRequest,
        errors=(400, 401, 413, 422, 503),
    ),
    Route(
        "POST",
        _CLUSTER + "/health",
        cluster_message(HealthReport, cluster_messages.health),
        "postHealth",
        "Health check: per-node figures in, status and sizing advice out.",
        reply=HealthReply,
        request=HealthReport,
        auth="cluster",
        errors=_CLUSTER_ERRORS,
    ),
    Route(
        "POST",
        _CLUSTER + "/license",
        cluster_message(LicenseCheck, cluster_messages.license_check),
        "postLicenseCheck",
        "License check: host units in use in, license state and quotas out.",
        reply=LicenseReply,
        request=LicenseCheck,
        auth="cluster",
        errors=_CLUSTER_ERRORS,
    ),
    Route(
        "POST",
        _CLUSTER + "/consumption",
        cluster_message(ConsumptionReport, cluster_messages.record_consumption),
        "postConsumption",
        "Hourly consumption of one environment; idempotent per (environment, period).",
        reply=ConsumptionReply,
        request=ConsumptionReport,
        auth="cluster",
        errors=_CLUSTER_ERRORS,
    ),
    Route(
        "POST",
        _CLUSTER + "/heartbeat",
        cluster_message(Heartbeat, cluster_messages.heartbeat),
        "postHeartbeat",
        "Heartbeat: this cluster's open support requests and unanswered commands out.",
        reply=HeartbeatReply,
        request=Heartbeat,
        auth="cluster",
        errors=_CLUSTER_ERRORS,
    ),
    Route(
        "POST",
        _CLUSTER + "/events",
        cluster_message(ClusterEvent, cluster_messages.record_event),
        "postEvent",
        "An event raised by the cluster (backup_failed / backup_succeeded).",
        reply=EventReply,
        request=ClusterEvent,
        auth="cluster",
        errors=_CLUSTER_ERRORS,
    ),
    Route(
        "GET",
        PREFIX + "/clusters",
        list_clusters,
        "listClusters",
        "All clusters with enrollment, health and license summary (staff).",
        reply=ClusterList,
        auth="staff",
        errors=(401, 503),
    ),
    Route(
        "GET",
        PREFIX + "/alerts",
        list_alerts,
        "listAlerts",
        "Alerts, newest first; active ones unless state=all (staff).",
        reply=AlertList,
        query=AlertQuery,
        auth="staff",
        errors=(401, 422, 503),
    ),
    Route(
        "POST",
        PREFIX + "/alerts/{alert_id}/acknowledge",
        acknowledge_alert,
        "acknowledgeAlert",
        "Close an open alert only a person closes (setting_changed, datacenter_back); "
        "operators and admins.",
        reply=Alert,
        auth="staff",
        errors=(401, 403, 404, 409, 503),
    ),
    Route(
        "GET",
        PREFIX + "/openapi.json",
        openapi_document,
        "openapi",
        "This OpenAPI document.",
        reply=None,
    ),
    *SUPPORT_ROUTES,
    *CREDENTIAL_ROUTES,
    *DIRECTORY_ROUTES,
    *RELEASE_ROUTES,
)
