"""Mission Control served over TLS on loopback for the single sign-on tests (OpenID Connect,
SAML), with a clock the test holds, and the audit entries about one person."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mc_kit import FakeClock, make_settings, running
from sqlalchemy import select

from contract.certs import write_dev_ca
from mission_control.app import create_app
from mission_control.db.engine import create_engine
from mission_control.db.schema import audit_log
from mission_control.service.context import ServiceContext


@dataclass
class Site:
    url: str
    ctx: ServiceContext
    clock: FakeClock


@asynccontextmanager
async def serving_site(db_url: str, tls_dir: Path, **settings: object) -> AsyncIterator[Site]:
    """Mission Control with these settings (`oidc=...`, `saml=...`), always shut down."""
    clock = FakeClock(datetime.now(UTC))
    tls = write_dev_ca(tls_dir, ["127.0.0.1"])
    app = create_app(make_settings(db_url, **settings), clock=clock, background=False)
    engine = create_engine(db_url)
    try:
        async with running(app, tls=tls) as url:
            yield Site(url, ServiceContext(engine=engine, clock=clock), clock)
    finally:
        await engine.dispose()


@dataclass(frozen=True)
class Entry:
    action: str
    detail: dict[str, Any]


async def audit_of(site: Site, subject: str) -> list[Entry]:
    async with site.ctx.engine.connect() as conn:
        rows = await conn.execute(
            select(audit_log).where(audit_log.c.subject == subject).order_by(audit_log.c.seq)
        )
        return [Entry(row.action, json.loads(row.detail)) for row in rows]
