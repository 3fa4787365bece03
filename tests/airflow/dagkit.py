"""Tiny entry points and DAG sources shared by the Airflow tests (seconds per job, no RLlib)."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

# Prints the hyperparameter it got, --lines metric lines (Ray 2.x default metric regex) every
# --interval seconds, then writes a model file. --sleep keeps it running; --fail makes it exit 1
# with that reason on stderr; --fail_unless_exists fails unless that file exists (and creates it,
# so the next job passes).
ENTRY_POINT = """\
import argparse, os, sys, time

parser = argparse.ArgumentParser()
parser.add_argument("--day", default="none")
parser.add_argument("--lines", type=int, default=3)
parser.add_argument("--interval", type=float, default=0.0)
parser.add_argument("--sleep", type=float, default=0.0)
parser.add_argument("--fail", default="")
parser.add_argument("--fail_unless_exists", default="")
args, _ = parser.parse_known_args()
print(f"day={args.day}", flush=True)
for i in range(args.lines):
    print(f"line {i}: episode_reward_mean: {10.0 * (i + 1)}", flush=True)
    time.sleep(args.interval)
if args.fail:
    sys.exit(args.fail)
if args.fail_unless_exists and not os.path.exists(args.fail_unless_exists):
    open(args.fail_unless_exists, "w").close()
    sys.exit("first attempt fails on purpose")
time.sleep(args.sleep)
with open(os.path.join(os.environ["SM_MODEL_DIR"], "policy.txt"), "w") as f:
    f.write("ok")
print("done", flush=True)
"""


def write_entry_point(directory: Path) -> Path:
    src = directory / "src"
    src.mkdir(parents=True, exist_ok=True)
    (src / "train.py").write_text(ENTRY_POINT)
    return src


def estimator_source(src: Path, hyperparameters: dict[str, Any], **kwargs: Any) -> str:
    args = "".join(f", {key}={value!r}" for key, value in kwargs.items())
    return (
        f"RLEstimator(entry_point='train.py', source_dir={str(src)!r}, toolkit='ray', "
        f"toolkit_version='2.60.0', framework='pytorch', "
        f"hyperparameters={hyperparameters!r}{args})"
    )


def train_dag(
    dag_id: str,
    src: Path,
    *,
    hyperparameters: dict[str, Any] | None = None,
    estimator_kwargs: dict[str, Any] | None = None,
    downstream: str = "",
    **operator_kwargs: Any,
) -> str:
    """A DAG with one ``RLTrainOperator`` task ``train`` (+ ``downstream`` source lines)."""
    kwargs = {"check_interval": 0.2, **operator_kwargs}
    args = "".join(f"        {key}={value!r},\n" for key, value in kwargs.items())
    estimator = estimator_source(src, hyperparameters or {}, **(estimator_kwargs or {}))
    return (
        textwrap.dedent(
            f"""\
            import datetime

            import pendulum
            from airflow.sdk import DAG

            from rl_provider import RLEstimator
            from rl_provider.operators.train import RLTrainOperator, model_asset
            from rl_provider.sensors.training_job import RLTrainingJobSensor

            with DAG({dag_id!r}, schedule=None, start_date=pendulum.datetime(2026, 1, 1)):
                train = RLTrainOperator(
                    task_id="train",
                    estimator={estimator},
            """
        )
        + args
        + "    )\n"
        + textwrap.indent(textwrap.dedent(downstream), "    ")
    )


def start_job(backend: Any, src: Path, name: str, **hyperparameters: Any) -> str:
    """Start ``src/train.py`` as training job ``name`` on ``backend`` (not waiting for it)."""
    from rl_provider import RLEstimator

    RLEstimator(
        entry_point="train.py",
        source_dir=str(src),
        toolkit="ray",
        toolkit_version="2.60.0",
        framework="pytorch",
        hyperparameters=hyperparameters,
        backend=backend,
    ).fit(job_name=name, wait=False)
    return name
