"""Typed descriptions of SageMaker responses: training jobs, models, endpoint configs, endpoints.

Every backend returns these from its ``describe_*`` methods (DESIGN section 4); ``to_api()`` is
the dict SageMaker's API would have returned, so code written against boto3 keeps working. A
class declares its fields and nothing of the API: ``rl_provider.core.api_values`` derives the
SageMaker keys from them and holds the rules every class follows (datetimes, absent keys,
``extra``, unknown statuses).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, cast

from rl_provider.core.api_values import ApiValue, within
from rl_provider.core.enums import EndpointStatus, SecondaryStatus, StatusEnum, TrainingJobStatus
from rl_provider.exceptions import JobFailedError

__all__ = [
    "ContainerDefinition",
    "EndpointConfigDescription",
    "EndpointDescription",
    "MetricData",
    "ModelDescription",
    "ProductionVariant",
    "StatusTransition",
    "TrainingJobDescription",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class MetricData(ApiValue):
    """One ``FinalMetricDataList`` item of DescribeTrainingJob."""

    metric_name: str
    value: float
    timestamp: datetime | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class StatusTransition(ApiValue):
    """One ``SecondaryStatusTransitions`` item of DescribeTrainingJob."""

    status: SecondaryStatus
    start_time: datetime
    end_time: datetime | None = None
    status_message: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


class _HasStatus(ApiValue):
    """A resource whose status field (``_STATUS``) says whether it has ended, and how."""

    __slots__ = ()

    _STATUS: ClassVar[str]

    @property
    def is_terminal(self) -> bool:
        return cast("StatusEnum", getattr(self, self._STATUS)).is_terminal()

    @property
    def is_failure(self) -> bool:
        """Terminal but not Completed / InService: a job that failed or was stopped, an endpoint
        that cannot serve (Failed, OutOfService, UpdateRollbackFailed)."""
        return cast("StatusEnum", getattr(self, self._STATUS)).is_failure()


# The CreateTrainingJob keys DescribeTrainingJob echoes back (a backend that keeps the request
# describes the job with them).
REQUEST_ECHO_KEYS = (
    "AlgorithmSpecification",
    "HyperParameters",
    "RoleArn",
    "InputDataConfig",
    "OutputDataConfig",
    "ResourceConfig",
    "StoppingCondition",
    "Environment",
    "VpcConfig",
    "CheckpointConfig",
    "EnableManagedSpotTraining",
)


def request_echo(request: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a CreateTrainingJob request that DescribeTrainingJob returns."""
    return {key: request[key] for key in REQUEST_ECHO_KEYS if key in request}


@dataclass(frozen=True, slots=True, kw_only=True)
class TrainingJobDescription(_HasStatus):
    """DescribeTrainingJob's response.

    ``ModelArtifacts`` is flattened to ``model_artifacts`` (its ``S3ModelArtifacts``).
    """

    training_job_name: str
    training_job_arn: str | None = None
    training_job_status: TrainingJobStatus
    secondary_status: SecondaryStatus | None = None
    failure_reason: str | None = None
    model_artifacts: str | None = field(default=None, metadata=within("S3ModelArtifacts"))
    hyper_parameters: Mapping[str, str] = field(default_factory=dict)
    algorithm_specification: Mapping[str, Any] = field(default_factory=dict)
    role_arn: str | None = None
    input_data_config: Sequence[Mapping[str, Any]] = ()
    output_data_config: Mapping[str, Any] = field(default_factory=dict)
    resource_config: Mapping[str, Any] = field(default_factory=dict)
    stopping_condition: Mapping[str, Any] = field(default_factory=dict)
    environment: Mapping[str, str] = field(default_factory=dict)
    vpc_config: Mapping[str, Any] | None = None
    checkpoint_config: Mapping[str, Any] | None = None
    enable_managed_spot_training: bool = False
    creation_time: datetime
    training_start_time: datetime | None = None
    training_end_time: datetime | None = None
    last_modified_time: datetime | None = None
    secondary_status_transitions: tuple[StatusTransition, ...] = ()
    final_metric_data_list: tuple[MetricData, ...] = ()
    training_time_in_seconds: int | None = None
    billable_time_in_seconds: int | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    _STATUS: ClassVar[str] = "training_job_status"

    @property
    def model_data(self) -> str | None:
        """The ``model.tar.gz`` URI (SDK name: ``estimator.model_data``)."""
        return self.model_artifacts

    @property
    def final_metrics(self) -> dict[str, float]:
        """Metric name -> value; a name listed more than once keeps its last value."""
        return {metric.metric_name: metric.value for metric in self.final_metric_data_list}

    @property
    def max_runtime_exceeded(self) -> bool:
        """Stopped by ``MaxRuntimeInSeconds``: the artifacts written so far exist."""
        return self.secondary_status is SecondaryStatus.MAX_RUNTIME_EXCEEDED

    def failure_error(self) -> JobFailedError:
        """``job_failed_error`` for this (Failed or Stopped) job."""
        return job_failed_error(
            self.training_job_name,
            self.training_job_status,
            self.failure_reason,
            self.secondary_status,
        )


