"""The jobs page with 1,000 training jobs: one GET through Airflow's API app, measured in one run.

    .venv/bin/python bench/ui_jobs_list.py [--jobs 1000] [--metrics 2] [--points 50] [--rounds 7]

A throwaway AIRFLOW_HOME (``airflow db migrate``) and local home: one real tiny job gives a real
request; ``--jobs`` - 1 more rows are written through the store (Completed, with ``--metrics``
metrics of ``--points`` points each). An ``rl`` connection points at that home. Then, alternating
over ``--rounds`` rounds, it times (median):

- ``GET /rl/jobs?conn=...``: the HTML page, through Airflow's app (auth manager, JWT check,
  plugin mount) with FastAPI's TestClient;
- ``GET /rl/api/jobs?conn=...``: the same rows as JSON;
- describing every job (one DescribeTrainingJob each): what the page would cost without the
  listing's last metric values.

It prints each median and the ratios to the 1 s budget and to describing every job.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BUDGET_S = 1.0
TRAIN = "import os\nprint('episode_reward_mean: 1.0')\n"


def populate(home: Path, jobs: int, metrics: int, points: int) -> None:
    from rl_provider import RLEstimator
    from rl_provider.backends.local import LocalBackend
    from rl_provider.core.enums import SecondaryStatus, TrainingJobStatus

    backend = LocalBackend(home)
    src = home.parent / "src"
    src.mkdir()
    (src / "train.py").write_text(TRAIN)
    estimator = RLEstimator(
        entry_point="train.py",
        source_dir=str(src),
        toolkit="ray",
        toolkit_version="2.60.0",
        framework="pytorch",
        backend=backend,
    )
    estimator.fit(job_name="bench-0", wait=True, logs=False)
    request = backend.store.get_job("bench-0").request
    now = time.time()
    for i in range(1, jobs):
        name = f"bench-{i}"
        backend.store.insert_job(name, {**request, "TrainingJobName": name}, 120.0)
        for status in (SecondaryStatus.DOWNLOADING, SecondaryStatus.TRAINING):
            backend.store.transition(name, status, status.value)
        backend.store.add_metrics(
            name,
            [(f"metric_{m}", float(p), now + p) for p in range(points) for m in range(metrics)],
        )
        backend.store.transition(
            name, SecondaryStatus.COMPLETED, "done", status=TrainingJobStatus.COMPLETED
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--metrics", type=int, default=2)
    parser.add_argument("--points", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="rl-bench-ui-"))
    try:
        return measure(root, args)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def measure(root: Path, args: argparse.Namespace) -> int:
    home = root / "rl_home"
    os.environ.update(
        {
            "AIRFLOW_HOME": str(root / "airflow"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__API_AUTH__JWT_SECRET": "bench-secret-" * 6,
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "viewer:viewer",
            "RL_PROVIDER_HOME": str(home),
        }
    )
    airflow = str(Path(sys.executable).parent / "airflow")
    subprocess.run([airflow, "db", "migrate"], check=True, capture_output=True)
    started = time.perf_counter()
    populate(home, args.jobs, args.metrics, args.points)
    print(f"{args.jobs} jobs written in {time.perf_counter() - started:.1f} s")

    from airflow.api_fastapi.app import create_app, get_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
    from airflow.models.connection import Connection
    from airflow.utils.session import create_session
    from fastapi.testclient import TestClient

    from rl_provider.backends.local import LocalBackend

    with create_session() as session:
        session.add(
            Connection(conn_id="rl_bench", conn_type="rl", extra=json.dumps({"home": str(home)}))
        )
    client = TestClient(create_app("core"))
    token = get_auth_manager().generate_jwt(SimpleAuthManagerUser(username="v", role="viewer"))
    headers = {"Authorization": f"Bearer {token}"}
    backend = LocalBackend(home)
    names = [f"bench-{i}" for i in range(args.jobs)]

    def page() -> None:
        response = client.get("/rl/jobs", params={"conn": "rl_bench"}, headers=headers)
        assert response.status_code == 200, response.text[:500]
        assert response.text.count("<tr data-status=") == args.jobs

    def api() -> None:
        response = client.get("/rl/api/jobs", params={"conn": "rl_bench"}, headers=headers)
        assert len(response.json()["jobs"]) == args.jobs

    def describe_all() -> None:
        for name in names:
            backend.describe_training_job(name)

    timings: dict[str, list[float]] = {"page": [], "api": [], "describe": []}
    page()  # warm-up: builds the plugin app and the backend
    for _ in range(args.rounds):
        for key, run in (("page", page), ("api", api), ("describe", describe_all)):
            start = time.perf_counter()
            run()
            timings[key].append(time.perf_counter() - start)
    median = {key: statistics.median(values) for key, values in timings.items()}
    print(
        f"jobs: {args.jobs}, metrics per job: {args.metrics} x {args.points} points, "
        f"rounds: {args.rounds} (medians)"
    )
    print(
        f"  GET /rl/jobs (HTML)        {median['page'] * 1000:8.1f} ms  "
        f"= {median['page'] / BUDGET_S:.2f} of the 1 s budget"
    )
    print(
        f"  GET /rl/api/jobs (JSON)    {median['api'] * 1000:8.1f} ms  "
        f"= {median['api'] / BUDGET_S:.2f} of the 1 s budget"
    )
    print(
        f"  describe every job         {median['describe'] * 1000:8.1f} ms  "
        f"(page / describe-all = {median['page'] / median['describe']:.2f})"
    )
    return 0 if median["page"] < BUDGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
