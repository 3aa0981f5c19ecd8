"""The HTTP API on a real in-process aiohttp server, on SQLite and PostgreSQL: auth, errors
(bad input is 4xx and stores nothing), staff reads, OpenAPI."""

from __future__ import annotations

import json
import uuid
from typing import Any

import openapi_spec_validator  # in the [dev] extra: a missing one fails, never skips
import pytest
from mc_api import Api
from mc_kit import make_settings
from mc_messages import consumption_json, health_json
from mcs_staff import staff_token as new_staff_token

from mission_control.api.routes import ROUTES
from mission_control.app import create_app


async def test_enroll_and_report(api: Api) -> None:
    cluster, credential = await api.enroll("acme")
    status, reply = await api.call(
        "POST", f"/api/v1/clusters/{cluster}/health", health_json(1), credential
    )
    assert status == 200
    assert reply["status"] == "healthy" and reply["duplicate"] is False
    assert reply["advice"] == {
        "min_nodes": 3,
        "min_cpu_cores": 12,
        "min_memory_bytes": 48 * 1024**3,
    }
    status, reply = await api.call(
        "POST",
        f"/api/v1/clusters/{cluster}/heartbeat",
        {"message_id": str(uuid.uuid4()), "epoch": 1},
        credential,
    )
    assert (status, reply) == (
        200,
        {"duplicate": False, "support_requests": [], "commands": []},
    )


async def test_bad_enrollment_token(api: Api) -> None:
    status, reply = await api.call("POST", "/api/v1/enroll", {"token": "mce.nope"})
    assert status == 401 and reply["error"]["code"] == "unauthorized"


async def test_credentials_reach_only_their_own_cluster(api: Api) -> None:
    alpha, alpha_credential = await api.enroll("alpha")
    beta, _ = await api.enroll("beta")
    path = f"/api/v1/clusters/{beta}/health"
    status, reply = await api.call("POST", path, health_json(1), alpha_credential)
    assert status == 403 and reply["error"]["code"] == "forbidden"
    assert (await api.call("POST", path, health_json(1)))[0] == 401
    for bad in ("garbage", f"mcc.{beta}.forged", alpha_credential + "x"):
        assert (await api.call("POST", path, health_json(1), bad))[0] == 401
    staff_token = await new_staff_token(api.admin, "ops", "admin")
    assert (await api.call("POST", path, health_json(1), staff_token))[0] == 401
    assert await api.stored_messages() == 0
    status, _ = await api.call(
        "POST", f"/api/v1/clusters/{alpha}/health", health_json(1), alpha_credential
    )
    assert status == 200


async def test_stale_epoch_409_and_duplicate_resend(api: Api) -> None:
    cluster, credential = await api.enroll("acme")
    path = f"/api/v1/clusters/{cluster}/health"
    first_message = health_json(7)
    assert (await api.call("POST", path, first_message, credential))[0] == 200
    status, reply = await api.call("POST", path, health_json(6), credential)
    assert status == 409 and reply["error"]["code"] == "stale_epoch"
    assert "epoch 6 is older than epoch 7" in reply["error"]["message"]
    status, reply = await api.call("POST", path, first_message, credential)
    assert status == 200 and reply["duplicate"] is True
    assert await api.stored_messages() == 1


@pytest.mark.parametrize(
    ("raw", "status", "code"),
    [
        (b"{not json", 400, "malformed_json"),
        (b"", 400, "malformed_json"),
        (b"[1, 2]", 422, "invalid_request"),
        (json.dumps({**health_json(1), "epoch": "one"}).encode(), 422, "invalid_request"),
        (json.dumps({**health_json(1), "epoch": -1}).encode(), 422, "invalid_request"),
        (json.dumps({**health_json(1), "surprise": 1}).encode(), 422, "invalid_request"),
        (json.dumps({**health_json(1), "message_id": "x"}).encode(), 422, "invalid_request"),
        (json.dumps({**health_json(1), "nodes": []}).encode(), 422, "invalid_request"),
        (b'{"a": "' + b"x" * 70_000 + b'"}', 413, "body_too_large"),
    ],
    ids=[
        "not-json",
        "empty",
        "not-an-object",
        "wrong-type",
        "out-of-range",
        "unknown-field",
        "bad-uuid",
        "no-nodes",
        "oversize",
    ],
)
async def test_bad_bodies_get_4xx_and_store_nothing(
    api: Api, raw: bytes, status: int, code: str
) -> None:
    cluster, credential = await api.enroll("acme")
    got, reply = await api.call(
        "POST", f"/api/v1/clusters/{cluster}/health", token=credential, raw=raw
    )
    assert (got, reply["error"]["code"]) == (status, code), reply
    assert reply["error"]["message"]
    assert await api.stored_messages() == 0


