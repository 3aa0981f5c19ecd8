"""Frame encryption: round trips and every tampering the format must detect (pure)."""

from __future__ import annotations

import io
import os

import pytest

from backup.errors import IntegrityError
from backup.frames import PART_MAGIC, FrameEncryptor, decrypt_frames, split_frames

KEY = bytes(range(32))
FRAME = 1024


def seal(data: bytes, *, key: bytes = KEY, backup_id: str = "b1", part: str = "p") -> bytes:
    return b"".join(
        FrameEncryptor(io.BytesIO(data), key, backup_id=backup_id, part=part, frame_size=FRAME)
    )


def open_(blob: bytes, *, key: bytes = KEY, backup_id: str = "b1", part: str = "p") -> bytes:
    chunks = [blob[i : i + 777] for i in range(0, len(blob), 777)]
    return b"".join(decrypt_frames(chunks, key, backup_id=backup_id, part=part))


def frames_of(blob: bytes) -> list[bytes]:
    return split_frames(blob)[1]


@pytest.mark.parametrize("size", [0, 1, FRAME - 1, FRAME, FRAME + 1, 5 * FRAME, 5 * FRAME + 7])
def test_round_trip(size: int) -> None:
    data = os.urandom(size)
    encryptor = FrameEncryptor(io.BytesIO(data), KEY, backup_id="b1", part="p", frame_size=FRAME)
    blob = b"".join(encryptor)
    assert encryptor.plain_bytes == size
    assert encryptor.frames == max(1, -(-size // FRAME))
    assert open_(blob) == data


def test_short_reads_from_a_pipe_still_make_full_frames() -> None:
    class Trickle(io.RawIOBase):
        def __init__(self, data: bytes) -> None:
            self.data = data

        def readable(self) -> bool:
            return True

        def read(self, size: int = -1) -> bytes:
            piece, self.data = self.data[: min(size, 100)], self.data[min(size, 100) :]
            return piece

    data = os.urandom(3 * FRAME)
    encryptor = FrameEncryptor(Trickle(data), KEY, backup_id="b", part="p", frame_size=FRAME)
    assert open_(b"".join(encryptor), backup_id="b") == data
    assert encryptor.frames == 3


def test_flipped_bit_names_the_frame() -> None:
    blob = bytearray(seal(os.urandom(4 * FRAME)))
    frames = frames_of(bytes(blob))
    offset = len(PART_MAGIC) + sum(len(f) for f in frames[:2]) + 50
    blob[offset] ^= 0x01
    with pytest.raises(IntegrityError, match="frame 2 failed authentication") as info:
        open_(bytes(blob))
    assert (info.value.part, info.value.frame) == ("p", 2)


def test_reordered_frames_are_detected() -> None:
    frames = frames_of(seal(os.urandom(4 * FRAME)))
    swapped = PART_MAGIC + b"".join([frames[0], frames[2], frames[1], frames[3]])
    with pytest.raises(IntegrityError, match="frame 1 failed"):
        open_(swapped)


def test_truncation_at_a_frame_boundary_is_detected() -> None:
    frames = frames_of(seal(os.urandom(4 * FRAME)))
    with pytest.raises(IntegrityError, match="truncated, frame 3 and the final frame"):
        open_(PART_MAGIC + b"".join(frames[:3]))


def test_truncation_inside_a_frame_is_detected() -> None:
    blob = seal(os.urandom(4 * FRAME))
    with pytest.raises(IntegrityError, match="truncated inside frame 3"):
        open_(blob[:-10])


def test_a_final_frame_cannot_be_faked_by_flipping_the_flag() -> None:
    frames = frames_of(seal(os.urandom(4 * FRAME)))
    second = bytearray(frames[1])
    second[0] |= 0x80  # claim frame 1 is final, dropping the rest
    with pytest.raises(IntegrityError, match="frame 1 failed"):
        open_(PART_MAGIC + frames[0] + bytes(second))


def test_trailing_data_is_detected() -> None:
    with pytest.raises(IntegrityError, match="after the final frame"):
        open_(seal(os.urandom(2 * FRAME)) + b"x")


def test_frame_spliced_from_another_backup_is_detected() -> None:
    # Same data key on purpose: only the associated data (backup id) tells the frames apart.
    ours = frames_of(seal(os.urandom(3 * FRAME), backup_id="b1"))
    theirs = frames_of(seal(os.urandom(3 * FRAME), backup_id="b2"))
    with pytest.raises(IntegrityError, match="frame 1 failed"):
        open_(PART_MAGIC + ours[0] + theirs[1] + ours[2])


def test_frame_spliced_from_another_part_is_detected() -> None:
    ours = frames_of(seal(os.urandom(3 * FRAME), part="p"))
    theirs = frames_of(seal(os.urandom(3 * FRAME), part="q"))
    with pytest.raises(IntegrityError, match="frame 0 failed"):
        open_(PART_MAGIC + theirs[0] + ours[1] + ours[2])


def test_wrong_key_fails_at_frame_zero() -> None:
    with pytest.raises(IntegrityError, match="frame 0 failed"):
        open_(seal(b"data"), key=bytes(32))


def test_not_a_part() -> None:
    with pytest.raises(IntegrityError, match="bad header"):
        open_(b"GARBAGE!" + bytes(40))


def test_nothing_is_yielded_from_a_bad_frame() -> None:
    blob = bytearray(seal(os.urandom(3 * FRAME)))
    blob[-5] ^= 0xFF
    got: list[bytes] = []
    with pytest.raises(IntegrityError):
        for piece in decrypt_frames([bytes(blob)], KEY, backup_id="b1", part="p"):
            got.append(piece)
    assert len(got) == 2  # frames 0 and 1 authenticated; the bad frame 2 yielded nothing


def test_a_chunk_kept_by_a_consumer_never_changes_while_later_frames_are_sealed() -> None:
    data = os.urandom(40 * FRAME)
    encryptor = FrameEncryptor(io.BytesIO(data), KEY, backup_id="b1", part="p", frame_size=FRAME)
    kept: list[tuple[memoryview, bytes]] = []
    for n, chunk in enumerate(encryptor):
        if n % 7 == 1:  # a slow consumer holds a view (or a slice of one) for a while
            view = memoryview(chunk)[5:]
            kept.append((view, bytes(view)))
    assert all(bytes(view) == copy for view, copy in kept)
    assert len(encryptor._sealed) <= len(kept) + 2  # the kept ones are never reused, no more


def test_sealing_reuses_the_buffers_its_consumers_let_go() -> None:
    data = os.urandom(50 * FRAME)
    encryptor = FrameEncryptor(io.BytesIO(data), KEY, backup_id="b1", part="p", frame_size=FRAME)
    blob = bytearray()
    for chunk in encryptor:
        blob += chunk
    assert len(encryptor._sealed) <= 2  # the frame being sealed and the one just handed out
    assert open_(bytes(blob)) == data


def test_sealed_chunks_are_read_only() -> None:
    chunks = list(FrameEncryptor(io.BytesIO(b"x" * 10), KEY, backup_id="b1", part="p"))
    with pytest.raises(TypeError):
        memoryview(chunks[1])[0] = 0
