"""Cluster messages written in batches: one transaction for many messages, each message with
exactly the outcome it would have had in a transaction of its own.

`deliver(delivery)` hands one message to its engine's `GroupCommit`, keyed by cluster: a batch
holds at most one message per cluster, and the messages of one cluster are written one after
the other in arrival order. While messages stream in, a batch lingers up to `LINGER_S` for
company; a lone message is written at once. Messages of different clusters touch disjoint rows
(the cluster's row, its alerts, its stored replies, its consumption rows), so a batch is the
union of independent per-message transactions. One batch, one transaction:

1. Lock the batch's cluster rows: ``SELECT .. ORDER BY id FOR NO KEY UPDATE`` on PostgreSQL
   (the lock an UPDATE of the row takes: every writer of a cluster's messages takes it first;
   the fixed order avoids deadlocks between batches), ``BEGIN IMMEDIATE`` on SQLite.
2. Read, under that lock, the stored replies of the batch's message ids (dedupe), the open
   alerts of its clusters, and what the deliveries' `reads` ask for (one query each per batch,
   e.g. the support items a heartbeat reply carries): the lock keeps them current until commit.
3. Decide each message in Python: unknown cluster → `NotFound`; a reply stored before → that
   reply with ``duplicate: true`` (`MessageIdReused` if stored for another kind), nothing
   applied; an epoch older than the cluster's newest → `StaleEpoch`, nothing applied; else
   accepted: the epoch is raised and the kind's effect runs (see `Scope`).
4. Write: cluster rows (epoch and the kind's columns) and effects' deferred writes with one
   executemany per statement, then the replies with one plain INSERT (heartbeats are fenced,
   never stored).

A deadlock (another transaction locking clusters in another order) or a unique violation (a
reply stored meanwhile by a writer that bypassed the lock) rolls the batch back and runs it
again (bounded). Any other error in a batch of several runs each message alone, so one bad
message fails only itself; an unreachable database fails the whole batch at once (503).
"""

from __future__ import annotations

import weakref
from collections.abc import Awaitable, Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Executable, Select, bindparam, insert, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from contract.messages import AlertKind, DedupedReply
from mission_control.db.engine import in_values
from mission_control.db.schema import ALERT_OPEN_WHERE, alerts, clusters, messages
from mission_control.errors import MessageIdReused, NotFound, StaleEpoch
from mission_control.service.exchange.alert_store import OpenAlert
from mission_control.service.exchange.batcher import GroupCommit, Outcome

MAX_BATCH = 256
# While messages stream in, a batch waits until its oldest has waited this long for company
# (see `GroupCommit`): at a fleet's steady cadence a flush is over before the next message
# arrives, so without it nearly every message would be a transaction of its own.
LINGER_S = 0.005
ATTEMPTS = 3  # per batch, for deadlocks and replies stored meanwhile
_RETRY_SQLSTATES = {"40P01", "40001"}  # deadlock detected, serialization failure
_UNAVAILABLE = (OperationalError, InterfaceError, PoolTimeout, OSError)


@dataclass
class _Deferred:
    """Writes of a batch's effects, grouped by statement for one executemany each."""

    by_statement: dict[Executable, list[Mapping[str, Any]]] = field(default_factory=dict)

    def add(self, statement: Executable, params: Mapping[str, Any]) -> None:
        self.by_statement.setdefault(statement, []).append(params)


V = TypeVar("V")
# A read done once per batch, under the cluster locks, for the clusters of the deliveries that
# list it, each with its delivery's received_at (a batch holds one delivery per cluster):
# {cluster id: value}, each value as of its cluster's time. Use a module-level function, so
# that all deliveries share one read.
BatchRead = Callable[[AsyncConnection, Mapping[str, datetime]], Awaitable[Mapping[str, V]]]