def job_failed_error(
    name: str,
    status: TrainingJobStatus,
    failure_reason: str | None,
    secondary_status: SecondaryStatus | str | None,
) -> JobFailedError:
    """The error for a job that ended Failed or Stopped, saying whether MaxRuntimeExceeded
    stopped it (its artifacts exist) or a stop request did.

    One wording for ``TrainingJob.wait`` (``fit()``), the training operator and the sensor.
    """
    reason = failure_reason
    if secondary_status == SecondaryStatus.MAX_RUNTIME_EXCEEDED.value:
        reason = (reason + "; " if reason else "") + (
            "MaxRuntimeExceeded: the job was stopped at MaxRuntimeInSeconds (the estimator's "
            "max_run); the artifacts written so far were saved"
        )
    elif status is TrainingJobStatus.STOPPED and not reason:
        reason = "stopped before it completed (StopTrainingJob or a killed task)"
    return JobFailedError(name, status.value, reason)


@dataclass(frozen=True, slots=True, kw_only=True)
class ContainerDefinition(ApiValue):
    """``PrimaryContainer`` of CreateModel / DescribeModel."""

    image: str
    model_data_url: str | None = None
    environment: Mapping[str, str] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelDescription(ApiValue):
    """DescribeModel's response (single-container models: ``PrimaryContainer``)."""

    model_name: str
    model_arn: str | None = None
    primary_container: ContainerDefinition
    execution_role_arn: str | None = None
    creation_time: datetime
    vpc_config: Mapping[str, Any] | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class ProductionVariant(ApiValue):
    """One ``ProductionVariants`` item of CreateEndpointConfig / DescribeEndpointConfig."""

    variant_name: str
    model_name: str
    initial_instance_count: int
    instance_type: str
    # SageMaker's default weight when CreateEndpointConfig omits it.
    initial_variant_weight: float = 1.0
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class EndpointConfigDescription(ApiValue):
    """DescribeEndpointConfig's response."""

    endpoint_config_name: str
    endpoint_config_arn: str | None = None
    production_variants: tuple[ProductionVariant, ...] = ()
    creation_time: datetime
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class EndpointDescription(_HasStatus):
    """DescribeEndpoint's response.

    ``production_variants`` are DescribeEndpoint's runtime variant summaries (current weight and
    instance count, deployed images), kept as JSON-safe dicts.
    """

    endpoint_name: str
    endpoint_arn: str | None = None
    endpoint_config_name: str
    endpoint_status: EndpointStatus
    failure_reason: str | None = None
    creation_time: datetime
    last_modified_time: datetime
    production_variants: tuple[Mapping[str, Any], ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)

    _STATUS: ClassVar[str] = "endpoint_status"
