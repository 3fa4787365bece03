"""The estimator's arguments, pure: the image ones checked as SDK v2 checks them
(``choose_image``), and all of them read back from a job's description (``attach()``: the
inverse of ``rl_provider.core.training_request``, SDK v2's
``_prepare_init_params_from_job_description``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rl_provider.core import hyperparameters as hp
from rl_provider.core import toolkits
from rl_provider.core.enums import RLFramework, RLToolkit
from rl_provider.core.metrics import default_metric_definitions, validate_definitions
from rl_provider.core.training_options import CODE_CHANNEL_NAME, ISOLATED_SUBMIT_DIRECTORY
from rl_provider.core.training_request import RESERVED_HYPERPARAMETERS
from rl_provider.exceptions import RLConfigError, RLMissingArgumentError

if TYPE_CHECKING:
    from rl_provider.core.jobs import TrainingJobDescription

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class ImageChoice:
    """The checked image arguments: ``image_uri``, or a supported toolkit/version/framework
    (with the framework version of the SDK's table), and the metric definitions."""

    toolkit: RLToolkit | None
    toolkit_version: str | None
    framework: RLFramework | None
    image_uri: str | None
    framework_version: str | None
    metric_definitions: list[dict[str, str]]


def choose_image(
    *,
    toolkit: RLToolkit | str | None,
    toolkit_version: str | None,
    framework: RLFramework | str | None,
    image_uri: str | None,
    image_name: str | None,
    metric_definitions: Sequence[Mapping[str, str]] | None,
) -> ImageChoice:
    """Check the image arguments in the SDK's order: bad enum value -> missing arguments ->
    unsupported combination. ``image_name`` is the SDK's old name of ``image_uri``."""
    if image_name is not None and image_uri is not None and image_name != image_uri:
        raise RLConfigError(
            f"image_name={image_name!r} and image_uri={image_uri!r} disagree: image_name is "
            "the SDK's old name for image_uri; pass only image_uri."
        )
    image_uri = image_uri or image_name
    kit = RLToolkit.coerce(toolkit, argument="toolkit") if toolkit else None
    fw = RLFramework.coerce(framework, argument="framework") if framework else None
    version = str(toolkit_version) if toolkit_version else None
    framework_version = None
    named = {"toolkit": toolkit, "toolkit_version": toolkit_version, "framework": framework}
    if image_uri:
        given = [name for name, value in named.items() if value]
        if given:
            log.warning(
                "Parameter `image_uri` is specified, `%s` are going to be ignored when "
                "choosing the image.",
                "`, `".join(given),
            )
    else:
        checked = {"toolkit": kit, "toolkit_version": version, "framework": fw}
        missing = [name for name, value in checked.items() if not value]
        if kit is None or version is None or fw is None:
            raise RLMissingArgumentError(
                "Please provide `{}` or `image_uri` parameter.".format("`, `".join(missing))
            )
        toolkits.check_supported(kit, version, fw)
        framework_version = toolkits.framework_version(kit, version, fw)
    if metric_definitions:
        metrics = validate_definitions(metric_definitions)
    elif kit and not image_uri:
        metrics = default_metric_definitions(kit, version)
    else:
        metrics = []
    return ImageChoice(
        toolkit=kit,
        toolkit_version=version,
        framework=fw,
        image_uri=image_uri,
        framework_version=framework_version,
        metric_definitions=metrics,
    )


def _image_identity(description: TrainingJobDescription) -> dict[str, Any]:
    """``image_uri=`` for a custom image, else the toolkit, version and framework it encodes."""
    image = str(description.algorithm_specification.get("TrainingImage", ""))
    parsed = toolkits.parse_image(image)
    if parsed is None and toolkits.is_framework_image(image):
        # SDK: an image of another SageMaker framework is not an RL job.
        raise RLConfigError(
            f"Training job: {description.training_job_name} didn't use image for requested "
            f"framework: {image!r} is a SageMaker framework image, not an RL one. Attach "
            "with that framework's estimator, or rebuild this one with image_uri=."
        )
    if parsed is None:
        return {"image_uri": image}
    if not toolkits.is_supported(parsed.toolkit, parsed.toolkit_version, parsed.framework):
        raise RLConfigError(
            f"Training job {description.training_job_name} didn't use an image for the "
            f"requested framework: {image!r} is {parsed.toolkit.value} "
            f"{parsed.toolkit_version} with {parsed.framework.value}, which no RL image "
            "has."
        )
    return {
        "toolkit": parsed.toolkit,
        "toolkit_version": parsed.toolkit_version,
        "framework": parsed.framework,
    }


def estimator_arguments(
    description: TrainingJobDescription, model_channel_name: str = "model"
) -> dict[str, Any]:
    """``RLEstimator(**estimator_arguments(description))`` rebuilds the job's estimator (but
    for ``backend``, ``base_job_name`` and ``tags``, which ``attach()`` adds)."""
    hps = dict(description.hyper_parameters)
    program = hp.decode_value(hps.pop("sagemaker_program", '""'))
    submit = hp.decode_value(hps.pop("sagemaker_submit_directory", "null"))
    log_level = hp.decode_value(hps.pop("sagemaker_container_log_level", "20"))
    for key in RESERVED_HYPERPARAMETERS:
        hps.pop(key, None)
    identity = _image_identity(description)
    algorithm = description.algorithm_specification
    resources = description.resource_config
    stopping = description.stopping_condition
    vpc = description.vpc_config or {}
    checkpoint = description.checkpoint_config or {}
    retry = description.extra.get("RetryStrategy") or {}
    channel_uris = {
        channel.get("ChannelName"): channel["DataSource"]["S3DataSource"]["S3Uri"]
        for channel in description.input_data_config
        if "S3DataSource" in channel.get("DataSource", {})
    }
    if submit == ISOLATED_SUBMIT_DIRECTORY:  # network isolation: the code came as a channel
        submit = channel_uris.get(CODE_CHANNEL_NAME, submit)
    return {
        "entry_point": str(program),
        "source_dir": submit if isinstance(submit, str) else None,
        "hyperparameters": hp.decode(hps),
        "metric_definitions": algorithm.get("MetricDefinitions"),
        "role": description.role_arn,
        "instance_count": int(resources.get("InstanceCount", 1)),
        "instance_type": str(resources.get("InstanceType", "local")),
        "volume_size": int(resources.get("VolumeSizeInGB", 30)),
        "max_run": int(stopping.get("MaxRuntimeInSeconds", 86400)),
        "max_wait": stopping.get("MaxWaitTimeInSeconds"),
        "output_path": description.output_data_config.get("S3OutputPath"),
        "use_spot_instances": description.enable_managed_spot_training,
        "checkpoint_s3_uri": checkpoint.get("S3Uri"),
        "checkpoint_local_path": checkpoint.get("LocalPath"),
        "subnets": vpc.get("Subnets"),
        "security_group_ids": vpc.get("SecurityGroupIds"),
        "environment": description.environment,
        "container_log_level": int(log_level) if isinstance(log_level, int) else logging.INFO,
        "input_mode": str(algorithm.get("TrainingInputMode", "File")),
        # As the SDK: KmsKeyId as described ("" included); VolumeKmsKeyId is not recovered.
        "output_kms_key": description.output_data_config.get("KmsKeyId"),
        "keep_alive_period_in_seconds": resources.get("KeepAlivePeriodInSeconds"),
        "encrypt_inter_container_traffic": description.extra.get(
            "EnableInterContainerTrafficEncryption"
        ),
        "enable_network_isolation": description.extra.get("EnableNetworkIsolation"),
        "max_retry_attempts": retry.get("MaximumRetryAttempts"),
        # SDK: the pre-trained model channel is recovered by its name (attach's argument).
        "model_uri": channel_uris.get(model_channel_name),
        "model_channel_name": model_channel_name,
        **identity,
    }
