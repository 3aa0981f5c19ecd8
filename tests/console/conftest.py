"""Fixtures for console tests: migrated databases on both back ends, a clock tests move, and
an in-process Mission Control (with the console) on a free loopback port."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "mission_control"))

from console_helpers import Clock
from mc_kit import share_a_secrets_key
from mc_postgres import fresh_database, migrate, postgres_server

share_a_secrets_key()


@pytest.fixture(scope="session")
def console_sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("console-template") / "mc.db"
    migrate(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def console_pg() -> Iterator[tuple[str, str]]:
    """(server base URL, name of a migrated template database)."""
    with postgres_server() as base, fresh_database(base) as url:
        migrate(url)
        yield base, url.rsplit("/", 1)[1]


@pytest.fixture
def sqlite_db(tmp_path: Path, console_sqlite_template: Path) -> str:
    path = tmp_path / "mc.db"
    shutil.copyfile(console_sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture(params=["sqlite", "postgresql"])
def any_db(request: pytest.FixtureRequest) -> Iterator[str]:
    """A migrated database of its own, on each back end."""
    if request.param == "sqlite":
        yield request.getfixturevalue("sqlite_db")
        return
    base, template = request.getfixturevalue("console_pg")
    with fresh_database(base, template) as url:
        yield url


@pytest.fixture
def clock() -> Clock:
    return Clock()
