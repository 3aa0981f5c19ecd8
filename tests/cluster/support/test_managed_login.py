"""`managed login` against a real OpenID Connect provider offering the device authorization
grant (authlib's server side, in its own process over TLS): the operator approves at the
provider and the verified ID token is kept 0600 in their config directory; a denial at the
provider stores nothing; an expired or world-readable stored login is refused."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from device_kit import CLIENT, MANAGED, DeviceProvider, device_provider, run_login

from cluster.operator_identity import LoginFailed, StoredIdentity, load_identity, save_identity


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DeviceProvider]:
    with device_provider(tmp_path_factory.mktemp("device-provider")) as running:
        yield running


def test_an_operator_logs_in_with_the_device_flow(provider: DeviceProvider, tmp_path: Path) -> None:
    done = run_login(provider, tmp_path, "u-1001", approve=True)
    assert done.returncode == 0, done.stderr
    assert "logged in as olga (u-1001; cluster-approvers)" in done.stdout
    stored = tmp_path / "managed" / "identity.json"
    assert stored.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "managed").stat().st_mode & 0o777 == 0o700
    identity = load_identity(stored, time.time())
    assert (identity.subject, identity.groups, identity.issuer) == (
        "u-1001",
        ("cluster-approvers",),
        provider.issuer,
    )
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path)}
    shown = subprocess.run(
        [MANAGED, "login", "--show"], env=env, capture_output=True, text=True, timeout=60
    )
    assert shown.returncode == 0 and "olga (u-1001" in shown.stdout, shown.stderr


def test_a_denial_at_the_provider_stores_nothing(provider: DeviceProvider, tmp_path: Path) -> None:
    done = run_login(provider, tmp_path, "u-1002", approve=False)
    assert done.returncode == 1 and "access_denied" in done.stderr, done.stderr
    assert not (tmp_path / "managed" / "identity.json").exists()


def test_an_expired_or_exposed_login_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "managed" / "identity.json"
    with pytest.raises(LoginFailed, match="not logged in"):
        load_identity(path, time.time())
    identity = StoredIdentity("https://idp", CLIENT, "a.b.c", "u-1", "olga", ("g",), 1000)
    save_identity(path, identity)
    assert load_identity(path, 999) == identity
    with pytest.raises(LoginFailed, match="expired"):
        load_identity(path, 1000)
    path.chmod(0o644)
    with pytest.raises(LoginFailed, match="readable by others"):
        load_identity(path, 999)
