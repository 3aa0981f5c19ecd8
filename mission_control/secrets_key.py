"""Where Mission Control's secrets key comes from, and private files (0600 in 0700 directories).

The secrets key seals TOTP secrets in the database (`mission_control.staff.secretbox`). It is
looked for, first found wins:

1. the file named by ``--secrets-key-file`` / ``MISSION_CONTROL_SECRETS_KEY_FILE`` (it must
   exist and be readable by its owner only);
2. ``MISSION_CONTROL_SECRETS_KEY`` (the key itself, base64url);
3. with SQLite only: ``<database file>.secrets-key`` next to the database, created (0600) when
   absent, so a development server needs no set-up. The key then sits beside the data it
   protects; production sets 1 or 2 and keeps the key off the database's disk and backups.

With PostgreSQL and neither 1 nor 2, `resolve` raises `SecretsKeyMissing` (one line saying what
to do) and `serve` refuses to start. `create_key_file` writes a new key file (`mission-control
secrets-key create FILE`); it never replaces one, since the secrets sealed with a key are lost
with it.
"""

from __future__ import annotations

import contextlib
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.engine import URL

from mission_control.errors import SecretsKeyMissing
from mission_control.staff.secretbox import SecretBox, decode_key, encode_key, new_key

ENV_KEY = "MISSION_CONTROL_SECRETS_KEY"
SQLITE_SUFFIX = ".secrets-key"


def private_directory(path: Path) -> None:
    """Create `path` (and its parents) if missing; a directory created here is 0700."""
    if not path.is_dir():
        path.mkdir(parents=True, exist_ok=True)
        path.chmod(0o700)


def create_private_file(path: Path, data: bytes) -> None:
    """Write a new file, 0600 from its first byte; FileExistsError if it exists already.

    Written to a temporary name and linked into place, so a reader never sees half a file
    and two processes creating it at once end with one of their files, whole."""
    private_directory(path.parent)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def others_may_read(path: Path) -> bool:
    return bool(path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO))


def create_key_file(path: Path) -> None:
    """A new random key in `path` (0600); FileExistsError if it exists."""
    create_private_file(path, (encode_key(new_key()) + "\n").encode())


def read_key_file(path: Path) -> bytes:
    try:
        if others_may_read(path):
            raise SecretsKeyMissing(
                f"secrets key file {path} is readable by others: chmod 600 {path}"
            )
        return decode_key(path.read_text())
    except OSError as error:
        raise SecretsKeyMissing(f"cannot read secrets key file {path}: {error.strerror}") from None
    except ValueError as error:
        raise SecretsKeyMissing(f"secrets key file {path}: {error}") from None


def sqlite_key_file(url: URL) -> Path | None:
    """The key file beside an SQLite database file; None for other databases."""
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    database = Path(url.database)
    return database.with_name(database.name + SQLITE_SUFFIX)


@dataclass(frozen=True)
class SecretsKey:
    """How to find the key (see the module docstring); resolved at first use, then kept."""

    file: Path | None = None
    value: str | None = None
    _boxes: dict[str, SecretBox] = field(default_factory=dict, compare=False, repr=False)

    def box(self, database: URL) -> SecretBox:
        """The box sealing secrets of `database`; SecretsKeyMissing (one line) without a key."""
        cache_key = database.render_as_string(hide_password=True)
        if cache_key not in self._boxes:
            self._boxes[cache_key] = SecretBox(self._resolve(database))
        return self._boxes[cache_key]

    def _resolve(self, database: URL) -> bytes:
        if self.file is not None:
            return read_key_file(self.file)
        value = self.value or os.environ.get(ENV_KEY)
        if value:
            try:
                return decode_key(value)
            except ValueError as error:
                raise SecretsKeyMissing(f"{ENV_KEY}: {error}") from None
        beside = sqlite_key_file(database)
        if beside is None:
            raise SecretsKeyMissing(
                "no secrets key: give --secrets-key-file FILE (make one with `mission-control "
                f"secrets-key create FILE`) or set {ENV_KEY}"
            )
        if not beside.exists():
            with contextlib.suppress(FileExistsError):  # another process made it first
                create_key_file(beside)
        return read_key_file(beside)
