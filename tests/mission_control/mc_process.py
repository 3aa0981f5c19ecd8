"""Running `mission-control serve` as a real subprocess: start, wait until it answers, stop by
PID. Shared by the end-to-end tests and the benchmark."""

from __future__ import annotations

import contextlib
import os
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path

from cluster.dev.processes import stop_popen


def wait_until_serving(
    url: str, process: subprocess.Popen[bytes], ca_file: Path | None, timeout: float = 60
) -> None:
    context = ssl.create_default_context(cafile=str(ca_file)) if ca_file else None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url + "/api/v1/openapi.json", timeout=2, context=context):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer within {timeout} s")


def cli_process(*args: str) -> str:
    """Run `mission-control ARGS` as a user would; its stdout (it must succeed)."""
    done = subprocess.run(
        [sys.executable, "-m", "mission_control.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def stop(process: subprocess.Popen[bytes], timeout: float = 20) -> int:
    code = stop_popen(process, timeout, kill_wait=timeout)
    assert code is not None  # stop_popen returns once the process has exited
    return code


@contextlib.contextmanager
def serve(
    db_url: str,
    port: int,
    *,
    tls: tuple[Path, Path] | None = None,
    ca_file: Path | None = None,
    extra: Sequence[str] = (),
    env: dict[str, str] | None = None,
    log: Path | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    args = [sys.executable, "-m", "mission_control.cli", "serve", "--db", db_url]
    args += ["--listen", f"127.0.0.1:{port}", *extra]
    if tls:
        args += ["--tls-cert", str(tls[0]), "--tls-key", str(tls[1])]
    out = open(log, "wb") if log else subprocess.DEVNULL  # noqa: SIM115
    process = subprocess.Popen(args, stdout=out, stderr=out, env={**os.environ, **(env or {})})
    try:
        scheme = "https" if tls else "http"
        wait_until_serving(f"{scheme}://127.0.0.1:{port}", process, ca_file)
        yield process
    finally:
        stop(process)
        if log:
            out.close()  # type: ignore[union-attr]
