"""Deterministic tar streams and safe extraction (local files only)."""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import backup.archive as archive
from backup.archive import ArchiveSourceError, DirectoryStream
from backup.tarsafety import UnsafeArchiveError
from backup.untar import extract_archive


def tar_bytes(root: Path) -> bytes:
    with DirectoryStream(root) as stream:
        return stream.read()


def test_same_tree_same_bytes_and_round_trip(
    data_tree: Path, tmp_path: Path, digest_of: Callable[[Path], dict[str, str]]
) -> None:
    first, second = tar_bytes(data_tree), tar_bytes(data_tree)
    assert first == second
    out = tmp_path / "out"
    out.mkdir()
    extract_archive(io.BytesIO(first), out)
    assert digest_of(out) == digest_of(data_tree)


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(ArchiveSourceError, match="does not exist"):
        DirectoryStream(tmp_path / "nope")


def test_read_failure_is_raised_not_a_short_stream(
    data_tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = archive.entry_chunks

    def failing(tar: tarfile.TarFile, root: Path, path: Path) -> Iterator[bytes]:
        if path.name == "leaf.txt":
            raise OSError(5, "Input/output error")
        return real(tar, root, path)

    monkeypatch.setattr(archive, "entry_chunks", failing)
    with DirectoryStream(data_tree) as stream, pytest.raises(ArchiveSourceError, match="leaf"):
        while stream.read(65536):
            pass


def test_gnu_tar_reads_our_stream(data_tree: Path, tmp_path: Path) -> None:
    (tmp_path / "x.tar").write_bytes(tar_bytes(data_tree))
    listing = subprocess.run(
        ["tar", "-tf", str(tmp_path / "x.tar")], capture_output=True, text=True, check=True
    ).stdout.split()
    assert "segments/big.bin" in listing and "deep/er/est/leaf.txt" in listing
    assert len(tar_bytes(data_tree)) % tarfile.RECORDSIZE == 0


def evil_tar(member: tarfile.TarInfo, data: bytes = b"") -> io.BytesIO:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        member.size = len(data)
        tar.addfile(member, io.BytesIO(data))
    buffer.seek(0)
    return buffer


def link(name: str, target: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.SYMTYPE
    info.linkname = target
    return info


@pytest.mark.parametrize(
    "member",
    [
        tarfile.TarInfo("/etc/evil"),
        tarfile.TarInfo("../evil"),
        tarfile.TarInfo("a/../../evil"),
        link("escape", "/etc/passwd"),
        link("escape", "../../outside"),
    ],
    ids=["absolute", "dotdot", "nested-dotdot", "abs-link", "rel-link"],
)
def test_unsafe_entries_refused(member: tarfile.TarInfo, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(UnsafeArchiveError, match="unsafe entry"):
        extract_archive(evil_tar(member, b"x"), out)
    assert not (tmp_path / "evil").exists()
    assert not (tmp_path / "outside").exists()


def test_block_aligned_files_and_empty_chunks(tmp_path: Path) -> None:
    root = tmp_path / "aligned"
    root.mkdir()
    for i in range(3):
        (root / f"f{i}").write_bytes(bytes([i]) * 4096)  # no padding after these
    out = tmp_path / "out"
    out.mkdir()
    extract_archive(io.BytesIO(tar_bytes(root)), out)
    assert [(out / f"f{i}").read_bytes() for i in range(3)] == [bytes([i]) * 4096 for i in range(3)]


def test_tree_totals_counts_what_the_stream_holds(tmp_path: Path) -> None:
    root = tmp_path / "d"
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / "empty").mkdir()
    (root / "a.bin").write_bytes(b"x" * 1000)
    (root / "sub" / "b.bin").write_bytes(b"y" * 512)
    (root / "sub" / "deeper" / "c.bin").write_bytes(b"")
    (root / "link-to-file").symlink_to("a.bin")
    (root / "link-to-dir").symlink_to("sub")
    os.link(root / "a.bin", root / "hard")
    os.mkfifo(root / "fifo")
    files, estimate = archive.tree_totals(archive.listed_tree(root))
    assert files == 1000 + 512 + 0 + 1000  # regular files, the hard link's own entry too
    assert estimate >= len(tar_bytes(root))


def test_a_directory_that_cannot_be_listed_fails_the_listing_and_the_stream(
    data_tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = os.scandir

    def refusing(path: Any = ".") -> Any:
        if os.fspath(path).endswith("er"):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real(path)

    assert (data_tree / "deep" / "er").is_dir()
    monkeypatch.setattr(os, "scandir", refusing)
    with pytest.raises(ArchiveSourceError, match="er.*Permission denied"):
        archive.listed_tree(data_tree)
    with pytest.raises(ArchiveSourceError, match="er.*Permission denied"):
        tar_bytes(data_tree)


def test_entries_left_out_are_only_those_directly_under_the_root(tmp_path: Path) -> None:
    root = tmp_path / "data"
    (root / "versions" / "1.0" / "wheels").mkdir(parents=True)
    (root / "versions" / "1.0" / "wheels" / "a.whl").write_bytes(b"w" * 10)
    (root / "versions" / "current").symlink_to("1.0")
    (root / "store" / "versions").mkdir(parents=True)  # the same name deeper down is data
    (root / "store" / "versions" / "v1").write_text("kept")
    (root / "store.db").write_text("kept")
    with DirectoryStream(root, leave_out=("versions",)) as stream:
        names = [p.relative_to(root).as_posix() for p in stream.tree if p != root]
        data = stream.read()
    assert names == ["store.db", "store", "store/versions", "store/versions/v1"]
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        assert not [n for n in tar.getnames() if n.split("/")[:2] == [".", "versions"]]
        assert not [n for n in tar.getnames() if n.startswith("versions")]
    assert archive.tree_totals(archive.listed_tree(root, ("versions",)))[0] == 8