@dataclass(frozen=True)
class Scope:
    """What a message's effect may use inside its batch's transaction.

    `conn` reads and writes at once (one round trip each, in the batch's transaction);
    `later` queues a write to run with the other effects' writes of the same statement in one
    executemany before commit - the cheap way for per-message rows (use a module-level
    statement and the same parameter names for every call). Effects may run again if the
    batch is retried, so they must act only through `conn` and `later`.
    """

    conn: AsyncConnection
    cluster_id: str
    open_alerts: Mapping[AlertKind, OpenAlert]
    _deferred: _Deferred = field(repr=False)
    _read: Mapping[BatchRead[Any], Mapping[str, Any]] = field(repr=False)

    def later(self, statement: Executable, params: Mapping[str, Any]) -> None:
        self._deferred.add(statement, params)

    def read(self, source: BatchRead[V], default: V) -> V:
        """This cluster's entry of `source`, read once for the whole batch (`default` when
        `source` has none for it). The delivery must list `source` in its `reads`."""
        found: Mapping[str, V] = self._read[source]
        return found.get(self.cluster_id, default)


Effect = Callable[[Scope], Awaitable[DedupedReply]]


@dataclass(frozen=True)
class Delivery:
    """One message from a cluster's leader, on its way to the database."""

    engine: AsyncEngine
    cluster_id: str
    kind: str
    message_id: str | None  # None: fenced but never stored (heartbeats)
    epoch: int
    reply_type: type[DedupedReply]
    row_values: Mapping[str, Any]  # written to the cluster's row when accepted
    effect: Effect
    received_at: datetime
    reads: tuple[BatchRead[Any], ...] = ()  # what `effect` gets through `Scope.read`


_INGESTS: weakref.WeakKeyDictionary[AsyncEngine, GroupCommit[Delivery, DedupedReply]] = (
    weakref.WeakKeyDictionary()
)


def _cluster_of(delivery: Delivery) -> Hashable:
    return delivery.cluster_id


async def deliver(delivery: Delivery) -> DedupedReply:
    """Write `delivery` with the next batch of its engine; its reply, or its domain error."""
    ingest = _INGESTS.get(delivery.engine)
    if ingest is None:
        # SQLite has one connection, so one writer; on PostgreSQL a second batch prepares
        # while the first one waits for its commit to be flushed to disk.
        concurrent = 1 if delivery.engine.dialect.name == "sqlite" else 2
        ingest = GroupCommit(
            flush,
            key=_cluster_of,
            max_batch=MAX_BATCH,
            max_concurrent=concurrent,
            linger=LINGER_S,
        )
        _INGESTS[delivery.engine] = ingest
    return await ingest.submit(delivery)


async def flush(deliveries: Sequence[Delivery]) -> list[Outcome[DedupedReply]]:
    """Write a batch (distinct clusters, one engine); one outcome per delivery, in order."""
    try:
        return await _with_retries(deliveries)
    except _UNAVAILABLE:
        raise
    except Exception as error:
        if len(deliveries) == 1:
            return [error]
    outcomes: list[Outcome[DedupedReply]] = []
    for delivery in deliveries:  # isolate the message that fails the batch
        outcomes.extend(await flush([delivery]))
    return outcomes


def _retryable(error: DBAPIError) -> bool:
    return isinstance(error, IntegrityError) or (
        getattr(error.orig, "sqlstate", None) in _RETRY_SQLSTATES
    )


async def _with_retries(deliveries: Sequence[Delivery]) -> list[Outcome[DedupedReply]]:
    for attempt in range(1, ATTEMPTS + 1):
        try:
            return await _write(deliveries)
        except DBAPIError as error:
            if attempt == ATTEMPTS or not _retryable(error):
                raise
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class _Statements:
    lock: Select[Any]
    prior: Select[Any]
    open_alerts: Select[Any]


_STATEMENTS: dict[str, _Statements] = {}


def _statements(dialect_name: str) -> _Statements:
    """Built once per dialect, so SQLAlchemy's compiled cache and asyncpg's prepared
    statements are reused whatever the batch size."""
    found = _STATEMENTS.get(dialect_name)
    if found is None:
        found = _STATEMENTS[dialect_name] = _Statements(
            lock=select(clusters.c.id, clusters.c.last_epoch)
            .where(in_values(clusters.c.id, "b_clusters", dialect_name))
            .order_by(clusters.c.id)
            .with_for_update(key_share=True),
            prior=select(
                messages.c.cluster_id, messages.c.message_id, messages.c.kind, messages.c.reply
            ).where(
                in_values(messages.c.cluster_id, "b_clusters", dialect_name),
                in_values(messages.c.message_id, "b_messages", dialect_name),
            ),
            open_alerts=select(
                alerts.c.id, alerts.c.cluster_id, alerts.c.kind, alerts.c.detail
            ).where(in_values(alerts.c.cluster_id, "b_clusters", dialect_name), ALERT_OPEN_WHERE),
        )
    return found


