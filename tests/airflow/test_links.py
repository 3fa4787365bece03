"""Extra links as the Airflow UI gets them: the API route the Details tab calls.

The UI shows an "Extra Links" heading whenever the route returns any name, and a button only
for a URL that is http(s)/mailto or resolves to its own origin. A local-backend task declares
only the links to our own pages in the Airflow UI (``/rl/...``: no ``file://`` path, no
``127.0.0.1`` URL); a SageMaker task has those and its console pages
(tests/backends/sagemaker/test_airflow.py checks those through the same route).
"""

from __future__ import annotations

from typing import Any

import pytest

from rl_provider.links import (
    RLEndpointLink,
    RLEndpointPageLink,
    RLModelLink,
    RLModelPageLink,
    RLTrainingJobLink,
    RLTrainingJobPageLink,
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
def test_a_local_task_links_only_its_page_in_the_airflow_ui(
    tmp_path, rl_home, write_dag, run_dag, monkeypatch
):
    dag_id = "links_local"
    path = write_dag(train_dag(dag_id, write_entry_point(tmp_path)), f"{dag_id}.py")
    result = run_dag(path, dag_id)
    assert result.task_states == {"train": "success"}, result.log
    job = result.xcom("train", "job_name")

    # No [api] base_url: a root-relative URL, which the UI renders as a same-origin button.
    assert ui_extra_links(dag_id, result.run_id, "train", monkeypatch) == {
        "extra_links": {"RL Training Job Page": f"/rl/jobs/{job}?conn=rl_default"},
        "total_entries": 1,
    }
    # Nothing recorded for the console links, which are not offered on this backend.
    assert {k for k in result.xcom_keys("train") if "link" in k.lower()} == {
        "rl_training_job_page_link",
        "_link_RLTrainingJobPageLink",
    }


def test_page_links_use_the_api_base_url_when_set(monkeypatch):
    values = {"backend": "local", "job_name": "ppo-1", "conn_id": "rl_team a"}
    assert RLTrainingJobPageLink().format(values) == "/rl/jobs/ppo-1?conn=rl_team+a"
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "https://airflow.example.com/prefix/")
    assert RLTrainingJobPageLink().format(values) == (
        "https://airflow.example.com/prefix/rl/jobs/ppo-1?conn=rl_team+a"
    )
    assert RLModelPageLink().format({"model_name": "m"}).endswith("/rl/models/m?conn=rl_default")
    assert (
        RLEndpointPageLink()
        .format({"endpoint_name": "e"})
        .endswith("/rl/endpoints/e?conn=rl_default")
    )
    assert RLEndpointPageLink().format({}) == ""  # nothing recorded: no button
    for link in (RLTrainingJobPageLink, RLModelPageLink, RLEndpointPageLink):
        assert link.offered_on("local")
        assert link.offered_on("sagemaker")
        assert not link.offered_on(None)  # a connection that could not be read


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
        "RL Training Job Page",
        "RL Training Logs",
    ]
    assert names(RLTrainOperator(**train, conn_id="rl_links_local")) == ["RL Training Job Page"]
    assert names(RLTrainOperator(**train)) == ["RL Training Job Page"]  # no rl_default: local
    assert names(RLTrainOperator(**train, conn_id="rl_links_typo")) == []  # unreadable: none
    deploy = dict(task_id="d", model_name="m", endpoint_name="e", instance_type="local")
    assert names(RLDeployOperator(**deploy, conn_id="rl_links_sm")) == [
        "RL Endpoint",
        "RL Endpoint Page",
    ]
    assert names(RLDeployOperator(**deploy, conn_id="rl_links_local")) == ["RL Endpoint Page"]
