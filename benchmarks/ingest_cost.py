"""Where a cluster message's CPU goes in Mission Control's ingest, without HTTP: CPU per message
by batch size, in process, on PostgreSQL, next to the bare round-trip cost of asyncpg.

Each kind (heartbeat, health check, license check) is sent in rounds of B concurrent messages
for B in `--sizes`; with no linger nor other traffic, each round is one batch (one
transaction), so CPU per message = (batch's fixed cost) / B + (one message's own cost). The
same process then times raw asyncpg: one prepared fetch, and BEGIN + 2 SELECT + UPDATE +
COMMIT (a heartbeat batch's five round trips) on a table of its own. All on the PostgreSQL the
tests use (127.0.0.1:5432, or a throwaway instance), one fresh database.

    .venv/bin/python benchmarks/ingest_cost.py [--sizes 1,4,16,64] [--messages 512]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "mission_control"))

import asyncpg  # noqa: E402
from mc_kit import share_a_secrets_key  # noqa: E402
from mc_messages import health, heartbeat, license_check  # noqa: E402
from mc_postgres import fresh_database, migrate, postgres_server  # noqa: E402

from mission_control.db.engine import create_engine  # noqa: E402
from mission_control.service.context import ServiceContext  # noqa: E402
from mission_control.service.exchange import cluster_messages, ingest  # noqa: E402
from mission_control.service.fleet import enrollment  # noqa: E402

Send = Callable[[ServiceContext, str], Awaitable[Any]]
KINDS: dict[str, Send] = {
    "heartbeat": lambda ctx, c: cluster_messages.heartbeat(ctx, c, heartbeat(epoch=1)),
    "health": lambda ctx, c: cluster_messages.health(ctx, c, health(epoch=1)),
    "license": lambda ctx, c: cluster_messages.license_check(ctx, c, license_check(epoch=1)),
}


async def ingest_costs(db_url: str, sizes: list[int], messages: int) -> None:
    ingest.LINGER_S = 0.0  # each round is exactly one batch
    engine = create_engine(db_url)
    ctx = ServiceContext(engine=engine)
    try:
        ids = []
        for i in range(max(sizes)):
            created = await enrollment.create_cluster(ctx, f"cost-{i}", "EU")
            ids.append((await enrollment.enroll(ctx, created.enrollment_token)).cluster_id)
        for kind, send in KINDS.items():
            for size in sizes:
                rounds = max(8, messages // size)
                started = time.process_time()
                for _ in range(rounds):
                    await asyncio.gather(*(send(ctx, c) for c in ids[:size]))
                cpu = (time.process_time() - started) / (rounds * size)
                print(f"{kind:<9} batch of {size:3d}: {cpu * 1e6:6.0f} us CPU per message")
    finally:
        await engine.dispose()


async def raw_costs(db_url: str, repeat: int = 500) -> None:
    conn = await asyncpg.connect(db_url)
    try:
        await conn.execute("CREATE TABLE cost_probe (id text PRIMARY KEY, e bigint, at timestamp)")
        await conn.execute("INSERT INTO cost_probe VALUES ('a', 1, now())")
        lock = await conn.prepare(
            "SELECT id, e FROM cost_probe WHERE id = any($1::text[]) ORDER BY id FOR NO KEY UPDATE"
        )
        started = time.process_time()
        for _ in range(repeat):
            await lock.fetch(["a"])
        one = (time.process_time() - started) / repeat
        started = time.process_time()
        for _ in range(repeat):
            async with conn.transaction():
                await lock.fetch(["a"])
                await lock.fetch(["a"])
                await conn.executemany("UPDATE cost_probe SET e = $2 WHERE id = $1", [("a", 1)])
        five = (time.process_time() - started) / repeat
    finally:
        await conn.close()
    print(f"raw asyncpg: one prepared fetch {one * 1e6:5.0f} us CPU")
    print(f"raw asyncpg: BEGIN + 2 SELECT + UPDATE + COMMIT {five * 1e6:5.0f} us CPU")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sizes", default="1,4,16,64")
    parser.add_argument("--messages", type=int, default=512)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    share_a_secrets_key()
    with postgres_server() as base, fresh_database(base) as db_url:
        migrate(db_url)
        asyncio.run(ingest_costs(db_url, sizes, args.messages))
        asyncio.run(raw_costs(db_url))


if __name__ == "__main__":
    main()
