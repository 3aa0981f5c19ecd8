"""Fan-out of one stream to several consumers: all or nothing, bounded (pure, threads)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import pytest

from backup.fanout import FanOut, FanOutAborted


def collect(chunks: Iterable[bytes]) -> bytes:
    return b"".join(chunks)


def test_every_consumer_gets_every_chunk() -> None:
    data = [bytes([i]) * 10 for i in range(100)]
    results = FanOut([("a", collect), ("b", collect), ("c", collect)], depth=2).run(data)
    assert results == [b"".join(data)] * 3


def test_a_failing_consumer_aborts_the_others() -> None:
    aborted: list[str] = []

    def failing(chunks: Iterable[bytes]) -> bytes:
        for i, _ in enumerate(chunks):
            if i == 5:
                raise RuntimeError("disk full")
        return b""

    def watching(chunks: Iterable[bytes]) -> bytes:
        try:
            return collect(chunks)
        except FanOutAborted:
            aborted.append("b")
            raise

    produced: list[int] = []

    def endless() -> Iterator[bytes]:
        i = 0
        while True:
            produced.append(i)
            i += 1
            yield b"x" * 100

    with pytest.raises(RuntimeError, match="disk full"):
        FanOut([("a", failing), ("b", watching)], depth=2).run(endless())
    assert aborted == ["b"]
    assert len(produced) < 50  # the producer stopped soon after the failure


def test_a_failing_producer_aborts_every_consumer() -> None:
    aborted: list[bool] = []

    def watching(chunks: Iterable[bytes]) -> bytes:
        try:
            return collect(chunks)
        except FanOutAborted:
            aborted.append(True)
            raise

    def broken() -> Iterator[bytes]:
        yield b"ok"
        raise ValueError("source failed")

    with pytest.raises(ValueError, match="source failed"):
        FanOut([("a", watching), ("b", watching)]).run(broken())
    assert aborted == [True, True]


def test_chunk_reader_treats_empty_chunks_as_data_gaps() -> None:
    from backup.streams import ChunkReader

    reader = ChunkReader([b"ab", b"", b"", b"cd", b""])
    assert reader.read(3) == b"ab"
    assert reader.read(3) == b"cd"
    assert reader.read(3) == b""
    assert ChunkReader([b"", b"xyz"]).read_exact(3) == b"xyz"


def test_a_cancel_after_the_last_chunk_still_stops_a_consumer_that_is_behind() -> None:
    """A throttled target may still be writing when the run is abandoned: it must not complete
    (a file target would rename its object into place) even though the producer is done."""
    import threading

    cancel = threading.Event()
    produced = threading.Event()
    completed: list[str] = []

    def slow(chunks: Iterable[bytes]) -> bytes:
        out = b""
        for chunk in chunks:
            produced.wait(5)  # behind: the producer has handed over every chunk by now
            cancel.set()  # the run is abandoned while this consumer still works
            out += chunk
        completed.append("slow")  # the object would land here
        return out

    def chunks() -> Iterator[bytes]:
        yield from (b"x" * 10 for _ in range(3))
        produced.set()

    with pytest.raises(FanOutAborted, match="cancelled"):
        FanOut([("slow", slow)], depth=8, cancelled=cancel.is_set).run(chunks())
    assert completed == []
