"""The arguments every rl_provider task shares live in ``rl_provider.operators.base``.

They must still behave as each operator's own arguments did: ``default_args`` reach them,
``partial()`` accepts them, the sensors keep their poke settings, and a bad wait setting fails
the task before anything is created.
"""

from __future__ import annotations

import datetime
import re

import pytest
from airflow.sdk import DAG
from airflow.sdk.exceptions import AirflowFailException

from rl_provider.core.estimator import RLEstimator
from rl_provider.operators.deploy import RLDeployOperator
from rl_provider.operators.model import RLCreateModelOperator
from rl_provider.operators.train import RLTrainOperator
from rl_provider.sensors.endpoint import RLEndpointSensor
from rl_provider.sensors.training_job import RLTrainingJobSensor

SHARED = {
    "conn_id": "rl_other",
    "deferrable": True,
    "wait_for_completion": False,
    "check_interval": 7,
    "max_ingestion_time": 60,
}


def estimator() -> RLEstimator:
    return RLEstimator(entry_point="train.py", image_uri="custom:latest", instance_type="local")


def tasks() -> list:
    return [
        RLTrainOperator(task_id="train", estimator=estimator()),
        RLDeployOperator(
            task_id="deploy", model_name="m", endpoint_name="e", instance_type="local"
        ),
        RLCreateModelOperator(task_id="model", training_job_name="j"),
        RLTrainingJobSensor(task_id="job_sensor", job_name="j"),
        RLEndpointSensor(task_id="endpoint_sensor", endpoint_name="e"),
    ]


def test_default_args_reach_the_shared_arguments():
    with DAG("shared_args", schedule=None, default_args=SHARED):
        train, deploy, model, job_sensor, endpoint_sensor = tasks()
    for task in (train, deploy):
        assert {name: getattr(task, name) for name in SHARED} == SHARED
    for task in (model, job_sensor, endpoint_sensor):
        assert task.conn_id == "rl_other"
    for task in (job_sensor, endpoint_sensor):
        assert task.deferrable is True


def test_defaults_without_default_args():
    with DAG("shared_defaults", schedule=None):
        train, deploy, model, job_sensor, endpoint_sensor = tasks()
    for task in (train, deploy):
        assert (task.conn_id, task.wait_for_completion, task.check_interval) == (
            "rl_default",
            True,
            30,
        )
        assert task.max_ingestion_time is None
    assert model.conn_id == job_sensor.conn_id == endpoint_sensor.conn_id == "rl_default"


def test_partial_accepts_the_shared_arguments_and_refuses_unknown_ones():
    with DAG("shared_partial", schedule=None):
        mapped = RLTrainOperator.partial(
            task_id="train", conn_id="rl_other", check_interval=5, deferrable=False
        ).expand(estimator=[estimator()])
        assert mapped.partial_kwargs["conn_id"] == "rl_other"
        with pytest.raises(TypeError, match="check_intervall"):
            RLTrainOperator.partial(task_id="bad", check_intervall=5).expand(
                estimator=[estimator()]
            )


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"check_interval": 0}, "check_interval=0: pass a positive number of seconds."),
        ({"check_interval": "often"}, "check_interval='often': pass a positive number"),
        (
            {"max_ingestion_time": -1},
            "max_ingestion_time=-1: pass a positive number of seconds, or None for no limit.",
        ),
    ],
)
def test_bad_wait_settings_fail_the_deploy_task_before_any_call(settings, message):
    # The same check as the training operator's (tests/airflow/test_train_operator.py); the
    # deploy operator did not check max_ingestion_time before issue 13.
    with DAG("shared_checks", schedule=None, start_date=datetime.datetime(2026, 1, 1)):
        deploy = RLDeployOperator(
            task_id="deploy",
            model_name="m",
            endpoint_name="e",
            instance_type="local",
            conn_id="rl_no_such_connection",  # never read: the check comes first
            **settings,
        )
    with pytest.raises(AirflowFailException, match=re.escape(message)):
        deploy.execute({})  # type: ignore[arg-type]
