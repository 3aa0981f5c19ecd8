"""A real OpenID Connect provider offering the device authorization grant (authlib's server
side, `device_provider_serve.py`) in its own process over TLS, and `managed login` run against
it as an operator runs it (the test plays the person at the provider's device page)."""

from __future__ import annotations

import json
import os
import re
import ssl
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from cluster.dev.processes import free_port, start, wait_until
from cluster.operator_identity import StoredIdentity, identity_path, load_identity
from contract.certs import DevCA, write_dev_ca

SERVE = Path(__file__).with_name("device_provider_serve.py")
MANAGED = str(Path(sys.executable).with_name("managed"))
CLIENT = "managed-cli"
PEOPLE = {
    "u-1001": {"preferred_username": "olga", "groups": ["cluster-approvers"]},
    "u-1002": {"preferred_username": "tim", "groups": ["staff"]},
    # An approver whose ID tokens expire a second after they are issued.
    "u-1003": {"preferred_username": "kim", "groups": ["cluster-approvers"], "lifetime_s": 1},
}


@dataclass(frozen=True)
class DeviceProvider:
    issuer: str
    tls: DevCA

    def decide(self, user_code: str, sub: str, approve: bool) -> None:
        body = json.dumps({"user_code": user_code, "sub": sub, "approve": approve}).encode()
        request = urllib.request.Request(
            self.issuer + "/device", data=body, headers={"Content-Type": "application/json"}
        )
        context = ssl.create_default_context(cafile=str(self.tls.ca_cert))
        with urllib.request.urlopen(request, context=context, timeout=10) as reply:
            assert reply.status == 204

    def answers(self) -> bool:
        context = ssl.create_default_context(cafile=str(self.tls.ca_cert))
        try:
            url = self.issuer + "/.well-known/openid-configuration"
            with urllib.request.urlopen(url, context=context, timeout=2) as reply:
                return bool(reply.status == 200)
        except OSError:
            return False


@contextmanager
def device_provider(base: Path) -> Iterator[DeviceProvider]:
    tls = write_dev_ca(base / "tls", ["127.0.0.1"])
    port = free_port()
    argv = [
        sys.executable,
        str(SERVE),
        str(port),
        str(tls.server_cert),
        str(tls.server_key),
        CLIENT,
        json.dumps(PEOPLE),
    ]
    process = start("device-provider", argv, base / "log")
    provider = DeviceProvider(f"https://127.0.0.1:{port}", tls)
    try:
        assert wait_until(provider.answers, 30, 0.1), process.log_tail(20)
        yield provider
    finally:
        process.stop(timeout=10)


def run_login(
    provider: DeviceProvider, home: Path, sub: str, approve: bool
) -> subprocess.CompletedProcess[str]:
    """`managed login` as the operator runs it; the test plays the person at the device page."""
    env = {**os.environ, "XDG_CONFIG_HOME": str(home)}
    argv = [
        MANAGED,
        "login",
        "--issuer",
        provider.issuer,
        "--client-id",
        CLIENT,
        "--ca-file",
        str(provider.tls.ca_cert),
    ]
    with subprocess.Popen(
        argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as process:
        try:
            assert process.stderr is not None
            line = process.stderr.readline()
            found = re.search(r"enter the code (\S+)", line)
            assert found is not None, line
            provider.decide(found.group(1), sub, approve)
            out, err = process.communicate(timeout=60)
        finally:
            if process.poll() is None:
                process.kill()
        return subprocess.CompletedProcess(argv, process.returncode, out, line + err)


def logged_in(provider: DeviceProvider, home: Path, sub: str) -> StoredIdentity:
    """`managed login` as `sub` (approved at the provider), and what it stored."""
    done = run_login(provider, home, sub, approve=True)
    assert done.returncode == 0, done.stderr
    stored = identity_path({"XDG_CONFIG_HOME": str(home)})
    return load_identity(stored, 0)
