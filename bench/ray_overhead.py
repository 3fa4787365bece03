"""Overhead of the Ray backend over submitting the same entry point with ``ray job submit``,
and the trigger's CPU per poll, measured in one run on a local two-node cluster.

1. A ~30 s RLlib job (``dags/cartpole/train.py``, PPO on CartPole-v1, a fixed number of
   iterations): through ``RayBackend`` (``RLEstimator.fit(wait=False)``: code packaged and
   uploaded, the launcher's package uploaded, the job submitted; then ``describe_training_job``
   polled until Completed, which includes the launcher's staging, the container contract and the
   packaging of ``model.tar.gz``), and the same command with ``ray job submit --no-wait
   --working-dir dags/cartpole -- python train.py ...`` polled through the Jobs API until
   SUCCEEDED. The two alternate (ABAB...) so drifting load hits both alike; the figure is backend
   total / direct total (target <= 1.05).
2. The trigger's poll: ``AsyncRayBackend.describe_training_job`` + ``read_logs`` (what
   ``RLTrainingJobTrigger`` does each ``check_interval``) on a finished job with its whole log,
   CPU time of this process per poll (median of rounds); and while following a running job
   that logs ``LOG_RATE`` lines a second, the way the trigger does (the core's follower, a
   cursor, a poll every ``FOLLOW_SECONDS``): CPU time per poll, HTTP calls per poll.

    .venv/bin/python bench/ray_overhead.py            # 3 pairs of ~30 s jobs
    .venv/bin/python bench/ray_overhead.py --quick    # 1 short pair
    .venv/bin/python bench/ray_overhead.py --polls    # the trigger's polls only
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from rl_provider import RLEstimator
from rl_provider.backends.ray import AsyncRayBackend, RayBackend
from rl_provider.backends.ray.devcluster import LocalRayCluster, start_cluster
from rl_provider.core.enums import TrainingJobStatus

REPO = Path(__file__).resolve().parents[1]
CARTPOLE = REPO / "dags" / "cartpole"
# The same for both paths; a poll costs the head CPU on these 2 cores, so not a tight loop.
POLL_SECONDS = 1.0
FOLLOW_SECONDS = 0.5
LOG_RATE = 200  # lines a second (an RLlib job at verbose logging)
LOGGER = f"""
import time
for i in range({LOG_RATE} * 20):
    print(f"step {{i}} episode_return_mean: {{i * 0.5}} and some more text of a typical line")
    if i % {LOG_RATE // 10} == 0:
        time.sleep(0.1)
"""


def hyperparameters(iterations: int) -> dict[str, object]:
    return {
        "iterations": iterations,
        "train_batch_size": 1000,
        "minibatch_size": 250,
        "num_epochs": 4,
        "num_env_runners": 2,
        "num_envs_per_env_runner": 1,
        "seed": 0,
    }


def through_backend(backend: RayBackend, name: str, iterations: int) -> float:
    import ray

    estimator = RLEstimator(
        entry_point="train.py",
        source_dir=str(CARTPOLE),
        toolkit="ray",
        toolkit_version=ray.__version__,
        framework="pytorch",
        instance_type="ray",
        backend=backend,
        hyperparameters=hyperparameters(iterations),
    )
    started = time.monotonic()
    estimator.fit(job_name=name, wait=False)
    while True:
        description = backend.describe_training_job(name)
        if description.is_terminal:
            break
        time.sleep(POLL_SECONDS)
    elapsed = time.monotonic() - started
    if description.training_job_status is not TrainingJobStatus.COMPLETED:
        raise RuntimeError(f"{name}: {description.failure_reason}")
    return elapsed


def _status(cluster: LocalRayCluster, name: str) -> str:
    request = urllib.request.Request(
        f"{cluster.dashboard_url}/api/jobs/{name}",
        headers={"Authorization": f"Bearer {cluster.token}"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return str(json.loads(response.read())["status"])


def direct(
    cluster: LocalRayCluster, name: str, iterations: int, model_dir: Path
) -> tuple[float, float]:
    """(wall time from the ``ray job submit`` command's start, from its return) to SUCCEEDED."""
    args = []
    for key, value in sorted(hyperparameters(iterations).items()):
        args += [f"--{key}", str(value)]
    env = {**cluster.env, "RAY_ADDRESS": cluster.dashboard_url}
    command = [
        str(Path(sys.executable).with_name("ray")),
        "job",
        "submit",
        "--no-wait",
        f"--submission-id={name}",
        f"--working-dir={CARTPOLE}",
        "--",
        "python",
        "train.py",
        *args,
        "--model_dir",
        str(model_dir),
    ]
    started = time.monotonic()
    subprocess.run(command, env=env, check=True, capture_output=True)
    submitted = time.monotonic()
    while (status := _status(cluster, name)) not in ("SUCCEEDED", "FAILED", "STOPPED"):
        time.sleep(POLL_SECONDS)
    ended = time.monotonic()
    if status != "SUCCEEDED":
        request = urllib.request.Request(
            f"{cluster.dashboard_url}/api/jobs/{name}/logs",
            headers={"Authorization": f"Bearer {cluster.token}"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            tail = json.loads(response.read())["logs"][-12000:]
        raise RuntimeError(f"{name}: ray job submit ended {status}:\n{tail}")
    return ended - started, ended - submitted


def trigger_cpu_per_poll(cluster: LocalRayCluster, name: str, polls: int) -> float:
    backend = AsyncRayBackend(cluster.dashboard_url, token=cluster.token)

    async def run() -> float:
        await backend.describe_training_job(name)  # the client is opened once per process
        before = os.times()
        for _ in range(polls):
            await backend.describe_training_job(name)
            await backend.read_logs(name, None)
        after = os.times()
        return (after.user + after.system - before.user - before.system) / polls

    return asyncio.run(run())


def trigger_cpu_following(backend: RayBackend, cluster: LocalRayCluster, scratch: Path) -> str:
    """Follow a running job as the trigger does; CPU and HTTP calls of this process per poll."""
    import httpx

    from rl_provider.core.lifecycle import Describe, Lines, Pause, ReadLogs, TrainingFollower

    source = scratch / "logger"
    source.mkdir()
    (source / "train.py").write_text(LOGGER)
    RLEstimator(
        "train.py", source_dir=str(source), image_uri="ray:2", instance_type="ray", backend=backend
    ).fit(job_name="bench-follow", wait=False)
    calls = 0

    async def count(request: httpx.Request) -> None:
        nonlocal calls
        calls += 1

    async def follow() -> tuple[float, int, int]:
        twin = AsyncRayBackend(cluster.dashboard_url, token=cluster.token)
        client = twin._client()
        if inspect.isawaitable(client):  # an async method since the clients are closed
            client = await client
        client.event_hooks["request"].append(count)
        steps = TrainingFollower("bench-follow").steps()
        reply: object = None
        polls = lines = 0
        cpu = 0.0
        try:
            while True:
                step = steps.send(reply)
                reply = None
                before = os.times()
                if isinstance(step, Describe):
                    polls += 1
                    reply = await twin.describe_training_job("bench-follow")
                elif isinstance(step, ReadLogs):
                    reply = await twin.read_logs("bench-follow", step.cursor)
                elif isinstance(step, Pause):
                    await asyncio.sleep(FOLLOW_SECONDS)
                elif isinstance(step, Lines):
                    lines += len(step.lines)
                after = os.times()
                cpu += after.user + after.system - before.user - before.system
        except StopIteration:
            pass
        finally:
            await twin.aclose()
        return cpu, polls, lines

    cpu, polls, lines = asyncio.run(follow())
    return (
        f"following a running job ({lines} lines, {polls} polls): "
        f"{cpu / polls * 1e3:.2f} ms CPU and {calls / polls:.2f} HTTP calls per poll"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one short pair")
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--iterations", type=int, default=10, help="PPO iterations (~30 s)")
    parser.add_argument("--polls", action="store_true", help="the trigger's polls only")
    args = parser.parse_args()
    pairs, iterations = (1, 2) if args.quick else (args.pairs, args.iterations)
    started = time.monotonic()
    cluster = start_cluster(nodes=2, cpus_per_node=2)
    print(f"two-node cluster started in {time.monotonic() - started:.1f}s")
    scratch = Path(tempfile.mkdtemp(prefix="ray-bench-"))
    try:
        backend = RayBackend(
            cluster.dashboard_url, token=cluster.token, storage=(scratch / "storage").as_uri()
        )
        if args.polls:
            print(f"  trigger poll, {trigger_cpu_following(backend, cluster, scratch)}")
            lines = len(backend.read_logs("bench-follow")[0])
            cpu = statistics.median(
                trigger_cpu_per_poll(cluster, "bench-follow", 20) for _ in range(3)
            )
            print(
                f"  trigger poll (describe + read_logs, {lines}-line log): {cpu * 1e3:.2f} ms CPU"
            )
            return
        ours: list[float] = []
        theirs: list[float] = []
        after_cli: list[float] = []
        for i in range(pairs):
            order = [0, 1] if i % 2 == 0 else [1, 0]
            for which in order:
                if which == 0:
                    ours.append(through_backend(backend, f"bench-backend-{i}", iterations))
                else:
                    model_dir = scratch / f"direct-{i}"
                    total, submitted = direct(cluster, f"bench-direct-{i}", iterations, model_dir)
                    theirs.append(total)
                    after_cli.append(submitted)
        ratio = sum(ours) / sum(theirs)
        print(f"{iterations}-iteration PPO job, {pairs} pairs, {os.cpu_count()} CPUs")
        print(f"  through RayBackend : {' '.join(f'{t:.1f}s' for t in ours)}")
        print(f"  ray job submit     : {' '.join(f'{t:.1f}s' for t in theirs)}")
        print(f"  wall-time ratio    : {ratio:.3f} (target <= 1.05)")
        # The CLI's own start (Python + import ray) is part of `ray job submit`; without it:
        strict = sum(ours) / sum(after_cli)
        print(f"  ... vs the job alone, from the CLI's return: {strict:.3f}")
        lines = len(backend.read_logs("bench-backend-0")[0])
        cpu = statistics.median(
            trigger_cpu_per_poll(cluster, "bench-backend-0", 20) for _ in range(3)
        )
        print(f"  trigger poll (describe + read_logs, {lines}-line log): {cpu * 1e3:.2f} ms CPU")
    finally:
        cluster.stop()
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
