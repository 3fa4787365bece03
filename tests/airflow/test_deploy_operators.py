"""train -> sensor -> model -> deploy under ``dag.test()``, waiting and deferred, for real.

The training job is a tiny entry point (no RLlib); the model serves a user ``inference.py``
handler from a real model server on 127.0.0.1. Every endpoint is deleted after each test.
"""

from __future__ import annotations

import json
import textwrap
import urllib.request

import pytest

from rl_provider.backends.local import LocalBackend
from tests.airflow.dagkit import train_dag, write_entry_point
from tests.airflow.test_endpoint_trigger import make_model

MODES = [pytest.param(False, id="waiting"), pytest.param(True, id="deferrable")]
JOB = "{{ ti.xcom_pull(task_ids='train', key='job_name') }}"

HANDLERS = {
    # The policy reads the model artifact the training job wrote, and answers per observation.
    "inference.py": """
        import os

        def model_fn(model_dir):
            with open(os.path.join(model_dir, "policy.txt")) as f:
                return f.read()

        def predict_fn(data, model):
            return {"action": int(data[2] + data[3] > 0), "model": model, "pid": os.getpid()}
    """,
    # The same policy, slower to load: an update to it stays Updating for a few seconds.
    "slow_inference.py": """
        import time

        from inference import model_fn as _load, predict_fn

        def model_fn(model_dir):
            time.sleep(3)
            return _load(model_dir)
    """,
    "other.py": """
        def model_fn(model_dir):
            return "other"
    """,
    "broken.py": """
        def model_fn(model_dir):
            raise RuntimeError("the weights are corrupt")
    """,
}


@pytest.fixture
def serve_src(tmp_path):
    src = tmp_path / "serve"
    src.mkdir()
    for name, text in HANDLERS.items():
        (src / name).write_text(textwrap.dedent(text))
    return src


@pytest.fixture
def backend(rl_home):
    backend = LocalBackend(rl_home)
    yield backend
    for summary in backend.list_endpoints()["Endpoints"]:
        backend.delete_endpoint(summary["EndpointName"])  # no model server left behind


def deploy_dag(dag_id: str, src, serve_src, deferrable: bool, body: str) -> str:
    """The tiny training job (not waited for) + a sensor, then ``body``'s tasks."""
    header = f"""
        from airflow.sdk import task

        from rl_provider.operators.deploy import RLDeployOperator
        from rl_provider.operators.model import RLCreateModelOperator
        from rl_provider.sensors.endpoint import RLEndpointSensor

        D = {deferrable!r}
        SERVE = {str(serve_src)!r}
        JOB = {JOB!r}
        wait = RLTrainingJobSensor(task_id="wait", job_name=JOB, poke_interval=0.2, deferrable=D)
        train >> wait
    """
    return train_dag(
        dag_id,
        src,
        wait_for_completion=False,
        downstream=textwrap.dedent(header) + textwrap.dedent(body),
    )


