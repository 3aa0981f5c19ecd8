"""Signed releases, end to end without a network: the vendor signs with `mission-control
releases` (TUF, root 2-of-3), the operator pins the root and verifies offline bundles with
`managed upgrade verify` against the trusted metadata kept in ZooKeeper. Every attack is refused
with one line, an `upgrade.refused` audit entry and a `release_refused` event queued for Mission
Control, and changes nothing of what the cluster trusts."""

from __future__ import annotations

import io
import json
import tarfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from clusterkit import ZK_AUTH, ClusterUnderTest
from releasekit import Vendor, vendor, wheel
from tuf.api.metadata import Metadata, Timestamp
from tuf.api.serialization.json import JSONSerializer

from cluster import zk
from cluster.dev.mcserver import MissionControlServer
from cluster.dev.processes import wait_until
from cluster.link.outbox import Outbox
from cluster.upgrade import trust
from mission_control.service.releases.repository import Repository, load_signer, signers_of


def rewrite(bundle: Path, out: Path, change: dict[str, bytes | None]) -> Path:
    """A copy of `bundle` with members replaced (bytes), removed (None) or added."""
    with tarfile.open(bundle) as tar:
        members = {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}  # type: ignore[union-attr]
    for name, data in change.items():
        if data is None:
            members.pop(name, None)
        else:
            members[name] = data
    with tarfile.open(out, "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out


@pytest.fixture
def signed(tmp_path: Path) -> Vendor:
    return Vendor(tmp_path)


def _trusted(c: ClusterUnderTest) -> dict[str, bytes]:
    client = zk.connect(c.hosts, auth=ZK_AUTH)
    try:
        return dict(trust.read(client, c.paths).files)
    finally:
        zk.close(client)


def _refusals(c: ClusterUnderTest) -> tuple[list[str], list[str]]:
    """The kinds of the `upgrade.refused` audit entries and the queued release_refused events."""
    entries = json.loads(c.cli("audit", "log", "--json").stdout)
    kinds = [e["detail"]["kind"] for e in entries if e["action"] == "upgrade.refused"]
    client = zk.connect(c.hosts, auth=ZK_AUTH)
    try:
        queued = Outbox(c.paths).pending(client)
    finally:
        zk.close(client)
    events = [m.payload["detail"] for m in queued if m.payload.get("kind") == "release_refused"]
    return kinds, events


def test_vendor_refuses_to_sign_below_the_threshold(signed: Vendor) -> None:
    r = signed.publish("9.0.0", keys=1)
    assert r.returncode == 1 and "threshold not met" in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert not (signed.repo / "targets" / "releases" / "9.0.0").exists()  # nothing written
    assert signed.publish("9.0.0").returncode == 0
    listed = json.loads(vendor("list", "--repo", str(signed.repo), "--json").stdout)
    assert [r["version"] for r in listed["releases"]] == ["9.0.0"]
    assert "already published" in signed.publish("9.0.0").stderr


def test_verified_offline_and_every_attack_refused(
    cluster: ClusterUnderTest, signed: Vendor, tmp_path: Path
) -> None:
    first = signed.bundle("9.0.0")
    r = cluster.cli("upgrade", "verify", "--bundle", str(first))
    assert r.returncode == 1 and "no vendor root is pinned" in r.stderr, r.stderr
    r = cluster.cli("upgrade", "trust", str(signed.repo / "metadata" / "1.root.json"))
    assert r.returncode == 0 and "threshold 2" in r.stdout, r.stderr
    assert (
        "already pinned"
        in cluster.cli("upgrade", "trust", str(signed.repo / "metadata" / "1.root.json")).stderr
    )

    r = cluster.cli("upgrade", "verify", "--bundle", str(first), "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["version"] == "9.0.0"
    second = signed.bundle("9.1.0")
    assert cluster.cli("upgrade", "verify", "--bundle", str(second)).returncode == 0
    status = json.loads(cluster.cli("upgrade", "status", "--json").stdout)
    assert status["verified"]["version"] == "9.1.0"
    assert status["trusted"]["timestamp"]["version"] == 3  # init, 9.0.0, 9.1.0

    third = signed.bundle("9.2.0")
    name = "targets/releases/9.2.0/managed_orchestrator-9.2.0-py3-none-any.whl"
    timestamp = Metadata[Timestamp].from_bytes(
        (signed.repo / "metadata" / "timestamp.json").read_bytes()
    )
    one_key = Metadata(timestamp.signed)
    one_key.signed.version += 1
    one_key.sign(load_signer(signed.keys[0]))
    forged = Metadata[Timestamp].from_bytes(
        (signed.repo / "metadata" / "timestamp.json").read_bytes()
    )
    forged.signed.expires = forged.signed.expires + timedelta(days=300)  # signatures kept
    stale = Repository(signed.repo, datetime.now(UTC) - timedelta(days=8))
    frozen = stale.publish("9.3.0", [wheel(tmp_path, "9.3.0")], signers_of(signed.keys[:2]))
    older = signed.bundle("0.0.9")  # older than the installed 0.1.0, but freshly signed
    serial = JSONSerializer()

    attacks = [
        ("target", rewrite(third, tmp_path / "tampered.tar", {name: b"PK evil"})),
        (
            "target",
            rewrite(
                third,
                tmp_path / "extra.tar",
                {"targets/releases/9.2.0/evil-1.0-py3-none-any.whl": b"PK evil"},
            ),
        ),
        (
            "target",
            rewrite(
                third, tmp_path / "missing.tar", {name: None, "targets/releases/9.2.0/x.whl": b"x"}
            ),
        ),
        (
            "signature",
            rewrite(
                third,
                tmp_path / "threshold.tar",
                {"metadata/timestamp.json": one_key.to_bytes(serial)},
            ),
        ),
        (
            "signature",
            rewrite(
                third,
                tmp_path / "bad-signature.tar",
                {"metadata/timestamp.json": forged.to_bytes(serial)},
            ),
        ),
        (
            "signature",
            rewrite(
                third,
                tmp_path / "no-signature.tar",
                {"metadata/timestamp.json": Metadata(forged.signed).to_bytes(serial)},
            ),
        ),
        ("expired", frozen),
        ("metadata-rollback", first),
        ("rollback", older),
        ("bundle", rewrite(third, tmp_path / "no-metadata.tar", {"metadata/timestamp.json": None})),
    ]
    before = _trusted(cluster)
    for kind, bundle in attacks:
        r = cluster.cli("upgrade", "verify", "--bundle", str(bundle))
        assert r.returncode == 1, (kind, bundle, r.stdout)
        assert f"release refused ({kind})" in r.stderr, (kind, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
        assert _trusted(cluster) == before, kind  # nothing trusted, nothing recorded
    status = json.loads(cluster.cli("upgrade", "status", "--json").stdout)
    assert status["verified"]["version"] == "9.1.0"
    kinds, events = _refusals(cluster)
    assert kinds == [k for k, _ in attacks]
    assert [e.split(":")[0] for e in events] == kinds

    # The genuine bundle still verifies after all that.
    assert cluster.cli("upgrade", "verify", "--bundle", str(third)).returncode == 0


def test_a_refused_release_reaches_mission_control_as_an_alert(
    cluster: ClusterUnderTest, mc: MissionControlServer, signed: Vendor, tmp_path: Path
) -> None:
    cluster.enroll(mc)
    cluster.start_nodes(1)
    r = cluster.cli("upgrade", "trust", str(signed.repo / "metadata" / "1.root.json"))
    assert r.returncode == 0, r.stderr
    genuine = signed.bundle("9.0.0")
    name = "targets/releases/9.0.0/managed_orchestrator-9.0.0-py3-none-any.whl"
    tampered = rewrite(genuine, tmp_path / "tampered.tar", {name: b"PK evil"})
    r = cluster.cli("upgrade", "verify", "--bundle", str(tampered))
    assert r.returncode == 1 and "release refused (target)" in r.stderr, r.stderr

    def alerted() -> bool:
        shown = mc.cli("alerts", "list", "--cluster", cluster.name, "--json")
        return any(a["kind"] == "release_refused" for a in json.loads(shown.stdout or "[]"))

    assert wait_until(alerted, 60, 0.5), cluster.logs()
