"""The write pipeline's pieces: read-ahead frames, batched file writes, S3 part cutting (pure)."""

from __future__ import annotations

import io
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from backup.archive import ArchiveSourceError, DirectoryStream
from backup.atomic import BatchedWriter, write_atomically
from backup.frames import FrameEncryptor, decrypt_frames
from backup.readahead import FrameReads
from backup.targets.s3 import _PartBuffers

KEY = bytes(range(32))


def pieces(source: io.BytesIO | DirectoryStream, size: int, ahead: int) -> list[bytes]:
    reads = FrameReads(source, size, ahead=ahead)
    out = []
    try:
        for buffer, length in reads:
            out.append(bytes(buffer[:length]))
            reads.release(buffer)
    finally:
        reads.close()
    return out


@pytest.mark.parametrize("ahead", [0, 3])
@pytest.mark.parametrize("total", [0, 1, 99, 100, 101, 1000])
def test_frame_reads_cut_full_pieces(ahead: int, total: int) -> None:
    data = os.urandom(total)
    got = pieces(io.BytesIO(data), 100, ahead)
    assert b"".join(got) == data
    assert len(got) == max(1, -(-total // 100))
    assert all(len(p) == 100 for p in got[:-1])


def test_read_ahead_source_error_is_raised_not_an_early_end() -> None:
    class Failing(io.RawIOBase):
        def __init__(self) -> None:
            self.calls = 0

        def readable(self) -> bool:
            return True

        def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
            self.calls += 1
            if self.calls > 3:
                raise OSError(5, "Input/output error")
            buffer[:10] = b"x" * 10
            return 10

    with pytest.raises(OSError, match="Input/output"):
        pieces(Failing(), 10, ahead=2)  # type: ignore[arg-type]


def test_read_ahead_is_bounded_and_close_stops_the_thread() -> None:
    class Endless(io.RawIOBase):
        def readable(self) -> bool:
            return True

        def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
            buffer[:] = b"\0" * len(buffer)
            return len(buffer)

    before = threading.active_count()
    reads = FrameReads(Endless(), 1024, ahead=3)  # type: ignore[arg-type]
    iterator = iter(reads)
    next(iterator)  # hold one buffer, never release it
    assert reads._free.qsize() <= 4  # ahead + 2 buffers exist, no more are made
    reads.close()
    assert threading.active_count() == before


def test_encryptor_with_read_ahead_round_trips_a_directory(data_tree: Path) -> None:
    with DirectoryStream(data_tree) as stream:
        plain = stream.read()
    with DirectoryStream(data_tree) as stream:
        encryptor = FrameEncryptor(stream, KEY, backup_id="b", part="p", frame_size=4096, ahead=4)
        sealed = b"".join(encryptor)
    assert encryptor.plain_bytes == len(plain)
    assert b"".join(decrypt_frames([sealed], KEY, backup_id="b", part="p")) == plain


def test_directory_stream_readinto_fills_across_entries(data_tree: Path) -> None:
    with DirectoryStream(data_tree) as stream:
        whole = stream.read()
    with DirectoryStream(data_tree) as stream:
        buffer = bytearray(7000)
        got = bytearray()
        while count := stream.readinto(buffer):
            assert count == len(buffer) or len(got) + count == len(whole)
            got += buffer[:count]
    assert bytes(got) == whole


def test_directory_stream_file_shrinking_while_read_is_an_error(tmp_path: Path) -> None:
    root = tmp_path / "d"
    root.mkdir()
    victim = root / "big"
    victim.write_bytes(os.urandom(100_000))
    with DirectoryStream(root) as stream:
        first = stream.read(1000)  # header and the start of the file
        assert first
        victim.write_bytes(b"short")
        with pytest.raises(ArchiveSourceError, match="shrank"):
            while stream.read(65536):
                pass


def test_batched_writer_handles_short_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = os.writev

    def short_writev(fd: int, buffers: list[bytes]) -> int:
        first = memoryview(buffers[0])
        return real(fd, [first[: max(1, len(first) // 3)]])

    monkeypatch.setattr(os, "writev", short_writev)
    chunks = [os.urandom(n) for n in (1, 0, 5000, 3, 70_000)]
    path = tmp_path / "out"
    with path.open("wb") as handle:
        writer = BatchedWriter(handle.fileno(), batch_bytes=4096, writeback_every=1)
        for chunk in chunks:
            writer.write(chunk)
        writer.flush()
    assert path.read_bytes() == b"".join(chunks)
    assert writer.written == sum(map(len, chunks))


def test_write_atomically_with_writeback(tmp_path: Path) -> None:
    chunks = [os.urandom(100_000) for _ in range(50)]
    size = write_atomically(tmp_path / "x", iter(chunks), writeback_every=1 << 20)
    assert size == 5_000_000
    assert (tmp_path / "x").read_bytes() == b"".join(chunks)
    assert [p.name for p in tmp_path.iterdir()] == ["x"]


def test_part_buffers_cut_exact_parts_and_recycle() -> None:
    parts = _PartBuffers(part_size=10, in_flight=1)
    uploading: list[bytearray] = []
    sent: list[bytes] = []

    def finish_oldest() -> None:
        buffer = uploading.pop(0)
        sent.append(bytes(buffer))
        parts.release(buffer)

    data = os.urandom(95)
    stream: Iterator[bytes] = (data[i : i + 7] for i in range(0, 95, 7))
    made: set[int] = set()
    for chunk in stream:
        for full in parts.add(chunk, make_room=finish_oldest):
            made.add(id(full))
            uploading.append(full)
    while uploading:
        finish_oldest()
    assert b"".join(sent) + parts.rest() == data
    assert all(len(p) == 10 for p in sent)
    assert len(made) <= 2  # in_flight + 1 buffers, reused
