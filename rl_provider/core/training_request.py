"""The ``CreateTrainingJob`` request of an estimator: pure functions, no I/O, no backend.

``RLEstimator`` (``rl_provider.core.estimator``) holds the state and talks to the backend; every
rule that shapes the request lives here, reading the estimator's settings through
``TrainingSettings``. What only a backend knows (its region, its default output path) is
resolved by the estimator and passed in as plain values, so the request for a given estimator,
job name, region and output path is always the same dict.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import PurePosixPath
from typing import Any, Protocol

from rl_provider.core import hyperparameters as hp
from rl_provider.core import images, toolkits
from rl_provider.core.enums import RLFramework, RLToolkit
from rl_provider.core.inputs import input_data_config, input_mode_override, to_uri
from rl_provider.core.naming import validate_name
from rl_provider.core.training_options import (
    CODE_CHANNEL_NAME,
    ISOLATED_SUBMIT_DIRECTORY,
    TrainingOptions,
)
from rl_provider.exceptions import ImageNotFoundError, RLConfigError, RLMissingArgumentError

SAGEMAKER_ESTIMATOR_VALUE = "RLEstimator"
# Hyperparameters the estimator sets itself (sagemaker.estimator.Framework + RLEstimator).
RESERVED_HYPERPARAMETERS = (
    "sagemaker_program",
    "sagemaker_submit_directory",
    "sagemaker_container_log_level",
    "sagemaker_job_name",
    "sagemaker_region",
    "sagemaker_s3_output",
    "sagemaker_estimator",
)
# CreateTrainingJob limits on HyperParameters (SageMaker API reference).
MAX_HYPERPARAMETERS = 100
MAX_HP_KEY = 256
MAX_HP_VALUE = 2500

Tags = Sequence[Mapping[str, str]] | Mapping[str, str]


class TrainingSettings(Protocol):
    """The estimator's settings the request is built from (``RLEstimator`` has each one)."""

    entry_point: str
    source_dir: str | None
    dependencies: list[str]
    image_uri: str | None
    toolkit: RLToolkit | None
    toolkit_version: str | None
    framework: RLFramework | None
    framework_version: str | None
    metric_definitions: list[dict[str, str]]
    role: str | None
    instance_count: int
    instance_type: str
    volume_size: int
    max_run: int
    max_wait: int | None
    use_spot_instances: bool
    checkpoint_s3_uri: str | None
    checkpoint_local_path: str | None
    subnets: list[str] | None
    security_group_ids: list[str] | None
    environment: dict[str, str]
    tags: Tags | None
    container_log_level: int
    input_mode: str
    code_location: str | None
    sagemaker_options: TrainingOptions


def identity(settings: TrainingSettings) -> tuple[RLToolkit, str, RLFramework]:
    """Toolkit, version and framework of an estimator built without ``image_uri``."""
    toolkit, version, framework = settings.toolkit, settings.toolkit_version, settings.framework
    if toolkit is None or version is None or framework is None:
        raise RLMissingArgumentError(
            "Please provide `toolkit`, `toolkit_version`, `framework` or `image_uri` parameter."
        )
    return toolkit, version, framework


def training_image(settings: TrainingSettings, region: str) -> str:
    """``image_uri`` if given, else the SageMaker RL image for toolkit/framework/instance."""
    if settings.image_uri:
        return settings.image_uri
    toolkit, version, framework = identity(settings)
    instance_type = settings.instance_type
    if toolkits.is_ray2(toolkit, version):
        processor = images.processor_for(instance_type)
        if not images.is_sagemaker_instance_type(instance_type):
            return toolkits.local_image_name(toolkit, version, framework, processor)
        raise ImageNotFoundError(
            f"No SageMaker image exists for Ray {version} (SageMaker's RL images stop at "
            f"Ray 1.6.0) on instance type {instance_type!r}: build one with Ray "
            f"{version} and pass image_uri=, or train on the local backend "
            "(instance_type='local')."
        )
    return images.retrieve(f"{toolkit.value}-{framework.value}", region, version, instance_type)


def program_name(entry_point: str, source_dir: str | None) -> str:
    """``sagemaker_program``: the path inside ``source_dir``, else the script's file name."""
    if source_dir:
        return PurePosixPath(entry_point).as_posix()
    return os.path.basename(entry_point)