@pytest.mark.slow
@pytest.mark.parametrize("deferrable", MODES)
def test_train_sensor_model_deploy_update_end_to_end(
    tmp_path, backend, serve_src, write_dag, run_dag, deferrable
):
    dag_id = f"deploy_ok_{deferrable}"
    endpoint = f"ep-{'d' if deferrable else 'w'}"
    body = f"""
        model_a = RLCreateModelOperator(
            task_id="model_a", training_job_name=JOB, model_name="{endpoint}-a",
            entry_point="inference.py", source_dir=SERVE,
        )
        model_a_again = RLCreateModelOperator(
            task_id="model_a_again", training_job_name=JOB, model_name="{endpoint}-a",
            entry_point="inference.py", source_dir=SERVE,
        )
        deploy_a = RLDeployOperator(
            task_id="deploy_a", model_name="{endpoint}-a", endpoint_name="{endpoint}",
            instance_type="local", check_interval=0.2, deferrable=D,
        )
        model_b = RLCreateModelOperator(
            task_id="model_b", training_job_name=JOB, entry_point="slow_inference.py",
            source_dir=SERVE,
        )
        deploy_b = RLDeployOperator(
            task_id="deploy_b", model_name=model_b.output["model_name"],
            endpoint_name="{endpoint}", instance_type="local", wait_for_completion=False,
        )
        # Waiting mode reschedules between pokes (the worker slot is freed meanwhile).
        ready = RLEndpointSensor(
            task_id="ready", endpoint_name="{endpoint}", poke_interval=0.2, deferrable=D,
            mode="poke" if D else "reschedule",
        )
        deploy_b_again = RLDeployOperator(
            task_id="deploy_b_again", model_name=model_b.output["model_name"],
            endpoint_name="{endpoint}", instance_type="local", check_interval=0.2,
            deferrable=D,
        )

        @task
        def invoke():
            from rl_provider.hooks.rl import RLHook
            from rl_provider.predictor import RLPredictor

            return RLPredictor("{endpoint}", RLHook().backend).predict([0.0, 0.0, 0.1, 0.2])

        wait >> model_a >> model_a_again >> deploy_a >> model_b >> deploy_b >> ready
        ready >> deploy_b_again >> invoke()
    """
    path = write_dag(
        deploy_dag(dag_id, write_entry_point(tmp_path), serve_src, deferrable, body), f"{dag_id}.py"
    )
    result = run_dag(path, dag_id)
    assert set(result.task_states.values()) == {"success"}, (result.task_states, result.log)
    # Airflow reads every extra link when a task defers or ends: none may be missing (an
    # "XCom not found" error line in the task log).
    assert "XCom not found" not in result.log
    job = result.xcom("train", "job_name")

    # Same name, same definition: the model is reused, not recreated.
    model_a = result.xcom("model_a")["Model"]
    assert result.xcom("model_a_again")["Model"] == model_a
    assert "Reused the existing model" in result.log
    assert model_a["PrimaryContainer"]["Environment"]["SAGEMAKER_PROGRAM"] == "inference.py"
    # Ray policy + handler: the code is repacked into <output>/<model name>/model.tar.gz (issue 12).
    assert model_a["PrimaryContainer"]["ModelDataUrl"].endswith(f"{endpoint}-a/model.tar.gz")
    environment = model_a["PrimaryContainer"]["Environment"]
    assert environment["SAGEMAKER_SUBMIT_DIRECTORY"] == "/opt/ml/model/code"
    # The default model name is the training job's.
    assert result.xcom("model_b", "model_name") == job

    created = result.xcom("deploy_a")
    assert json.loads(json.dumps(created)) == created  # XCom values are JSON
    assert created["Endpoint"]["EndpointStatus"] == "InService"
    assert (
        created["Endpoint"]["EndpointConfigName"] == created["EndpointConfig"]["EndpointConfigName"]
    )
    assert created["EndpointConfig"]["ProductionVariants"][0]["ModelName"] == f"{endpoint}-a"

    # deploy_b returned at once (Updating); the sensor saw the update through.
    updating = result.xcom("deploy_b")
    assert updating["Endpoint"]["EndpointStatus"] == "Updating"
    assert updating["EndpointConfig"]["ProductionVariants"][0]["ModelName"] == job
    assert f"Endpoint {endpoint}: Updating" in result.log  # the sensor (or trigger) waited
    if not deferrable:  # between pokes the sensor gave its worker slot back
        assert "marking task as UP_FOR_RESCHEDULE" in result.log
    served = result.xcom("ready")
    assert served["EndpointStatus"] == "InService"
    assert served["EndpointConfigName"] == updating["EndpointConfig"]["EndpointConfigName"]
    assert served["Url"] != created["Endpoint"]["Url"]  # blue/green: a new server took over

    # Deploying what is already served changes nothing.
    again = result.xcom("deploy_b_again")
    assert again["EndpointConfig"] == updating["EndpointConfig"]
    assert f"Endpoint {endpoint} already serves model {job}" in result.log

    # No console links on the local backend (a 127.0.0.1 URL is no page for the user's
    # browser): the model's and endpoint's pages in the Airflow UI.
    assert result.xcom("model_a", "_link_RLModelLink") is None
    assert result.xcom("deploy_b_again", "_link_RLEndpointLink") is None
    model_page = result.xcom("model_a", "_link_RLModelPageLink")
    assert model_page == f"/rl/models/{endpoint}-a?conn=rl_default"
    endpoint_page = result.xcom("deploy_b_again", "_link_RLEndpointPageLink")
    assert endpoint_page == f"/rl/endpoints/{endpoint}?conn=rl_default"
    with urllib.request.urlopen(f"{served['Url']}/ping", timeout=30) as ping:
        assert ping.status == 200

    answer = result.xcom("invoke")
    assert answer["action"] == 1
    assert answer["model"] == "ok"  # what the entry point wrote into SM_MODEL_DIR
    assert answer["pid"] == backend.describe_endpoint(endpoint).extra["ServerPid"]

    trigger_lines = [line for line in result.log.splitlines() if "RLEndpointTrigger" in line]
    assert bool(trigger_lines) is deferrable


