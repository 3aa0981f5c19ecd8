"""Start, track and stop local processes by PID, with their output in log files.

Each process runs in a session of its own, so Ctrl-C at a terminal reaches only the supervisor,
which then stops its children in order. A PID file names the process and the command line it
ran, so `stop_pidfiles` never signals a recycled PID that belongs to something else.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

from cluster.dev.ports import free_port as free_port  # where the dev stack finds it


def wait_until(check: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    """Poll `check` until it is true or `timeout` seconds pass; returns the last result."""
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def stop_popen(
    popen: subprocess.Popen[bytes], timeout: float = 10.0, kill_wait: float = 5.0
) -> int | None:
    """Stop one child by its PID: SIGTERM (after SIGCONT: a stopped process cannot handle it),
    SIGKILL if it has not exited after `timeout`, then wait up to `kill_wait`; the exit code."""
    if popen.poll() is None:
        for sig in (signal.SIGCONT, signal.SIGTERM):
            with contextlib.suppress(ProcessLookupError):
                os.kill(popen.pid, sig)
        try:
            popen.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.kill(popen.pid, signal.SIGKILL)
            popen.wait(kill_wait)
    return popen.returncode


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def signal(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, sig)

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM, then SIGKILL after `timeout`; returns the exit code."""
        return stop_popen(self.popen, timeout)

    def kill(self) -> None:
        self.signal(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(5)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def start(
    name: str,
    argv: Sequence[str],
    log_path: Path,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    pid_dir: Path | None = None,
) -> Process:
    """Start `argv` with stdout and stderr appended to `log_path`; record a PID file if asked."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        popen = subprocess.Popen(
            list(argv),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
            cwd=cwd,
            start_new_session=True,
        )
    if pid_dir is not None:
        pid_dir.mkdir(parents=True, exist_ok=True)
        record = {"pid": popen.pid, "name": name, "argv": list(argv)}
        (pid_dir / f"{name}.pid").write_text(json.dumps(record))
    return Process(name=name, popen=popen, log_path=log_path)


def stop_pidfiles(pidfiles: Sequence[Path], timeout: float = 10.0) -> list[Path]:
    """Stop the processes the PID files name, each only if it is still that process, all at
    once (SIGTERM, then SIGKILL after `timeout`); remove the files. The files whose process
    was stopped."""
    running: dict[Path, psutil.Process] = {}
    for pidfile in pidfiles:
        try:
            record = json.loads(pidfile.read_text())
            pid = int(record["pid"])
            argv = list(record["argv"])
        except (OSError, ValueError, KeyError, TypeError):
            pidfile.unlink(missing_ok=True)
            continue
        try:
            proc = psutil.Process(pid)
            # A script's cmdline starts with its interpreter (python moto_server ...): the
            # recorded argv must be the whole cmdline or all of it after the interpreter.
            cmdline = proc.cmdline()
            if cmdline == argv or cmdline[1:] == argv:
                with contextlib.suppress(psutil.Error):
                    proc.send_signal(signal.SIGCONT)
                proc.terminate()
                running[pidfile] = proc
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(list(running.values()), timeout)
    for proc in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()
    psutil.wait_procs(alive, 5)
    for pidfile in pidfiles:
        pidfile.unlink(missing_ok=True)
    return list(running)
