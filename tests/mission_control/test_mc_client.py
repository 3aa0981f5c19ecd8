"""The client library against real servers on loopback: HTTPS with the dev CA, error classes."""

from __future__ import annotations

import asyncio
import ssl
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from mc_kit import FakeClock, make_settings, running
from mc_messages import consumption, event, health, heartbeat, license_check
from mc_postgres import free_port

from cluster.link.client import MissionControlClient
from cluster.link.errors import MessageRejected, MissionControlUnavailable
from contract.certs import DevCA
from contract.messages import HeartbeatReply
from contract.routes import HEALTH
from mission_control.app import create_app
from mission_control.db.engine import create_engine
from mission_control.service.context import ServiceContext
from mission_control.service.fleet import enrollment


@pytest.fixture
async def https_server(sqlite_url: str, clock: FakeClock, dev_ca: DevCA) -> AsyncIterator[str]:
    async with running(create_app(make_settings(sqlite_url), clock=clock), tls=dev_ca) as url:
        yield url


async def new_token(sqlite_url: str, name: str, clock: FakeClock) -> str:
    engine = create_engine(sqlite_url)
    try:
        created = await enrollment.create_cluster(
            ServiceContext(engine=engine, clock=clock), name, "AU"
        )
    finally:
        await engine.dispose()
    return created.enrollment_token


async def post_raw(
    url: str, dev_ca: DevCA, mc: MissionControlClient, path: str, body: dict[str, object]
) -> int:
    """The status Mission Control answers to a body no model of the client would send."""
    tls = ssl.create_default_context(cafile=str(dev_ca.ca_cert))
    target = f"{url}/api/v1/clusters/{mc.cluster_id}/{path}"
    headers = {"Authorization": f"Bearer {mc.credential}"}
    async with (
        aiohttp.ClientSession() as http,
        http.post(target, json=body, headers=headers, ssl=tls) as response,
    ):
        return response.status


async def test_full_exchange_over_https(
    https_server: str, sqlite_url: str, dev_ca: DevCA, clock: FakeClock
) -> None:
    token = await new_token(sqlite_url, "acme", clock)
    async with MissionControlClient(
        https_server, credential=None, ca_file=str(dev_ca.ca_cert)
    ) as mc:
        enrolled = await mc.enroll(token)
        assert mc.credential == enrolled.credential and mc.cluster_id == enrolled.cluster_id
        assert (await mc.health(health(epoch=3))).status == "healthy"
        assert (await mc.license_check(license_check(epoch=3))).state == "expired"
        report = consumption(epoch=3)
        assert (await mc.consumption(report)).recorded
        resent = await mc.consumption(report)
        assert resent.duplicate and resent.recorded
        reply = await mc.heartbeat(heartbeat(epoch=3))
        assert reply.support_requests == [] and reply.commands == []
        assert (await mc.event(event(epoch=3))).recorded
        raw = await mc.heartbeat(heartbeat(epoch=4))
        assert raw == HeartbeatReply(duplicate=False, support_requests=[], commands=[])
        with pytest.raises(MessageRejected) as stale:
            await mc.health(health(epoch=2))
        assert (stale.value.status, stale.value.code) == (409, "stale_epoch")
        invalid = await post_raw(https_server, dev_ca, mc, "health", {"message_id": "nope"})
        assert invalid == 422
        with pytest.raises(TypeError, match="does not travel by health"):
            await mc.deliver(HEALTH, heartbeat(epoch=4))  # type: ignore[arg-type]
    # A client holding a credential from a restart keeps working.
    async with MissionControlClient(
        https_server, credential=enrolled.credential, ca_file=str(dev_ca.ca_cert)
    ) as again:
        assert (await again.heartbeat(heartbeat(epoch=4))).duplicate is False


async def test_bad_credential_is_rejected_not_retried(https_server: str, dev_ca: DevCA) -> None:
    forged = f"mcc.{uuid.uuid4()}.forged"
    async with MissionControlClient(
        https_server, credential=forged, ca_file=str(dev_ca.ca_cert)
    ) as mc:
        with pytest.raises(MessageRejected) as caught:
            await mc.heartbeat(heartbeat())
    assert caught.value.status == 401
    async with MissionControlClient(
        https_server, credential=None, ca_file=str(dev_ca.ca_cert)
    ) as mc:
        with pytest.raises(MessageRejected, match="enroll first"):
            await mc.heartbeat(heartbeat())


