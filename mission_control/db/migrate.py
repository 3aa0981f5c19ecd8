"""Alembic migrations run programmatically, on the caller's async engine.

- `upgrade` brings the schema to the newest revision in one transaction; on PostgreSQL an
  advisory lock serialises concurrent upgrades (several servers starting at once). An SQLite
  file it creates is 0600 (and so are its -wal and -shm files), in a directory it warns about
  when others may enter it; an existing file's mode is warned about, never changed.
- `ensure_current` refuses to work on a database that is missing or not at the newest revision,
  without creating anything (an SQLite file that does not exist stays absent).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncEngine

from mission_control.errors import DatabaseNotReady

MIGRATIONS = Path(__file__).with_name("migrations")
_PG_LOCK_KEY = 0x6D635F6D696772  # "mc_migr"
log = logging.getLogger(__name__)


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def _upgrade(connection: Connection) -> None:
    command.upgrade(alembic_config(connection), "head")


def _sqlite_file(engine: AsyncEngine) -> Path | None:
    url = engine.url
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    return Path(url.database)


def _private_sqlite_file(path: Path) -> None:
    """A new database file is created 0600 before SQLite opens it (SQLite gives its -wal and
    -shm files the database file's mode). An existing file is never changed, only warned about:
    `--db` may name any file, and its mode is its owner's business."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        if path.stat().st_mode & 0o077:
            log.warning("%s is open to others: chmod 600 it (and its -wal and -shm)", path)
        return
    os.close(fd)
    if path.absolute().parent.stat().st_mode & 0o077:
        log.warning("the database directory %s is open to others: chmod 700 it", path.parent)


async def upgrade(engine: AsyncEngine) -> None:
    """Apply every pending migration (idempotent). A new SQLite file is made 0600."""
    path = _sqlite_file(engine)
    if path is not None and not path.absolute().parent.is_dir():
        raise DatabaseNotReady(f"cannot create {path}: directory {path.parent} does not exist")
    if path is not None:
        _private_sqlite_file(path)
    async with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
        await conn.run_sync(_upgrade)


def _current_heads(connection: Connection) -> tuple[str, ...]:
    return tuple(MigrationContext.configure(connection).get_current_heads())


async def ensure_current(engine: AsyncEngine) -> None:
    """Raise DatabaseNotReady unless the schema is at the newest migration."""
    path = _sqlite_file(engine)
    if path is not None and not path.exists():
        raise DatabaseNotReady(f"no database at {path}: run `mission-control db upgrade` first")
    async with engine.connect() as conn:
        current = await conn.run_sync(_current_heads)
    heads = tuple(ScriptDirectory.from_config(alembic_config()).get_heads())
    if set(current) != set(heads):
        raise DatabaseNotReady(
            f"database schema is at {', '.join(current) or 'nothing'}, not {', '.join(heads)}: "
            "run `mission-control db upgrade`"
        )
