"""Test kit for monitoring data: nodes serving the HTTPS data API with a dev CA, tokens, and
plain HTTPS requests that report the status code (the tests check refusals too)."""

from __future__ import annotations

import json
import ssl
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clusterkit import ClusterUnderTest

from cluster import zk
from cluster.data import registry
from cluster.dev.processes import free_port, wait_until
from contract.certs import DevCA, write_dev_ca


@dataclass
class DataCluster:
    cluster: ClusterUnderTest
    tls: DevCA
    data: dict[str, str] = field(default_factory=dict)  # node -> HOST:PORT of its data API

    @classmethod
    def create(cls, cluster: ClusterUnderTest) -> DataCluster:
        return cls(cluster, write_dev_ca(cluster.base / "tls", ["127.0.0.1", "localhost"]))

    def env_for(self, node: str) -> dict[str, str]:
        address = self.data.setdefault(node, f"127.0.0.1:{free_port()}")
        return {
            "MANAGED_DATA_LISTEN": address,
            "MANAGED_TLS_CERT": str(self.tls.server_cert),
            "MANAGED_TLS_KEY": str(self.tls.server_key),
        }

    def start(self, count: int = 3) -> list[str]:
        nodes = [f"n{i}" for i in range(1, count + 1)]
        for n in nodes:
            self.cluster.join(n)
        for n in nodes:
            self.run(n)
        self.wait_serving(nodes)
        return nodes

    def run(self, node: str, data_dir: Path | None = None) -> None:
        self.cluster.run(node, data_dir=data_dir, env=self.env_for(node))

    def wait_serving(self, nodes: list[str], timeout: float = 30) -> None:
        client = zk.connect(self.cluster.hosts, auth="operators:test-secret")
        try:
            ok = wait_until(
                lambda: set(nodes) <= set(registry.endpoints(client, self.cluster.paths)),
                timeout,
            )
        finally:
            zk.close(client)
        assert ok, self.cluster.logs()

    def cli(self, *args: str) -> str:
        r = self.cluster.cli(*args)
        assert r.returncode == 0, r.stderr
        return r.stdout

    def read(self, *args: str, token: str) -> dict[str, Any]:
        r = self.cluster.cli(
            "data", *args, "--json", "--token", token, "--ca-file", str(self.tls.ca_cert)
        )
        assert r.returncode == 0, r.stderr
        return dict(json.loads(r.stdout))

    def wait_token_known(self, token: str, nodes: list[str], timeout: float = 15) -> None:
        """Until every node in `nodes` knows `token` (nodes pick new tokens up within about a
        second): a known token of another scope is refused with 403, an unknown one with 401."""

        def known() -> bool:
            return all(self.request(n, "/v1/capture-rules", token=token)[0] != 401 for n in nodes)

        assert wait_until(known, timeout), f"token not known on {nodes} after {timeout} s"

    def url(self, node: str, path: str) -> str:
        return f"https://{self.data[node]}{path}"

    def request(
        self,
        node: str,
        path: str,
        body: bytes | None = None,
        token: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        return https(self.url(node, path), self.tls.ca_cert, body, token, headers)


def https(
    url: str,
    ca: Path,
    body: bytes | None = None,
    token: str | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    context = ssl.create_default_context(cafile=str(ca))
    sent = dict(headers or {})
    if token is not None:
        sent["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=body, headers=sent)
    try:
        with urllib.request.urlopen(request, timeout=10, context=context) as r:
            raw = r.read()
            return r.status, json.loads(raw) if raw[:1] in (b"{", b"[") else raw.decode()
    except urllib.error.HTTPError as e:
        raw = e.read()
        return e.code, json.loads(raw) if raw[:1] in (b"{", b"[") else raw.decode()


def beacon(app: str, session: str, *events: dict[str, Any], **extra: Any) -> bytes:
    doc = {"app": app, "session": session, "events": list(events), **extra}
    return json.dumps(doc).encode()


def load(page: str, at: float | None = None) -> dict[str, Any]:
    """A page load at `at` (milliseconds since the epoch), by default now: an older one is
    deleted by the node's retention sweep (every minute) while a slow test still reads it."""
    at = time.time() * 1000 if at is None else at
    return {"type": "load", "at": at, "name": "page load", "page": page, "duration_ms": 120}
