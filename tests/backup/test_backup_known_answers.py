"""Known answers for the backup format (docs/backup-format.md): fixed keys, expected bytes.

Every backup ever written must stay readable, so the bytes are the contract: a change to the
frame layout, a nonce or the associated data (section 4) changes the bytes below and would
leave existing backups undecryptable, even while every round trip of the new code still passes.
`golden/v2/` is a whole backup written by this version (see its README.md): every later
version must still verify it and restore it bit-exact.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from backup.engine import (
    ResidencyPolicy,
    open_targets,
    restore_part_bytes,
    restore_part_directory,
    verify_backup,
)
from backup.frames import FrameEncryptor, decrypt_frames, frame_aad, frame_nonce
from backup.keys import load_private_key
from backup.targets import Target
from backup.targets.location import TargetLocation

KEY = bytes(range(32))
BACKUP_ID = "20261207T090000Z-0a1b2c3d"
PLAIN = b"managed backup frames"  # 21 bytes: frames of 8, 8 and a final 5
PART = bytes.fromhex(
    "4d424b5041525431"  # "MBKPART1"
    "00000008" + "63dddbbfd249e79d" + "d9cdd427a1d8dc025be914846d7ad8b4"
    "00000008" + "536a071644edfcf4" + "1e05747d90e29af9c76afb8acb48b2f0"
    "80000005" + "511ed2acc9" + "78b9391dd36bfe54784932877bef7c78"
)
EMPTY_PART = bytes.fromhex("4d424b5041525431" + "80000000" + "de3b4b86cdf805ba96e08b0259f37523")
GOLDEN = Path(__file__).parent / "golden" / "v2"


def aad_as_documented(backup_id: str, part: str, index: int, final: bool) -> bytes:
    """aad_i exactly as section 4 spells it, written apart from backup.frames."""
    b, p = backup_id.encode(), part.encode()
    return b"".join(
        (b"MBKF", len(b).to_bytes(2, "big"), b, len(p).to_bytes(2, "big"), p)
        + (index.to_bytes(8, "big"), bytes([final]))
    )


def seal(data: bytes, part: str) -> bytes:
    encryptor = FrameEncryptor(io.BytesIO(data), KEY, backup_id=BACKUP_ID, part=part, frame_size=8)
    return b"".join(bytes(chunk) for chunk in encryptor)


def test_frame_nonce_and_associated_data_are_the_documented_bytes() -> None:
    assert frame_aad(BACKUP_ID, "node-a", 2, True) == bytes.fromhex(
        "4d424b46"  # "MBKF"
        "0019"
        "3230323631323037543039303030305a2d3061316232633364"  # 25, the backup id
        "0006"
        "6e6f64652d61"  # 6, "node-a"
        "0000000000000002"  # frame index 2
        "01"  # final
    )
    for index, final in [(0, False), (1, False), (7, True), (2**40 + 3, False)]:
        assert frame_aad(BACKUP_ID, "zookeeper", index, final) == aad_as_documented(
            BACKUP_ID, "zookeeper", index, final
        )
        assert frame_nonce(index, final) == index.to_bytes(8, "big") + int(final).to_bytes(4, "big")
    assert frame_nonce(2, True) == bytes.fromhex("000000000000000200000001")


def test_a_part_sealed_with_a_fixed_key_is_these_bytes() -> None:
    assert seal(PLAIN, "node-a") == PART
    assert seal(b"", "zookeeper") == EMPTY_PART  # an empty stream: one empty final frame


def test_the_known_part_opens_with_this_reader_and_with_the_document_alone() -> None:
    assert b"".join(decrypt_frames([PART], KEY, backup_id=BACKUP_ID, part="node-a")) == PLAIN
    aead, pos, index, plain = AESGCM(KEY), 8, 0, b""
    while pos < len(PART):
        word = int.from_bytes(PART[pos : pos + 4], "big")
        final, length = bool(word >> 31), word & 0x7FFF_FFFF
        sealed = PART[pos + 4 : pos + 4 + length + 16]
        nonce = index.to_bytes(8, "big") + int(final).to_bytes(4, "big")
        plain += aead.decrypt(nonce, sealed, aad_as_documented(BACKUP_ID, "node-a", index, final))
        pos, index = pos + 4 + length + 16, index + 1
    assert plain == PLAIN and final and index == 3


def test_the_golden_backup_of_format_2_verifies_and_restores_bit_exact(tmp_path: Path) -> None:
    expected = json.loads((GOLDEN / "expected.json").read_text())
    backup_id = expected["backup_id"]
    shutil.copytree(GOLDEN / "target", tmp_path / "target")
    targets = open_targets(f"file://{tmp_path / 'target'}", [], ResidencyPolicy("EU"))
    customer = load_private_key((GOLDEN / "customer.key").read_bytes())
    signer = load_pem_public_key((GOLDEN / "signer.pub").read_bytes())
    assert isinstance(signer, Ed25519PublicKey)

    def moved(location: TargetLocation) -> Target:
        """The manifest records where the backup was written; it is here now."""
        assert location.url == expected["target_url"]
        return targets.primary

    report = verify_backup(
        backup_id,
        targets,
        private_key=customer,
        trusted=signer,
        opener=moved,
    )
    assert report.ok and report.deep, report.describe()

    out = tmp_path / "restored"
    restore_part_directory(
        backup_id, "node-a", out, source=targets.primary, private_key=customer, trusted=signer
    )
    found: dict[str, dict[str, object]] = {}
    for path in sorted(out.rglob("*")):
        st, name = path.lstat(), path.relative_to(out).as_posix()
        if path.is_symlink():
            found[name] = {"link": os.readlink(path)}
        elif path.is_dir():
            found[name] = {"dir": True, "mode": oct(st.st_mode & 0o7777)}
        else:
            found[name] = {
                "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
                "mode": oct(st.st_mode & 0o7777),
                "mtime": int(st.st_mtime),
            }
    assert found == expected["node-a"]
    assert (out / "a.txt").stat().st_ino == (out / "hard-a").stat().st_ino  # still a hard link
    zookeeper = restore_part_bytes(
        backup_id, "zookeeper", source=targets.primary, private_key=customer, trusted=signer
    )
    assert zookeeper == expected["zookeeper"].encode()