def node_with(**fields: Any) -> dict[str, Any]:
    body = health_json(1, nodes=1)
    body["nodes"][0].update(fields)
    return body


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("health", node_with(memory_total_bytes=2**53, memory_used_bytes=0), "memory_total"),
        ("health", node_with(version="1.0\x00evil"), "control characters"),
        ("health", node_with(version="1.0\x1b[31m"), "control characters"),
        ("health", {**health_json(1), "health_interval_s": 0}, "health_interval_s"),
        (
            "events",
            {
                "message_id": str(uuid.uuid4()),
                "epoch": 1,
                "kind": "backup_failed",
                "detail": "a\x00",
            },
            "control characters",
        ),
        (
            "consumption",
            {
                "message_id": str(uuid.uuid4()),
                "epoch": 1,
                "environment": "prod",
                "period_start": "2030-06-01T05:00:00+05:30",  # 23:30 UTC
                "host_units": 3,
                "host_unit_hours": 3,
            },
            "on the hour",
        ),
        # Numbers are numbers on the wire: pydantic's lax mode would read false as 0.
        ("health", health_json(False), "epoch"),
        ("health", health_json(1, health_interval_s=True), "health_interval_s"),
        ("consumption", consumption_json(host_unit_hours=False), "host_unit_hours"),
        ("consumption", consumption_json(host_units="3"), "host_units"),
        ("license", {"message_id": str(uuid.uuid4()), "epoch": 1, "host_units_in_use": True}, ""),
        ("health", health_json(1.0), "epoch"),
        # A time is RFC 3339 text, as the document says: lax mode would read seconds since 1970.
        ("consumption", consumption_json(period_start=1_900_000_800), "period_start"),
        ("consumption", consumption_json(period_start="1900000800"), "period_start"),
    ],
    ids=[
        "bytes-over-2^53",
        "nul",
        "escape",
        "zero-interval",
        "nul-in-event",
        "half-hour-offset",
        "epoch-false",
        "interval-true",
        "hours-false",
        "units-string",
        "in-use-true",
        "epoch-1.0",
        "time-as-number",
        "time-as-digits",
    ],
)
async def test_values_no_back_end_can_store_are_refused(
    api: Api, path: str, body: dict[str, Any], field: str
) -> None:
    cluster, credential = await api.enroll("acme")
    status, reply = await api.call("POST", f"/api/v1/clusters/{cluster}/{path}", body, credential)
    assert (status, reply["error"]["code"]) == (422, "invalid_request"), reply
    assert field in reply["error"]["message"]
    assert await api.stored_messages() == 0
    staff = await new_staff_token(api.admin, "ops", "operator")
    assert (await api.call("GET", "/api/v1/alerts?state=all", token=staff))[1]["alerts"] == []


async def test_text_with_tabs_and_newlines_is_accepted(api: Api) -> None:
    cluster, credential = await api.enroll("acme")
    body = {
        "message_id": str(uuid.uuid4()),
        "epoch": 1,
        "kind": "backup_failed",
        "detail": "S3 refused:\n\t403 Forbidden",
    }
    status, _ = await api.call("POST", f"/api/v1/clusters/{cluster}/events", body, credential)
    assert status == 200 and await api.stored_messages() == 1


async def test_validation_message_names_the_field(api: Api) -> None:
    cluster, credential = await api.enroll("acme")
    body = health_json(1)
    body["nodes"][0]["memory_used_bytes"] = body["nodes"][0]["memory_total_bytes"] + 1
    _, reply = await api.call("POST", f"/api/v1/clusters/{cluster}/health", body, credential)
    assert "nodes.0" in reply["error"]["message"]
    assert "memory_used_bytes exceeds memory_total_bytes" in reply["error"]["message"]


