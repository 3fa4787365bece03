"""SDK v2 estimator arguments that only shape the request: where each goes in CreateTrainingJob.

``sagemaker.rl.RLEstimator`` accepts every ``EstimatorBase``/``Framework`` argument; the ones the
core does not need for its own work (packaging, naming, images) live here, together with the rule
that puts each one into the request exactly where SDK v2.257.7 puts it (checked against the
golden files in ``tests/core/golden/sdk_v2_257_7``).

SDK objects (``DebuggerHookConfig``, ``ProfilerConfig``, ``TensorBoardOutputConfig``) are taken
duck-typed through their ``_to_request_dict()``, or as the API dict itself; the SDK is never
imported.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rl_provider.exceptions import RLConfigError

# sagemaker.fw_utils (SDK v2.257.7): regions without SageMaker Debugger / Profiler.
DEBUGGER_UNSUPPORTED_REGIONS = frozenset(
    {
        "us-iso-east-1",
        "us-isob-east-1",
        "ap-southeast-3",
        "ap-southeast-4",
        "eu-south-2",
        "me-central-1",
        "ap-south-2",
        "eu-central-2",
        "us-gov-east-1",
    }
)
PROFILER_UNSUPPORTED_REGIONS = DEBUGGER_UNSUPPORTED_REGIONS
# The channel a pre-trained model_uri arrives in (sagemaker.estimator._TrainingJob).
MODEL_CHANNEL_CONTENT_TYPE = "application/x-sagemaker-model"
# With network isolation the code travels as an input channel (sagemaker.estimator.Framework).
CODE_CHANNEL_NAME = "code"
ISOLATED_SUBMIT_DIRECTORY = "/opt/ml/input/data/code/sourcedir.tar.gz"

# Arguments SDK v2 accepts that the provider refuses, with what to do instead.
REFUSED_ARGUMENTS = {
    "git_config": (
        "clone the repository yourself (in a task before training) and pass its folder as "
        "source_dir"
    ),
    "instance_groups": (
        "heterogeneous clusters are not supported; use instance_type and instance_count"
    ),
    "instance_placement_config": (
        "instance placement is not supported; use instance_type and instance_count"
    ),
}
# Arguments the local backend cannot honour: refused there rather than silently ignored.
# (max_retry_attempts is not here: SageMaker retries only InternalServerError failures, which
# the local backend does not have, so accepting it there keeps its meaning.)
SAGEMAKER_ONLY_BEHAVIOUR = {
    "enable_network_isolation": "the local backend runs the entry point with network access",
    "container_entry_point": "the local backend runs the script-mode entry point itself",
    "container_arguments": "the local backend runs the script-mode entry point itself",
    "disable_output_compression": "the local backend always writes model.tar.gz",
}


def api_dict(value: object, argument: str) -> dict[str, Any]:
    """An SDK config object (duck-typed ``_to_request_dict()``) or an API dict, as a dict."""
    to_request = getattr(value, "_to_request_dict", None)
    if callable(to_request):
        result = to_request()
        if isinstance(result, Mapping):
            return dict(result)
    if isinstance(value, Mapping):
        return dict(value)
    raise RLConfigError(
        f"{argument}={value!r}: pass the SDK's config object or its API dict "
        f"(the {argument} section of CreateTrainingJob)."
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class TrainingOptions:
    """The request-only arguments of ``sagemaker.estimator.EstimatorBase`` (SDK v2.257.7)."""

    keep_alive_period_in_seconds: int | None = None
    volume_kms_key: str | None = None
    output_kms_key: str | None = None
    model_uri: str | None = None
    model_channel_name: str = "model"
    encrypt_inter_container_traffic: bool | None = None
    rules: Sequence[Any] | None = None
    debugger_hook_config: Any = None
    tensorboard_output_config: Any = None
    enable_sagemaker_metrics: bool | None = None
    enable_network_isolation: bool | None = None
    profiler_config: Any = None
    disable_profiler: bool | None = None
    max_retry_attempts: int | None = None
    training_repository_access_mode: str | None = None
    training_repository_credentials_provider_arn: str | None = None
    enable_infra_check: bool | None = None
    container_entry_point: Sequence[str] | None = None
    container_arguments: Sequence[str] | None = None
    disable_output_compression: bool = False
    enable_remote_debug: bool | None = None
    enable_session_tag_chaining: bool | None = None
    training_plan: str | None = None

    def check(self, *, local: bool) -> None:
        """Refuse what cannot be honoured, naming the argument and the way out."""
        if self.rules:
            raise RLConfigError(
                "rules=[...]: SageMaker Debugger/Profiler rules are not supported (their "
                "processing jobs are SDK machinery); drop rules and analyse the debugger output "
                "in S3, or pass debugger_hook_config/profiler_config only."
            )
        if self.disable_profiler and self.profiler_config is not None:
            profiler = api_dict(self.profiler_config, "profiler_config")
            if profiler.get("DisableProfiler") is False:
                raise RLConfigError(
                    "disable_profiler=True with a profiler_config that enables the profiler: "
                    "pass only one of them."
                )
        if self.debugger_hook_config not in (None, False):
            api_dict(self.debugger_hook_config, "debugger_hook_config")
        if self.tensorboard_output_config is not None:
            api_dict(self.tensorboard_output_config, "tensorboard_output_config")
        if self.max_retry_attempts is not None and (
            isinstance(self.max_retry_attempts, bool)
            or not isinstance(self.max_retry_attempts, int)
            or not 1 <= self.max_retry_attempts <= 30
        ):
            raise RLConfigError(
                f"max_retry_attempts={self.max_retry_attempts!r}: SageMaker accepts an int "
                "from 1 to 30 (RetryStrategy.MaximumRetryAttempts)."
            )
        if self.model_uri is not None and not isinstance(self.model_uri, str):
            raise RLConfigError(f"model_uri={self.model_uri!r}: pass an s3:// or file:// URI.")
        if local:
            for argument, why in SAGEMAKER_ONLY_BEHAVIOUR.items():
                if getattr(self, argument):
                    raise RLConfigError(
                        f"{argument}={getattr(self, argument)!r} is not supported by the local "
                        f"backend ({why}): drop it for local runs, or train on SageMaker "
                        "(instance_type='ml.*')."
                    )

    def model_channel(self, to_uri: Any) -> dict[str, Any] | None:
        """The pre-trained model channel (``model_uri``), as the SDK builds it."""
        if not self.model_uri:
            return None
        return {
            "ChannelName": self.model_channel_name,
            "DataSource": {
                "S3DataSource": {
                    "S3DataType": "S3Prefix",
                    "S3Uri": to_uri(self.model_uri),
                    "S3DataDistributionType": "FullyReplicated",
                }
            },
            "ContentType": MODEL_CHANNEL_CONTENT_TYPE,
            "InputMode": "File",
        }

    def apply(self, request: dict[str, Any], *, output_path: str, region: str, local: bool) -> None:
        """Add the options to a CreateTrainingJob ``request`` as SDK v2.257.7 does."""
        resources = request["ResourceConfig"]
        algorithm = request["AlgorithmSpecification"]
        if self.keep_alive_period_in_seconds is not None:
            resources["KeepAlivePeriodInSeconds"] = self.keep_alive_period_in_seconds
        if self.volume_kms_key is not None:
            resources["VolumeKmsKeyId"] = self.volume_kms_key
        if self.training_plan is not None:
            resources["TrainingPlanArn"] = self.training_plan
        if self.output_kms_key is not None:
            request["OutputDataConfig"]["KmsKeyId"] = self.output_kms_key
        if self.disable_output_compression:
            request["OutputDataConfig"]["CompressionType"] = "NONE"
        if self.enable_sagemaker_metrics is not None:
            algorithm["EnableSageMakerMetricsTimeSeries"] = bool(self.enable_sagemaker_metrics)
        if self.container_entry_point:
            algorithm["ContainerEntrypoint"] = list(self.container_entry_point)
        if self.container_arguments:
            algorithm["ContainerArguments"] = list(self.container_arguments)
        if self.training_repository_access_mode is not None:
            image_config: dict[str, Any] = {
                "TrainingRepositoryAccessMode": self.training_repository_access_mode
            }
            if self.training_repository_credentials_provider_arn is not None:
                image_config["TrainingRepositoryAuthConfig"] = {
                    "TrainingRepositoryCredentialsProviderArn": (
                        self.training_repository_credentials_provider_arn
                    )
                }
            algorithm["TrainingImageConfig"] = image_config
        if self.encrypt_inter_container_traffic:
            request["EnableInterContainerTrafficEncryption"] = True
        if self.enable_network_isolation:
            request["EnableNetworkIsolation"] = True
        if self.max_retry_attempts is not None:
            request["RetryStrategy"] = {"MaximumRetryAttempts": self.max_retry_attempts}
        if self.enable_infra_check is not None:
            request["InfraCheckConfig"] = {"EnableInfraCheck": bool(self.enable_infra_check)}
        if self.enable_remote_debug is not None:
            request["RemoteDebugConfig"] = {"EnableRemoteDebug": bool(self.enable_remote_debug)}
        if self.enable_session_tag_chaining is not None:
            request["SessionChainingConfig"] = {
                "EnableSessionTagChaining": bool(self.enable_session_tag_chaining)
            }
        if self.tensorboard_output_config is not None:
            request["TensorBoardOutputConfig"] = api_dict(
                self.tensorboard_output_config, "tensorboard_output_config"
            )
        if not local:
            # The local backend has no Debugger or Profiler: those sections mean nothing there.
            debugger = self.debug_hook_config(output_path, region)
            if debugger is not None:
                request["DebugHookConfig"] = debugger
            request["ProfilerConfig"] = self.profiler_section(output_path, region)

    def debug_hook_config(self, output_path: str, region: str) -> dict[str, Any] | None:
        """SDK: the default hook writes to ``output_path``; ``False`` turns it off."""
        if self.debugger_hook_config is False:
            return None
        supported = region.lower() not in DEBUGGER_UNSUPPORTED_REGIONS
        if self.debugger_hook_config in (None, {}):
            if not supported:
                return None
            return {"S3OutputPath": output_path, "CollectionConfigurations": []}
        if not supported:
            raise RLConfigError(
                f"Region {region} has no SageMaker Debugger but debugger_hook_config is set: "
                "pass debugger_hook_config=False there."
            )
        hook = api_dict(self.debugger_hook_config, "debugger_hook_config")
        if not hook.get("S3OutputPath"):
            hook["S3OutputPath"] = output_path
        return hook

    def profiler_section(self, output_path: str, region: str) -> dict[str, Any]:
        """SDK: the profiler is on (writing to ``output_path``) unless disabled or unsupported."""
        unsupported = region.lower() in PROFILER_UNSUPPORTED_REGIONS
        if (self.disable_profiler or unsupported) and self.profiler_config is None:
            return {"DisableProfiler": True}
        if self.profiler_config is None:
            return {"S3OutputPath": output_path, "DisableProfiler": False}
        profiler = api_dict(self.profiler_config, "profiler_config")
        if not profiler.get("S3OutputPath") and not profiler.get("DisableProfiler"):
            profiler["S3OutputPath"] = output_path
        return profiler
