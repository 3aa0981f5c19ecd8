"""Installing a signed release, for real: the project's wheel at a bumped version and every
wheel it needs (made on this machine, `wheelhouse`), published with `mission-control releases`,
applied offline on one node with `managed upgrade apply --bundle`; the node restarts with the
same command and runs the new version from its versioned directory."""

from __future__ import annotations

import json
from pathlib import Path

import psutil
import pytest
from clusterkit import ClusterUnderTest
from releasekit import Vendor
from wheelhouse import project_wheel

from cluster.dev.processes import wait_until

NEW = "0.1.1"


def _version_of(c: ClusterUnderTest, node: str) -> str | None:
    member = c.snapshot().live_member(node)
    return member.version if member else None


@pytest.mark.slow
def test_apply_installs_beside_the_running_version_and_the_node_restarts_into_it(
    cluster: ClusterUnderTest, dependency_wheelhouse: list[Path], tmp_path: Path
) -> None:
    nodes = cluster.start_nodes(2)
    base_version = _version_of(cluster, "n1")
    assert base_version and base_version != NEW
    signed = Vendor(tmp_path / "vendor")
    release = [project_wheel(tmp_path / "dist", NEW), *dependency_wheelhouse]
    bundle = signed.bundle(NEW, files=release)
    r = cluster.cli("upgrade", "trust", str(signed.repo / "metadata" / "1.root.json"))
    assert r.returncode == 0, r.stderr

    data = cluster.base / "data" / "n1"
    other = tmp_path / "not-a-node"
    other.mkdir()
    r = cluster.cli("upgrade", "apply", "--bundle", str(bundle), "--data-dir", str(other))
    assert r.returncode == 1 and "is not the data directory of a node" in r.stderr, r.stderr

    apply = ("upgrade", "apply", "--bundle", str(bundle), "--data-dir", str(data))
    r = cluster.cli(*apply, timeout=300)
    assert r.returncode == 0, r.stderr
    assert f"release {NEW} installed for node n1" in r.stdout, r.stdout
    versions = data / "versions"
    assert (versions / "current").readlink() == Path(NEW)
    assert (versions / "previous").readlink() == Path(base_version)
    assert (versions / NEW / "venv" / "bin" / "managed").is_file()
    assert sorted(p.name for p in (versions / NEW / "wheels").iterdir()) == sorted(
        p.name for p in release
    )
    assert _version_of(cluster, "n1") == base_version  # installed, not yet running

    # The supervisor restarts the node with the same command; the launcher starts NEW.
    cluster.processes["n1"].stop()
    proc = cluster.run("n1")
    assert wait_until(lambda: _version_of(cluster, "n1") == NEW, 60), cluster.logs()
    assert wait_until(lambda: cluster.status("n1")[0] == 200, 30), cluster.logs()
    cmdline = psutil.Process(proc.pid).cmdline()  # the same PID: exec, not a child
    assert any(str(versions / NEW / "venv") in part for part in cmdline), cmdline
    assert _version_of(cluster, "n2") == base_version
    shown = json.loads(cluster.cli("upgrade", "status", "--json").stdout)
    assert shown["nodes"] == {"n1": NEW, "n2": base_version}

    # Applying it again to n1 is refused (the node runs it); n2 may install what n1 runs.
    r = cluster.cli(*apply)
    assert r.returncode == 1 and "release refused (rollback)" in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1

    # A release that cannot be installed (its wheels lack the dependencies): one line, audited,
    # and the node keeps starting what it ran.
    lacking = signed.bundle("0.1.2", files=[project_wheel(tmp_path / "lacking", "0.1.2")])
    n2 = cluster.base / "data" / "n2"
    args = ("upgrade", "apply", "--bundle", str(lacking), "--data-dir", str(n2))
    r = cluster.cli(*args, timeout=120)
    assert r.returncode == 1 and "installing 0.1.2 failed" in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert not (n2 / "versions" / "current").exists()
    assert not (n2 / "versions" / "0.1.2" / ".complete").exists()

    entries = json.loads(cluster.cli("audit", "log", "--json").stdout)
    installed = [e for e in entries if e["action"] == "upgrade.installed"]
    assert [(e["subject"], e["detail"]["node"]) for e in installed] == [(NEW, "n1")]
    failed = [e for e in entries if e["action"] == "upgrade.install_failed"]
    assert [(e["subject"], e["detail"]["node"]) for e in failed] == [("0.1.2", "n2")]
    assert nodes == ["n1", "n2"]
