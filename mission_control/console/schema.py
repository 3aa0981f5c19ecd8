"""The console's tables, on the shared `metadata` (so migrations are checked against them).

- `console_sessions`: one row per logged-in browser. Only the SHA-256 of the session cookie is
  stored (the cookie carries 256 random bits), with the user, the role at login, when the session
  was created and last seen, and its CSRF token.
- `health_samples`: one cluster-wide aggregate per accepted health check (CPU % weighted by
  cores, memory and disk used/total over the nodes that are up), keyed by (cluster, time), for
  the history plots. Written in the health check's own transaction, so a deduplicated resend
  leaves no sample behind.
- `ix_clusters_console_fleet` on `clusters`: a covering index for the fleet page, so its
  ordering by name, search, filters and status tallies read a narrow index instead of the
  wide cluster rows (each carries its last health report).
- `ix_alerts_console_open_kind` on open `alerts` by kind: finds the few silent clusters among
  thousands of open alerts without scanning them.
- `backup_outcomes` (migration 0006): per cluster, the last `backup_succeeded` and the last
  `backup_failed` event (one row each, replaced by the next): when Mission Control received
  it, the backup id it names and its detail. Written by the event ingest in the event's own
  transaction (`exchange.record_event`), so a deduplicated resend changes nothing.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
)

from mission_control.db.schema import ALERT_OPEN_WHERE, UTCDateTime, alerts, clusters, metadata

console_sessions = Table(
    "console_sessions",
    metadata,
    Column("id_hash", String(64), primary_key=True),
    Column("user_name", String(128), nullable=False),
    Column("role", String(16), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("last_seen_at", UTCDateTime(), nullable=False),
    Column("csrf_token", String(64), nullable=False),
    Index("ix_console_sessions_last_seen_at", "last_seen_at"),
)

health_samples = Table(
    "health_samples",
    metadata,
    Column("cluster_id", String(36), ForeignKey("clusters.id"), primary_key=True),
    Column("at", UTCDateTime(), primary_key=True),
    Column("nodes_up", Integer, nullable=False),
    Column("cpu_percent", Float, nullable=False),
    Column("memory_used_bytes", BigInteger, nullable=False),
    Column("memory_total_bytes", BigInteger, nullable=False),
    Column("disk_used_bytes", BigInteger, nullable=False),
    Column("disk_total_bytes", BigInteger, nullable=False),
    Index("ix_health_samples_at", "at"),
)

backup_outcomes = Table(
    "backup_outcomes",
    metadata,
    Column("cluster_id", String(36), ForeignKey("clusters.id"), primary_key=True),
    Column("outcome", String(16), primary_key=True),  # "succeeded" or "failed"
    Column("at", UTCDateTime(), nullable=False),
    Column("backup_id", String(64)),
    Column("detail", Text, nullable=False),
)

Index(
    "ix_clusters_console_fleet",
    clusters.c.name,
    clusters.c.id,
    clusters.c.geography,
    clusters.c.health_status,
    clusters.c.enrolled_at,
)
Index(
    "ix_alerts_console_open_kind",
    alerts.c.kind,
    alerts.c.cluster_id,
    sqlite_where=ALERT_OPEN_WHERE,
    postgresql_where=ALERT_OPEN_WHERE,
)
