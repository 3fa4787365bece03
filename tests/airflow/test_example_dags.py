"""The example DAGs are tests too: they import, serialize, and ``rl_cartpole_retrain`` runs.

The full run trains PPO for one iteration with RLlib (real training, real evaluation, a real
endpoint serving the RLlib policy), twice: the second run deploys only if it is better.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from rl_provider.backends.local import LocalBackend

DAGS = Path(__file__).resolve().parents[2] / "dags"
DAG_ID = "rl_cartpole_retrain"
HEAVY = ("ray", "torch", "numpy", "gymnasium", "boto3", "botocore")


def test_example_dag_imports_without_errors_and_serializes(airflow_db, monkeypatch):
    from airflow.dag_processing.dagbag import DagBag
    from airflow.serialization.serialized_objects import DagSerialization

    monkeypatch.syspath_prepend(str(DAGS))  # Airflow puts its DAGs folder on sys.path
    bag = DagBag(dag_folder=str(DAGS / f"{DAG_ID}.py"))
    assert bag.import_errors == {}
    assert bag.dag_ids == [DAG_ID]
    dag = bag.get_dag(DAG_ID)
    encoded = DagSerialization.to_dict(dag)  # validates against Airflow's JSON schema
    json.dumps(encoded)
    restored = DagSerialization.from_dict(encoded)
    assert set(restored.task_ids) == set(dag.task_ids)
    assert restored.timetable.summary == "0 0 * * 0"  # @weekly
    # train -> evaluate -> gate -> model -> deploy -> smoke test -> summary
    downstream = {t.task_id: set(t.downstream_task_ids) for t in restored.tasks}
    assert downstream["train"] >= {"evaluate_new_policy", "create_model", "summary"}
    assert downstream["evaluate_new_policy"] >= {"should_deploy"}
    assert downstream["evaluate_current_policy"] >= {"should_deploy"}
    assert downstream["should_deploy"] == {"create_model"}
    assert downstream["create_model"] == {"deploy"}
    assert downstream["deploy"] == {"smoke_test"}
    assert downstream["smoke_test"] == {"summary"}
    assert restored.get_task("summary").trigger_rule == "none_failed"
    assert {p: dag.params[p] for p in ("threshold", "episodes", "endpoint_name")} == {
        "threshold": 475.0,
        "episodes": 20,
        "endpoint_name": "cartpole-ppo",
    }
    outlets = dag.get_task("train").outlets
    assert [o.uri for o in outlets] == ["rl_model/cartpole-ppo"]


def test_parsing_the_dag_imports_no_rl_stack():
    """Airflow parses DAG files constantly: Ray, torch, numpy, gymnasium and boto3 load in tasks only."""
    code = (
        f"import runpy, sys, json; sys.path.insert(0, {str(DAGS)!r}); "
        f"runpy.run_path({str(DAGS / (DAG_ID + '.py'))!r}); "
        "print(json.dumps(sorted(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = {name.split(".")[0] for name in json.loads(out.stdout.splitlines()[-1])}
    assert loaded.isdisjoint(HEAVY), sorted(loaded & set(HEAVY))


@pytest.fixture
def example_dag(dags_folder, monkeypatch):
    """The example DAG and its entry-point code, in the DAGs folder ``dag.test()`` syncs."""
    shutil.copytree(DAGS / "cartpole", dags_folder / "cartpole", dirs_exist_ok=True)
    # Airflow puts its DAGs folder on sys.path when it starts; this one is set after that.
    monkeypatch.syspath_prepend(str(dags_folder))
    return Path(shutil.copy(DAGS / f"{DAG_ID}.py", dags_folder / f"{DAG_ID}.py"))


@pytest.fixture
def backend(rl_home):
    backend = LocalBackend(rl_home)
    yield backend
    for summary in backend.list_endpoints()["Endpoints"]:
        backend.delete_endpoint(summary["EndpointName"])  # no model server left behind


def answer(backend: LocalBackend, name: str, body: object) -> object:
    response = backend.invoke_endpoint(
        EndpointName=name, Body=json.dumps(body).encode(), ContentType="application/json"
    )
    return json.loads(response["Body"].read())


@pytest.mark.slow
def test_cartpole_retrain_deploys_then_promotes_only_a_better_policy(example_dag, backend, run_dag):
    endpoint = "cartpole-test"
    conf = {"iterations": 1, "threshold": 0, "endpoint_name": endpoint, "episodes": 3}

    first = run_dag(example_dag, DAG_ID, run_conf=conf)
    assert first.state == "success", (first.task_states, first.log)
    assert set(first.task_states.values()) == {"success"}, first.task_states
    summary = first.xcom("summary")
    assert summary["deployed"] is True
    assert summary["current_evaluation"] is None
    assert "nothing served yet" in summary["reason"]
    job = summary["training_job"]
    assert summary["evaluation"]["episodes"] == 3
    assert summary["final_metrics"]["episode_return_mean"] > 0
    described = backend.describe_endpoint(endpoint)
    assert summary["endpoint_url"] == described.extra["Url"]
    assert summary["endpoint_config"] == described.endpoint_config_name
    model = backend.describe_endpoint_config(described.endpoint_config_name)
    assert model.production_variants[0].model_name == job
    # The smoke test ran a greedy episode through the endpoint; it answers us too.
    assert summary["smoke_test_return"] >= 8  # CartPole's shortest episodes last 8+ steps
    assert answer(backend, endpoint, [0.0, 0.0, 0.05, 0.1])["action"] in (0, 1)
    actions = answer(backend, endpoint, [[0.0, 0.0, 0.05, 0.1], [0.0, 0.0, -0.05, -0.1]])
    assert len(actions["actions"]) == 2

    # make demo's last step reads that run back from Airflow's database and the live endpoint.
    printed = subprocess.run(
        [sys.executable, str(DAGS.parent / "tools" / "demo_summary.py")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert printed.returncode == 0, printed.stderr
    assert f"training job       {job}" in printed.stdout
    assert "deployed           yes: " in printed.stdout
    assert f"{endpoint} InService at {described.extra['Url']}" in printed.stdout
    assert f"endpoints delete {endpoint}" in printed.stdout
    # ... and ends with the run's job page in the Airflow UI and how to start the UI.
    assert f"/rl/jobs/{job}?conn=rl_default" in printed.stdout.split("Airflow UI:")[-1]
    assert "airflow standalone" in printed.stdout

    # Another seed: a different policy, deployed only if its mean beats the served one's.
    second = run_dag(example_dag, DAG_ID, run_conf={**conf, "seed": 1})
    assert second.state == "success", (second.task_states, second.log)
    again = second.xcom("summary")
    assert again["training_job"] != job
    assert again["current_evaluation"] == summary["evaluation"]["mean"]
    better = again["evaluation"]["mean"] > again["current_evaluation"]
    assert again["deployed"] is better, again
    served = backend.describe_endpoint_config(
        backend.describe_endpoint(endpoint).endpoint_config_name
    )
    assert served.production_variants[0].model_name == (again["training_job"] if better else job)
    expected = "success" if better else "skipped"
    assert {second.task_states[t] for t in ("create_model", "deploy", "smoke_test")} == {expected}
    assert answer(backend, endpoint, [0.0, 0.0, 0.05, 0.1])["action"] in (0, 1)
