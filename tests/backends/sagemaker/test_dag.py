"""``dags/rl_sagemaker_retrain.py``: it parses here; on real AWS (opt-in) the whole DAG runs."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.airflow.conftest import airflow_db, load_dag, run_dag  # noqa: F401

DAGS = Path(__file__).resolve().parents[3] / "dags"
DAG_FILE = DAGS / "rl_sagemaker_retrain.py"
ROLE_ENV = "RL_PROVIDER_SAGEMAKER_ROLE"
IMAGE_ENV = "RL_PROVIDER_SAGEMAKER_IMAGE"


def test_the_dag_parses_with_the_pipeline_shape(monkeypatch, airflow_db):  # noqa: F811
    monkeypatch.syspath_prepend(str(DAGS))  # Airflow puts the DAGs folder on sys.path
    dag = load_dag(DAG_FILE, "rl_sagemaker_retrain")
    upstream = {task.task_id: set(task.upstream_task_ids) for task in dag.tasks}
    assert upstream == {
        "preflight": set(),
        "train": {"preflight"},
        "evaluate_new_policy": {"train"},
        "evaluate_current_policy": set(),
        "should_deploy": {"evaluate_new_policy", "evaluate_current_policy"},
        "create_model": {"train", "should_deploy"},
        "deploy": {"create_model"},
        "smoke_test": {"deploy"},
    }
    train = dag.get_task("train")
    assert train.conn_id == "rl_sagemaker"
    assert {"instance_type", "instance_count", "image_uri", "role"} <= set(
        train.estimator.template_fields
    )
    assert set(dag.params) >= {"role", "bucket", "region", "train_instance_type"}


def _aws_ready() -> bool:
    if not (os.environ.get(ROLE_ENV) and os.environ.get(IMAGE_ENV)):
        return False
    import boto3

    return boto3.session.Session().get_credentials() is not None


@pytest.mark.integration
@pytest.mark.skipif(
    not _aws_ready(), reason=f"needs AWS credentials, {ROLE_ENV} and {IMAGE_ENV} (real AWS)"
)
def test_the_whole_dag_on_real_aws(monkeypatch, run_dag):  # noqa: F811
    import boto3

    region = boto3.session.Session().region_name or "us-west-2"
    monkeypatch.syspath_prepend(str(DAGS))
    monkeypatch.setenv(
        "AIRFLOW_CONN_RL_SAGEMAKER",
        json.dumps({"conn_type": "rl", "extra": {"backend": "sagemaker", "region_name": region}}),
    )
    result = run_dag(
        DAG_FILE,
        "rl_sagemaker_retrain",
        run_conf={
            "role": os.environ[ROLE_ENV],
            "image_uri": os.environ[IMAGE_ENV],
            "region": region,
            "iterations": 2,
            "threshold": 0.0,
            "episodes": 2,
            "endpoint_name": "rl-provider-integration",
        },
    )
    assert result.state == "success", result.task_states
    assert result.xcom("smoke_test")["actions"]
