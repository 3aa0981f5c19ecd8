"""Watches the cluster in ZooKeeper and records what leaders wrote, with transaction ids.

The leader's health summary is a fenced write made every loop; its `mzxid` places it in
ZooKeeper's total order of writes, which is what `single leader` is judged on. The epoch znode
and every message queued in the outbox are recorded the same way. Watches see most changes at
once; a poll every half second catches up after a reconnect. A change overwritten before a
watch or poll could read it is not seen (the checkers judge what was seen).

The observer's session speaks TLS with the cluster's credential, as an operator's would.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from typing import Any

from kazoo.client import KazooClient
from kazoo.exceptions import KazooException
from kazoo.handlers.threading import KazooTimeoutError
from kazoo.retry import KazooRetry
from soak_history import History

from cluster.link.outbox import sequence_of
from cluster.paths import ClusterPaths


class Observer:
    def __init__(self, history: History, hosts: str, auth: str, ca_file: str, cluster: str):
        self.history = history
        self.paths = ClusterPaths(cluster)
        # A session that rides through ZooKeeper faults on purpose: its reconnects are noise.
        logging.getLogger("kazoo.client").setLevel(logging.ERROR)
        self.client = KazooClient(
            hosts=hosts,
            timeout=10.0,
            connection_retry=KazooRetry(max_tries=-1, delay=0.1, backoff=2, max_delay=1.0),
            auth_data=[("digest", auth)],
            use_ssl=True,
            ca=ca_file,
            verify_certs=True,
            check_hostname=True,
        )
        self._seen_zxids: dict[str, set[int]] = {"health": set(), "epoch": set()}
        self._seen_outbox: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self.leader: str | None = None

    def start(self) -> None:
        self.client.start(timeout=30)
        self.client.DataWatch(self.paths.health, lambda d, s: self._health(d, s))
        self.client.DataWatch(self.paths.epoch, lambda d, s: self._epoch(d, s))
        self.client.ensure_path(self.paths.outbox)
        self.client.ChildrenWatch(self.paths.outbox, self._outbox)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        with contextlib.suppress(Exception):
            self.client.stop()
            self.client.close()

    def _health(self, data: bytes | None, stat: Any) -> None:
        if data is None or stat is None:
            return
        with self._lock:
            if stat.mzxid in self._seen_zxids["health"]:
                return
            self._seen_zxids["health"].add(stat.mzxid)
        try:
            summary = json.loads(data)
            value = {
                "zxid": stat.mzxid,
                "leader": summary["leader"],
                "epoch": summary["epoch"],
                "at": summary["at"],
            }
        except (ValueError, KeyError, TypeError):
            return
        self.history.record("observer", "health-write", "info", value)

    def _epoch(self, data: bytes | None, stat: Any) -> None:
        if data is None or stat is None:
            return
        with self._lock:
            if stat.mzxid in self._seen_zxids["epoch"]:
                return
            self._seen_zxids["epoch"].add(stat.mzxid)
        with contextlib.suppress(ValueError):
            self.history.record(
                "observer", "epoch", "info", {"zxid": stat.mzxid, "epoch": int(data or b"0")}
            )

    def _outbox(self, children: list[str]) -> None:
        with self._lock:
            new = [c for c in children if c not in self._seen_outbox]
            self._seen_outbox.update(new)
        for name in new:
            self.client.get_async(f"{self.paths.outbox}/{name}").rawlink(
                lambda result, name=name: self._queued(name, result)
            )

    def _queued(self, name: str, result: Any) -> None:
        try:
            data, _stat = result.get_nowait()
            record = json.loads(data)
        except (KazooException, ValueError, TypeError, KazooTimeoutError):
            return  # delivered before it could be read
        self.history.record(
            "observer",
            "outbox",
            "info",
            {
                "znode": name,
                "seq": sequence_of(name),
                "message_id": record.get("message_id"),
                "kind": record.get("kind"),
            },
        )

    def _poll(self) -> None:
        while not self._stop.wait(0.5):
            try:
                self._health(*self.client.get(self.paths.health))
                self._epoch(*self.client.get(self.paths.epoch))
                self._outbox(self.client.get_children(self.paths.outbox))
                data, _ = self.client.get(self.paths.leader)
                self.leader = str(json.loads(data)["node"])
            except (KazooException, KazooTimeoutError, ValueError, KeyError, TypeError):
                continue

    def pending(self) -> tuple[list[str], list[str]]:
        """(queued message ids, set-aside message ids) in the outbox now."""
        ids: list[str] = []
        for name in self.client.get_children(self.paths.outbox):
            with contextlib.suppress(KazooException, ValueError):
                ids.append(
                    json.loads(self.client.get(f"{self.paths.outbox}/{name}")[0])["message_id"]
                )
        dead: list[str] = []
        if self.client.exists(self.paths.outbox_dead):
            for name in self.client.get_children(self.paths.outbox_dead):
                with contextlib.suppress(KazooException, ValueError):
                    raw = self.client.get(f"{self.paths.outbox_dead}/{name}")[0]
                    dead.append(json.loads(raw)["message_id"])
        return ids, dead
