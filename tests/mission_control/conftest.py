"""Fixtures for Mission Control tests: databases (SQLite and PostgreSQL), a controllable clock,
a dev CA, and real aiohttp servers on loopback."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest
from mc_api import Api
from mc_kit import FakeClock, make_settings, running, share_a_secrets_key
from mc_postgres import fresh_database, migrate, postgres_server

from contract.certs import DevCA, write_dev_ca
from mission_control.app import create_app
from mission_control.db.engine import create_engine
from mission_control.service.context import ServiceContext

share_a_secrets_key()


@pytest.fixture(scope="session")
def postgres_base() -> Iterator[str]:
    with postgres_server() as base:
        yield base


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database on each back end."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'mc.db'}"
        return
    base = request.getfixturevalue("postgres_base")
    with fresh_database(base) as url:
        yield url


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "mc.db"
    migrate(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def postgres_template(postgres_base: str) -> Iterator[str]:
    """A migrated database that per-test databases are copied from (CREATE .. TEMPLATE)."""
    with fresh_database(postgres_base) as url:
        migrate(url)
        yield url.rsplit("/", 1)[1]


@pytest.fixture
def sqlite_url(tmp_path: Path, sqlite_template: Path) -> str:
    """A migrated SQLite database of its own."""
    path = tmp_path / "mc.db"
    shutil.copyfile(sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture(params=["sqlite", "postgresql"])
def migrated_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A migrated database of its own, on each back end."""
    if request.param == "sqlite":
        yield request.getfixturevalue("sqlite_url")
        return
    base = request.getfixturevalue("postgres_base")
    template = request.getfixturevalue("postgres_template")
    with fresh_database(base, template) as url:
        yield url


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def ctx(migrated_url: str, clock: FakeClock) -> AsyncIterator[ServiceContext]:
    engine = create_engine(migrated_url)
    try:
        yield ServiceContext(engine=engine, clock=clock)
    finally:
        await engine.dispose()


@pytest.fixture(scope="session")
def dev_ca(tmp_path_factory: pytest.TempPathFactory) -> DevCA:
    return write_dev_ca(tmp_path_factory.mktemp("dev-ca"), ["127.0.0.1", "localhost"])


@pytest.fixture
async def server(sqlite_url: str, clock: FakeClock) -> AsyncIterator[str]:
    """An in-process Mission Control over plain HTTP on SQLite."""
    async with running(create_app(make_settings(sqlite_url), clock=clock)) as url:
        yield url


@pytest.fixture
async def api(migrated_url: str, clock: FakeClock) -> AsyncIterator[Api]:
    engine = create_engine(migrated_url)
    # No background sweep: its first pass runs at start and could raise a license alert for a
    # cluster a test has just enrolled (none of these tests is about the sweep).
    settings = make_settings(migrated_url, max_body_bytes=64 * 1024)
    app = create_app(settings, clock=clock, background=False)
    try:
        async with running(app) as url, aiohttp.ClientSession() as http:
            yield Api(url, http, ServiceContext(engine=engine, clock=clock))
    finally:
        await engine.dispose()
