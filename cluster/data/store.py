"""A node's monitoring data: one SQLite database in WAL mode in the node's data directory
(`data/monitoring.sqlite`), so backups of the data directory hold it.

Guarantees: each `add_*` call is one transaction (a beacon's session and actions, or a batch of
log records, are stored whole or not at all); rows arrive already masked (`cluster.data.ingest`)
and the store never unmasks. `forget` deletes a person's sessions and their actions in one
transaction; `remask` rewrites stored rows through a function in one transaction; `sweep`
deletes what is older than an environment's retention. The file is created 0600 in a 0700
directory. Not thread-safe: the node uses it from one thread (`cluster.data.service`).
Does not guarantee: a point-in-time copy when the data directory is archived mid-write (SQLite
recovers the WAL it finds; what a write still in flight had not committed is not there).
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FILE = Path("data") / "monitoring.sqlite"

SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    env TEXT NOT NULL, id TEXT NOT NULL, app TEXT NOT NULL,
    started_at REAL NOT NULL, last_seen REAL NOT NULL,
    user_tag TEXT, tag_hash TEXT, ip TEXT, user_agent TEXT, anonymous INTEGER NOT NULL,
    PRIMARY KEY (env, id)
);
CREATE INDEX IF NOT EXISTS sessions_tag ON sessions (env, tag_hash);
CREATE INDEX IF NOT EXISTS sessions_time ON sessions (env, last_seen);
CREATE TABLE IF NOT EXISTS actions (
    env TEXT NOT NULL, session_id TEXT NOT NULL, at REAL NOT NULL, kind TEXT NOT NULL,
    name TEXT NOT NULL, page TEXT NOT NULL, duration_ms REAL
);
CREATE INDEX IF NOT EXISTS actions_session ON actions (env, session_id);
CREATE INDEX IF NOT EXISTS actions_time ON actions (env, at);
CREATE TABLE IF NOT EXISTS logs (
    env TEXT NOT NULL, at REAL NOT NULL, level TEXT NOT NULL, message TEXT NOT NULL,
    attributes TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS logs_time ON logs (env, at);
CREATE TABLE IF NOT EXISTS jobs_done (name TEXT PRIMARY KEY, result TEXT NOT NULL);
"""


def tag_hash(env: str, tag: str) -> str:
    """A user tag's lookup key, and how it is named outside the store (forget jobs, audit):
    never in the clear."""
    return hashlib.sha256(f"{env}\0{tag}".encode()).hexdigest()


@dataclass(frozen=True)
class SessionRow:
    env: str
    id: str
    app: str
    started_at: float
    user_tag: str | None
    ip: str | None
    user_agent: str | None
    anonymous: bool


@dataclass(frozen=True)
class ActionRow:
    env: str
    session_id: str
    at: float
    kind: str  # load | action
    name: str
    page: str
    duration_ms: float | None


@dataclass(frozen=True)
class LogRow:
    env: str
    at: float
    level: str
    message: str
    attributes: dict[str, str]


#: What a read may ask for, and the columns it returns (sensitive ones are masked on display).
KINDS = ("sessions", "actions", "logs")
SENSITIVE = {"sessions": ("user_tag",), "actions": ("user_tag",), "logs": ()}


