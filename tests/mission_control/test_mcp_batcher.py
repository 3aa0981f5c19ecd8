"""GroupCommit, the asyncio group-commit mechanism, without any database."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from mission_control.service.exchange.batcher import GroupCommit, Outcome


class Recorder:
    """A flush that records its batches; item "boom" fails alone, "all" fails the batch."""

    def __init__(self, pause: float = 0.01) -> None:
        self.batches: list[list[tuple[str, int]]] = []
        self.running = 0
        self.most_running = 0
        self.pause = pause

    async def __call__(self, items: Sequence[tuple[str, int]]) -> list[Outcome[str]]:
        self.batches.append(list(items))
        self.running += 1
        self.most_running = max(self.most_running, self.running)
        try:
            await asyncio.sleep(self.pause)
            if any(value == -1 for _, value in items):
                raise RuntimeError("whole batch failed")
            return [ValueError(key) if value == -2 else f"{key}:{value}" for key, value in items]
        finally:
            self.running -= 1


def _key(item: tuple[str, int]) -> str:
    return item[0]


async def test_concurrent_items_share_batches_and_get_their_own_outcomes() -> None:
    flush = Recorder()
    group = GroupCommit(flush, key=_key)
    replies = await asyncio.gather(*(group.submit((f"c{i}", i)) for i in range(50)))
    assert replies == [f"c{i}:{i}" for i in range(50)]
    assert len(flush.batches) < 50  # the first goes alone, the rest share
    assert sorted(item for batch in flush.batches for item in batch) == sorted(
        (f"c{i}", i) for i in range(50)
    )


async def test_one_key_is_never_twice_in_a_batch_and_keeps_its_order() -> None:
    flush = Recorder()
    group = GroupCommit(flush, key=_key, max_concurrent=3)
    items = [(f"c{i % 4}", i) for i in range(40)]
    await asyncio.gather(*(group.submit(item) for item in items))
    for batch in flush.batches:
        keys = [key for key, _ in batch]
        assert len(keys) == len(set(keys))
    for key in ("c0", "c1", "c2", "c3"):
        flushed = [v for batch in flush.batches for k, v in batch if k == key]
        assert flushed == sorted(flushed) and len(flushed) == 10


async def test_limits_on_batch_size_and_concurrent_flushes() -> None:
    flush = Recorder()
    group = GroupCommit(flush, key=_key, max_batch=7, max_concurrent=2)
    await asyncio.gather(*(group.submit((f"c{i}", i)) for i in range(100)))
    assert max(len(b) for b in flush.batches) == 7
    assert flush.most_running == 2


async def test_an_item_error_reaches_only_its_caller() -> None:
    group = GroupCommit(Recorder(), key=_key)
    results = await asyncio.gather(
        *(group.submit((f"c{i}", -2 if i == 3 else i)) for i in range(10)),
        return_exceptions=True,
    )
    assert isinstance(results[3], ValueError)
    assert [r for i, r in enumerate(results) if i != 3] == [
        f"c{i}:{i}" for i in range(10) if i != 3
    ]


async def test_a_failed_flush_fails_its_batch_only() -> None:
    flush = Recorder()
    group = GroupCommit(flush, key=_key)
    first = asyncio.create_task(group.submit(("a", 1)))
    await asyncio.sleep(0)  # "a" is flushing alone; the next two share a batch
    failing = [asyncio.create_task(group.submit(item)) for item in (("b", -1), ("c", 3))]
    assert await first == "a:1"
    for task in failing:
        with pytest.raises(RuntimeError, match="whole batch failed"):
            await task
    assert await group.submit(("d", 4)) == "d:4"  # still working afterwards


async def test_a_caller_cancelled_before_its_batch_is_not_flushed() -> None:
    flush = Recorder(pause=0.05)
    group = GroupCommit(flush, key=_key)
    first = asyncio.create_task(group.submit(("a", 1)))
    await asyncio.sleep(0)
    gone = asyncio.create_task(group.submit(("b", 2)))
    await asyncio.sleep(0)
    gone.cancel()
    assert await first == "a:1"
    assert await group.submit(("c", 3)) == "c:3"
    assert all(item != ("b", 2) for batch in flush.batches for item in batch)


async def test_nothing_runs_while_idle() -> None:
    group = GroupCommit(Recorder(pause=0), key=_key)
    await asyncio.gather(*(group.submit((f"c{i}", i)) for i in range(5)))
    await asyncio.sleep(0)
    assert group.waiting == 0
    assert not [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]


def test_limits_must_be_positive() -> None:
    with pytest.raises(ValueError):
        GroupCommit(Recorder(), key=_key, max_batch=0)


async def test_linger_holds_a_stream_and_never_a_lone_or_late_item() -> None:
    flush = Recorder(pause=0.001)
    group = GroupCommit(flush, key=_key, linger=0.2)
    loop = asyncio.get_running_loop()

    started = loop.time()
    assert await group.submit(("lone", 1)) == "lone:1"
    assert loop.time() - started < 0.1  # the first item after a quiet spell goes at once

    await asyncio.sleep(0.25)  # quiet again
    started = loop.time()
    stream = []
    for i in range(5):  # a stream: items 10 ms apart, closer than the linger
        stream.append(asyncio.create_task(group.submit((f"s{i}", i))))
        await asyncio.sleep(0.01)
    await asyncio.gather(*stream)
    # The first of the stream went alone; the others waited for company and shared a batch.
    assert [len(batch) for batch in flush.batches[1:]] == [1, 4]
    assert loop.time() - started < 0.01 + 0.2 + 0.1  # bounded by the linger, plus slack

    # Items that already waited out a slow flush are taken at once, not held again.
    slow = Recorder(pause=0.3)
    held = GroupCommit(slow, key=_key, linger=0.2)
    first = asyncio.create_task(held.submit(("a", 1)))
    await asyncio.sleep(0.005)
    queued = [asyncio.create_task(held.submit((f"q{i}", i))) for i in range(3)]
    await asyncio.sleep(0.005)
    started = loop.time()
    await asyncio.gather(first, *queued)
    assert [len(batch) for batch in slow.batches] == [1, 3]
    assert loop.time() - started < 0.3 + 0.3 + 0.15  # two flushes, no linger in between


def test_linger_must_not_be_negative() -> None:
    with pytest.raises(ValueError, match="linger"):
        GroupCommit(Recorder(), key=_key, linger=-1)
