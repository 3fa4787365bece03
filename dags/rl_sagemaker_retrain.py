"""Weekly CartPole retraining on Amazon SageMaker: the ``rl_cartpole_retrain`` pipeline on AWS.

preflight (role, bucket, region, images: refused before anything is created) -> train PPO on
SageMaker instances -> evaluate the new greedy policy and the endpoint's current one -> deploy
only if the new one reaches ``threshold`` AND beats the current one -> create the model with
``RLCreateModelOperator`` (PyTorch inference image; the built-in RLlib handler and a
``requirements.txt`` are repacked into ``model.tar.gz`` under ``code/`` by ``RLModel``) -> create
or update the endpoint (SageMaker's blue/green) -> smoke-test it.

Set up (README "Running on AWS"): an ``aws`` connection, and an ``rl`` connection
``rl_sagemaker`` with extras ``{"backend": "sagemaker", "aws_conn_id": "aws_default",
"region_name": "us-west-2"}``. No SageMaker image has Ray 2.x: build one (the entry point is
``dags/cartpole/train.py``) and pass it as the ``image_uri`` param. The decision and evaluation
code is shared with the local DAG through ``dags/cartpole/pipeline.py``.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import Any, ClassVar

from airflow.sdk import DAG, Param, TriggerRule, task

# The task logic shared with rl_cartpole_retrain (Airflow puts the DAGs folder on sys.path).
from cartpole.pipeline import CODE_DIR, evaluate_model, ray_version, served_model, should_deploy

from rl_provider import RLEstimator
from rl_provider.core.model import BUILTIN_RLLIB_ENTRY_POINT
from rl_provider.operators.deploy import RLDeployOperator
from rl_provider.operators.model import RLCreateModelOperator
from rl_provider.operators.train import RLTrainOperator, model_asset

log = logging.getLogger(__name__)

CONN_ID = "rl_sagemaker"
ARN_PATTERN = r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/.+$"
NAME_PATTERN = r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$"


class ParamsEstimator(RLEstimator):
    """An ``RLEstimator`` whose image and instances are Airflow-templated (DAG params)."""

    template_fields: ClassVar[tuple[str, ...]] = (
        *RLEstimator.template_fields,
        "image_uri",
        "instance_type",
        "instance_count",
    )


def _backend() -> Any:
    from rl_provider.hooks.rl import RLHook

    return RLHook(CONN_ID).backend


def _download(model_data: str, directory: Path) -> Path:
    """``s3://.../model.tar.gz`` -> a local file the evaluation code can read."""
    from rl_provider.backends.sagemaker.backend import split_s3_uri

    bucket, key = split_s3_uri(model_data, "model_data")
    target = directory / "model.tar.gz"
    _backend().client("s3").download_file(bucket, key, str(target))
    return target


def _evaluate_s3(model_data: str, episodes: int) -> dict[str, Any]:
    import tempfile

    with tempfile.TemporaryDirectory(prefix="rl-sagemaker-eval-") as tmp:
        result = evaluate_model(str(_download(model_data, Path(tmp))), episodes)
    return {**result, "model_data": model_data}


@task
def preflight(params: dict[str, Any]) -> dict[str, Any]:
    """Everything that would fail on AWS minutes later, checked before anything is created."""
    from rl_provider.core import images
    from rl_provider.core.toolkits import RAY_SERVING_PYTORCH_VERSION
    from rl_provider.exceptions import RLConfigError

    backend = _backend()
    if backend.region != params["region"]:
        raise RLConfigError(
            f"Connection {CONN_ID!r} works in {backend.region!r}, the region param says "
            f"{params['region']!r}: set the connection's region_name extra or the param so "
            "they agree."
        )
    if not params["image_uri"]:
        raise RLConfigError(
            "No training image: SageMaker has no image with Ray 2.x. Build one with Ray "
            f"{ray_version()} and gymnasium (the entry point is dags/cartpole/train.py), push "
            "it to ECR and pass its URI as the image_uri param."
        )
    bucket = params["bucket"] or backend.bucket
    backend.ensure_bucket(bucket)  # the default bucket is created; another one must exist
    backend.client("s3").head_bucket(Bucket=bucket)
    # The serving image: the param, else SageMaker's PyTorch inference image for the instance.
    serving_image = params["serving_image_uri"] or images.retrieve(
        "pytorch",
        backend.region,
        RAY_SERVING_PYTORCH_VERSION,
        params["deploy_instance_type"],
        scope="inference",
    )
    return {
        "region": backend.region,
        "bucket": bucket,
        "account": backend.account,
        "serving_image": serving_image,
    }


