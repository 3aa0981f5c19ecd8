"""The streaming extractor (`backup.untar`): what it reads, what it refuses, how it writes."""

from __future__ import annotations

import io
import os
import tarfile
from collections.abc import Callable
from pathlib import Path

import blake3
import pytest

from backup.archive import DirectoryStream
from backup.streams import ChunkReader
from backup.tarsafety import UnsafeArchiveError
from backup.untar import ExtractedFile, Inventory, extract_archive


def test_pax_names_links_and_short_reads_round_trip(
    tmp_path: Path, out: Path, digest_of: Callable[[Path], dict[str, str]]
) -> None:
    source = tmp_path / "src"
    deep = source / ("long-directory-name-" * 6) / "ünïcödé"
    deep.mkdir(parents=True)
    (deep / ("f" * 120)).write_bytes(b"long name" * 1000)
    (deep / "empty").write_bytes(b"")
    (source / "aligned").write_bytes(b"a" * 4096)
    (source / "link").symlink_to(os.path.relpath(deep / ("f" * 120), source))
    os.link(source / "aligned", source / "hard")
    with DirectoryStream(source) as stream:
        data = stream.read()
    pieces = [data[i : i + 700] for i in range(0, len(data), 700)]  # headers split across reads
    inventory: Inventory = {}
    extract_archive(ChunkReader(pieces), out, inventory)
    assert digest_of(out) == digest_of(source)
    assert (out / "link").is_symlink() and os.stat(out / "hard").st_nlink == 2
    long_name = f"{deep.relative_to(source).as_posix()}/{'f' * 120}"
    assert inventory[long_name] == (9000, blake3.blake3(b"long name" * 1000).hexdigest())


def test_the_inventory_holds_each_regular_file_as_written(out: Path) -> None:
    inventory: Inventory = {}
    extract_archive(
        entries(
            (entry("dir", tarfile.DIRTYPE), b""),
            (entry("dir/file"), b"first"),
            (entry("dir/file"), b"second version"),  # a later entry replaces the earlier one
            (entry("hard", tarfile.LNKTYPE, "dir/file"), b""),
            (entry("gone"), b"replaced by a symlink"),
            (entry("gone", tarfile.SYMTYPE, "dir/file"), b""),
            (entry("empty"), b""),
        ),
        out,
        inventory,
    )
    written = ExtractedFile(14, blake3.blake3(b"second version").hexdigest())
    assert inventory == {
        "dir/file": written,
        "hard": written,  # a hard link holds its target's bytes
        "empty": ExtractedFile(0, blake3.blake3(b"").hexdigest()),
    }
    assert (out / "hard").read_bytes() == b"second version"


def test_nothing_is_hashed_without_an_inventory(out: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_args: object) -> None:
        raise AssertionError("hashed although no inventory was asked for")

    monkeypatch.setattr("backup.untar.blake3.blake3", refuse)
    extract_archive(entries((entry("file"), b"content")), out)
    assert (out / "file").read_bytes() == b"content"


def cut(data: bytes, at: int) -> io.BytesIO:
    return io.BytesIO(data[:at])


@pytest.mark.parametrize(
    ("where", "message"),
    [
        (lambda n: n - 1024, "without its end-of-archive block"),  # end blocks cut off
        (lambda n: n - 1024 - 1000, "ends inside 'file'"),  # inside the file's content
        (lambda n: 300, "ends inside a header"),
    ],
    ids=["no-end-marker", "inside-a-file", "inside-a-header"],
)
def test_a_cut_stream_is_malformed(tmp_path: Path, out: Path, where: object, message: str) -> None:
    source = tmp_path / "src"
    source.mkdir()
    (source / "file").write_bytes(b"x" * 2000)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        tar.add(source / "file", arcname="file")
    data = buffer.getvalue().rstrip(b"\0")
    data += b"\0" * (-len(data) % 512) + b"\0" * 1024
    assert callable(where)
    with pytest.raises(UnsafeArchiveError, match=f"malformed.*{message}"):
        extract_archive(cut(data, where(len(data))), out)


def test_a_bad_checksum_is_malformed(out: Path) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        tar.addfile(tarfile.TarInfo("empty"))
    data = bytearray(buffer.getvalue())
    data[0] ^= 1
    with pytest.raises(UnsafeArchiveError, match="malformed.*bad header"):
        extract_archive(io.BytesIO(bytes(data)), out)


@pytest.mark.parametrize(
    ("fmt", "pax_headers"),
    [(tarfile.GNU_FORMAT, None), (tarfile.PAX_FORMAT, {"comment": "global"})],
    ids=["gnu-long-name", "pax-global-header"],
)
def test_what_backups_never_hold_is_refused(
    out: Path, fmt: int, pax_headers: dict[str, str] | None
) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=fmt, pax_headers=pax_headers) as tar:
        tar.addfile(tarfile.TarInfo("n" * 150))
    buffer.seek(0)
    with pytest.raises(UnsafeArchiveError, match="unsupported entry"):
        extract_archive(buffer, out)
    assert not list(out.iterdir())


def entries(*infos: tuple[tarfile.TarInfo, bytes]) -> io.BytesIO:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for info, data in infos:
            info.size = len(data) if info.isreg() else 0
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    buffer.seek(0)
    return buffer


def entry(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mode = kind, link, 0o644
    return info


def test_a_file_replaces_a_symlink_instead_of_writing_through_it(out: Path) -> None:
    extract_archive(
        entries(
            (entry("target"), b"original"),
            (entry("name", tarfile.SYMTYPE, "target"), b""),
            (entry("name"), b"replacement"),
        ),
        out,
    )
    assert (out / "target").read_bytes() == b"original"
    assert not (out / "name").is_symlink() and (out / "name").read_bytes() == b"replacement"


def test_names_resolve_through_links_already_in_the_destination(out: Path, tmp_path: Path) -> None:
    (out / "planted").symlink_to(tmp_path)  # not empty: names are resolved through symlinks
    with pytest.raises(UnsafeArchiveError, match="outside the destination"):
        extract_archive(entries((entry("planted/evil"), b"x")), out)
    assert not (tmp_path / "evil").exists()


def test_a_hard_link_to_nothing_is_malformed(out: Path) -> None:
    with pytest.raises(UnsafeArchiveError, match="malformed.*does not hold"):
        extract_archive(entries((entry("hard", tarfile.LNKTYPE, "missing"), b"")), out)


def test_a_nul_in_a_pax_name_is_malformed(out: Path) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("placeholder")
        info.pax_headers = {"path": "evil\0name"}
        tar.addfile(info)
    buffer.seek(0)
    with pytest.raises(UnsafeArchiveError, match="malformed.*NUL"):
        extract_archive(buffer, out)
