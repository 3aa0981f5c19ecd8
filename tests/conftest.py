"""Shared fixtures: a real ZooKeeper ensemble per test session, private ones for fault tests.

Every ensemble speaks TLS only, with certificates from one CA per test process; its file is in
`MANAGED_ZK_CA` for the whole session, so the CLI and node processes the tests start, and the
tests' own ZooKeeper sessions, trust it as an operator's would.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from clusterkit import ClusterUnderTest

from cluster.dev.mcserver import MissionControlServer
from cluster.dev.zookeeper import Ensemble, ZooKeeperTLS
from cluster.zk.client import CA_ENV


@pytest.fixture(scope="session", autouse=True)
def zk_tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ZooKeeperTLS]:
    """The certificates of every ensemble the tests start, trusted through MANAGED_ZK_CA."""
    tls = ZooKeeperTLS.create(tmp_path_factory.mktemp("zk-tls"))
    previous = os.environ.get(CA_ENV)
    os.environ[CA_ENV] = str(tls.ca_cert)
    yield tls
    if previous is None:
        os.environ.pop(CA_ENV, None)
    else:
        os.environ[CA_ENV] = previous


def _ensemble(base: Path, tls: ZooKeeperTLS) -> Iterator[Ensemble]:
    ensemble = Ensemble(base, tls=tls)
    try:
        ensemble.start()
        ensemble.wait_ready(60)
        yield ensemble
    finally:
        ensemble.stop()


@pytest.fixture(scope="session")
def zk_ensemble(
    tmp_path_factory: pytest.TempPathFactory, zk_tls: ZooKeeperTLS
) -> Iterator[Ensemble]:
    """One 3-server ensemble shared by a test session; tests isolate by cluster name."""
    yield from _ensemble(tmp_path_factory.mktemp("zk"), zk_tls)


@pytest.fixture
def private_ensemble(tmp_path: Path, zk_tls: ZooKeeperTLS) -> Iterator[Ensemble]:
    """An ensemble of the test's own, for tests that kill ZooKeeper servers."""
    yield from _ensemble(tmp_path / "zk", zk_tls)


def _cluster(hosts: str, base: Path) -> Iterator[ClusterUnderTest]:
    c = ClusterUnderTest(hosts=hosts, name=f"t{uuid.uuid4().hex[:12]}", base=base)
    try:
        yield c
    finally:
        c.stop()


@pytest.fixture
def cluster(zk_ensemble: Ensemble, tmp_path: Path) -> Iterator[ClusterUnderTest]:
    yield from _cluster(zk_ensemble.connect_string, tmp_path)


@pytest.fixture
def private_cluster(private_ensemble: Ensemble, tmp_path: Path) -> Iterator[ClusterUnderTest]:
    yield from _cluster(private_ensemble.connect_string, tmp_path)


@pytest.fixture
def mc(tmp_path: Path) -> Iterator[MissionControlServer]:
    """A real Mission Control over HTTPS (SQLite, dev CA), stopped by PID afterwards; its
    access log records every request received (tests count deliveries from it)."""
    server = MissionControlServer(tmp_path / "mc", access_log=True)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def dependency_wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """The wheels of `managed-orchestrator[node]`'s dependencies (`tests/wheelhouse.py`), made
    once per session for the release tests."""
    from wheelhouse import dependency_wheels

    return dependency_wheels(tmp_path_factory.mktemp("wheelhouse"))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The long tests (`slow`) first, in their order, then the rest: with two workers, a long
    test handed out last would run alone at the end while the other worker idles."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
