"""Extra links as the Airflow UI gets them: the API route the Details tab calls.

The UI shows an "Extra Links" heading whenever the route returns any name, and a button only
for an http(s)/mailto URL. A local-backend task must therefore declare no link at all (no
``file://`` path, no ``127.0.0.1`` URL); a SageMaker task keeps its console pages
(tests/backends/sagemaker/test_airflow.py checks those through the same route).
"""

from __future__ import annotations

from typing import Any

import pytest

from rl_provider.links import (
    RLEndpointLink,
    RLModelLink,
    RLTrainingJobLink,
    RLTrainingLogLink,
)
from tests.airflow.dagkit import train_dag, write_entry_point


def ui_extra_links(dag_id: str, run_id: str, task_id: str, monkeypatch: Any) -> dict[str, Any]:
    """GET /api/v2/dags/{dag}/dagRuns/{run}/taskInstances/{task}/links on Airflow's own app."""
    from airflow.api_fastapi.app import create_app
    from fastapi.testclient import TestClient

    # The simple auth manager's "everyone is admin" mode: the route's access check runs, with
    # a token its middleware issues.
    monkeypatch.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS", "True")
    with TestClient(create_app("core")) as client:
        response = client.get(
            f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/links"
        )
    assert response.status_code == 200, response.text
    payload: dict[str, Any] = response.json()
    return payload


@pytest.mark.slow
def test_a_local_task_declares_no_link_so_the_ui_shows_no_heading(
    tmp_path, rl_home, write_dag, run_dag, monkeypatch
):
    dag_id = "links_local"
    path = write_dag(train_dag(dag_id, write_entry_point(tmp_path)), f"{dag_id}.py")
    result = run_dag(path, dag_id)
    assert result.task_states == {"train": "success"}, result.log

    assert ui_extra_links(dag_id, result.run_id, "train", monkeypatch) == {
        "extra_links": {},
        "total_entries": 0,
    }
    # Nothing recorded for links that are not offered.
    assert not {k for k in result.xcom_keys("train") if "link" in k.lower()}


def test_sagemaker_links_are_https_console_pages():
    values = {"backend": "sagemaker", "region": "eu-west-1", "job_name": "ppo-1"}
    assert RLTrainingJobLink().format(values) == (
        "https://console.aws.amazon.com/sagemaker/home?region=eu-west-1#/jobs/ppo-1"
    )
    assert (
        RLTrainingLogLink()
        .format(values)
        .startswith(
            "https://console.aws.amazon.com/cloudwatch/home?region=eu-west-1#logsV2:log-groups/"
        )
    )
    assert RLModelLink().format({**values, "model_name": "m"}).endswith("#/models/m")
    assert RLEndpointLink().format({**values, "endpoint_name": "e"}).endswith("#/endpoints/e")
    cn = {**values, "region": "cn-north-1"}
    assert RLTrainingJobLink().format(cn).startswith("https://console.amazonaws.cn/")
    for link in (RLTrainingJobLink, RLTrainingLogLink, RLModelLink, RLEndpointLink):
        assert link.offered_on("sagemaker")
        assert not link.offered_on("local")
        assert not link.offered_on(None)  # a connection that could not be read


def test_operators_declare_links_from_their_connection(monkeypatch):
    """What Airflow serializes with the task: the links of the connection's backend."""
    import json

    from rl_provider import RLEstimator
    from rl_provider.operators.deploy import RLDeployOperator
    from rl_provider.operators.train import RLTrainOperator

    monkeypatch.setenv(
        "AIRFLOW_CONN_RL_LINKS_SM",
        json.dumps({"conn_type": "rl", "extra": {"backend": "sagemaker"}}),
    )
    monkeypatch.setenv("AIRFLOW_CONN_RL_LINKS_LOCAL", json.dumps({"conn_type": "rl", "extra": {}}))
    estimator = RLEstimator(
        entry_point="train.py",
        toolkit="ray",
        toolkit_version="2.60.0",
        framework="pytorch",
        instance_type="local",
    )

    def names(operator: Any) -> list[str]:
        return sorted(link.name for link in operator.operator_extra_links)

    train = dict(task_id="t", estimator=estimator)
    assert names(RLTrainOperator(**train, conn_id="rl_links_sm")) == [
        "RL Training Job",
        "RL Training Logs",
    ]
    assert names(RLTrainOperator(**train, conn_id="rl_links_local")) == []
    assert names(RLTrainOperator(**train)) == []  # no rl_default: the local backend
    assert names(RLTrainOperator(**train, conn_id="rl_links_typo")) == []  # unreadable: none
    deploy = dict(task_id="d", model_name="m", endpoint_name="e", instance_type="local")
    assert names(RLDeployOperator(**deploy, conn_id="rl_links_sm")) == ["RL Endpoint"]
    assert names(RLDeployOperator(**deploy, conn_id="rl_links_local")) == []