@task
def evaluate_new_policy(training: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    job = training["Training"]
    return {
        "training_job": job["TrainingJobName"],
        **_evaluate_s3(job["ModelArtifacts"]["S3ModelArtifacts"], int(params["episodes"])),
    }


@task
def evaluate_current_policy(params: dict[str, Any]) -> dict[str, Any]:
    """Evaluate the model the endpoint serves now (``mean`` None: nothing served yet)."""
    served = served_model(_backend(), params["endpoint_name"])
    if served["model_data"] is None:
        return {**served, "mean": None}
    # The served archive is the repacked one (model + code/); the policy files are the same.
    return {**served, **_evaluate_s3(served["model_data"], int(params["episodes"]))}


@task
def smoke_test(deployment: dict[str, Any]) -> dict[str, Any]:
    """A batch of observations through sagemaker-runtime: one valid action each."""
    from rl_provider.predictor import RLPredictor

    name = deployment["Endpoint"]["EndpointName"]
    observations = [[0.0, 0.01, 0.0, -0.01], [0.02, -0.1, 0.03, 0.2]]
    actions = RLPredictor(name, _backend()).predict(observations).get("actions")
    if not isinstance(actions, list) or len(actions) != 2 or not all(a in (0, 1) for a in actions):
        raise ValueError(f"Endpoint {name} answered {actions!r} for two CartPole observations.")
    return {"endpoint_name": name, "actions": actions}


with DAG(
    dag_id="rl_sagemaker_retrain",
    description="Weekly PPO retraining on SageMaker; promote the policy only if it is better.",
    schedule="@weekly",
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    max_active_runs=1,  # two runs must not update the same endpoint at once
    tags=["rl_provider", "example", "sagemaker"],
    render_template_as_native_obj=True,  # numbers stay numbers (instance_count, iterations)
    params={
        "role": Param(
            "arn:aws:iam::111122223333:role/SageMakerRole",
            type="string",
            pattern=ARN_PATTERN,
            description="SageMaker execution role (S3, ECR, CloudWatch Logs access)",
        ),
        "region": Param("us-west-2", type="string", description="must match the connection"),
        "bucket": Param("", type="string", description="empty: sagemaker-<region>-<account>"),
        "image_uri": Param("", type="string", description="training image with Ray 2.x (ECR)"),
        "serving_image_uri": Param(
            "", type="string", description="empty: SageMaker's PyTorch 2.6 inference image"
        ),
        "train_instance_type": Param("ml.m5.xlarge", type="string", pattern=r"^ml\."),
        "train_instance_count": Param(1, type="integer", minimum=1),
        "deploy_instance_type": Param("ml.m5.large", type="string", pattern=r"^ml\."),
        "iterations": Param(40, type="integer", minimum=1),
        "target_return": Param(490.0, type="number"),
        "seed": Param(0, type="integer", minimum=0),
        "threshold": Param(475.0, type="number"),
        "episodes": Param(20, type="integer", minimum=1),
        "endpoint_name": Param("cartpole-ppo", type="string", pattern=NAME_PATTERN),
    },
    doc_md=__doc__,
) as dag:
    checked = preflight()
    train = RLTrainOperator(
        task_id="train",
        estimator=ParamsEstimator(
            entry_point="train.py",
            source_dir=str(CODE_DIR),
            image_uri="{{ params.image_uri }}",
            role="{{ params.role }}",
            instance_type="{{ params.train_instance_type }}",
            instance_count="{{ params.train_instance_count }}",
            output_path="{{ 's3://' ~ params.bucket ~ '/' if params.bucket else '' }}",
            base_job_name="cartpole-ppo",
            metric_definitions=RLEstimator.default_metric_definitions("ray"),
            hyperparameters={
                "iterations": "{{ params.iterations }}",
                "target_return": "{{ params.target_return }}",
                "seed": "{{ params.seed }}",
            },
        ),
        conn_id=CONN_ID,
        check_interval=60,
        deferrable=True,  # hours of training without holding a worker slot
        outlets=[model_asset("cartpole-ppo-sagemaker")],
    )
    new = evaluate_new_policy(train.output)
    current = evaluate_current_policy()
    gate = should_deploy(new, current)
    # The model step is the provider's: RLModel repacks the built-in RLlib handler (+ Ray
    # requirements) into model.tar.gz under code/ for the PyTorch inference image.
    model = RLCreateModelOperator(
        task_id="create_model",
        training_job_name=train.output["job_name"],
        entry_point=BUILTIN_RLLIB_ENTRY_POINT,
        image_uri="{{ ti.xcom_pull(task_ids='preflight')['serving_image'] }}",
        instance_type="{{ params.deploy_instance_type }}",
        conn_id=CONN_ID,
    )
    deploy = RLDeployOperator(
        task_id="deploy",
        model_name=model.output["model_name"],
        endpoint_name="{{ params.endpoint_name }}",
        instance_type="{{ params.deploy_instance_type }}",
        conn_id=CONN_ID,
        check_interval=30,
        deferrable=True,
        trigger_rule=TriggerRule.ALL_SUCCESS,
    )
    checked >> train
    gate >> model
    smoke_test(deploy.output)
