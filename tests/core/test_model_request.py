"""The serving choice and the CreateModel request are pure: no backend anywhere in these tests."""

from __future__ import annotations

import pytest

from rl_provider.core.enums import RLFramework, RLToolkit
from rl_provider.core.estimator import RLEstimator
from rl_provider.core.model_request import (
    ModelDefinition,
    ModelKind,
    ModelOptions,
    TrainedJob,
    model_arguments,
)
from rl_provider.exceptions import RLConfigError

ARTIFACT = "s3://bucket/out/job-1/output/model.tar.gz"


def options() -> ModelOptions:
    """``create_model(name="policy-1")``: every other argument left to its default."""
    return ModelOptions(
        name="policy-1",
        role=None,
        entry_point=None,
        source_dir=None,
        dependencies=None,
        image_uri=None,
        environment=None,
        vpc_config_override=None,
    )


def job(model_data: str | None = ARTIFACT) -> TrainedJob:
    return TrainedJob(
        job_name="job-1",
        model_data=model_data,
        output_path="s3://bucket/out",
        region="eu-west-1",
        repack_root="s3://bucket/code/",
    )


@pytest.mark.parametrize(
    ("toolkit", "version", "framework", "kind", "model_data"),
    [
        # Ray: the built-in handler repacked into <repack root>/<model name>/model.tar.gz.
        (RLToolkit.RAY, "2.40.0", RLFramework.PYTORCH, ModelKind.PYTORCH, None),
        # TensorFlow Serving: the training artifact as it is, no code.
        (RLToolkit.COACH, "0.11.1", RLFramework.TENSORFLOW, ModelKind.TENSORFLOW_SERVING, ARTIFACT),
        # MXNet: the training artifact, the training code reused.
        (RLToolkit.COACH, "0.11.0", RLFramework.MXNET, ModelKind.MXNET, ARTIFACT),
    ],
)
def test_the_serving_choice_needs_no_backend(toolkit, version, framework, kind, model_data):
    estimator = RLEstimator(
        "train.py",
        toolkit,
        version,
        framework,
        role="arn:aws:iam::1:role/r",
        instance_type="ml.c5.large",
    )
    assert estimator.backend is None
    arguments = model_arguments(estimator, job(), options())
    assert arguments["kind"] is kind
    assert arguments["region"] == "eu-west-1"
    assert arguments["role"] == "arn:aws:iam::1:role/r"
    expected = model_data or "s3://bucket/code/policy-1/model.tar.gz"
    assert arguments["model_data"] == expected
    request = ModelDefinition(**arguments).create_model_request("ml.c5.large")
    assert request["ModelName"] == "policy-1"
    assert request["PrimaryContainer"]["ModelDataUrl"] == expected
    assert request["ExecutionRoleArn"] == "arn:aws:iam::1:role/r"


def test_the_choice_refuses_a_job_without_artifact_and_a_model_without_a_place_to_repack():
    estimator = RLEstimator("train.py", image_uri="my/image:1", output_path="s3://bucket/out")
    with pytest.raises(RLConfigError, match="has no model artifact location"):
        model_arguments(estimator, job(model_data=None), options())
    nowhere = TrainedJob(
        job_name="job-1",
        model_data=ARTIFACT,
        output_path=None,
        region="us-west-2",
        repack_root=None,
    )
    with pytest.raises(RLConfigError, match="Nowhere to write the repacked model"):
        model_arguments(estimator, nowhere, options())
