"""Credential lookups batched (`service/fleet/credential_lookup.py`), on both databases:
concurrent lookups share reads and each gets exactly its own answer."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import event

from mission_control.errors import InvalidCredential
from mission_control.service.accounts.bearer import digest
from mission_control.service.context import ServiceContext
from mission_control.service.fleet import credential_lookup, enrollment


async def test_concurrent_lookups_share_reads_and_keep_their_own_answers(
    ctx: ServiceContext,
) -> None:
    credentials = {}
    for i in range(20):
        created = await enrollment.create_cluster(ctx, f"c{i}", "EU")
        reply = await enrollment.enroll(ctx, created.enrollment_token)
        credentials[created.id] = reply.credential
    reads = 0

    def count(*_args: object) -> None:
        nonlocal reads
        reads += 1

    event.listen(ctx.engine.sync_engine, "before_cursor_execute", count)
    try:
        asked = [*credentials.items()] * 2  # each credential twice: never in one batch
        unknown = "mcc.nobody.secret"
        answers = await asyncio.gather(
            *(credential_lookup.lookup(ctx.engine, digest(c)) for _, c in asked),
            credential_lookup.lookup(ctx.engine, digest(unknown)),
        )
    finally:
        event.remove(ctx.engine.sync_engine, "before_cursor_execute", count)
    assert answers[:-1] == [cluster_id for cluster_id, _ in asked]
    assert answers[-1] is None
    assert 2 <= reads < len(answers)  # shared reads, and a credential asked twice needs two


async def test_authenticate_cluster_refuses_what_the_lookup_does_not_find(
    ctx: ServiceContext,
) -> None:
    created = await enrollment.create_cluster(ctx, "acme", "EU")
    credential = (await enrollment.enroll(ctx, created.enrollment_token)).credential
    assert await enrollment.authenticate_cluster(ctx, credential) == created.id
    with pytest.raises(InvalidCredential):
        await enrollment.authenticate_cluster(ctx, credential + "x")
