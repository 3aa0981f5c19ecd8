"""Install a verified release beside the running one, and the launcher that starts it.

Layout under a node's data directory:

```
versions/<V>/wheels/      the verified files of release V (nothing else is installed from)
versions/<V>/venv/        a virtual environment made by the running interpreter, with
                          `managed-orchestrator[node]==V` installed from wheels/ alone
versions/<V>/.complete    written last: a version without it is a half-done install, redone
versions/current          symlink to <V>: the version `managed node run` starts
versions/previous         symlink to the version that was current before (a rollback target)
versions/trial            {version, pid, plan}: a version started by a rolling upgrade and not
                          yet confirmed healthy by the leader (`start_trial`, `settle_trial`)
versions/rolled-back      {version, plan, error}: a trial the launcher gave up (for the report)
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
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cluster.errors import ClusterError

VERSIONS = "versions"
CURRENT = "current"
PREVIOUS = "previous"
COMPLETE = ".complete"
TRIAL = "trial"
ROLLED_BACK = "rolled-back"
LAUNCHED_ENV = "MANAGED_LAUNCHED_VERSION"  # set by the launcher: never exec twice
#: Set by the launcher: the base installation's interpreter, whose pip installs every release
#: (a release's own venv is made without pip, so a node running one installs the next with it).
BASE_PYTHON_ENV = "MANAGED_BASE_PYTHON"
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


def stage(data_dir: Path, verify_into: Callable[[Path], str]) -> str:
    """Verify a release into a private directory (`verify_into` writes the verified files
    there and returns the release's version) and move them to `versions/<V>/wheels` unless V
    is installed already; returns V. Called under `install_lock`."""
    incoming = versions_dir(data_dir) / f".incoming-{os.getpid()}"
    try:
        version = verify_into(incoming)
        wheels = staging_dir(data_dir, version)
        if not is_installed(data_dir, version):
            wheels.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            incoming.replace(wheels)
    finally:
        shutil.rmtree(incoming, ignore_errors=True)
    return version


def install_commands(venv: Path, wheels: Path, version: str) -> list[list[str]]:
    """The commands that make `venv` with release `version` from `wheels` alone: the venv
    belongs to the base installation's interpreter (Debian's python3.11 in production), and
    pip is the base's too (`--python`), so the venv needs no bundled pip."""
    base = base_python()
    return [
        [base, "-m", "venv", "--without-pip", str(venv)],
        [
            base,
            "-m",
            "pip",
            "--python",
            str(venv / "bin" / "python"),
            "install",
            "--no-index",
            "--find-links",
            str(wheels),
            "--no-cache-dir",
            "--disable-pip-version-check",
            "--quiet",
            f"{DISTRIBUTION}=={version}",
        ],
    ]


def pip_env() -> dict[str, str]:
    """The environment the install commands run in: no pip settings, no PYTHONPATH."""
    return {k: v for k, v in os.environ.items() if not k.startswith("PIP_") and k != "PYTHONPATH"}


def install(data_dir: Path, version: str) -> Path:
    """Make `versions/<V>/venv` from the verified wheels in `versions/<V>/wheels`; returns the
    entry point. Idempotent: an already complete install is kept."""
    target = version_dir(data_dir, version)
    if is_installed(data_dir, version):
        return entry_point(data_dir, version)
    venv = target / "venv"
    if venv.exists():
        shutil.rmtree(venv)
    steps, env = install_commands(venv, target / "wheels", version), pip_env()
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


def base_python() -> str:
    """The interpreter of the base installation (the one with pip), whichever version runs."""
    return os.environ.get(BASE_PYTHON_ENV) or sys.executable


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
    env[BASE_PYTHON_ENV] = base_python()
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(entry, [str(entry), *args], env)


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def start_trial(data_dir: Path, version: str, plan: str, running: str) -> None:
    """Make the installed `version` current on trial, `running` (this process's version, the
    base installation's when nothing is current) its rollback target: this process (its PID,
    kept by exec) starts it; any other start before `confirm_trial` finds the trial failed and
    goes back."""
    record = {"version": version, "pid": os.getpid(), "plan": plan}
    _write_atomic(versions_dir(data_dir) / TRIAL, json.dumps(record).encode())
    make_current(data_dir, version, running)


