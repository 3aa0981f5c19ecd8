"""Alembic environment: runs on a connection handed over by mission_control.db.migrate, or,
when invoked by the `alembic` command with ``-x url=...``, on its own async engine."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import Connection

from mission_control.db.engine import create_engine
from mission_control.db.schema import metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=True,
        transactional_ddl=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_async(url: str) -> None:
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_run)
    finally:
        await engine.dispose()


def main() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = context.get_x_argument(as_dictionary=True).get("url")
    if not url:
        raise SystemExit("pass the database with -x url=sqlite:///FILE or postgresql://...")
    asyncio.run(_run_async(url))


main()
