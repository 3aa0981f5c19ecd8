"""A child process for test_backup_memory: writes a 1-file directory part of TOTAL bytes
(`write`), then, each in a fresh process, verifies it with the key (`verify`) or restores it
(`restore`); prints its own peak RSS (VmHWM) as JSON.

    python read_back_child.py write|verify|restore DIR TOTAL
"""

from __future__ import annotations

import json
import os
import sys
import tarfile
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from backup.engine import (
    BackupContext,
    ResidencyPolicy,
    commit_manifest,
    open_targets,
    restore_part_directory,
    verify_backup,
    write_part,
)

BACKUP_ID = "20250101T020000Z-0a1b2c3d"


def peak_mib() -> float:
    # VmHWM, not ru_maxrss: Linux carries a parent's peak over fork+exec into ru_maxrss.
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) / 1024 for line in status if line.startswith("VmHWM:"))


class OneFileTar:
    """A tar stream of one `total`-byte file (one random 1 MiB block repeated), made as read."""

    def __init__(self, total: int) -> None:
        info = tarfile.TarInfo("big.bin")
        info.size, info.mode, info.mtime = total, 0o600, 0
        self.pieces = [
            [info.tobuf(), 1],
            [os.urandom(1 << 20), total >> 20],
            [bytes(-total % 512 + 1024), 1],
        ]
        self.buffer = b""

    def read(self, size: int = -1) -> bytes:
        while (size < 0 or len(self.buffer) < size) and self.pieces:
            block, count = self.pieces[0]
            self.buffer += block  # type: ignore[operator]
            self.pieces[0][1] = count - 1  # type: ignore[operator]
            if count == 1:
                self.pieces.pop(0)
        size = len(self.buffer) if size < 0 else size
        out, self.buffer = self.buffer[:size], self.buffer[size:]
        return out


def main(step: str, where: Path, total: int) -> dict[str, object]:
    targets = open_targets(f"file://{where / 'target'}", [], ResidencyPolicy("EU"))
    if step == "write":
        key, signer = X25519PrivateKey.generate(), Ed25519PrivateKey.generate()
        ctx = BackupContext(BACKUP_ID, key.public_key())
        part = write_part(OneFileTar(total), ctx=ctx, part="n1", node="n1", targets=targets)
        commit_manifest(
            ctx=ctx,
            cluster="c1",
            epoch=1,
            created=datetime.now(UTC),
            parts=[part],
            targets=targets,
            signing_key=signer,
        )
        raw = key.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        (where / "key").write_bytes(raw)
        return {"peak_rss_mib": peak_mib(), "ok": part.size_plain > total}  # with the tar framing
    key = X25519PrivateKey.from_private_bytes((where / "key").read_bytes())
    if step == "verify":
        report = verify_backup(BACKUP_ID, targets, private_key=key)
        return {"peak_rss_mib": peak_mib(), "ok": report.ok}
    restore_part_directory(
        BACKUP_ID, "n1", where / "restored", source=targets.primary, private_key=key
    )
    size = (where / "restored" / "big.bin").stat().st_size
    return {"peak_rss_mib": peak_mib(), "ok": size == total}


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]))))
