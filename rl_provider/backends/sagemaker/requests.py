"""Pure checks of the requests the SageMaker backend sends: what SageMaker would reject (or fail
on after minutes of provisioning), refused before any AWS call or upload."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rl_provider.core import hyperparameters as hp
from rl_provider.core.naming import validate_name
from rl_provider.exceptions import (
    BackendError,
    EndpointNotFoundError,
    JobNotFoundError,
    ModelNotFoundError,
    RLConfigError,
)

__all__ = [
    "ENDPOINT",
    "ENDPOINT_CONFIG",
    "LOCAL_ONLY_IMAGE_PREFIX",
    "MODEL",
    "ROLE_FIX",
    "TRAINING_JOB",
    "Resource",
    "split_s3_uri",
    "validate_training_request",
]

# The image names the core records for Ray 2.x jobs on the local backend (toolkits.py).
LOCAL_ONLY_IMAGE_PREFIX = "rl-provider/"
ROLE_FIX = (
    "pass role='arn:aws:iam::<account>:role/<name>' (a role SageMaker can assume, e.g. with "
    "AmazonSageMakerFullAccess) to the estimator or model"
)


@dataclass(frozen=True, slots=True)
class Resource:
    """A kind of SageMaker resource as its API names it: ``{create,describe,delete}_<operation>``
    take the name as ``<key>=``; ``error`` (saying ``Could not find <missing> ...``) is ours for
    one that does not exist."""

    noun: str
    operation: str
    key: str
    missing: str
    error: type[BackendError]

    def valid_name(self, name: str) -> str:
        return validate_name(name, kind=f"{self.noun} name")


TRAINING_JOB = Resource(
    "training job", "training_job", "TrainingJobName", "training job", JobNotFoundError
)
MODEL = Resource("model", "model", "ModelName", "model", ModelNotFoundError)
ENDPOINT_CONFIG = Resource(
    "endpoint config",
    "endpoint_config",
    "EndpointConfigName",
    "endpoint configuration",
    EndpointNotFoundError,
)
ENDPOINT = Resource("endpoint", "endpoint", "EndpointName", "endpoint", EndpointNotFoundError)


def split_s3_uri(uri: str, what: str) -> tuple[str, str]:
    """``s3://bucket/key`` -> ``(bucket, key)``; anything else is an ``RLConfigError``."""
    if not isinstance(uri, str) or not uri.startswith("s3://") or len(uri) <= len("s3://"):
        raise RLConfigError(
            f"{what} {uri!r} is not an s3:// URI: SageMaker reads and writes S3 only; pass "
            "s3://bucket/prefix (file:// URIs are for the local backend)."
        )
    bucket, _, key = uri[len("s3://") :].partition("/")
    return bucket, key


def validate_training_request(request: Mapping[str, Any]) -> None:
    """What SageMaker would reject (or fail on after minutes of provisioning), refused now.

    Pure (no AWS call): callers can run it before uploading anything.
    """
    name = validate_name(request.get("TrainingJobName", ""), kind="training job name")
    for key in ("AlgorithmSpecification", "OutputDataConfig", "ResourceConfig"):
        if key not in request:
            raise RLConfigError(
                f"CreateTrainingJob request for {name} has no {key}: build it with "
                "RLEstimator.training_request()."
            )
    if not str(request.get("RoleArn", "")).startswith("arn:"):
        raise RLConfigError(
            f"Training job {name} has no execution role (RoleArn={request.get('RoleArn')!r})"
            f": SageMaker runs jobs as a role; {ROLE_FIX}."
        )
    instance_type = str(request["ResourceConfig"].get("InstanceType", ""))
    if not instance_type.startswith("ml."):
        raise RLConfigError(
            f"Instance type {instance_type!r} is not a SageMaker instance type: use an ml.* "
            "type (e.g. ml.m5.xlarge), or the local backend for local/local_gpu."
        )
    image = str(request["AlgorithmSpecification"].get("TrainingImage", ""))
    if image.startswith(LOCAL_ONLY_IMAGE_PREFIX):
        raise RLConfigError(
            f"Training image {image!r} exists only on the local backend: no SageMaker RL "
            "image has Ray 2.x; build one and pass image_uri=, or use toolkit_version='1.6.0'."
        )
    split_s3_uri(request["OutputDataConfig"].get("S3OutputPath", ""), "output_path")
    submit = request.get("HyperParameters", {}).get("sagemaker_submit_directory")
    if submit is not None:
        split_s3_uri(str(hp.decode_value(submit)), "Code location (sagemaker_submit_directory)")
    for channel in request.get("InputDataConfig", []):
        source = channel.get("DataSource", {}).get("S3DataSource", {})
        if "S3Uri" in source:
            split_s3_uri(source["S3Uri"], f"Input channel {channel.get('ChannelName')!r}")
    checkpoint = request.get("CheckpointConfig")
    if checkpoint:
        split_s3_uri(checkpoint.get("S3Uri", ""), "checkpoint_s3_uri")