@pytest.mark.slow
@pytest.mark.parametrize("deferrable", MODES)
def test_conflicting_model_and_failed_endpoints_fail_their_tasks(
    tmp_path, backend, serve_src, write_dag, run_dag, deferrable
):
    dag_id = f"deploy_fail_{deferrable}"
    tag = "d" if deferrable else "w"
    body = f"""
        model = RLCreateModelOperator(
            task_id="model", training_job_name=JOB, model_name="m-{tag}",
            entry_point="inference.py", source_dir=SERVE,
        )
        conflict = RLCreateModelOperator(
            task_id="conflict", training_job_name=JOB, model_name="m-{tag}",
            entry_point="other.py", source_dir=SERVE,
        )
        broken = RLCreateModelOperator(
            task_id="broken", training_job_name=JOB, model_name="broken-{tag}",
            entry_point="broken.py", source_dir=SERVE,
        )
        create_broken = RLDeployOperator(
            task_id="create_broken", model_name="broken-{tag}", endpoint_name="dead-{tag}",
            instance_type="local", check_interval=0.2, deferrable=D,
        )
        deploy_ok = RLDeployOperator(
            task_id="deploy_ok", model_name="m-{tag}", endpoint_name="live-{tag}",
            instance_type="local", check_interval=0.2, deferrable=D,
        )
        update_broken = RLDeployOperator(
            task_id="update_broken", model_name="broken-{tag}", endpoint_name="live-{tag}",
            instance_type="local", check_interval=0.2, deferrable=D,
        )
        bad_name = RLDeployOperator(
            task_id="bad_name", model_name="m-{tag}", endpoint_name="not_valid!",
            instance_type="local", retries=1, retry_delay=datetime.timedelta(0),
        )
        watch_dead = RLEndpointSensor(
            task_id="watch_dead", endpoint_name="dead-{tag}", poke_interval=0.2, deferrable=D,
            trigger_rule="all_done",
        )
        wait >> model >> [conflict, deploy_ok, bad_name]
        wait >> broken >> create_broken >> watch_dead
        [deploy_ok, broken] >> update_broken
    """
    path = write_dag(
        deploy_dag(dag_id, write_entry_point(tmp_path), serve_src, deferrable, body), f"{dag_id}.py"
    )
    result = run_dag(path, dag_id)
    assert result.task_states == {
        "train": "success",
        "wait": "success",
        "model": "success",
        "conflict": "failed",
        "broken": "success",
        "create_broken": "failed",
        "watch_dead": "failed",
        "deploy_ok": "success",
        "update_broken": "failed",
        "bad_name": "failed",
    }, result.log
    assert "Model 'm-" + tag + "' exists with a different definition" in result.log

    # A Failed endpoint fails its task with the FailureReason (the handler's error).
    assert f"on endpoint dead-{tag} ended failed (endpoint Failed)" in result.log
    assert f"Endpoint dead-{tag} ended failed (endpoint Failed): " in result.log  # the sensor
    assert backend.describe_endpoint(f"dead-{tag}").endpoint_status.value == "Failed"
    assert "the weights are corrupt" in backend.describe_endpoint(f"dead-{tag}").failure_reason

    # A failed update fails its task; the endpoint keeps serving the previous model.
    assert f"on endpoint live-{tag} ended failed (endpoint InService)" in result.log
    live = backend.describe_endpoint(f"live-{tag}")
    ok_config = result.xcom("deploy_ok")["EndpointConfig"]["EndpointConfigName"]
    assert live.endpoint_config_name == ok_config
    answer = backend.invoke_endpoint(
        EndpointName=f"live-{tag}", Body=b"[0, 0, -0.1, -0.2]", ContentType="application/json"
    )
    assert json.loads(answer["Body"].read())["action"] == 0

    # Bad input is refused before anything is created, and is not retried.
    assert "Invalid endpoint name 'not_valid!'" in result.log
    assert result.try_numbers["bad_name"] == 1  # AirflowFailException: the retry is not used
    assert sorted(e["EndpointName"] for e in backend.list_endpoints()["Endpoints"]) == [
        f"dead-{tag}",
        f"live-{tag}",
    ]


SLOW_LOADING = """
import time

def model_fn(model_dir):
    time.sleep(8)  # the endpoint stays Creating meanwhile
    return {"name": "slow"}

def predict_fn(data, model):
    return model
"""
FAST = """
def model_fn(model_dir):
    return {"name": "fast"}

def predict_fn(data, model):
    return model
"""


@pytest.mark.slow
def test_deploy_waits_for_a_change_in_flight_then_updates(tmp_path, backend, write_dag, run_dag):
    make_model(backend, tmp_path, "slow", SLOW_LOADING)
    make_model(backend, tmp_path, "fast", FAST)
    backend.create_endpoint_config(
        EndpointConfigName="busy-slow",
        ProductionVariants=[{"ModelName": "slow", "InstanceType": "local"}],
    )
    source = f"""
        import pendulum
        from airflow.sdk import DAG, task

        from rl_provider.backends.local import LocalBackend
        from rl_provider.operators.deploy import RLDeployOperator

        with DAG("deploy_busy", schedule=None, start_date=pendulum.datetime(2026, 1, 1)):

            @task
            def start_creating():
                LocalBackend({str(backend.home)!r}).create_endpoint(
                    EndpointName="busy", EndpointConfigName="busy-slow"
                )

            start_creating() >> RLDeployOperator(
                task_id="deploy", model_name="fast", endpoint_name="busy",
                instance_type="local", check_interval=0.2,
            )
    """
    result = run_dag(write_dag(source, "deploy_busy.py"), "deploy_busy")
    assert result.task_states == {"start_creating": "success", "deploy": "success"}, result.log
    assert "Endpoint busy is Creating: waiting for that change to finish" in result.log
    assert "Updating endpoint busy (blue/green) from busy-slow" in result.log
    deployed = result.xcom("deploy")
    assert deployed["EndpointConfig"]["ProductionVariants"][0]["ModelName"] == "fast"
    answer = backend.invoke_endpoint(
        EndpointName="busy", Body=b"[]", ContentType="application/json"
    )
    assert json.loads(answer["Body"].read()) == {"name": "fast"}
