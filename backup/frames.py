"""Streaming authenticated encryption of one backup part, frame by frame (AES-256-GCM).

Guarantees:
- Memory is bounded by one frame, whatever the stream's length.
- Each sealed frame is handed out as one read-only chunk (length word, ciphertext, tag) in a
  recycled buffer that is reused only once nothing can read it any more (`SealedBuffers`), so
  sealing allocates nothing per frame.
- Each frame's nonce carries its index and a final-frame flag, and its associated data carries
  the backup id, the part name, the index and the flag. Decryption therefore detects a flipped
  bit, reordered or dropped frames, truncation (no final frame), trailing data, and frames
  spliced from another part or another backup, and names the part and frame in the error.
- `decrypt_frames` yields a frame's plaintext only after that frame authenticated. It does not
  by itself hold back earlier frames when a later one fails: a restore must stage its output and
  move it into place only after the generator finished (see backup.restore). Frames are read
  into one reused buffer and decrypted in place into pooled buffers (`SealedBuffers`: reused
  only once no view of them is left), so opening allocates nothing per frame either.
The layout is specified in docs/backup-format.md.
"""

from __future__ import annotations

import struct
from collections import deque
from collections.abc import Iterable, Iterator

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from backup.errors import IntegrityError
from backup.readahead import FrameReads
from backup.streams import Chunk, ChunkReader, Readable

PART_MAGIC = b"MBKPART1"
FRAME_LENGTH = struct.Struct(">I")  # bit 31: final-frame flag; bits 0-30: plaintext length
FINAL_BIT = 0x8000_0000
NONCE = struct.Struct(">QI")  # frame index, final flag: 12 bytes
AAD_MAGIC = b"MBKF"
TAG_BYTES = 16
DEFAULT_FRAME_SIZE = 1024 * 1024
MAX_FRAME_SIZE = 16 * 1024 * 1024