async def test_server_certificate_is_verified(https_server: str) -> None:
    async with MissionControlClient(https_server, credential=None) as mc:  # system CAs only
        with pytest.raises(MissionControlUnavailable, match="certificate"):
            await mc.enroll("mce.x")


def test_plain_http_needs_opt_in() -> None:
    with pytest.raises(ValueError, match="refusing plain http"):
        MissionControlClient("http://127.0.0.1:1", credential=None)
    with pytest.raises(ValueError, match="https://HOST"):
        MissionControlClient("ftp://example", credential=None)
    MissionControlClient("http://127.0.0.1:1", credential=None, insecure_http=True)


async def test_unreachable_server_is_unavailable() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    async with MissionControlClient(url, credential=None, insecure_http=True) as mc:
        with pytest.raises(MissionControlUnavailable, match="cannot reach"):
            await mc.enroll("mce.x")


async def test_5xx_429_and_timeouts_are_unavailable() -> None:
    async def failing(request: web.Request) -> web.Response:
        return web.Response(status=int(request.match_info["status"]), text="busy")

    async def slow(_request: web.Request) -> web.Response:
        await asyncio.sleep(5)
        return web.json_response({})

    app = web.Application()
    app.router.add_post("/{status:\\d+}/api/v1/enroll", failing)
    app.router.add_post("/slow/api/v1/enroll", slow)
    async with running(app) as url:
        for status in (500, 503, 429):
            async with MissionControlClient(
                f"{url}/{status}", credential=None, insecure_http=True
            ) as mc:
                with pytest.raises(MissionControlUnavailable, match=str(status)):
                    await mc.enroll("mce.x")
        async with MissionControlClient(
            f"{url}/slow", credential=None, insecure_http=True, timeout=0.3
        ) as mc:
            with pytest.raises(MissionControlUnavailable):
                await mc.enroll("mce.x")


async def test_minimum_tls_version_is_enforced(sqlite_url: str, dev_ca: DevCA) -> None:
    app = create_app(make_settings(sqlite_url))
    async with running(app, tls=dev_ca, min_version="1.3") as url:
        port = int(url.rsplit(":", 1)[1])
        old = ssl.create_default_context(cafile=str(dev_ca.ca_cert))
        old.maximum_version = ssl.TLSVersion.TLSv1_2
        with pytest.raises((ssl.SSLError, ConnectionResetError)):
            await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port, ssl=old), 10)
        modern = ssl.create_default_context(cafile=str(dev_ca.ca_cert))
        _, writer = await asyncio.wait_for(
            asyncio.open_connection("127.0.0.1", port, ssl=modern), 10
        )
        assert writer.get_extra_info("ssl_object").version() == "TLSv1.3"
        writer.close()
        await writer.wait_closed()


async def test_cipher_list_is_enforced(sqlite_url: str, dev_ca: DevCA) -> None:
    chosen = "ECDHE-ECDSA-AES128-GCM-SHA256"
    app = create_app(make_settings(sqlite_url))
    async with running(app, tls=dev_ca, ciphers=chosen) as url:
        port = int(url.rsplit(":", 1)[1])

        def tls12(ciphers: str) -> ssl.SSLContext:
            context = ssl.create_default_context(cafile=str(dev_ca.ca_cert))
            context.maximum_version = ssl.TLSVersion.TLSv1_2
            context.set_ciphers(ciphers)
            return context

        other = tls12("ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305")
        with pytest.raises((ssl.SSLError, ConnectionResetError)):
            await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port, ssl=other), 10)
        _, writer = await asyncio.wait_for(
            asyncio.open_connection("127.0.0.1", port, ssl=tls12(f"{chosen}:AES256-SHA")), 10
        )
        assert writer.get_extra_info("ssl_object").cipher()[0] == chosen
        writer.close()
        await writer.wait_closed()


def test_an_unusable_ca_file_is_one_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "ca.pem"
    bad.write_text("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    with pytest.raises(ValueError, match="holds no valid PEM certificate"):
        MissionControlClient("https://127.0.0.1:1", credential=None, ca_file=str(bad))
    with pytest.raises(ValueError, match="cannot read the CA certificate"):
        MissionControlClient("https://127.0.0.1:1", credential=None, ca_file=str(tmp_path / "x"))