def code_root(code_location: str | None, output_path: str | None) -> str | None:
    """``code_location``, else the output path's bucket (SDK rule), else its directory."""
    if code_location:
        return code_location.rstrip("/")
    if output_path is None:
        return None
    if output_path.startswith("s3://"):
        return "s3://" + output_path[len("s3://") :].split("/", 1)[0]
    return output_path.rstrip("/")


def code_uri(settings: TrainingSettings, job_name: str, output_path: str | None) -> str | None:
    """Where the job's ``sourcedir.tar.gz`` lives (SDK layout ``<root>/<job>/source/``)."""
    source_dir = settings.source_dir
    if source_dir and "://" in source_dir:  # a prebuilt archive, used as it is
        return source_dir
    root = code_root(settings.code_location, output_path)
    if root is None:
        return None
    return f"{root}/{job_name}/source/sourcedir.tar.gz"


def require_output_path(output_path: str | None) -> str:
    if output_path is None:
        raise RLConfigError(
            "output_path is not set and there is no backend to take a default from: pass "
            "output_path='s3://bucket/prefix' (or 'file:///dir'), or backend=."
        )
    if not output_path.startswith(("s3://", "file://")):
        raise RLConfigError(f"output_path {output_path!r} must be an s3:// or file:// URI.")
    return output_path


def hyperparameters(
    settings: TrainingSettings,
    user: Mapping[str, Any],
    *,
    job_name: str | None,
    region: str,
    output_path: str | None,
) -> dict[str, str]:
    """User values JSON-encoded plus the ``sagemaker_*`` keys the container reads (the
    job-dependent ones, ``sagemaker_job_name`` and ``sagemaker_submit_directory``, once
    ``job_name`` is known)."""
    encoded_user = hp.encode(user)
    reserved = sorted(set(encoded_user) & set(RESERVED_HYPERPARAMETERS))
    if reserved:
        raise RLConfigError(
            f"Hyperparameters {reserved} are set by the estimator itself; rename them."
        )
    extra: dict[str, Any] = {
        "sagemaker_program": program_name(settings.entry_point, settings.source_dir),
        "sagemaker_container_log_level": settings.container_log_level,
        "sagemaker_region": region,
        "sagemaker_estimator": SAGEMAKER_ESTIMATOR_VALUE,
    }
    if output_path is not None:
        extra["sagemaker_s3_output"] = output_path
    if job_name is not None:
        extra["sagemaker_job_name"] = job_name
        submit = code_uri(settings, job_name, output_path)
        if submit is not None:
            # With network isolation the code arrives as the "code" channel (SDK rule).
            isolated = settings.sagemaker_options.enable_network_isolation
            extra["sagemaker_submit_directory"] = ISOLATED_SUBMIT_DIRECTORY if isolated else submit
    encoded = {**encoded_user, **hp.encode(extra)}
    check_hyperparameter_limits(encoded)
    return encoded


def check_hyperparameter_limits(encoded: Mapping[str, str]) -> None:
    if len(encoded) > MAX_HYPERPARAMETERS:
        raise RLConfigError(
            f"{len(encoded)} hyperparameters: SageMaker accepts at most {MAX_HYPERPARAMETERS}."
        )
    for key, value in encoded.items():
        if len(key) > MAX_HP_KEY or len(value) > MAX_HP_VALUE:
            raise RLConfigError(
                f"Hyperparameter {key[:40]!r} is too long: SageMaker allows keys of "
                f"{MAX_HP_KEY} and encoded values of {MAX_HP_VALUE} characters; pass large "
                "values as an input channel instead."
            )


def tag_list(tags: Tags | None) -> list[dict[str, str]]:
    """``Tags`` as CreateTrainingJob takes them, from a list of Key/Value dicts or a dict."""
    if not tags:
        return []
    if isinstance(tags, Mapping):
        return [{"Key": str(k), "Value": str(v)} for k, v in tags.items()]
    return [{"Key": str(t["Key"]), "Value": str(t["Value"])} for t in tags]


