"""One real two-node Ray cluster for the session (head 127.0.0.2, worker 127.0.0.3, job server on
127.0.0.1, token auth on with a token of the test's own, every port free), stopped by killing
its process groups. Start-up: ~10 s on this machine (docs/PERFORMANCE.md).

Here, not in tests/backends/ray/, so that the contract suite (test_contract.py) runs its Ray
parametrization on the same cluster; pytest starts it only when a test asks for it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from rl_provider.backends.local import LocalBackend
from rl_provider.backends.ray import RayBackend
from rl_provider.backends.ray.devcluster import LocalRayCluster, start_cluster


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[LocalRayCluster]:
    started = time.monotonic()
    cluster = start_cluster(nodes=2, cpus_per_node=2)
    print(f"Ray cluster started in {time.monotonic() - started:.1f}s at {cluster.dashboard_url}")
    try:
        yield cluster
    finally:
        cluster.stop()


def ray_backend(cluster: LocalRayCluster, tmp_path: Path) -> RayBackend:
    """A ``RayBackend`` on ``cluster`` for one test: storage is a file:// directory (the nodes
    share this machine's disk), a 3 s stop grace, models and endpoints in a local home of the
    test's own."""
    return RayBackend(
        cluster.dashboard_url,
        token=cluster.token,
        storage=(tmp_path / "storage").as_uri(),
        stop_grace_seconds=3,
        upload_seconds=30,
        serving=LocalBackend(tmp_path / "home"),
    )
