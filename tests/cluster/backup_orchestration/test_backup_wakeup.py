"""Wake-ups on a real ensemble: a watched change ends the wait at once, a quiet wait ends at its
timeout, a closed wake-up no longer wakes anyone, and arming never blocks."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator

import pytest
from clusterkit import ZK_AUTH

from cluster import zk
from cluster.backups.wakeup import AsyncWakeup, ThreadWakeup
from cluster.dev.processes import wait_until
from cluster.dev.zookeeper import Ensemble
from cluster.zk import ZooKeeper

LONG = 30.0  # a wait woken by its watch ends long before this


@pytest.fixture
def client(zk_ensemble: Ensemble) -> Iterator[ZooKeeper]:
    c = zk.connect(zk_ensemble.connect_string, auth=ZK_AUTH)
    try:
        yield c
    finally:
        zk.close(c)


@pytest.fixture
def base(client: ZooKeeper) -> str:
    path = f"/wakeup-test/{uuid.uuid4().hex}"
    client.ensure_path(path)
    return path


def later(seconds: float, action: Callable[[], object]) -> threading.Timer:
    timer = threading.Timer(seconds, action)
    timer.start()
    return timer


def test_a_new_child_wakes_a_blocking_waiter(client: ZooKeeper, base: str) -> None:
    wakeup = ThreadWakeup(client, children=[base])
    later(0.2, lambda: client.create(f"{base}/request-"))
    started = time.monotonic()
    wakeup.wait(LONG)
    assert time.monotonic() - started < LONG / 3


def test_a_change_made_while_the_loop_works_still_wakes_the_next_wait(
    client: ZooKeeper, base: str
) -> None:
    wakeup = ThreadWakeup(client, children=[base])  # armed at creation
    client.create(f"{base}/early-")  # "while the loop works", before it waits
    # The watch has fired (on kazoo's thread) before anyone waits: the wake-up must keep it.
    assert wait_until(wakeup._event.is_set, 5), "the watch armed at creation never fired"
    started = time.monotonic()
    wakeup.wait(LONG)
    assert time.monotonic() - started < 0.5


def test_data_watch_wakes_on_create_and_a_quiet_wait_times_out(
    client: ZooKeeper, base: str
) -> None:
    wakeup = ThreadWakeup(client, data=[f"{base}/current"])  # does not exist yet
    started = time.monotonic()
    wakeup.wait(0.3)  # nothing changes: the poll interval bounds the wait
    assert 0.25 <= time.monotonic() - started < LONG / 3
    later(0.2, lambda: client.create(f"{base}/current", b"run-1"))
    started = time.monotonic()
    wakeup.wait(LONG)
    assert time.monotonic() - started < LONG / 3


def test_a_closed_wakeup_is_not_woken(client: ZooKeeper, base: str) -> None:
    wakeup = ThreadWakeup(client, children=[base])
    wakeup.close()
    client.create(f"{base}/late-")
    started = time.monotonic()
    wakeup.wait(0.5)
    assert time.monotonic() - started >= 0.45


def test_arming_never_blocks_even_without_zookeeper(zk_ensemble: Ensemble) -> None:
    """kazoo's watch recipes retry without limit in the thread that creates them; arming here
    only queues requests, so a loop can arm while ZooKeeper is away."""
    client = zk.make_client(zk_ensemble.connect_string, session_timeout=2.0, auth=ZK_AUTH)
    try:  # never started: every request fails at once
        started = time.monotonic()
        wakeup = ThreadWakeup(client, children=["/nowhere"], data=["/nowhere/current"])
        wakeup.wait(0.2)
        assert time.monotonic() - started < 2.0
    finally:
        client.close()


async def test_the_event_loop_waiter_is_woken_from_kazoos_thread(
    client: ZooKeeper, base: str
) -> None:
    wakeup = AsyncWakeup(client, children=[base])
    later(0.2, lambda: client.create(f"{base}/part-"))
    started = time.monotonic()
    await wakeup.wait(LONG)
    assert time.monotonic() - started < LONG / 3
    wakeup.close()
