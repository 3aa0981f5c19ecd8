"""The OpenID Connect provider process of the sign-in tests (`oidc_provider_serve.py`), with
its own TLS certificate and free loopback port, stopped by PID afterwards."""

from __future__ import annotations

import ssl
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cluster.dev.processes import free_port, start, wait_until
from contract.certs import DevCA, write_dev_ca

SERVE = Path(__file__).with_name("oidc_provider_serve.py")


@dataclass(frozen=True)
class Provider:
    issuer: str
    tls: DevCA

    def _call(self, method: str, path: str, body: bytes | None = None) -> int:
        context = ssl.create_default_context(cafile=str(self.tls.ca_cert))
        request = urllib.request.Request(
            self.issuer + path,
            data=body,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, context=context, timeout=10) as reply:
            return int(reply.status)

    def set_person(self, sub: str, **claims: Any) -> None:
        """The person `sub` with these claims in their ID tokens (the provider's own API)."""
        import json

        assert self._call("PUT", f"/users/{sub}", json.dumps(claims).encode()) == 204

    def publish_other_key(self) -> None:
        assert self._call("POST", "/test/publish-other-key", b"") == 204

    def answers(self) -> bool:
        try:
            return self._call("GET", "/.well-known/openid-configuration") == 200
        except OSError:
            return False


@contextmanager
def oidc_provider(base: Path, token_lifetime_s: int = 3600) -> Iterator[Provider]:
    base.mkdir(parents=True, exist_ok=True)
    tls = write_dev_ca(base / "tls", ["127.0.0.1"])
    port = free_port()
    argv = [sys.executable, str(SERVE), str(port), str(tls.server_cert), str(tls.server_key)]
    argv.append(str(token_lifetime_s))
    process = start("oidc-provider", argv, base / "log")
    provider = Provider(f"https://127.0.0.1:{port}", tls)
    try:
        if not wait_until(provider.answers, 30, 0.1):
            raise RuntimeError(f"the OIDC provider did not start: {process.log_tail(20)}")
        yield provider
    finally:
        process.stop(timeout=10)
