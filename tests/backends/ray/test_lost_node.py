"""A job the cluster lost ends Failed with a reason that says so: a cluster of its own (a head
without CPUs, so the job's driver lands on the one worker), whose worker node is SIGKILLed by
its process group while the job trains (as if the machine died)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from rl_provider.backends.ray.devcluster import LocalRayCluster, start_cluster
from rl_provider.core.enums import SecondaryStatus, TrainingJobStatus
from rl_provider.core.lifecycle import Lines, Outcome, TrainingFollower, follow_to_end
from tests.backends.conftest import ray_backend
from tests.backends.ray.test_ray_backend import SLEEPER, _environ, _estimator, _wait_for

pytestmark = pytest.mark.slow


@pytest.fixture
def small_cluster() -> Iterator[LocalRayCluster]:
    # The GCS marks a node dead after missing heartbeats: 3 x 1 s here (Ray: 5 x 3 s).
    cluster = start_cluster(
        nodes=2,
        cpus_per_node=1,
        head_cpus=0,
        extra_env={"RAY_health_check_period_ms": "1000", "RAY_health_check_failure_threshold": "3"},
    )
    try:
        yield cluster
    finally:
        cluster.stop()


def _job_processes(name: str) -> list[psutil.Process]:
    """The entry point (its contract names the job), the launcher and Ray's ``sh -c`` above it
    (Ray's job config in their environment carries our request, which names the job)."""
    found = []
    for process in psutil.process_iter():
        env = _environ(process)
        if env.get("TRAINING_JOB_NAME") == name or (
            f'"TrainingJobName\\": \\"{name}\\"' in env.get("RAY_JOB_CONFIG_JSON_ENV_VAR", "")
        ):
            found.append(process)
    return found


def test_job_on_a_node_that_dies_fails_saying_the_cluster_lost_it(
    small_cluster: LocalRayCluster, tmp_path: Path
) -> None:
    backend = ray_backend(small_cluster, tmp_path)
    _estimator(backend, tmp_path, SLEEPER).fit(job_name="ray-lost", wait=False)
    try:  # generous: on a loaded 2-core CI machine four Ray nodes share the cores
        _wait_for(lambda: "up" in backend.read_logs("ray-lost")[0], 180)
    except TimeoutError:
        d = backend.describe_training_job("ray-lost")
        pytest.fail(
            f"no 'up' line from the entry point: {d.training_job_status} / "
            f"{d.secondary_status} / {d.failure_reason}"
        )
    entry = next(
        p for p in psutil.process_iter() if _environ(p).get("TRAINING_JOB_NAME") == "ray-lost"
    )
    driver = entry.parent()
    assert driver is not None
    # Ray's `sh -c`, the launcher and the entry point.
    assert {entry.pid, driver.pid} < {p.pid for p in _job_processes("ray-lost")}

    # Followed as the operator and the trigger do, from the cursor after "up": through the
    # seconds when the node is dead but Ray does not know yet (its log already unreachable).
    _, cursor = backend.read_logs("ray-lost")
    lines: list[str] = []
    killed = time.monotonic()
    small_cluster.kill_node(1)  # the worker: the only node with CPUs, so the driver's
    outcome = follow_to_end(
        TrainingFollower("ray-lost", cursor=cursor, deadline=time.time() + 90),
        backend,
        sleep=lambda: time.sleep(0.5),
        report=lambda step: lines.extend(step.lines) if isinstance(step, Lines) else None,
    )
    lost_after = time.monotonic() - killed
    assert outcome.outcome is Outcome.FAILED
    description = outcome.description
    assert description.training_job_status is TrainingJobStatus.FAILED
    assert description.secondary_status is SecondaryStatus.FAILED
    reason = description.failure_reason or ""
    assert reason.startswith("InternalServerError: the Ray cluster lost the job: "), reason
    assert "node has died" in reason
    print(f"Failed {lost_after:.1f}s after the node was killed: {reason.splitlines()[0]}")
    # The log went with the node: no line came twice, and describe and read_logs still answer.
    assert "up" not in lines
    assert backend.describe_training_job("ray-lost").failure_reason == reason
    assert backend.read_logs("ray-lost", outcome.cursor) == ([], outcome.cursor)
    # Ray's supervisor died with the node; the launcher (in a session of its own) noticed and
    # left no process behind.
    _wait_for(lambda: not driver.is_running() and not entry.is_running(), 15)
    assert _job_processes("ray-lost") == []
