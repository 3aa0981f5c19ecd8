"""Secrets at rest: TOTP secrets sealed with the secrets key (where the key comes from, sealing
rows stored in the clear, refusing to start without the key or with another one), and private
files (the key file, the SQLite database and its -wal/-shm, the dev CA's directory)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from mc_kit import FakeClock, make_settings, running
from mcs_staff import ADMIN, FAST_HASHER_ENV, PASSWORD, fast, totp_code
from sqlalchemy import select, update

from contract.messages import StaffRole
from mission_control.app import create_app
from mission_control.cli import main
from mission_control.db.engine import create_engine
from mission_control.db.migrate import upgrade
from mission_control.db.schema import users
from mission_control.errors import SecretsKeyMissing
from mission_control.secrets_key import ENV_KEY, SecretsKey
from mission_control.service.accounts import staff
from mission_control.service.accounts import users as user_store
from mission_control.service.context import ServiceContext
from mission_control.staff.secretbox import encode_key, new_key


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def stored_secret(ctx: ServiceContext, name: str) -> str:
    async with ctx.engine.connect() as conn:
        query = select(users.c.totp_secret).where(users.c.name == name)
        return str((await conn.execute(query)).scalar_one())


async def test_totp_secrets_are_sealed_and_still_log_in(
    ctx: ServiceContext, clock: FakeClock
) -> None:
    ctx = fast(ctx)
    added = await user_store.add_user(ctx, "alice", StaffRole.SUPPORT_L2, PASSWORD, by=ADMIN)
    secret = added.totp_uri.split("secret=")[1].split("&")[0]
    stored = await stored_secret(ctx, "alice")
    assert stored.startswith("sealed:v1:") and secret not in stored
    code = totp_code(secret, clock.now)
    assert (await staff.login(ctx, "alice", PASSWORD, code, source="192.0.2.1")).identity
    # A sealed secret copied to another account does not open there.
    await user_store.add_user(ctx, "bob", StaffRole.SUPPORT_L2, PASSWORD, by=ADMIN)
    async with ctx.engine.begin() as conn:
        await conn.execute(update(users).where(users.c.name == "bob").values(totp_secret=stored))
    with pytest.raises(ValueError, match="does not open"):
        await staff.login(ctx, "bob", PASSWORD, code, source="192.0.2.1")


async def test_plaintext_secrets_are_read_and_sealed_at_start(
    migrated_url: str, clock: FakeClock
) -> None:
    engine = create_engine(migrated_url)
    ctx = fast(ServiceContext(engine=engine, clock=clock))
    try:
        added = await user_store.add_user(ctx, "alice", StaffRole.SUPPORT_L2, PASSWORD, by=ADMIN)
        secret = added.totp_uri.split("secret=")[1].split("&")[0]
        async with engine.begin() as conn:  # as written before sealing existed
            await conn.execute(update(users).values(totp_secret=secret))
        code = totp_code(secret, clock.now)
        assert (await staff.login(ctx, "alice", PASSWORD, code, source="192.0.2.1")).identity
        async with running(create_app(make_settings(migrated_url), clock=clock)):
            pass
        assert (await stored_secret(ctx, "alice")).startswith("sealed:v1:")
        clock.advance(seconds=30)
        code = totp_code(secret, clock.now)
        assert (await staff.login(ctx, "alice", PASSWORD, code, source="192.0.2.1")).identity
    finally:
        await engine.dispose()


async def test_no_key_or_another_key_stops_the_server(
    db_url: str, clock: FakeClock, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    engine = create_engine(db_url)
    try:
        await upgrade(engine)
        ctx = fast(ServiceContext(engine=engine, clock=clock))
        await user_store.add_user(ctx, "alice", StaffRole.SUPPORT_L2, PASSWORD, by=ADMIN)
    finally:
        await engine.dispose()
    monkeypatch.setenv(ENV_KEY, encode_key(new_key()))  # not the key the secret was sealed with
    with pytest.raises(SecretsKeyMissing, match="does not open the TOTP secrets"):
        async with running(create_app(make_settings(db_url), clock=clock)):
            pass
    monkeypatch.delenv(ENV_KEY)
    if db_url.startswith("postgresql"):
        with pytest.raises(SecretsKeyMissing, match="no secrets key: give --secrets-key-file"):
            async with running(create_app(make_settings(db_url), clock=clock)):
                pass


def test_serve_without_a_key_on_postgresql_is_one_line(migrated_url: str, tmp_path: Path) -> None:
    if not migrated_url.startswith("postgresql"):
        pytest.skip("SQLite makes its own key")
    env = {k: v for k, v in os.environ.items() if k != ENV_KEY}
    done = subprocess.run(
        [sys.executable, "-m", "mission_control.cli", "serve", "--db", migrated_url]
        + ["--listen", "127.0.0.1:0"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if line.startswith("Error:")]
    assert errors == [
        "Error: no secrets key: give --secrets-key-file FILE (make one with `mission-control "
        f"secrets-key create FILE`) or set {ENV_KEY}"
    ], done.stderr
    assert "Traceback" not in done.stderr


def test_sqlite_without_a_key_makes_one_beside_the_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The dev stack's case: `db upgrade`, `users add` and `serve` on one SQLite file share the
    key made beside it, 0600; the database file is 0600 too, and so are its -wal and -shm."""
    monkeypatch.delenv(ENV_KEY)
    db = f"sqlite:///{tmp_path / 'mc.db'}"
    runner = CliRunner()
    env = {**FAST_HASHER_ENV}
    assert runner.invoke(main, ["db", "upgrade", "--db", db], env=env).exit_code == 0
    added = runner.invoke(
        main, ["users", "add", "alice", "--role", "support-l2", "--db", db],
        input=f"{PASSWORD}\n{PASSWORD}\n", env=env,
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    key = tmp_path / "mc.db.secrets-key"
    assert mode(key) == 0o600 and mode(tmp_path / "mc.db") == 0o600
    for suffix in ("-wal", "-shm"):
        side = tmp_path / f"mc.db{suffix}"
        assert not side.exists() or mode(side) == 0o600
    assert SecretsKey().box(create_engine(db).url) is not None  # the same file, found again


def test_secrets_key_create_writes_a_private_file_once(tmp_path: Path) -> None:
    key = tmp_path / "keys" / "mc.key"
    runner = CliRunner()
    made = runner.invoke(main, ["secrets-key", "create", str(key)])
    assert made.exit_code == 0, made.output
    assert mode(key) == 0o600 and mode(key.parent) == 0o700
    before = key.read_text()
    again = runner.invoke(main, ["secrets-key", "create", str(key)])
    assert again.exit_code == 1 and "exists already" in again.output
    assert key.read_text() == before
    # Used as --secrets-key-file; a copy others may read is refused.
    assert SecretsKey(file=key).box(create_engine("postgresql://x/y").url) is not None
    key.chmod(0o644)
    with pytest.raises(SecretsKeyMissing, match="readable by others: chmod 600"):
        SecretsKey(file=key).box(create_engine("postgresql://x/y").url)


def test_dev_ca_directory_is_private(tmp_path: Path) -> None:
    target = tmp_path / "certs"
    done = CliRunner().invoke(main, ["certs", "dev-ca", str(target)])
    assert done.exit_code == 0, done.output
    assert mode(target) == 0o700 and mode(target / "server-key.pem") == 0o600
