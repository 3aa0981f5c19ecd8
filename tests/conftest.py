"""Shared fixtures: a real ZooKeeper ensemble per test session, private ones for fault tests."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from clusterkit import ClusterUnderTest

from cluster.dev.mcserver import MissionControlServer
from cluster.dev.zookeeper import Ensemble


def _ensemble(base: Path) -> Iterator[Ensemble]:
    ensemble = Ensemble(base)
    try:
        ensemble.start()
        ensemble.wait_ready(60)
        yield ensemble
    finally:
        ensemble.stop()


@pytest.fixture(scope="session")
def zk_ensemble(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ensemble]:
    """One 3-server ensemble shared by a test session; tests isolate by cluster name."""
    yield from _ensemble(tmp_path_factory.mktemp("zk"))


@pytest.fixture
def private_ensemble(tmp_path: Path) -> Iterator[Ensemble]:
    """An ensemble of the test's own, for tests that kill ZooKeeper servers."""
    yield from _ensemble(tmp_path / "zk")


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
    """A real Mission Control over HTTPS (SQLite, dev CA), stopped by PID afterwards."""
    server = MissionControlServer(tmp_path / "mc")
    server.start()
    try:
        yield server
    finally:
        server.stop()
