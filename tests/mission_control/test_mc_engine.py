"""Database URLs, migrations (on both back ends) and the schema they produce."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection

from mission_control.db.engine import UnsupportedDatabaseURL, create_engine, normalise_url
from mission_control.db.migrate import ensure_current, upgrade
from mission_control.db.schema import metadata
from mission_control.errors import DatabaseNotReady


@pytest.mark.parametrize(
    ("plain", "async_url"),
    [
        ("sqlite:///var/lib/mc.db", "sqlite+aiosqlite:///var/lib/mc.db"),
        ("sqlite:////abs/mc.db", "sqlite+aiosqlite:////abs/mc.db"),
        ("postgresql://mc@db.example/mc", "postgresql+asyncpg://mc@db.example/mc"),
        ("postgres://mc:pw@db:5433/mc", "postgresql+asyncpg://mc:pw@db:5433/mc"),
        ("postgresql+asyncpg://mc@db/mc", "postgresql+asyncpg://mc@db/mc"),
        # libpq's sslmode is asyncpg's ssl (same mode names); a socket directory is kept.
        ("postgresql://mc@db/mc?sslmode=require", "postgresql+asyncpg://mc@db/mc?ssl=require"),
        ("postgresql://mc@db/mc?ssl=verify-full", "postgresql+asyncpg://mc@db/mc?ssl=verify-full"),
        (
            "postgresql://mc@/mc?host=/run/postgresql",
            "postgresql+asyncpg://mc@/mc?host=%2Frun%2Fpostgresql",
        ),
    ],
)
def test_plain_urls_get_async_drivers(plain: str, async_url: str) -> None:
    assert normalise_url(plain).render_as_string(hide_password=False) == async_url


@pytest.mark.parametrize(
    "bad",
    [
        "mysql://x/y",
        "postgresql+psycopg2://x/y",
        "not a url",
        "sqlite://",
        "postgresql://x/y?sslmode=sometimes",
        "postgresql://x/y?sslmode=require&ssl=disable",
        "postgresql://x/y?sslrootcert=/ca.pem",
    ],
)
def test_other_urls_are_refused(bad: str) -> None:
    with pytest.raises(UnsupportedDatabaseURL):
        normalise_url(bad)


def _diff(connection: Connection) -> list[object]:
    return list(compare_metadata(MigrationContext.configure(connection), metadata))


async def test_migrations_build_exactly_the_schema(db_url: str) -> None:
    engine = create_engine(db_url)
    try:
        with pytest.raises(DatabaseNotReady):
            await ensure_current(engine)
        await upgrade(engine)
        await upgrade(engine)  # idempotent
        await ensure_current(engine)
        async with engine.connect() as conn:
            assert await conn.run_sync(_diff) == []
    finally:
        await engine.dispose()


async def test_missing_sqlite_file_is_not_created(tmp_path: Path) -> None:
    path = tmp_path / "absent.db"
    engine = create_engine(f"sqlite:///{path}")
    try:
        with pytest.raises(DatabaseNotReady, match="mission-control db upgrade"):
            await ensure_current(engine)
    finally:
        await engine.dispose()
    assert not path.exists()
