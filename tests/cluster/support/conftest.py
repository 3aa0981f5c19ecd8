"""Fixtures for the remote-support tests on the real ZooKeeper ensemble."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from clusterkit import ClusterUnderTest
from supportkit import Leader, make_leader


@pytest.fixture
def leader(cluster: ClusterUnderTest, tmp_path: Path) -> Iterator[Leader]:
    yield from make_leader(cluster, tmp_path)