_SET_CLUSTER = update(clusters).where(clusters.c.id == bindparam("b_cluster"))
_STORE_REPLY = insert(messages)


async def _write(deliveries: Sequence[Delivery]) -> list[Outcome[DedupedReply]]:
    engine = deliveries[0].engine
    stmts = _statements(engine.dialect.name)
    stored = [d for d in deliveries if d.message_id is not None]
    async with engine.begin() as conn:
        ids = sorted({d.cluster_id for d in deliveries})
        newest = {
            r.id: int(r.last_epoch) for r in await conn.execute(stmts.lock, {"b_clusters": ids})
        }
        prior: dict[tuple[str, str], tuple[str, str]] = {}
        current: dict[str, dict[AlertKind, OpenAlert]] = {}
        if stored:
            stored_ids = sorted({d.cluster_id for d in stored})
            params = {"b_clusters": stored_ids, "b_messages": [d.message_id for d in stored]}
            for row in await conn.execute(stmts.prior, params):
                prior[(row.cluster_id, row.message_id)] = (row.kind, row.reply)
            for row in await conn.execute(stmts.open_alerts, {"b_clusters": stored_ids}):
                kind = AlertKind(row.kind)
                current.setdefault(row.cluster_id, {})[kind] = OpenAlert(row.id, row.detail)

        read: dict[BatchRead[Any], Mapping[str, Any]] = {}
        for source in {r for d in deliveries for r in d.reads}:
            wanting = {d.cluster_id: d.received_at for d in deliveries if source in d.reads}
            read[source] = await source(conn, wanting)
        deferred = _Deferred()
        outcomes: list[Outcome[DedupedReply]] = []
        for d in deliveries:
            if d.cluster_id not in newest:
                outcomes.append(NotFound("this cluster no longer exists"))
                continue
            if d.message_id is not None and (d.cluster_id, d.message_id) in prior:
                outcomes.append(_duplicate(d, *prior[(d.cluster_id, d.message_id)]))
                continue
            if d.epoch < newest[d.cluster_id]:
                outcomes.append(StaleEpoch(d.epoch, newest[d.cluster_id]))
                continue
            scope = Scope(conn, d.cluster_id, current.get(d.cluster_id, {}), deferred, read)
            reply = await d.effect(scope)
            deferred.add(
                _SET_CLUSTER, {"b_cluster": d.cluster_id, "last_epoch": d.epoch, **d.row_values}
            )
            if d.message_id is not None:
                deferred.add(_STORE_REPLY, _reply_row(d, reply))
            outcomes.append(reply)

        for statement, rows in _grouped(deferred):
            await conn.execute(statement, rows)
    return outcomes


def _grouped(
    deferred: _Deferred,
) -> list[tuple[Executable, list[Mapping[str, Any]]]]:
    """Each statement's rows split by parameter names (executemany needs one set of names);
    cluster rows first, replies last, effects' writes in between in first-use order."""
    order = sorted(
        deferred.by_statement.items(),
        key=lambda item: (item[0] is not _SET_CLUSTER, item[0] is _STORE_REPLY),
    )
    groups: list[tuple[Executable, list[Mapping[str, Any]]]] = []
    for statement, rows in order:
        by_names: dict[tuple[str, ...], list[Mapping[str, Any]]] = {}
        for row in rows:
            by_names.setdefault(tuple(sorted(row)), []).append(row)
        groups.extend((statement, same) for same in by_names.values())
    return groups


def _reply_row(delivery: Delivery, reply: DedupedReply) -> dict[str, Any]:
    return {
        "cluster_id": delivery.cluster_id,
        "message_id": delivery.message_id,
        "kind": delivery.kind,
        "epoch": delivery.epoch,
        "reply": reply.model_dump_json(),
        "received_at": delivery.received_at,
    }


def _duplicate(delivery: Delivery, kind: str, reply: str) -> Outcome[DedupedReply]:
    if kind != delivery.kind:
        return MessageIdReused(f"message_id {delivery.message_id} was already used for {kind}")
    return delivery.reply_type.model_validate_json(reply).model_copy(update={"duplicate": True})
