"""Overhead of the local backend over running an entry point directly, measured in one run.

1. A ~30 s RLlib job (``dags/cartpole/train.py``, PPO on CartPole-v1, a fixed number of
   iterations and no target): the same command, argv and container environment run directly as
   a subprocess, and through ``LocalBackend`` (``RLEstimator.fit(wait=False)``, which packages
   and uploads the code, then polling ``describe_training_job`` until Completed, which includes
   the runner's start, log and metric capture and the packaging of ``model.tar.gz``). The two
   alternate (ABAB...) so drifting load on a shared machine hits both alike; the figure is
   backend total / direct total (target <= 1.05).
2. The fixed overhead of a no-op job (``print("ok")``) through the backend over
   ``python -c pass`` run directly: median of N each, alternating, in ms.

    .venv/bin/python bench/local_overhead.py            # 3 pairs of ~30 s runs, 10 no-op pairs
    .venv/bin/python bench/local_overhead.py --quick    # smoke run: 1 short pair, 3 no-op pairs
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rl_provider import RLEstimator
from rl_provider.backends.local import LocalBackend, container
from rl_provider.core.enums import SecondaryStatus, TrainingJobStatus

REPO = Path(__file__).resolve().parents[1]
CARTPOLE = REPO / "dags" / "cartpole"
# The describe poll of this benchmark, not a client's: it should not add to what it measures.
POLL_SECONDS = 0.02


def estimator(backend: LocalBackend, source_dir: Path, hyperparameters: dict[str, object]):
    import ray

    return RLEstimator(
        entry_point="train.py",
        source_dir=str(source_dir),
        toolkit="ray",
        toolkit_version=ray.__version__,
        framework="pytorch",
        instance_type="local",
        hyperparameters=hyperparameters,
        backend=backend,
    )


def through_backend(backend: LocalBackend, est: RLEstimator, name: str) -> tuple[float, str]:
    """Wall time from fit() to a Completed describe, and where the time went."""
    started = time.monotonic()
    est.fit(job_name=name, wait=False)
    while not (job := backend.describe_training_job(name)).is_terminal:
        time.sleep(POLL_SECONDS)
    elapsed = time.monotonic() - started
    if job.training_job_status is not TrainingJobStatus.COMPLETED:
        raise SystemExit(f"{name} ended {job.training_job_status}: {job.failure_reason}")
    phases = {t.status: t for t in job.secondary_status_transitions}
    seconds = {
        status.value: (phases[status].end_time - phases[status].start_time).total_seconds()
        for status in (
            SecondaryStatus.STARTING,
            SecondaryStatus.DOWNLOADING,
            SecondaryStatus.TRAINING,
            SecondaryStatus.UPLOADING,
        )
        if status in phases and phases[status].end_time is not None
    }
    detail = ", ".join(f"{k} {v:.2f} s" for k, v in seconds.items())
    return elapsed, detail


def direct(est: RLEstimator, name: str, work: Path) -> float:
    """The command a job runs, with the job's argv, environment and cwd, run as a subprocess."""
    request = est.training_request(name)
    paths = container.ContainerPaths(work / name / "opt_ml")
    paths.create()
    shutil.copytree(est.source_dir, paths.code, dirs_exist_ok=True)
    container.write_configs(paths, request)
    user, framework = container.split_hyperparameters(request["HyperParameters"])
    env = container.process_env(
        container.training_env(paths, request, num_cpus=os.cpu_count() or 1), paths.code
    )
    command = [sys.executable, str(paths.code / framework["sagemaker_program"])]
    command += container.cli_args(user)
    with open(work / f"{name}.log", "wb") as log:
        started = time.monotonic()
        subprocess.run(
            command, cwd=paths.code, env=env, stdout=log, stderr=subprocess.STDOUT, check=True
        )
        return time.monotonic() - started


def rllib_ratio(backend: LocalBackend, work: Path, iterations: int, pairs: int) -> None:
    hyperparameters = {"iterations": iterations, "seed": 0}
    est = estimator(backend, CARTPOLE, hyperparameters)
    print(f"RLlib PPO CartPole-v1, {iterations} iterations, {pairs} pair(s) run ABAB:")
    directs, backends = [], []
    for i in range(pairs):
        directs.append(direct(est, f"direct-{i}", work))
        print(f"  direct  #{i}: {directs[-1]:7.2f} s", flush=True)
        elapsed, detail = through_backend(backend, est, f"rllib-{i}")
        backends.append(elapsed)
        print(f"  backend #{i}: {elapsed:7.2f} s  ({detail})", flush=True)
    pair_ratios = ", ".join(f"{b / d:.3f}" for b, d in zip(backends, directs, strict=True))
    ratio = sum(backends) / sum(directs)
    print(f"wall-time ratio backend/direct: {ratio:.3f} (target <= 1.05; pairs: {pair_ratios})")


def noop_overhead(backend: LocalBackend, work: Path, runs: int) -> None:
    source = work / "noop"
    source.mkdir()
    (source / "train.py").write_text('print("ok")\n')
    est = estimator(backend, source, {})
    directs, backends, details = [], [], []
    for i in range(runs):
        started = time.monotonic()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        directs.append(time.monotonic() - started)
        elapsed, detail = through_backend(backend, est, f"noop-{i}")
        backends.append(elapsed)
        details.append((elapsed, detail))
    direct_ms = statistics.median(directs) * 1000
    backend_ms = statistics.median(backends) * 1000
    print(
        f"no-op job, median of {runs}: backend {backend_ms:.0f} ms, "
        f"`python -c pass` {direct_ms:.0f} ms, fixed overhead {backend_ms - direct_ms:.0f} ms"
    )
    median_run = sorted(details)[len(details) // 2]
    print(f"  a median no-op job: {median_run[0] * 1000:.0f} ms ({median_run[1]})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    parser.add_argument("--iterations", type=int, help="PPO iterations of the RLlib run")
    parser.add_argument("--pairs", type=int, help="direct/backend pairs of the RLlib run")
    parser.add_argument("--noop-runs", type=int, help="no-op runs each way")
    args = parser.parse_args()
    iterations = args.iterations or (3 if args.quick else 50)
    pairs = args.pairs or (1 if args.quick else 3)
    noop_runs = args.noop_runs or (3 if args.quick else 10)
    print(f"cpus: {os.cpu_count()}, load average: {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory(prefix="rl-bench-") as tmp:
        work = Path(tmp)
        backend = LocalBackend(work / "home")
        noop_overhead(backend, work, noop_runs)
        rllib_ratio(backend, work, iterations, pairs)
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
