"""The operators on the SageMaker backend under ``dag.test()``, AWS being the moto server.

An ``rl`` connection with ``backend: sagemaker`` points (through ``aws_conn_id``) at an ``aws``
connection whose ``endpoint_url`` is the moto server: train (deferred: the trigger polls through
aiobotocore and streams both instances' CloudWatch lines) -> model -> deploy.
"""

from __future__ import annotations

import contextlib
import json
import re
import time

import pytest

# The Airflow harness sets AIRFLOW_HOME before airflow is imported; its fixtures are reused here.
from tests.airflow.conftest import airflow_db, dags_folder, run_dag, write_dag  # noqa: F401
from tests.airflow.test_links import ui_extra_links

from .conftest import FAKE_CREDENTIALS, REGION, ROLE
from .test_moto import put_events, put_model_artifact

BOTOCORE_CONFIG = {"retries": {"mode": "standard", "max_attempts": 7}, "connect_timeout": 11}


@pytest.fixture
def connections(monkeypatch, moto_url, unique):
    """``rl`` + ``aws`` connections as Airflow reads them from the environment (JSON form)."""
    rl_conn, aws_conn = unique("rl_sm").replace("-", "_"), unique("aws_moto").replace("-", "_")
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{aws_conn.upper()}",
        json.dumps(
            {
                "conn_type": "aws",
                "login": FAKE_CREDENTIALS["aws_access_key_id"],
                "password": FAKE_CREDENTIALS["aws_secret_access_key"],
                "extra": {"endpoint_url": moto_url, "region_name": REGION},
            }
        ),
    )
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{rl_conn.upper()}",
        json.dumps(
            {
                "conn_type": "rl",
                "extra": {
                    "backend": "sagemaker",
                    "aws_conn_id": aws_conn,
                    "region_name": REGION,
                    "verify": False,
                    "botocore_config": BOTOCORE_CONFIG,
                },
            }
        ),
    )
    return rl_conn, aws_conn


def test_hook_settings_reach_the_clients_and_the_trigger(connections, airflow_db):  # noqa: F811
    from airflow.serialization.serialized_objects import BaseSerialization

    from rl_provider.backends.sagemaker import AsyncSageMakerBackend, SageMakerBackend
    from rl_provider.hooks.rl import RLHook
    from rl_provider.triggers.training_job import RLTrainingJobTrigger

    rl_conn, aws_conn = connections
    hook = RLHook(rl_conn)
    backend = hook.backend
    assert isinstance(backend, SageMakerBackend)
    client = backend.client("sagemaker")
    assert client.meta.region_name == REGION
    assert client.meta.config.retries == {"mode": "standard", "total_max_attempts": 8}
    assert client.meta.config.connect_timeout == 11
    assert client._endpoint.http_session._verify is False  # verify=False reached the HTTP layer
    assert backend.account == "123456789012"  # credentials of the aws connection

    trigger = RLTrainingJobTrigger(
        job_name="job-1",
        poll_interval=1.0,
        conn_id=rl_conn,
        backend_settings=hook.settings.to_dict(),
    )
    # Through Airflow's own serializer, as the triggerer receives it.
    encoded = BaseSerialization.serialize(trigger.serialize())
    classpath, kwargs = BaseSerialization.deserialize(json.loads(json.dumps(encoded)))
    settings = kwargs["backend_settings"]
    assert (settings["conn_id"], settings["aws_conn_id"]) == (rl_conn, aws_conn)
    assert (settings["region_name"], settings["verify"]) == (REGION, False)
    assert settings["botocore_config"] == BOTOCORE_CONFIG
    rebuilt = RLTrainingJobTrigger(**kwargs)
    async_backend = RLHook(rl_conn, settings=type(hook.settings).from_dict(settings)).async_backend
    assert isinstance(async_backend, AsyncSageMakerBackend)
    assert rebuilt.serialize() == trigger.serialize()
    assert classpath.endswith("RLTrainingJobTrigger")


