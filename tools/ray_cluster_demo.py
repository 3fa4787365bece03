"""Start a two-node Ray cluster on this machine and run ``dags/rl_ray_retrain.py`` against it.

    .venv/bin/python tools/ray_cluster_demo.py [--iterations 10] [--threshold 0] [--keep-endpoint]

The cluster (rl_provider.backends.ray.devcluster): a head on 127.0.0.2 and a worker on
127.0.0.3, 2 CPUs each, the job server on 127.0.0.1 (free port), token auth on with a fresh
token; it is stopped by killing its process groups when the DAG run ends. Airflow's state lives
in ``.airflow-ray/`` (git-ignored), the artifacts in ``.airflow-ray/storage`` (a ``file://``
location both nodes share, being on this machine). The endpoint the DAG deploys (a model server
on this machine) is deleted at the end too, unless ``--keep-endpoint``. On KubeRay, create the
``rl_ray`` connection instead (README, docs/RAY.md) and run the DAG as usual.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from rl_provider.backends.local import LocalBackend
from rl_provider.backends.ray.devcluster import start_cluster
from rl_provider.exceptions import EndpointNotFoundError

ROOT = Path(__file__).resolve().parents[1]
ENDPOINT = "cartpole-ppo"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=10, help="PPO iterations at most")
    parser.add_argument("--threshold", type=float, default=0.0, help="greedy mean to deploy")
    parser.add_argument(
        "--keep-endpoint",
        action="store_true",
        help=f"leave endpoint {ENDPOINT} serving on this machine after the run (delete it "
        f"later: rl-provider --home .airflow-ray/rl_provider endpoints delete {ENDPOINT})",
    )
    return parser.parse_args(argv)


def main() -> int:
    args = parse_args()
    home = ROOT / ".airflow-ray"
    home.mkdir(exist_ok=True)
    started = time.monotonic()
    cluster = start_cluster(nodes=2, cpus_per_node=2)
    print(f"Ray cluster up in {time.monotonic() - started:.1f}s: {cluster.dashboard_url}")
    try:
        env = {
            **os.environ,
            "AIRFLOW_HOME": str(home),
            "RL_PROVIDER_HOME": str(home / "rl_provider"),
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]]),
            "AIRFLOW_CONN_RL_RAY": json.dumps(
                {
                    "conn_type": "rl",
                    "password": cluster.token,
                    "extra": {
                        "backend": "ray",
                        "address": cluster.dashboard_url,
                        "storage": (home / "storage").as_uri(),
                        "home": str(home / "rl_provider"),
                    },
                }
            ),
        }
        airflow = str(Path(sys.executable).with_name("airflow"))
        subprocess.run([airflow, "db", "migrate"], env=env, check=True, capture_output=True)
        conf = {
            "iterations": args.iterations,
            "threshold": args.threshold,
            "episodes": 5,
            "endpoint_name": ENDPOINT,
        }
        print(f"Running rl_ray_retrain with {conf} (dashboard: {cluster.dashboard_url})")
        run = subprocess.run(
            [airflow, "dags", "test", "rl_ray_retrain", "--conf", json.dumps(conf)], env=env
        )
        return run.returncode
    finally:
        cluster.stop()
        print("Ray cluster stopped.")
        if args.keep_endpoint:
            listing = f"rl-provider --home {home / 'rl_provider'} endpoints list"
            print(f"Endpoint {ENDPOINT} kept ({listing}).")
        else:
            # The model server is a detached process; a demo leaves nothing running.
            with contextlib.suppress(EndpointNotFoundError):
                LocalBackend(home / "rl_provider").delete_endpoint(ENDPOINT)
                print(f"Endpoint {ENDPOINT} deleted.")


if __name__ == "__main__":
    sys.exit(main())
