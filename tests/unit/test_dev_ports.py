"""The dev stack and the tests never give two servers the same port before either binds: not
within one process, nor across processes (pytest-xdist workers, a test and its `managed dev up`)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

from cluster.dev.ports import REGISTRY_ENV, free_port

ASK = """
import json, sys
from cluster.dev.ports import free_port
sys.stdin.readline()  # all processes start asking together
print(json.dumps([free_port() for _ in range({count})]))
"""


def test_ports_handed_out_are_distinct_and_bindable() -> None:
    ports = [free_port() for _ in range(300)]
    assert len(set(ports)) == len(ports)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", ports[-1]))


def test_two_processes_asking_at_once_never_get_the_same_port(tmp_path: Path) -> None:
    """500 ports each from ~28,000: without the shared registry, some ~9 would be handed to
    both (the kernel's choice is random); the chance of none is about 1 in 10,000."""
    env = {**os.environ, REGISTRY_ENV: str(tmp_path / "ports")}
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", ASK.format(count=500)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = []
    for w in workers:
        assert w.stdin is not None
        w.stdin.write("go\n")
        w.stdin.flush()
    for w in workers:
        out, _ = w.communicate(timeout=60)
        assert w.returncode == 0
        outputs.append(set(json.loads(out)))
    first, second = outputs
    assert len(first) == len(second) == 500
    assert not first & second
    assert oct((tmp_path / "ports").stat().st_mode & 0o777) == "0o600"