@pytest.mark.slow
def test_train_model_deploy_dag_on_sagemaker(
    connections,
    moto_factory,
    source_dir,
    unique,
    write_dag,  # noqa: F811
    run_dag,  # noqa: F811
    monkeypatch,
):
    rl_conn, _ = connections
    job, endpoint = unique("rl-af-job"), unique("rl-af-ep")
    # moto writes no training logs: the two instances' lines are put where SageMaker puts them.
    logs = moto_factory("logs")
    with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
        logs.create_log_group(logGroupName="/aws/sagemaker/TrainingJobs")
    t0 = int(time.time() * 1000) - 5_000
    put_events(logs, f"{job}/algo-1-1700000000", [(t0, "first line"), (t0 + 2, "third line")])
    put_events(logs, f"{job}/algo-2-1700000000", [(t0 + 1, "second line")])
    # moto's jobs write no artifact: the one SageMaker would write, for the model's repacking.
    s3, bucket = moto_factory("s3"), f"sagemaker-{REGION}-123456789012"
    with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    put_model_artifact(s3, f"s3://{bucket}/{job}/output/model.tar.gz")
    dag_id = unique("rl_sm_dag").replace("-", "_")
    path = write_dag(
        f"""
        import pendulum
        from airflow.sdk import DAG

        from rl_provider import RLEstimator
        from rl_provider.operators.deploy import RLDeployOperator
        from rl_provider.operators.model import RLCreateModelOperator
        from rl_provider.operators.train import RLTrainOperator

        with DAG({dag_id!r}, schedule=None, start_date=pendulum.datetime(2026, 1, 1)):
            train = RLTrainOperator(
                task_id="train",
                estimator=RLEstimator(
                    entry_point="train.py",
                    source_dir={str(source_dir)!r},
                    toolkit="ray",
                    toolkit_version="1.6.0",
                    framework="tensorflow",
                    role={ROLE!r},
                    instance_type="ml.m5.large",
                    instance_count=2,
                ),
                job_name={job!r},
                conn_id={rl_conn!r},
                deferrable=True,
                check_interval=0.2,
            )
            model = RLCreateModelOperator(
                task_id="model", training_job_name=train.output["job_name"], conn_id={rl_conn!r}
            )
            deploy = RLDeployOperator(
                task_id="deploy",
                model_name=model.output["model_name"],
                endpoint_name={endpoint!r},
                instance_type="ml.m5.large",
                conn_id={rl_conn!r},
                check_interval=0.2,
            )
        """,
        f"{dag_id}.py",
    )
    result = run_dag(path, dag_id)

    assert result.task_states == {"train": "success", "model": "success", "deploy": "success"}
    # The Details tab's extra links (Airflow's API route): SageMaker console pages, https.
    links = ui_extra_links(dag_id, result.run_id, "train", monkeypatch)["extra_links"]
    assert links == {
        "RL Training Job": (
            f"https://console.aws.amazon.com/sagemaker/home?region={REGION}#/jobs/{job}"
        ),
        "RL Training Logs": links["RL Training Logs"],
        # ... and the job's page in the Airflow UI, through this rl connection.
        "RL Training Job Page": f"/rl/jobs/{job}?conn={rl_conn}",
    }
    assert links["RL Training Logs"].startswith("https://console.aws.amazon.com/cloudwatch/")
    deploy_links = ui_extra_links(dag_id, result.run_id, "deploy", monkeypatch)["extra_links"]
    assert deploy_links["RL Endpoint"].endswith(f"#/endpoints/{endpoint}")
    assert deploy_links["RL Endpoint Page"] == f"/rl/endpoints/{endpoint}?conn={rl_conn}"
    training = result.xcom("train")["Training"]
    assert training["TrainingJobName"] == job
    assert training["ResourceConfig"]["InstanceCount"] == 2
    # Both instances' lines were streamed, in time order, once each.
    streamed = re.findall(r"\[(algo-\d)\] (\w+ line)", result.log)
    assert streamed == [
        ("algo-1", "first line"),
        ("algo-2", "second line"),
        ("algo-1", "third line"),
    ]
    # moto completes a job at creation: the state check before deferring ends the task in the
    # worker (issue 10, short deferrals), so no trigger runs. The trigger's own streaming against
    # moto: tests/backends/sagemaker/test_shared_clients.py.
    assert "RLTrainingJobTrigger" not in result.log
    deployed = result.xcom("deploy")
    assert deployed["Endpoint"]["EndpointName"] == endpoint
    assert deployed["Endpoint"]["EndpointStatus"] == "InService"
    sagemaker = moto_factory("sagemaker")
    described = sagemaker.describe_endpoint(EndpointName=endpoint)
    config = sagemaker.describe_endpoint_config(EndpointConfigName=described["EndpointConfigName"])
    model_name = config["ProductionVariants"][0]["ModelName"]
    model = sagemaker.describe_model(ModelName=model_name)
    # The Ray policy's handler is repacked into a model.tar.gz of the model's own (issue 12).
    assert model["PrimaryContainer"]["ModelDataUrl"] == f"s3://{bucket}/{model_name}/model.tar.gz"
    assert model["PrimaryContainer"]["Environment"]["SAGEMAKER_SUBMIT_DIRECTORY"] == (
        "/opt/ml/model/code"
    )
    assert model["ExecutionRoleArn"] == ROLE
    source = moto_factory("s3").get_object(
        Bucket=f"sagemaker-{REGION}-123456789012", Key=f"{job}/source/sourcedir.tar.gz"
    )
    assert source["Metadata"]["sha256"]