class MonitoringStore:
    def __init__(self, data_dir: Path) -> None:
        path = data_dir / FILE
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not path.exists():
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        self.path = path
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")  # WAL: durable at each checkpoint
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        self._db.close()

    def add_beacon(self, session: SessionRow, actions: Sequence[ActionRow], at: float) -> None:
        db = self._db
        hashed = tag_hash(session.env, session.user_tag) if session.user_tag else None
        with _transaction(db):
            db.execute(
                "INSERT INTO sessions VALUES (?,?,?,?,?,?,?,?,?,?) ON CONFLICT (env, id) DO "
                "UPDATE SET last_seen = excluded.last_seen, "
                "user_tag = COALESCE(excluded.user_tag, user_tag), "
                "tag_hash = COALESCE(excluded.tag_hash, tag_hash)",
                (
                    session.env,
                    session.id,
                    session.app,
                    session.started_at,
                    at,
                    session.user_tag,
                    hashed,
                    session.ip,
                    session.user_agent,
                    int(session.anonymous),
                ),
            )
            db.executemany(
                "INSERT INTO actions VALUES (?,?,?,?,?,?,?)",
                [
                    (a.env, a.session_id, a.at, a.kind, a.name, a.page, a.duration_ms)
                    for a in actions
                ],
            )

    def add_logs(self, rows: Sequence[LogRow]) -> None:
        db = self._db
        with _transaction(db):
            db.executemany(
                "INSERT INTO logs VALUES (?,?,?,?,?)",
                [
                    (r.env, r.at, r.level, r.message, json.dumps(r.attributes, sort_keys=True))
                    for r in rows
                ],
            )

    def read(
        self,
        kind: str,
        env: str,
        user_tag: str | None = None,
        since: float | None = None,
        limit: int = 1000,
    ) -> list[dict[str, Any]]:
        """Rows as stored (the caller masks for display), newest first."""
        where: list[str] = ["s.env = ?"]
        args: list[object] = [env]
        if user_tag is not None:
            where.append("s.tag_hash = ?")
            args.append(tag_hash(env, user_tag))
        if kind == "sessions":
            if since is not None:
                where.append("s.last_seen >= ?")
                args.append(since)
            sql = (
                "SELECT s.id, s.app, s.started_at, s.last_seen, s.user_tag, s.ip, s.user_agent, "
                f"s.anonymous FROM sessions s WHERE {' AND '.join(where)} "
                "ORDER BY s.last_seen DESC LIMIT ?"
            )
        elif kind == "actions":
            if since is not None:
                where.append("a.at >= ?")
                args.append(since)
            sql = (
                "SELECT a.session_id, a.at, a.kind, a.name, a.page, a.duration_ms, s.user_tag, "
                "s.app FROM actions a JOIN sessions s ON s.env = a.env AND s.id = a.session_id "
                f"WHERE a.env = ? AND {' AND '.join(where)} ORDER BY a.at DESC LIMIT ?"
            )
            args.insert(0, env)
        elif kind == "logs":
            if user_tag is not None:
                return []  # log records carry no user tag
            where = ["env = ?"] + (["at >= ?"] if since is not None else [])
            args = [env] + ([since] if since is not None else [])
            sql = (
                "SELECT at, level, message, attributes FROM logs "
                f"WHERE {' AND '.join(where)} ORDER BY at DESC LIMIT ?"
            )
        else:
            raise ValueError(f"unknown kind {kind!r}")
        cursor = self._db.execute(sql, [*args, limit])
        names = [d[0] for d in cursor.description]
        rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
        for row in rows:
            if "anonymous" in row:
                row["anonymous"] = bool(row["anonymous"])
            if "attributes" in row:
                row["attributes"] = json.loads(row["attributes"])
        return rows

    def forget(self, env: str, hashed_tag: str) -> dict[str, int]:
        """Delete the sessions with this user tag (by its hash) and their actions."""
        db = self._db
        with _transaction(db):
            ids = [
                r[0]
                for r in db.execute(
                    "SELECT id FROM sessions WHERE env = ? AND tag_hash = ?", (env, hashed_tag)
                )
            ]
            actions = 0
            for chunk in _chunks(ids, 500):
                marks = ",".join("?" * len(chunk))
                actions += db.execute(
                    f"DELETE FROM actions WHERE env = ? AND session_id IN ({marks})",
                    [env, *chunk],
                ).rowcount
            db.execute("DELETE FROM sessions WHERE env = ? AND tag_hash = ?", (env, hashed_tag))
        return {"sessions": len(ids), "actions": actions}

    def remask(
        self,
        env: str,
        log_text: Callable[[str], str],
        page: Callable[[str], str],
    ) -> dict[str, int]:
        """Pass stored log messages and attribute values through `log_text` and action pages
        and names through `page`; counts the rows that changed."""
        db = self._db
        changed = {"logs": 0, "actions": 0}
        with _transaction(db):
            for rowid, message, attributes in db.execute(
                "SELECT rowid, message, attributes FROM logs WHERE env = ?", (env,)
            ).fetchall():
                attrs = json.loads(attributes)
                new_attrs = {k: log_text(v) for k, v in attrs.items()}
                new_message = log_text(message)
                if new_message != message or new_attrs != attrs:
                    db.execute(
                        "UPDATE logs SET message = ?, attributes = ? WHERE rowid = ?",
                        (new_message, json.dumps(new_attrs, sort_keys=True), rowid),
                    )
                    changed["logs"] += 1
            for rowid, name, where in db.execute(
                "SELECT rowid, name, page FROM actions WHERE env = ?", (env,)
            ).fetchall():
                new_name, new_page = page(name), page(where)
                if (new_name, new_page) != (name, where):
                    db.execute(
                        "UPDATE actions SET name = ?, page = ? WHERE rowid = ?",
                        (new_name, new_page, rowid),
                    )
                    changed["actions"] += 1
        return changed

    def sweep(self, env: str, before: float) -> int:
        """Delete what `env` holds from before `before`; the number of rows deleted."""
        db = self._db
        with _transaction(db):
            n = db.execute("DELETE FROM logs WHERE env = ? AND at < ?", (env, before)).rowcount
            n += db.execute("DELETE FROM actions WHERE env = ? AND at < ?", (env, before)).rowcount
            n += db.execute(
                "DELETE FROM sessions WHERE env = ? AND last_seen < ?", (env, before)
            ).rowcount
        return n

    def jobs_done(self) -> set[str]:
        return {r[0] for r in self._db.execute("SELECT name FROM jobs_done")}

    def mark_done(self, name: str, result: dict[str, Any]) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO jobs_done VALUES (?, ?)", (name, json.dumps(result))
        )

    def counts(self, env: str) -> dict[str, int]:
        return {
            table: int(
                self._db.execute(f"SELECT COUNT(*) FROM {table} WHERE env = ?", (env,)).fetchone()[
                    0
                ]
            )
            for table in KINDS
        }


class _transaction:
    """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on any error (autocommit connection)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind: object, *_: object) -> None:
        self._db.execute("ROLLBACK" if kind is not None else "COMMIT")


def _chunks(items: Sequence[str], size: int) -> Iterable[Sequence[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]
