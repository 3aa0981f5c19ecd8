"""End to end: `mission-control serve` as a subprocess over HTTPS with the dev CA, driven by the
CLI and the client library, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import aiohttp
import pytest
from click.testing import CliRunner
from mc_messages import consumption, health, health_json, heartbeat, license_check
from mc_postgres import free_port
from mc_process import cli_process, serve, stop

from cluster.link.client import MissionControlClient
from cluster.link.errors import MessageRejected
from contract.certs import DevCA
from mission_control.cli import main


async def cli(*args: str, stdin: str | None = None) -> str:
    """In-process CLI (fast; in a thread, as it runs its own event loop)."""
    result = await asyncio.to_thread(CliRunner().invoke, main, list(args), stdin)
    assert result.exit_code == 0, result.output
    return result.stdout.strip()


async def test_server_process_over_https(db_url: str, dev_ca: DevCA, tmp_path: Path) -> None:
    port = free_port()
    url = f"https://127.0.0.1:{port}"
    ca = str(dev_ca.ca_cert)
    with serve(
        db_url,
        port,
        tls=(dev_ca.server_cert, dev_ca.server_key),
        ca_file=dev_ca.ca_cert,
        extra=["--max-body-bytes", "65536"],
        log=tmp_path / "serve.log",
    ) as process:
        token_a = cli_process("clusters", "create", "alpha", "--geography", "EU", "--db", db_url)
        token_b = await cli("clusters", "create", "beta", "--geography", "US", "--db", db_url)
        await cli(
            "licenses",
            "set",
            "alpha",
            "--host-units",
            "10",
            "--expires",
            "2099-12-31",
            "--db",
            db_url,
        )
        password = "Violet-harbour-42-kites\n" * 2
        await cli("users", "add", "ops", "--role", "operator", "--db", db_url, stdin=password)
        staff = await cli("tokens", "create", "--user", "ops", "--role", "operator", "--db", db_url)

        async with (
            MissionControlClient(url, credential=None, ca_file=ca) as a,
            MissionControlClient(url, credential=None, ca_file=ca) as b,
        ):
            alpha = await a.enroll(token_a)
            beta = await b.enroll(token_b)
            with pytest.raises(MessageRejected) as used:
                await b.enroll(token_b)
            assert used.value.status == 401

            assert (await a.health(health(epoch=2, nodes=1))).status == "undersized"
            lic = await a.license_check(license_check(epoch=2, in_use=12))
            assert (lic.state, lic.quotas.host_units) == ("overage", 10)

            report = consumption(epoch=2)
            assert (await a.consumption(report)).recorded
            assert (await a.consumption(report)).duplicate
            with pytest.raises(MessageRejected) as stale:
                await a.heartbeat(heartbeat(epoch=1))
            assert stale.value.status == 409

        async with aiohttp.ClientSession() as http:
            ssl_ctx = __import__("ssl").create_default_context(cafile=ca)

            async def post(path: str, body: bytes, credential: str | None) -> int:
                headers = {"Authorization": f"Bearer {credential}"} if credential else {}
                async with http.post(url + path, data=body, headers=headers, ssl=ssl_ctx) as r:
                    assert r.content_type == "application/json"
                    return r.status

            beta_health = f"/api/v1/clusters/{beta.cluster_id}/health"
            good = json.dumps(health_json(5)).encode()
            assert await post(beta_health, good, alpha.credential) == 403
            assert await post(beta_health, good, None) == 401
            assert await post(beta_health, good, f"mcc.{beta.cluster_id}.bad") == 401
            assert await post(beta_health, b"{oops", beta.credential) == 400
            assert await post(beta_health, b'{"epoch": "x"}', beta.credential) == 422
            assert await post(beta_health, b"[" + b"1," * 40_000 + b"1]", beta.credential) == 413
            assert await post(beta_health, good, beta.credential) == 200

            headers = {"Authorization": f"Bearer {staff}"}
            async with http.get(url + "/api/v1/alerts", headers=headers, ssl=ssl_ctx) as r:
                kinds = {(a["cluster_name"], a["kind"]) for a in (await r.json())["alerts"]}
            assert ("alpha", "cluster_undersized") in kinds
            assert ("alpha", "license_overage") in kinds
            async with http.get(url + "/api/v1/alerts", ssl=ssl_ctx) as r:
                assert r.status == 401

        listed = json.loads(
            await cli("alerts", "list", "--json", "--cluster", "alpha", "--db", db_url)
        )
        assert {a["kind"] for a in listed} == {"cluster_undersized", "license_overage"}
        assert stop(process) == 0  # SIGTERM is a clean exit
    assert uuid.UUID(alpha.cluster_id)
