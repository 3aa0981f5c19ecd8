"""Safe extraction by the project's own rules (`backup.tarsafety`), the same on every Python
(3.11.2 has no tarfile "data" filter, and `backup.untar` does not use tarfile's extraction)."""

from __future__ import annotations

import io
import stat
import tarfile
from pathlib import Path

import pytest

from backup.tarsafety import UnsafeArchiveError, safe_entry
from backup.untar import extract_archive


def entry(name: str, kind: bytes = tarfile.REGTYPE, link: str = "", mode: int = 0o644):
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mode, info.mtime = kind, link, mode, 1_700_000_000
    return info


def tar_of(*entries: tarfile.TarInfo, data: bytes = b"x") -> io.BytesIO:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for info in entries:
            if info.isreg():
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                tar.addfile(info)
    buffer.seek(0)
    return buffer


@pytest.mark.parametrize(
    "entries",
    [
        [entry("/etc/evil")],
        [entry("../evil")],
        [entry("ok/../../evil")],
        [entry("hard", tarfile.LNKTYPE, "../evil")],
        [entry("abs-link", tarfile.SYMTYPE, "/etc")],
        [entry("up", tarfile.SYMTYPE, "../../..")],
        # A symlink that stays inside, then a name that climbs out through it.
        [
            entry("d", tarfile.DIRTYPE, mode=0o755),
            entry("d/l", tarfile.SYMTYPE, ".."),
            entry("d/l/../evil"),
        ],
        [entry("fifo", tarfile.FIFOTYPE)],
        [entry("dev", tarfile.CHRTYPE)],
        [entry("blk", tarfile.BLKTYPE)],
    ],
    ids=[
        "absolute",
        "dotdot",
        "nested-dotdot",
        "hard-link-out",
        "abs-symlink",
        "rel-symlink-out",
        "through-symlink",
        "fifo",
        "char-device",
        "block-device",
    ],
)
def test_unsafe_entries_are_refused_and_nothing_escapes(
    entries: list[tarfile.TarInfo], out: Path, tmp_path: Path
) -> None:
    with pytest.raises(UnsafeArchiveError, match="unsafe entry"):
        extract_archive(tar_of(*entries), out)
    assert not (tmp_path / "evil").exists()
    assert not (out / "fifo").exists() and not (out / "dev").exists()


def test_links_that_stay_inside_are_restored(out: Path) -> None:
    extract_archive(
        tar_of(
            entry("dir", tarfile.DIRTYPE, mode=0o750),
            entry("dir/file"),
            entry("dir/sym", tarfile.SYMTYPE, "file"),
            entry("hard", tarfile.LNKTYPE, "dir/file"),
            data=b"payload",
        ),
        out,
    )
    assert (out / "dir" / "sym").read_bytes() == b"payload"
    assert (out / "hard").read_bytes() == b"payload"
    assert (out / "dir" / "sym").is_symlink()


def test_modes_lose_special_and_foreign_write_bits(out: Path) -> None:
    extract_archive(
        tar_of(
            entry("locked", tarfile.DIRTYPE, mode=0o1577),
            entry("locked/setuid", mode=0o4777),
            entry("locked/plain", mode=0o640),
            entry("locked/private", mode=0o400),
            entry("locked/exec-by-group-only", mode=0o654),
        ),
        out,
    )

    def mode(name: str) -> int:
        return stat.S_IMODE((out / "locked" / name).stat().st_mode)

    assert stat.S_IMODE((out / "locked").stat().st_mode) == 0o755  # recorded 0577 + owner rwx
    assert mode("setuid") == 0o755
    assert mode("plain") == 0o640
    assert mode("private") == 0o600
    assert mode("exec-by-group-only") == 0o644
    assert int((out / "locked" / "plain").stat().st_mtime) == 1_700_000_000


def test_a_name_is_checked_against_what_is_already_on_disk(out: Path, tmp_path: Path) -> None:
    (out / "planted").symlink_to(tmp_path)  # left by something else, not by the archive
    with pytest.raises(UnsafeArchiveError, match="outside the destination"):
        safe_entry(entry("planted/evil"), str(out.resolve()))
