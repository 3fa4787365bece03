"""A 2-iteration RLlib PPO run of dags/cartpole/train.py on the two-node cluster: its env runners
land on both nodes (Ray's state API), and its policy deploys on the local backend and answers."""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path

import pytest

from rl_provider import RLEstimator
from rl_provider.backends.local import LocalBackend
from rl_provider.backends.ray.backend import RayBackend
from rl_provider.backends.ray.devcluster import LocalRayCluster
from rl_provider.core.enums import TrainingJobStatus

CARTPOLE = Path(__file__).resolve().parents[3] / "dags" / "cartpole"


def _state(cluster: LocalRayCluster, resource: str) -> list[dict[str, object]]:
    """Ray's state API over HTTP (``ray list actors``): the dashboard's /api/v0 endpoints."""
    request = urllib.request.Request(
        f"{cluster.dashboard_url}/api/v0/{resource}?limit=1000&detail=1",
        headers={"Authorization": f"Bearer {cluster.token}"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return list(json.loads(response.read())["data"]["result"]["result"])


def _env_runners(cluster: LocalRayCluster) -> list[dict[str, object]]:
    return [a for a in _state(cluster, "actors") if "EnvRunner" in str(a.get("class_name"))]


@pytest.mark.slow
def test_ppo_spreads_env_runners_over_both_nodes_and_deploys_locally(
    ray_cluster: LocalRayCluster, tmp_path: Path
) -> None:
    local = LocalBackend(tmp_path / "home")
    backend = RayBackend(
        ray_cluster.dashboard_url,
        token=ray_cluster.token,
        storage=(tmp_path / "storage").as_uri(),
        serving=local,
    )
    estimator = RLEstimator(
        entry_point="train.py",
        source_dir=str(CARTPOLE),
        toolkit="ray",
        toolkit_version="2.60.0",
        framework="pytorch",
        instance_type="ray",
        backend=backend,
        hyperparameters={
            "iterations": 2,
            "train_batch_size": 128,
            "minibatch_size": 64,
            "num_epochs": 1,
            "num_envs_per_env_runner": 1,
            "num_env_runners": "auto",
            "fcnet_hiddens": [16],
        },
    )
    before = {a["actor_id"] for a in _env_runners(ray_cluster)}
    started = time.monotonic()
    estimator.fit(job_name="ray-ppo", logs=False)
    print(f"2-iteration PPO on the Ray cluster: {time.monotonic() - started:.1f}s")
    description = backend.describe_training_job("ray-ppo")
    assert description.training_job_status is TrainingJobStatus.COMPLETED, (
        description.failure_reason
    )
    lines = backend.read_logs("ray-ppo")[0]
    assert "Sized 3 env runners from the cluster" in lines
    assert "episode_return_mean" in " ".join(description.final_metrics)

    # This job's env runners: those the state API did not list before it (earlier tests' jobs
    # left theirs, dead, in the state API).
    actors = [a for a in _env_runners(ray_cluster) if a["actor_id"] not in before]
    nodes = {str(n["node_id"]): str(n["node_ip"]) for n in _state(ray_cluster, "nodes")}
    placed = {nodes[str(a["node_id"])] for a in actors}
    assert len(actors) == 3
    assert placed == {"127.0.0.2", "127.0.0.3"}

    predictor = estimator.deploy(1, "local", endpoint_name="ray-ppo-endpoint")
    try:
        answer = predictor.predict([0.01, -0.02, 0.03, 0.01])
        assert answer["action"] in (0, 1)
        assert local.describe_endpoint("ray-ppo-endpoint").endpoint_status.value == "InService"
    finally:
        predictor.delete_endpoint()
