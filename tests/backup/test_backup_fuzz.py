"""Real backups, mutated by hypothesis, through `verify` and `restore`: never a crash (only the
library's own `BackupError`), never a mutation reported as sound, never a restored byte (nor a
staging directory) left behind, and never a plaintext byte handed out from a frame that did not
authenticate: every frame the reader yields is the original frame at its index.

The backup is the checked-in one of `golden/v2/` (20 frames of 1024 bytes and a small part),
so the cases are the same on every run (derandomized, no example database).
"""

from __future__ import annotations

import contextlib
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backup.engine import (
    ResidencyPolicy,
    TargetSet,
    open_targets,
    restore_part_bytes,
    restore_part_directory,
    verify_backup,
)
from backup.errors import BackupError, IntegrityError
from backup.frames import decrypt_frames, split_frames
from backup.keys import RecipientPrivateKey, load_private_key, unwrap_data_key
from backup.layout import manifest_object, part_object
from backup.manifest import SignedManifest
from backup.targets import Target
from backup.targets.location import TargetLocation

GOLDEN = Path(__file__).parent / "golden" / "v2"
FUZZ = settings(
    max_examples=60,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)


@dataclass(frozen=True)
class Golden:
    root: Path  # a copy of the target, restored to the original before each case
    backup_id: str
    recorded_url: str
    customer: RecipientPrivateKey
    signer: Ed25519PublicKey
    manifest: bytes
    part: bytes  # node-a's stored object
    small: bytes  # the zookeeper part's stored object
    frames: list[bytes]  # node-a's plaintext, frame by frame

    def path(self, name: str) -> Path:
        return self.root / name

    def reset(self) -> None:
        self.path(manifest_object(self.backup_id)).write_bytes(self.manifest)
        self.path(part_object(self.backup_id, "node-a")).write_bytes(self.part)
        self.path(part_object(self.backup_id, "zookeeper")).write_bytes(self.small)

    def targets(self) -> TargetSet:
        return open_targets(f"file://{self.root}", [], ResidencyPolicy("EU"))


@pytest.fixture(scope="module")
def golden(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Golden]:
    root = tmp_path_factory.mktemp("fuzzed") / "target"
    shutil.copytree(GOLDEN / "target", root)
    expected = json.loads((GOLDEN / "expected.json").read_text())
    backup_id = expected["backup_id"]
    customer = load_private_key((GOLDEN / "customer.key").read_bytes())
    signer = load_pem_public_key((GOLDEN / "signer.pub").read_bytes())
    assert isinstance(signer, Ed25519PublicKey)
    manifest = (root / manifest_object(backup_id)).read_bytes()
    part = (root / part_object(backup_id, "node-a")).read_bytes()
    record = SignedManifest.model_validate_json(manifest).manifest.part("node-a")
    key = unwrap_data_key(record.wrapped_key, customer)
    frames = list(decrypt_frames([part], key, backup_id=backup_id, part="node-a"))
    yield Golden(
        root,
        backup_id,
        expected["target_url"],
        customer,
        signer,
        manifest,
        part,
        (root / part_object(backup_id, "zookeeper")).read_bytes(),
        frames,
    )


@st.composite
def mutated(draw: st.DrawFn, original: bytes) -> bytes:
    """`original` changed the ways storage and attackers change objects: bits flipped, bytes
    overwritten, cut short, grown, a range dropped, frames swapped, repeated or dropped."""
    data = bytearray(original)
    kind = draw(
        st.sampled_from(["flip", "overwrite", "truncate", "append", "delete", "insert", "frames"])
    )
    at = draw(st.integers(0, max(0, len(data) - 1)))
    if kind == "flip":
        data[at] ^= 1 << draw(st.integers(0, 7))
    elif kind == "overwrite":
        data[at : at + 8] = draw(st.binary(min_size=1, max_size=8))
    elif kind == "truncate":
        del data[at:]
    elif kind == "append":
        data += draw(st.binary(min_size=1, max_size=64))
    elif kind == "delete":
        del data[at : at + draw(st.integers(1, 2048))]
    elif kind == "insert":
        data[at:at] = draw(st.binary(min_size=1, max_size=64))
    else:
        header, frames = split_frames(bytes(data))
        if len(frames) < 2:
            data = bytearray(header)  # no frame at all
        else:
            i = draw(st.integers(0, len(frames) - 2))
            how = draw(st.sampled_from(["swap", "repeat", "drop"]))
            if how == "swap":
                frames[i], frames[i + 1] = frames[i + 1], frames[i]
            elif how == "repeat":
                frames.insert(i, frames[i])
            else:
                del frames[i]
            data = bytearray(header + b"".join(frames))
    return bytes(data)


def _verify(golden: Golden) -> None:
    """Verify with the key; raises BackupError or returns when the report names a problem."""

    def moved(location: TargetLocation) -> Target:
        assert location.url == golden.recorded_url
        return golden.targets().primary

    report = verify_backup(
        golden.backup_id,
        golden.targets(),
        private_key=golden.customer,
        trusted=golden.signer,
        opener=moved,
    )
    assert not report.ok, "a mutated backup verified"


def _restore_refused(golden: Golden, destination: Path) -> None:
    with pytest.raises(BackupError):
        restore_part_directory(
            golden.backup_id,
            "node-a",
            destination,
            source=golden.targets().primary,
            private_key=golden.customer,
            trusted=golden.signer,
        )
    assert not destination.exists()
    leftovers = [p.name for p in destination.parent.iterdir() if ".restore-" in p.name]
    assert leftovers == []


@FUZZ
@given(data=st.data())
def test_a_mutated_part_never_verifies_restores_or_yields_a_forged_byte(
    golden: Golden, data: st.DataObject, tmp_path_factory: pytest.TempPathFactory
) -> None:
    part = data.draw(mutated(golden.part), label="part")
    if part == golden.part:
        return
    golden.reset()
    golden.path(part_object(golden.backup_id, "node-a")).write_bytes(part)
    with contextlib.suppress(BackupError):
        _verify(golden)
    _restore_refused(golden, tmp_path_factory.mktemp("restore") / "node-a")

    # The reader itself: whatever it yields before it stops is the original, frame by frame.
    record = SignedManifest.model_validate_json(golden.manifest).manifest.part("node-a")
    key = unwrap_data_key(record.wrapped_key, golden.customer)
    yielded: list[bytes] = []
    with pytest.raises(IntegrityError):
        chunks = [part[i : i + 700] for i in range(0, len(part), 700)]
        for frame in decrypt_frames(chunks, key, backup_id=golden.backup_id, part="node-a"):
            yielded.append(frame)
    assert yielded == golden.frames[: len(yielded)]


@FUZZ
@given(data=st.data())
def test_a_mutated_manifest_or_small_part_is_refused_with_one_error(
    golden: Golden, data: st.DataObject
) -> None:
    which = data.draw(st.sampled_from(["manifest", "zookeeper"]), label="object")
    original = golden.manifest if which == "manifest" else golden.small
    changed = data.draw(mutated(original), label=which)
    if changed == original:
        return
    golden.reset()
    name = (
        manifest_object(golden.backup_id)
        if which == "manifest"
        else part_object(golden.backup_id, "zookeeper")
    )
    golden.path(name).write_bytes(changed)
    with contextlib.suppress(BackupError):
        _verify(golden)
    with pytest.raises(BackupError):
        restore_part_bytes(
            golden.backup_id,
            "zookeeper",
            source=golden.targets().primary,
            private_key=golden.customer,
            trusted=golden.signer,
        )
