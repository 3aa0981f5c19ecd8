"""The async engine: plain URLs in, the right async driver out, one code path for both back ends.

- `normalise_url` turns ``sqlite:///x`` into ``sqlite+aiosqlite:///x`` and ``postgresql://...``
  into ``postgresql+asyncpg://...``; anything else is refused with a clear message. On
  PostgreSQL the libpq-style ``?sslmode=MODE`` becomes asyncpg's ``ssl=MODE`` (the same mode
  names), ``host`` (e.g. a socket directory) is kept, and any other query parameter is refused
  with one line rather than reaching asyncpg as an unknown keyword.
- On SQLite every transaction starts with ``BEGIN IMMEDIATE`` (the write lock up front), so
  read-then-write transactions never deadlock on lock upgrades; together with a busy timeout this
  makes SQLite's transactions serial, which is what the fencing and dedupe logic relies on.
  On PostgreSQL the same logic relies on the cluster row locks the ingest takes before reading
  (``SELECT .. FOR NO KEY UPDATE``) and on unique constraints (READ COMMITTED).
- Pool size: cluster messages are written in batches by at most two connections at a time
  (`mission_control.service.exchange.ingest`), so the pool serves mostly the other reads; a
  bigger pool does not raise ingest throughput.
- The dialect-specific pieces: `insert_or_ignore` (INSERT .. ON CONFLICT DO NOTHING) and
  `in_values` (a list parameter: ``= ANY(array)`` on PostgreSQL, an expanded IN on SQLite).
"""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy import ColumnElement, Table, any_, bindparam, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.sql.dml import Insert

_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "sqlite+aiosqlite": "sqlite+aiosqlite",
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",
    "postgresql+asyncpg": "postgresql+asyncpg",
}
SQLITE_BUSY_TIMEOUT_S = 30.0


SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
_POSTGRES_PARAMETERS = ("host", "sslmode", "ssl")


class UnsupportedDatabaseURL(ValueError):
    """The --db URL names neither SQLite nor PostgreSQL, or carries parameters we cannot pass."""


def _postgres_query(parsed: URL) -> URL:
    """Query parameters asyncpg understands: libpq's `sslmode` as `ssl`, others refused."""
    query = dict(parsed.query)
    unknown = sorted(set(query) - set(_POSTGRES_PARAMETERS))
    if unknown:
        raise UnsupportedDatabaseURL(
            f"unsupported PostgreSQL URL parameter {unknown[0]!r}: only "
            f"{', '.join(_POSTGRES_PARAMETERS)} are understood"
        )
    if "sslmode" in query and "ssl" in query:
        raise UnsupportedDatabaseURL("give sslmode or ssl in the database URL, not both")
    mode = query.pop("sslmode", None) or query.get("ssl")
    if mode is not None:
        if not isinstance(mode, str) or mode not in SSL_MODES:
            raise UnsupportedDatabaseURL(
                f"unsupported sslmode {mode!r}: use one of {', '.join(SSL_MODES)}"
            )
        query["ssl"] = mode
    return parsed.set(query=query)


def normalise_url(url: str) -> URL:
    """Parse a plain database URL and choose the async driver for it."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):  # ValueError: a port that is not a number
        raise UnsupportedDatabaseURL(
            f"cannot parse database URL {url!r}: use sqlite:///FILE or postgresql://USER@HOST/DB"
        ) from None
    driver = _DRIVERS.get(parsed.drivername)
    if driver is None:
        raise UnsupportedDatabaseURL(
            f"unsupported database {parsed.drivername!r}: use sqlite:///FILE or "
            "postgresql://USER@HOST/DB"
        )
    if driver.startswith("sqlite") and not parsed.database:
        raise UnsupportedDatabaseURL("an SQLite URL needs a file: sqlite:///path/to/mc.db")
    if driver.startswith("postgresql"):
        if parsed.port is not None and not 0 < parsed.port < 65536:
            raise UnsupportedDatabaseURL(f"port {parsed.port} in the database URL: use 1-65535")
        parsed = _postgres_query(parsed)
    return parsed.set(drivername=driver)


def create_engine(url: str, *, pool_size: int = 5) -> AsyncEngine:
    """An async engine for `url` (a plain or async URL), configured for our transaction rules."""
    parsed = normalise_url(url)
    if parsed.drivername.startswith("sqlite"):
        engine = create_async_engine(
            parsed,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S},
            pool_size=1,
            max_overflow=0,
            pool_timeout=60,
        )
        _serialise_sqlite(engine)
        return engine
    return create_async_engine(
        parsed, pool_size=pool_size, max_overflow=0, pool_timeout=30, pool_pre_ping=False
    )


def _serialise_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from the sqlite3 module (see _begin).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


@functools.lru_cache(maxsize=64)
def insert_or_ignore(
    dialect_name: str,
    table: Table,
    conflict_columns: tuple[str, ...],
    conflict_where: ColumnElement[bool] | None = None,
) -> Insert:
    """INSERT .. ON CONFLICT (`conflict_columns`) DO NOTHING; values are given at execution.

    Statements are built once per table and key (compiled-statement caching then applies), and
    `result.rowcount` tells whether the row was inserted (1) or already there (0).
    """
    insert = postgresql.insert if dialect_name == "postgresql" else sqlite.insert
    return insert(table).on_conflict_do_nothing(
        index_elements=list(conflict_columns), index_where=conflict_where
    )


def in_values(column: ColumnElement[Any], name: str, dialect_name: str) -> ColumnElement[bool]:
    """``column IN (the list given at execution under `name`)``.

    On PostgreSQL this is ``column = ANY(:name)`` with one array parameter, so the statement's
    text, and thus asyncpg's prepared statement, is the same whatever the list's length (an
    expanded IN would prepare a new statement for every length).
    """
    if dialect_name == "postgresql":
        return column == any_(bindparam(name, type_=ARRAY(column.type)))
    return column.in_(bindparam(name, expanding=True))