def confirm_trial(data_dir: Path) -> None:
    """The leader saw the new version live and healthy: it stays, whatever restarts next."""
    (versions_dir(data_dir) / TRIAL).unlink(missing_ok=True)


def _open_trial(data_dir: Path) -> dict[str, Any] | None:
    """The open trial's record ({version, pid, plan}), or None when no trial is open."""
    try:
        trial = json.loads((versions_dir(data_dir) / TRIAL).read_bytes())
    except (OSError, ValueError):
        return None
    return trial if isinstance(trial, dict) else None


def trial_plan(data_dir: Path) -> str | None:
    """The plan whose version this node runs on trial, or None when no trial is open."""
    trial = _open_trial(data_dir)
    return None if trial is None or "plan" not in trial else str(trial["plan"])


def settle_trial(data_dir: Path) -> dict[str, Any] | None:
    """The launcher's rollback, run at every `node run` before the version is chosen: a trial
    still open in another process means the new version stopped before it was confirmed (it
    failed at start, or the node was restarted meanwhile), so `current` goes back to `previous`
    and the give-up is noted in `versions/rolled-back` for the node to report. Returns the note
    written, or None."""
    trial = _open_trial(data_dir)
    if trial is None or trial.get("pid") == os.getpid():
        return None  # none open, or this process is the trial itself (exec'ed into it)
    return _give_up(data_dir, trial, "it stopped before it was confirmed healthy")


def abandon_trial(data_dir: Path, why: str) -> dict[str, Any] | None:
    """Give the open trial up: `current` goes back to `previous` (the next start, by exec or
    by the supervisor, runs that) and the note is written. None when no trial is open."""
    trial = _open_trial(data_dir)
    return None if trial is None else _give_up(data_dir, trial, why)


def _give_up(data_dir: Path, trial: dict[str, Any], why: str) -> dict[str, Any]:
    """`current` back to `previous`, the note written, the trial closed; returns the note."""
    base = versions_dir(data_dir)
    back = previous_version(data_dir)
    if back is not None and back != trial.get("version"):
        _relink(data_dir, CURRENT, back)
    note = {
        "version": str(trial.get("version")),
        "plan": str(trial.get("plan")),
        "error": f"{why}; back on {back or 'the base'}",
    }
    _write_atomic(base / ROLLED_BACK, json.dumps(note).encode())
    (base / TRIAL).unlink(missing_ok=True)
    return note


def rolled_back_note(data_dir: Path) -> dict[str, Any] | None:
    try:
        note = json.loads((versions_dir(data_dir) / ROLLED_BACK).read_bytes())
    except (OSError, ValueError):
        return None
    return note if isinstance(note, dict) else None


def forget_rollback(data_dir: Path) -> None:
    (versions_dir(data_dir) / ROLLED_BACK).unlink(missing_ok=True)


def remove_unused(data_dir: Path, running: str) -> list[str]:
    """Remove the installed versions no start can need any more (a failed plan's, one replaced
    by a later plan): all but `current`, `previous` and the running one. Returns what was
    removed; nothing while another install holds the lock."""
    base = versions_dir(data_dir)
    if not base.is_dir():
        return []
    keep = {current_version(data_dir), previous_version(data_dir), running}
    removed = []
    try:
        with install_lock(data_dir):
            for entry in sorted(base.iterdir()):
                if entry.name.startswith(".") or entry.is_symlink() or not entry.is_dir():
                    continue  # the links, the lock, an install being staged
                if entry.name not in keep:
                    shutil.rmtree(entry, ignore_errors=True)
                    removed.append(entry.name)
    except InstallError:
        return []
    return removed


def prune_previous(data_dir: Path) -> bool:
    """After `managed upgrade finalize`: the previous version is no longer a rollback target
    (its link goes; its directory is removed unless current). True when something was pruned."""
    back = previous_version(data_dir)
    if back is None:
        return False
    (versions_dir(data_dir) / PREVIOUS).unlink(missing_ok=True)
    if back != current_version(data_dir) and (versions_dir(data_dir) / back).is_dir():
        shutil.rmtree(versions_dir(data_dir) / back, ignore_errors=True)
    return True