async def test_consumption_rejects_periods_off_the_hour(api: Api) -> None:
    cluster, credential = await api.enroll("acme")
    body = {
        "message_id": str(uuid.uuid4()),
        "epoch": 1,
        "environment": "prod",
        "period_start": "2030-06-01T05:30:00Z",
        "host_units": 3,
        "host_unit_hours": 3,
    }
    status, reply = await api.call(
        "POST", f"/api/v1/clusters/{cluster}/consumption", body, credential
    )
    assert status == 422 and "on the hour" in reply["error"]["message"]
    body["period_start"] = "2030-06-01T05:00:00"  # no time zone
    assert (await api.call("POST", f"/api/v1/clusters/{cluster}/consumption", body, credential))[
        0
    ] == 422
    body["period_start"] = "2030-06-01T05:00:00+05:00"  # 00:00 UTC: on the hour
    assert (await api.call("POST", f"/api/v1/clusters/{cluster}/consumption", body, credential))[
        0
    ] == 200


async def test_unknown_route_and_method_are_json(api: Api) -> None:
    status, reply = await api.call("GET", "/api/v1/nothing")
    assert status == 404 and reply["error"]["code"] == "not_found"
    status, reply = await api.call("DELETE", "/api/v1/alerts")
    assert status == 405 and reply["error"]["code"] == "method_not_allowed"


async def test_staff_reads_need_a_staff_token(api: Api) -> None:
    cluster, credential = await api.enroll("acme")
    await api.call(
        "POST", f"/api/v1/clusters/{cluster}/health", health_json(1, nodes=1), credential
    )
    for path in ("/api/v1/clusters", "/api/v1/alerts"):
        assert (await api.call("GET", path))[0] == 401
        assert (await api.call("GET", path, token=credential))[0] == 401
    token = await new_staff_token(api.admin, "ops", "operator")
    status, reply = await api.call("GET", "/api/v1/clusters", token=token)
    assert status == 200
    (summary,) = reply["clusters"]
    assert (summary["name"], summary["health_status"], summary["last_epoch"]) == (
        "acme",
        "undersized",
        1,
    )
    status, reply = await api.call("GET", "/api/v1/alerts", token=token)
    assert status == 200
    assert [a["kind"] for a in reply["alerts"]] == ["cluster_undersized"]
    status, reply = await api.call("GET", "/api/v1/alerts?state=all&cluster=acme", token=token)
    assert status == 200 and len(reply["alerts"]) == 1
    status, reply = await api.call("GET", "/api/v1/alerts?state=maybe", token=token)
    assert status == 422


async def test_a_time_in_a_query_is_rfc_3339_text(api: Api) -> None:
    """Found by fuzzing: `?since=721` was read as 721 seconds after 1970, which the OpenAPI
    document (a date-time string) does not allow."""
    token = await new_staff_token(api.admin, "ops", "operator")
    for since in ("721", "1.5e9", "-3"):
        status, reply = await api.call("GET", f"/api/v1/audit?since={since}", token=token)
        assert (status, reply["error"]["code"]) == (422, "invalid_request"), (since, reply)
        assert "since" in reply["error"]["message"]
    status, _ = await api.call("GET", "/api/v1/audit?since=2030-06-01T00:00:00Z", token=token)
    assert status == 200


async def test_openapi_matches_the_routes_exactly(api: Api) -> None:
    status, document = await api.call("GET", "/api/v1/openapi.json")
    assert status == 200 and document["openapi"].startswith("3.")
    documented = {
        (method.upper(), path) for path, item in document["paths"].items() for method in item
    }
    app = create_app(make_settings("sqlite:///unused.db"))
    served = {  # the API; the console's HTML pages (/, /console/...) are not part of it
        (route.method, route.resource.canonical)
        for route in app.router.routes()
        if route.resource is not None and route.resource.canonical.startswith("/api/")
    }
    assert documented == served
    assert documented == {(r.method, r.path) for r in ROUTES}
    schemas = document["components"]["schemas"]
    for path, item in document["paths"].items():
        for operation in item.values():
            refs = [
                c["schema"]["$ref"]
                for r in operation["responses"].values()
                for c in r["content"].values()
                if "$ref" in c["schema"]
            ]
            if "requestBody" in operation:
                refs.append(
                    operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
                )
            for ref in refs:
                assert ref.rsplit("/", 1)[1] in schemas, (path, ref)
    assert "additionalProperties" in schemas["HealthReport"]  # unknown fields refused


def test_openapi_document_is_valid() -> None:
    from mission_control.openapi import build_document

    openapi_spec_validator.validate(build_document(ROUTES, "1.0"))