def ciphertext_size(plain_bytes: int, frame_size: int = DEFAULT_FRAME_SIZE) -> int:
    """The size of the part object sealing `plain_bytes` bytes of plaintext."""
    frames = max(1, -(-plain_bytes // frame_size))
    return len(PART_MAGIC) + frames * (FRAME_LENGTH.size + TAG_BYTES) + plain_bytes


def frame_nonce(index: int, final: bool) -> bytes:
    return NONCE.pack(index, 1 if final else 0)


def frame_aad(backup_id: str, part: str, index: int, final: bool) -> bytes:
    bid, name = backup_id.encode(), part.encode()
    return b"".join(
        (
            AAD_MAGIC,
            struct.pack(">H", len(bid)),
            bid,
            struct.pack(">H", len(name)),
            name,
            struct.pack(">QB", index, 1 if final else 0),
        )
    )


class SealedBuffers:
    """Output buffers for sealed frames, each reused only once no view of it is left.

    A frame leaves as a read-only memoryview of a pooled bytearray. CPython refuses to resize
    a bytearray while any buffer export of it is alive (that memoryview, a slice of it, or a C
    library holding it), so a buffer that can be resized is one that nobody can still read:
    only such a buffer is reused, and a consumer that keeps a chunk as long as it likes sees
    its bytes unchanged. Buffers are tried least recently used first (consumers mostly let go
    in order, so the first one tried is usually free); a new one is made only when every
    buffer is still viewed. The pool thus holds the frames in flight, which the fan-out's
    queues bound, plus those a consumer chose to keep.
    """

    def __init__(self, size: int) -> None:
        self._size = size
        self._ring: deque[bytearray] = deque()

    def take(self, at_least: int = 0) -> bytearray:
        """A buffer nobody views, of the pool's size (or `at_least` bytes, if larger)."""
        size = max(self._size, at_least)
        for index, buffer in enumerate(self._ring):
            if len(buffer) >= size and _unviewed(buffer):
                del self._ring[index]
                break
        else:
            buffer = bytearray(size + 1)  # the spare byte makes `_unviewed` O(1)
            del buffer[-1]
        self._ring.append(buffer)
        return buffer

    def __len__(self) -> int:
        return len(self._ring)


def _unviewed(buffer: bytearray) -> bool:
    """True if no buffer export of `buffer` is alive (see `SealedBuffers`)."""
    try:
        buffer.append(0)
    except BufferError:
        return False
    del buffer[-1]
    return True


class FrameEncryptor:
    """Turns a readable plaintext stream into the ciphertext of one part.

    Iterate over it to get ciphertext chunks (the header, then one read-only memoryview per
    frame: length word, ciphertext and tag, see `SealedBuffers`); afterwards `frames` and
    `plain_bytes` say what was sealed. With `ahead > 0`
    the plaintext is read on a background thread, up to `ahead` frames ahead of the sealing,
    so reading and encryption overlap; `close()` stops that thread if iteration ends early.
    """

    def __init__(
        self,
        source: Readable,
        data_key: bytes,
        *,
        backup_id: str,
        part: str,
        frame_size: int = DEFAULT_FRAME_SIZE,
        ahead: int = 0,
    ) -> None:
        if not 1 <= frame_size <= MAX_FRAME_SIZE:
            raise ValueError(f"frame size must be 1..{MAX_FRAME_SIZE} bytes")
        self._source = source
        self._aead = AESGCM(data_key)
        self._backup_id = backup_id
        self._part = part
        self._frame_size = frame_size
        self._ahead = ahead
        self._reads: FrameReads | None = None
        self._sealed = SealedBuffers(FRAME_LENGTH.size + frame_size + TAG_BYTES)
        self.frames = 0
        self.plain_bytes = 0

    def __iter__(self) -> Iterator[bytes | memoryview]:
        reads = self._reads = FrameReads(self._source, self._frame_size, ahead=self._ahead)
        try:
            yield PART_MAGIC
            pending: tuple[bytearray, int] | None = None
            for piece in reads:
                if pending is not None:
                    yield self._seal(reads, *pending, final=False)
                pending = piece
            assert pending is not None  # FrameReads yields at least one piece
            yield self._seal(reads, *pending, final=True)
        finally:
            reads.close()

    def close(self) -> None:
        """Stop reading ahead (for a consumer that stops iterating early)."""
        if self._reads is not None:
            self._reads.close()

    def _seal(
        self, reads: FrameReads, buffer: bytearray, length: int, *, final: bool
    ) -> memoryview:
        index = self.frames
        out = self._sealed.take()
        FRAME_LENGTH.pack_into(out, 0, length | (FINAL_BIT if final else 0))
        end = FRAME_LENGTH.size + length + TAG_BYTES
        with memoryview(buffer) as view, memoryview(out) as target:
            self._aead.encrypt_into(
                frame_nonce(index, final),
                view[:length],
                frame_aad(self._backup_id, self._part, index, final),
                target[FRAME_LENGTH.size : end],
            )
            sealed = target[:end].toreadonly()
        reads.release(buffer)
        self.frames += 1
        self.plain_bytes += length
        return sealed


def split_frames(sealed: bytes) -> tuple[bytes, list[bytes]]:
    """Header and raw frames (length word + ciphertext + tag) of a whole sealed part, without
    authenticating anything: for inspection tools and tests, never for restoring."""
    header, frames, pos = sealed[: len(PART_MAGIC)], [], len(PART_MAGIC)
    while pos < len(sealed):
        (word,) = FRAME_LENGTH.unpack_from(sealed, pos)
        end = pos + FRAME_LENGTH.size + (word & ~FINAL_BIT) + TAG_BYTES
        frames.append(sealed[pos:end])
        pos = end
    return header, frames


def decrypt_frames(
    ciphertext: Iterable[Chunk], data_key: bytes, *, backup_id: str, part: str
) -> Iterator[memoryview]:
    """Yield the plaintext of each frame once it authenticated; IntegrityError on the first
    bad frame, on truncation, or on data after the final frame."""
    reader = ChunkReader(ciphertext)
    if reader.read_exact(len(PART_MAGIC)) != PART_MAGIC:
        raise IntegrityError(f"part {part}: not a backup part (bad header)", part=part, frame=None)
    aead = AESGCM(data_key)
    opened = SealedBuffers(DEFAULT_FRAME_SIZE)
    sealed = bytearray(DEFAULT_FRAME_SIZE + TAG_BYTES)
    index = 0
    while True:
        prefix = reader.read_exact(FRAME_LENGTH.size)
        if len(prefix) < FRAME_LENGTH.size:
            raise IntegrityError(
                f"part {part}: truncated, frame {index} and the final frame are missing",
                part=part,
                frame=index,
            )
        (word,) = FRAME_LENGTH.unpack(prefix)
        final, length = bool(word & FINAL_BIT), word & ~FINAL_BIT
        if length > MAX_FRAME_SIZE:
            raise IntegrityError(
                f"part {part}: frame {index} has an impossible length (corrupted)",
                part=part,
                frame=index,
            )
        if len(sealed) < length + TAG_BYTES:
            sealed = bytearray(length + TAG_BYTES)  # a part written with larger frames
        with memoryview(sealed) as whole, whole[: length + TAG_BYTES] as frame:
            if reader.fill(frame) < len(frame):
                raise IntegrityError(
                    f"part {part}: truncated inside frame {index}", part=part, frame=index
                )
            out = opened.take(length)
            with memoryview(out) as target:
                try:
                    aead.decrypt_into(
                        frame_nonce(index, final),
                        frame,
                        frame_aad(backup_id, part, index, final),
                        target[:length],
                    )
                except InvalidTag:
                    raise IntegrityError(
                        f"part {part}: frame {index} failed authentication "
                        "(altered, reordered, from another backup, or wrong key)",
                        part=part,
                        frame=index,
                    ) from None
                plaintext = target[:length].toreadonly()
        yield plaintext
        if final:
            if reader.read_exact(1):
                raise IntegrityError(
                    f"part {part}: unexpected data after the final frame {index}",
                    part=part,
                    frame=index + 1,
                )
            return
        index += 1
