"""Test kit for the backup orchestration tests: one moto_server per region (per test session),
unique buckets, and a cluster with nodes whose data directories hold something to back up."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from clusterkit import ZK_AUTH, ClusterUnderTest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from backup.destinations import open_targets
from backup.engine import BackupContext, commit_manifest, new_backup_id, write_directory_part
from backup.keys import key_id, public_key_pem
from backup.manifest import signer_id
from backup.residency import ResidencyPolicy
from backup.targets import Target
from cluster import zk
from cluster.backups import config_store, store
from cluster.backups.runs import RunRecord
from cluster.backups.signing import encode_public, ensure_signing_key
from cluster.dev import s3 as devs3


class Regions:
    """moto_server processes, started on first use, one per region, killed by PID at the end."""

    def __init__(self) -> None:
        self.servers: dict[str, devs3.DevS3] = {}

    def __call__(self, region: str) -> devs3.DevS3:
        if region not in self.servers:
            self.servers[region] = devs3.start_s3(region)
        return self.servers[region]

    def stop(self) -> None:
        for server in self.servers.values():
            server.stop()


@pytest.fixture(scope="session")
def regions() -> Iterator[Regions]:
    devs3.use_dev_credentials()  # node processes and the CLI inherit these
    found = Regions()
    try:
        yield found
    finally:
        found.stop()


@pytest.fixture
def bucket(regions: Regions) -> Callable[..., str]:
    """A new bucket in `region` (or located elsewhere); returns its s3:// URL."""

    def make(region: str, *, located_in: str | None = None, declare: str | None = None) -> str:
        server = regions(region)
        name = f"bk-{uuid.uuid4().hex[:16]}"
        devs3.create_bucket(server, name, located_in)
        url = server.target_url(name, "backups")
        return url.replace(f"region={region}", f"region={declare}") if declare else url

    return make


def fill(data_dir: Path, node: str, size: int = 300_000) -> None:
    """Something worth backing up in a node's data directory."""
    (data_dir / "segments").mkdir(parents=True, exist_ok=True)
    (data_dir / "segments" / "big.bin").write_bytes(os.urandom(size))
    for i in range(5):
        (data_dir / "segments" / f"s{i}.json").write_text(json.dumps({"node": node, "i": i}))
    (data_dir / "empty").mkdir(exist_ok=True)
    link = data_dir / "latest"
    if not link.is_symlink():
        link.symlink_to("segments/big.bin")


@dataclass
class BackupCluster:
    cluster: ClusterUnderTest
    key: Path

    def cli(self, *args: str, timeout: float = 60) -> object:
        return self.cluster.cli("backup", *args, timeout=timeout)

    def ok(self, *args: str, timeout: float = 60) -> str:
        r = self.cluster.cli("backup", *args, timeout=timeout)
        assert r.returncode == 0, f"{args}: {r.stderr}\n{self.cluster.logs()}"
        return r.stdout

    def runs(self) -> list[dict[str, object]]:
        return list(json.loads(self.ok("list", "--json")))

    def config(self) -> dict[str, object]:
        client = zk.connect(self.cluster.hosts, auth=ZK_AUTH)
        try:
            data, _ = client.get(self.cluster.paths.config)
        finally:
            zk.close(client)
        return dict(json.loads(data or b"{}"))


def configure(
    cluster: ClusterUnderTest, target: str, *, enrolled: bool = False, **settings: object
) -> X25519PrivateKey:
    """Backup settings written through the library (the CLI path has its own tests)."""
    key = X25519PrivateKey.generate()
    client = zk.connect(cluster.hosts, auth=ZK_AUTH)
    try:
        signing = encode_public(ensure_signing_key(client, cluster.paths, ZK_AUTH))
        public = key.public_key()
        fields = {
            "target": target,
            "public_key": public_key_pem(public).decode(),
            "key_id": key_id(public),
            "signing_public_key": signing,
            **settings,
        }
        config_store.update(
            client,
            cluster.paths,
            lambda _c, current: config_store.Change(current.model_copy(update=fields), "EU"),
        )
        if enrolled:  # enough for the leader to queue Mission Control events
            data, stat = client.get(cluster.paths.config)
            link = {"url": "https://127.0.0.1:9", "cluster_id": "c1"}
            config = {**json.loads(data), "mission_control": link}
            client.set(cluster.paths.config, json.dumps(config).encode(), version=stat.version)
    finally:
        zk.close(client)
    return key


def change_settings(cluster: ClusterUnderTest, **settings: object) -> None:
    client = zk.connect(cluster.hosts, auth=ZK_AUTH)
    try:
        config_store.update(
            client,
            cluster.paths,
            lambda _c, current: config_store.Change(current.model_copy(update=settings), None),
        )
    finally:
        zk.close(client)


def runs(cluster: ClusterUnderTest) -> list[RunRecord]:
    client = zk.connect(cluster.hosts, auth=ZK_AUTH)
    try:
        return store.list_runs(client, cluster.paths)
    finally:
        zk.close(client)


def data_dir(cluster: ClusterUnderTest, node: str) -> Path:
    return cluster.base / "data" / node


@pytest.fixture
def backup_cluster(cluster: ClusterUnderTest) -> Callable[..., BackupCluster]:
    """Start `nodes` nodes with filled data dirs, configure backups to `target`, make a key."""

    def make(target: str, *extra: str, nodes: int = 3) -> BackupCluster:
        for i in range(1, nodes + 1):
            fill(data_dir(cluster, f"n{i}"), f"n{i}")
        cluster.start_nodes(nodes)
        made = BackupCluster(cluster, cluster.base / "customer.key")
        made.ok("configure", "--geography", "EU", "--target", target, *extra)
        made.ok("keygen", str(made.key))
        return made

    return make


def stored(tmp_path: Path, nodes: list[str]) -> tuple[str, Target, X25519PrivateKey, str]:
    """A signed backup of `nodes` (3 MiB and a small file each, under `tmp_path/data`) on a
    file:// target, without servers: (backup id, target, private key, signer fingerprint)."""
    targets = open_targets(f"file://{tmp_path}/primary", [], ResidencyPolicy("EU"))
    key, signer = X25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    created = datetime.now(UTC)
    ctx = BackupContext(new_backup_id(created), key.public_key())
    parts = []
    for node in nodes:
        source = tmp_path / "data" / node
        (source / "segments").mkdir(parents=True)
        (source / "segments" / "big.bin").write_bytes(os.urandom(3 << 20))
        (source / "node.txt").write_text(node)
        parts.append(write_directory_part(source, ctx=ctx, part=node, node=node, targets=targets))
    commit_manifest(
        ctx=ctx, cluster="c", epoch=1, created=created, parts=parts, targets=targets,
        signing_key=signer,
    )  # fmt: skip
    return ctx.backup_id, targets.primary, key, signer_id(signer.public_key())
