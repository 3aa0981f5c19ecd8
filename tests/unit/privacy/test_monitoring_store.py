"""The node's store on its own: a 0600 SQLite file in WAL mode in the data directory, reads by
user tag through its hash, forget, remask, retention, and the `--since` forms of the CLI."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import click
import pytest

from cluster.cli.data import parse_since
from cluster.data.store import (
    FILE,
    ActionRow,
    LogRow,
    MonitoringStore,
    SessionRow,
    tag_hash,
)
from contract.privacy.detectors import mask_detected


def session(sid: str, tag: str | None) -> SessionRow:
    return SessionRow("prod", sid, "shop", 10.0, tag, "127.0.0.0", None, False)


def action(sid: str, at: float, page: str = "/cart") -> ActionRow:
    return ActionRow("prod", sid, at, "load", "page load", page, None)


def test_store_file_reads_forget_remask_and_retention(tmp_path: Path) -> None:
    store = MonitoringStore(tmp_path)
    path = tmp_path / FILE
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert oct(path.parent.stat().st_mode & 0o777) == "0o700"
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"

    store.add_beacon(session("s-ann", "ann@example.com"), [action("s-ann", 10.0)], at=10.0)
    store.add_beacon(session("s-bob", "bob@example.com"), [action("s-bob", 20.0)], at=20.0)
    store.add_beacon(session("s-ann", None), [action("s-ann", 30.0, "/pay/123456")], at=30.0)
    store.add_logs([LogRow("prod", 5.0, "info", "mail ann@example.com", {"who": "ann@x.io"})])
    assert [r["id"] for r in store.read("sessions", "prod")] == ["s-ann", "s-bob"]
    assert store.read("sessions", "prod")[0]["user_tag"] == "ann@example.com"  # kept
    assert [r["at"] for r in store.read("actions", "prod", user_tag="ann@example.com")] == [
        30.0,
        10.0,
    ]
    assert store.read("sessions", "prod", since=25.0)[0]["id"] == "s-ann"
    assert store.read("logs", "prod", user_tag="ann@example.com") == []
    assert store.read("sessions", "other") == []

    changed = store.remask("prod", mask_detected, mask_detected)
    assert changed == {"logs": 1, "actions": 1}
    [log] = store.read("logs", "prod")
    assert (log["message"], log["attributes"]) == ("mail <masked>", {"who": "<masked>"})
    assert store.remask("prod", mask_detected, mask_detected) == {"logs": 0, "actions": 0}

    assert store.forget("prod", tag_hash("prod", "ann@example.com")) == {
        "sessions": 1,
        "actions": 2,
    }
    assert [r["id"] for r in store.read("sessions", "prod")] == ["s-bob"]
    assert store.sweep("prod", before=21.0) == 3  # the log record, bob's action and session
    assert store.counts("prod") == {"sessions": 0, "actions": 0, "logs": 0}
    store.mark_done("job-1", {"sessions": 1})
    assert store.jobs_done() == {"job-1"}
    store.close()


def test_since_forms() -> None:
    assert parse_since("30m", 10_000.0) == 8_200.0
    assert parse_since("2d", 200_000.0) == 200_000.0 - 2 * 86400
    assert parse_since("1700000000", 0.0) == 1_700_000_000.0
    assert parse_since("2026-12-07T10:00:00+00:00", 0.0) == 1796637600.0
    assert parse_since(None, 0.0) is None
    for bad in ("yesterday", "2026-12-07T10:00:00"):
        with pytest.raises(click.BadParameter):
            parse_since(bad, 0.0)
