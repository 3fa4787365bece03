"""DAGs the deployment tests drive: one deferrable training task each, on the tiny entry point.

Copied into the deployment's DAGs folder with the entry point in ``deploy_src/`` beside it.
The jobs outlast the operator's defer grace (10 s) so that each task really defers.
"""

from __future__ import annotations

from pathlib import Path

import pendulum
from airflow.sdk import DAG

from rl_provider import RLEstimator
from rl_provider.operators.deploy import RLDeployOperator
from rl_provider.operators.model import RLCreateModelOperator
from rl_provider.operators.train import RLTrainOperator

SRC = str(Path(__file__).parent / "deploy_src")
SERVE = str(Path(__file__).parent / "deploy_serve")


def train_task(
    lines: int, interval: float, check_interval: float = 1, **kwargs: object
) -> RLTrainOperator:
    return RLTrainOperator(
        task_id="train",
        estimator=RLEstimator(
            entry_point="train.py",
            source_dir=SRC,
            toolkit="ray",
            toolkit_version="2.60.0",
            framework="pytorch",
            hyperparameters={"lines": lines, "interval": interval},
        ),
        check_interval=check_interval,
        **kwargs,
    )


START = pendulum.datetime(2026, 1, 1)

# Cleared while deferred: the new try must start a new job and succeed.
with DAG("rl_deploy_clear", schedule=None, start_date=START, catchup=False):
    train_task(lines=40, interval=0.5, deferrable=True)

# Cleared while running in the worker (not deferred): same outcome.
with DAG("rl_deploy_clear_sync", schedule=None, start_date=START, catchup=False):
    train_task(lines=40, interval=0.5, deferrable=False)

# The triggerer is restarted while this one is deferred: each log line once.
with DAG("rl_deploy_restart", schedule=None, start_date=START, catchup=False):
    train_task(lines=50, interval=0.5, deferrable=True)

# Marked failed while deferred: its job is stopped, nothing keeps running.
with DAG("rl_deploy_mark_failed", schedule=None, start_date=START, catchup=False):
    train_task(lines=1000, interval=0.5, deferrable=True)

# Marked failed while running in the worker (not deferred): the task ends at once, although
# its next poll is up to 10 s away (Airflow escalates to SIGKILL 5 s after its SIGTERM).
with DAG("rl_deploy_mark_failed_sync", schedule=None, start_date=START, catchup=False):
    train_task(lines=1000, interval=0.5, check_interval=10, deferrable=False)

# The deploy task is cleared while it waits (deferred) for a slow endpoint: the new try waits
# for that change and succeeds without a second endpoint config.
with DAG("rl_deploy_clear_deploy", schedule=None, start_date=START, catchup=False):
    model = RLCreateModelOperator(
        task_id="model",
        training_job_name="{{ ti.xcom_pull(task_ids='train', key='job_name') }}",
        entry_point="inference.py",
        source_dir=SERVE,
    )
    (
        train_task(lines=1, interval=0)
        >> model
        >> RLDeployOperator(
            task_id="deploy",
            model_name=model.output["model_name"],
            endpoint_name="rl-deploy-clear",
            instance_type="local",
            check_interval=1,
            deferrable=True,
        )
    )
