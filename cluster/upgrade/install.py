"""Install a verified release beside the running one, and the launcher that starts it.

Layout under a node's data directory:

```
versions/<V>/wheels/      the verified files of release V (nothing else is installed from)
versions/<V>/venv/        a virtual environment made by the running interpreter, with
                          `managed-orchestrator[node]==V` installed from wheels/ alone
versions/<V>/.complete    written last: a version without it is a half-done install, redone
versions/current          symlink to <V>: the version `managed node run` starts
versions/previous         symlink to the version that was current before (a rollback target)
```

Guarantees: installs are serialised by an exclusive lock on `versions/.lock`; pip reads no
index (`--no-index --find-links wheels/`), so nothing is installed that the vendor did not sign;
`current` only ever names a complete install and moves by an atomic rename, so a node
restarting at any moment starts either the old version or the whole new one. The supervisor's
command never changes: `managed node run` (whatever version it is) reads `current` and execs
that version's own `managed` with the same arguments (`launch_target`).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cluster.errors import ClusterError

VERSIONS = "versions"
CURRENT = "current"
PREVIOUS = "previous"
COMPLETE = ".complete"
LAUNCHED_ENV = "MANAGED_LAUNCHED_VERSION"  # set by the launcher: never exec twice
DISTRIBUTION = "managed-orchestrator[node]"
PIP_TIMEOUT = 600.0


class InstallError(ClusterError):
    """A verified release could not be installed; the running version is untouched."""


def versions_dir(data_dir: Path) -> Path:
    return data_dir / VERSIONS


def version_dir(data_dir: Path, version: str) -> Path:
    if not version or "/" in version or version.startswith("."):
        raise InstallError(f"{version!r} is not a release version")
    return versions_dir(data_dir) / version


def entry_point(data_dir: Path, version: str) -> Path:
    """The `managed` command of an installed version."""
    return version_dir(data_dir, version) / "venv" / "bin" / "managed"


def is_installed(data_dir: Path, version: str) -> bool:
    return (version_dir(data_dir, version) / COMPLETE).is_file()


def current_version(data_dir: Path) -> str | None:
    """The version `current` names, or None when the node runs its base installation."""
    link = versions_dir(data_dir) / CURRENT
    try:
        return os.readlink(link)
    except OSError:
        return None


def previous_version(data_dir: Path) -> str | None:
    try:
        return os.readlink(versions_dir(data_dir) / PREVIOUS)
    except OSError:
        return None


@contextmanager
def install_lock(data_dir: Path) -> Iterator[None]:
    """One install at a time per data directory (a second one is refused, not queued)."""
    base = versions_dir(data_dir)
    base.mkdir(parents=True, exist_ok=True, mode=0o700)
    with (base / ".lock").open("a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise InstallError(f"another install is running in {base}") from None
        yield


def staging_dir(data_dir: Path, version: str) -> Path:
    """Where the verified wheels of `version` go before the install (a half-done install of
    the same version is removed first)."""
    target = version_dir(data_dir, version)
    if target.exists() and not is_installed(data_dir, version):
        shutil.rmtree(target)
    return target / "wheels"


def install(data_dir: Path, version: str) -> Path:
    """Make `versions/<V>/venv` from the verified wheels in `versions/<V>/wheels`; returns the
    entry point. Idempotent: an already complete install is kept."""
    target = version_dir(data_dir, version)
    if is_installed(data_dir, version):
        return entry_point(data_dir, version)
    venv = target / "venv"
    if venv.exists():
        shutil.rmtree(venv)
    python = venv / "bin" / "python"
    # The venv belongs to the interpreter running now (Debian's python3.11 in production);
    # pip is the running one too (`--python`), so the venv needs no bundled pip.
    steps = [
        [sys.executable, "-m", "venv", "--without-pip", str(venv)],
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "--no-index",
            "--find-links",
            str(target / "wheels"),
            "--no-cache-dir",
            "--disable-pip-version-check",
            "--quiet",
            f"{DISTRIBUTION}=={version}",
        ],
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_") and k != "PYTHONPATH"}
    for argv in steps:
        try:
            done = subprocess.run(
                argv, capture_output=True, text=True, timeout=PIP_TIMEOUT, env=env, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as e:
            shutil.rmtree(venv, ignore_errors=True)
            raise InstallError(f"installing {version} failed: {e}") from None
        if done.returncode != 0:
            shutil.rmtree(venv, ignore_errors=True)
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise InstallError(f"installing {version} failed: {last}")
    if not entry_point(data_dir, version).is_file():
        shutil.rmtree(venv, ignore_errors=True)
        raise InstallError(f"installing {version} failed: the release has no `managed` command")
    (target / COMPLETE).write_text(version + "\n")
    return entry_point(data_dir, version)


def _relink(data_dir: Path, name: str, version: str) -> None:
    base = versions_dir(data_dir)
    tmp = base / f".{name}.{os.getpid()}"
    tmp.unlink(missing_ok=True)
    os.symlink(version, tmp)
    os.replace(tmp, base / name)
    fd = os.open(base, os.O_RDONLY)
    try:
        os.fsync(fd)  # the rename survives a crash
    finally:
        os.close(fd)


def make_current(data_dir: Path, version: str, running: str) -> None:
    """Point `current` at an installed `version`; `previous` names what ran before
    (`running`: the version the node runs now)."""
    if not is_installed(data_dir, version):
        raise InstallError(f"version {version} is not installed in {versions_dir(data_dir)}")
    before = current_version(data_dir) or running
    if before != version:
        _relink(data_dir, PREVIOUS, before)
    _relink(data_dir, CURRENT, version)


def launch_target(data_dir: Path, running: str) -> Path | None:
    """The entry point `managed node run` must exec instead of running itself: the current
    version's when it differs from the running one, is complete, and was not just launched
    (the guard against exec loops). None: run this version."""
    wanted = current_version(data_dir)
    if wanted is None or wanted == running or os.environ.get(LAUNCHED_ENV) == wanted:
        return None
    if not is_installed(data_dir, wanted):
        return None
    return entry_point(data_dir, wanted)


def exec_version(entry: Path, version: str, args: list[str]) -> None:
    """Replace this process by `entry` with the same arguments (same PID: the supervisor
    sees one process; signals reach the new version)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env[LAUNCHED_ENV] = version
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(entry, [str(entry), *args], env)
