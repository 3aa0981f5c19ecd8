"""The edges of HTTP on a real in-process server: requests aiohttp cannot parse, 405 with
`Allow`, numbers that must be numbers on the wire, the largest epoch, and the newest epoch
named in a `stale_epoch` refusal (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from urllib.parse import urlsplit

import pytest
from mc_api import Api
from mc_messages import consumption_json, health_json
from mcs_staff import staff_token

from contract.limits import MAX_EPOCH
from mission_control.service.fleet import admin


async def raw_request(url: str, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send `request` as is; the status, headers and body of the answer."""
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    try:
        writer.write(request)
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), {k.lower(): v for k, v in headers.items()}, body


@pytest.mark.parametrize(
    "header",
    [b"X-Big: " + b"a" * 20_000, b"X-Nul: a\x00b"],
    ids=["oversized-header", "nul-in-header"],
)
async def test_unparseable_requests_get_a_json_error_and_one_log_line(
    api: Api, header: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    request = b"GET /api/v1/alerts HTTP/1.1\r\nHost: x\r\n" + header + b"\r\n\r\n"
    status, headers, body = await raw_request(api.url, request)
    assert status == 400
    assert headers["content-type"].startswith("application/json")
    reply = json.loads(body)
    assert reply["error"]["code"] == "bad_request" and reply["error"]["message"]
    refused = [r for r in caplog.records if "malformed request" in r.getMessage()]
    assert len(refused) == 1 and refused[0].exc_info is None
    assert not any(r.exc_info for r in caplog.records)


async def test_what_is_not_http_gets_a_json_error_and_no_warning(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    status, headers, body = await raw_request(api.url, b"\x16\x03\x01 TLS? /\r\n\r\n")
    assert status == 400 and json.loads(body)["error"]["code"] == "bad_request"
    assert not [r for r in caplog.records if r.levelno >= logging.INFO and "malformed" in r.msg]


async def test_405_names_the_allowed_methods(api: Api) -> None:
    async with api.http.delete(api.url + "/api/v1/alerts") as response:
        assert response.status == 405
        assert set(response.headers["Allow"].split(",")) >= {"GET"}
        assert (await response.json())["error"]["code"] == "method_not_allowed"


async def test_uuids_times_and_integer_floats_still_parse_from_json(api: Api) -> None:
    cluster, credential = await api.enroll("acme")
    body = consumption_json(host_units=3, host_unit_hours=3)  # integers for floats
    status, reply = await api.call(
        "POST", f"/api/v1/clusters/{cluster}/consumption", body, credential
    )
    assert status == 200 and reply["recorded"] is True, reply


async def test_the_largest_epoch_is_stored_and_one_more_is_refused(api: Api) -> None:
    cluster, credential = await api.enroll("acme")
    path = f"/api/v1/clusters/{cluster}/health"
    status, reply = await api.call("POST", path, health_json(MAX_EPOCH + 1), credential)
    assert (status, reply["error"]["code"]) == (422, "invalid_request")
    assert await api.stored_messages() == 0
    # The largest storable epoch is one a cluster can still send again (equal epochs pass).
    assert (await api.call("POST", path, health_json(MAX_EPOCH), credential))[0] == 200
    assert (await api.call("POST", path, health_json(MAX_EPOCH), credential))[0] == 200
    epochs = {c.id: c.last_epoch for c in await admin.list_clusters(api.admin)}
    assert epochs[cluster] == MAX_EPOCH


async def test_stale_epoch_names_the_newest_epoch(api: Api) -> None:
    cluster, credential = await api.enroll("acme")
    path = f"/api/v1/clusters/{cluster}/health"
    assert (await api.call("POST", path, health_json(41), credential))[0] == 200
    assert (await api.call("POST", path, health_json(42), credential))[0] == 200
    status, reply = await api.call("POST", path, health_json(3), credential)
    assert status == 409
    assert reply["error"]["code"] == "stale_epoch" and reply["error"]["newest_epoch"] == 42
    # Other errors keep their shape: no newest_epoch.
    status, reply = await api.call("POST", path, health_json(-1), credential)
    assert status == 422 and "newest_epoch" not in reply["error"]


async def test_staff_bodies_take_numbers_and_flags_as_json_numbers(api: Api) -> None:
    token = await staff_token(api.admin, "sam", "support-l2")
    await api.enroll("acme")
    body = {"cluster": "acme", "reason": "ticket 1", "role": "viewer", "duration": True}
    status, reply = await api.call("POST", "/api/v1/access-requests", body, token)
    assert (status, reply["error"]["code"]) == (422, "invalid_request"), reply
    command = {"command": "logs tail", "arguments": {"lines": "100"}}
    status, reply = await api.call(
        "POST", f"/api/v1/access-requests/{uuid.uuid4()}/commands", command, token
    )
    assert (status, reply["error"]["code"]) == (422, "invalid_request"), reply
    assert "arguments.lines" in reply["error"]["message"]