def validate_resources(settings: TrainingSettings) -> None:
    count, instance_type = settings.instance_count, settings.instance_type
    if not isinstance(count, int) or count < 1:
        raise RLConfigError(f"instance_count must be a positive int, got {count!r}.")
    images.processor_for(instance_type)  # raises for a malformed instance type
    if instance_type.startswith("local") and count != 1:
        raise RLConfigError(
            f"instance_count={count} with instance_type={instance_type!r}: "
            "the local backend runs one instance; use instance_count=1."
        )
    max_wait, max_run = settings.max_wait, settings.max_run
    if settings.use_spot_instances and (max_wait is None or max_wait < max_run):
        raise RLConfigError(
            f"use_spot_instances needs max_wait >= max_run (max_wait={max_wait}, "
            f"max_run={max_run}): SageMaker rejects spot jobs otherwise."
        )
    if bool(settings.subnets) != bool(settings.security_group_ids):
        raise RLConfigError(
            "subnets and security_group_ids go together (VpcConfig needs both): "
            "pass both or neither."
        )


def vpc_config(
    subnets: Sequence[str] | None, security_group_ids: Sequence[str] | None
) -> dict[str, list[str]] | None:
    """``VpcConfig`` (of a training job, and of its model by default): both lists, or none."""
    if not (subnets and security_group_ids):
        return None
    return {"Subnets": list(subnets), "SecurityGroupIds": list(security_group_ids)}


def _code_channel(uri: str) -> dict[str, Any]:
    """The ``code`` input channel that carries the code under network isolation (SDK)."""
    return {
        "ChannelName": CODE_CHANNEL_NAME,
        "DataSource": {
            "S3DataSource": {
                "S3DataType": "S3Prefix",
                "S3Uri": uri,
                "S3DataDistributionType": "FullyReplicated",
            }
        },
    }


def training_request(
    settings: TrainingSettings,
    user_hyperparameters: Mapping[str, Any],
    *,
    job_name: str,
    inputs: object,
    region: str,
    output_path: str | None,
) -> dict[str, Any]:
    """The exact ``CreateTrainingJob`` request for ``job_name``, checked in the SDK's order."""
    validate_name(job_name, kind="training job name")
    output = require_output_path(output_path)
    validate_resources(settings)
    local = not images.is_sagemaker_instance_type(settings.instance_type)
    options = settings.sagemaker_options
    options.check(local=local)
    algorithm: dict[str, Any] = {
        "TrainingImage": training_image(settings, region),
        # A single TrainingInput's input_mode is the job's (SDK rule).
        "TrainingInputMode": input_mode_override(inputs) or settings.input_mode,
    }
    if settings.metric_definitions:
        algorithm["MetricDefinitions"] = [dict(d) for d in settings.metric_definitions]
    request: dict[str, Any] = {
        "TrainingJobName": job_name,
        "AlgorithmSpecification": algorithm,
        "HyperParameters": hyperparameters(
            settings, user_hyperparameters, job_name=job_name, region=region, output_path=output
        ),
        "OutputDataConfig": {"S3OutputPath": output},
        "ResourceConfig": {
            "InstanceType": settings.instance_type,
            "InstanceCount": settings.instance_count,
            "VolumeSizeInGB": settings.volume_size,
        },
        "StoppingCondition": {"MaxRuntimeInSeconds": settings.max_run},
    }
    if settings.max_wait is not None:
        request["StoppingCondition"]["MaxWaitTimeInSeconds"] = settings.max_wait
    if settings.role:
        request["RoleArn"] = settings.role
    channels = input_data_config(inputs)
    model_channel = options.model_channel(to_uri)
    if model_channel is not None:
        channels.append(model_channel)
    code = code_uri(settings, job_name, output)
    if options.enable_network_isolation and code is not None:
        channels.append(_code_channel(code))
    if channels:
        request["InputDataConfig"] = channels
    vpc = vpc_config(settings.subnets, settings.security_group_ids)
    if vpc is not None:
        request["VpcConfig"] = vpc
    if settings.checkpoint_s3_uri:
        checkpoint = {"S3Uri": settings.checkpoint_s3_uri}
        if settings.checkpoint_local_path:
            checkpoint["LocalPath"] = settings.checkpoint_local_path
        request["CheckpointConfig"] = checkpoint
    if settings.environment:
        request["Environment"] = {str(k): str(v) for k, v in settings.environment.items()}
    tags = tag_list(settings.tags)
    if tags:
        request["Tags"] = tags
    if settings.use_spot_instances:
        request["EnableManagedSpotTraining"] = True
    options.apply(request, output_path=output, region=region, local=local)
    return request
