"""Typed descriptions of SageMaker responses: training jobs, models, endpoint configs, endpoints.

Every backend returns these from its ``describe_*`` methods (DESIGN section 4); ``to_api()`` is
the dict SageMaker's API would have returned, so code written against boto3 keeps working.

Rules shared by every class:

- ``from_api(data)`` reads a boto3 ``describe_*`` response, or the output of ``to_api()`` after
  a trip through JSON (an Airflow XCom). Key names are SageMaker's, exactly.
- Datetimes are accepted as ``datetime`` objects (botocore gives tz-aware ones; a naive one is
  taken as UTC), ISO-8601 strings, or epoch seconds (SageMaker's raw JSON protocol). They are
  stored as tz-aware UTC ``datetime`` and emitted by ``to_api()`` as ``isoformat()`` strings, so
  ``json.dumps(x.to_api())`` always works and ``from_api(x.to_api()) == x``.
- ``to_api()`` emits a key only when it has a value: ``None`` and empty collections are left
  out, as SageMaker leaves out unset optional members. An absent key reads back as ``None`` or
  empty, so the round trip holds. ``False`` and ``0`` are values and always emitted.
- Keys a class does not model are kept in ``extra`` (nested datetimes turned into ISO strings)
  and emitted back by ``to_api()``; boto3's ``ResponseMetadata`` (about the HTTP call, not the
  resource) is dropped.
- Status fields use the enums of ``rl_provider.core.enums``, which list every value SageMaker
  documents; an unknown status raises ``BackendError`` naming it rather than guessing its meaning.
- A missing required key raises ``BackendError`` naming it.

However an object is built (``from_api`` or the constructor), its fields are normalized the same
way: datetimes to UTC, status strings to enum members, mappings to JSON-safe ``dict`` copies,
sequences to tuples, empty optional mappings to ``None``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, ClassVar, Self, TypeVar, cast

from rl_provider.core.enums import EndpointStatus, SecondaryStatus, TrainingJobStatus
from rl_provider.exceptions import BackendError, JobFailedError

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

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

_E = TypeVar("_E", bound=StrEnum)

# boto3 adds this to every response; it describes the HTTP call, not the resource.
_DROPPED_KEYS = frozenset({"ResponseMetadata"})


def _as_utc(value: datetime) -> datetime:
    """A tz-aware UTC datetime; a naive one is taken as UTC (SageMaker's clock)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _parse_datetime(value: object, key: str) -> datetime:
    if isinstance(value, datetime):
        return _as_utc(value)
    try:
        if isinstance(value, str):
            return _as_utc(datetime.fromisoformat(value))
        if isinstance(value, int | float) and not isinstance(value, bool):
            return datetime.fromtimestamp(value, UTC)
    except (ValueError, OverflowError, OSError):
        pass
    raise BackendError(
        f"{key} must be a datetime, an ISO-8601 string or epoch seconds, got {value!r}."
    )


def _json_safe(value: Any) -> Any:
    """A JSON-encodable copy: datetimes -> ISO strings, mappings -> dicts, sequences -> lists."""
    if isinstance(value, datetime):
        return _as_utc(value).isoformat()
    if isinstance(value, Mapping):
        return {str(key): _json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(item) for item in value]
    return value


def _parse_enum(enum_cls: type[_E], value: object) -> _E:
    if isinstance(value, enum_cls):
        return value
    if isinstance(value, str):
        for member in enum_cls:
            if member.value == value:
                return member
    known = ", ".join(member.value for member in enum_cls)
    raise BackendError(
        f"Unknown {enum_cls.__name__} {value!r}: known values are {known}. SageMaker may "
        "have added it since; upgrade rl_provider or report the value."
    )


def _is_empty(value: object) -> bool:
    return value is None or (isinstance(value, Mapping | list | tuple) and not value)


def _mapping(data: object, what: str) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise BackendError(f"{what} must be a mapping of SageMaker keys, got {data!r}.")
    return data


def _require(data: Mapping[str, Any], key: str, what: str) -> Any:
    try:
        return data[key]
    except KeyError:
        raise BackendError(
            f"{what}: the response has no {key!r} (keys present: {sorted(data)})."
        ) from None


def _optional_datetime(data: Mapping[str, Any], key: str) -> datetime | None:
    value = data.get(key)
    return None if value is None else _parse_datetime(value, key)


def _optional_int(data: Mapping[str, Any], key: str) -> int | None:
    value = data.get(key)
    return None if value is None else int(value)


def _extra(data: Mapping[str, Any], known: frozenset[str]) -> dict[str, Any]:
    return {
        key: value for key, value in data.items() if key not in known and key not in _DROPPED_KEYS
    }


def _emit(values: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """SageMaker's dict: modelled keys that have a value, then the ``extra`` keys."""
    out = {key: _json_safe(value) for key, value in values.items() if not _is_empty(value)}
    for key, value in extra.items():
        out.setdefault(key, _json_safe(value))
    return out


class _ApiValue:
    """Normalizes the fields after ``__init__``, whichever way the object was built."""

    __slots__ = ()

    # Field name -> enum for the status fields; strings are parsed into members.
    _ENUMS: ClassVar[Mapping[str, type[StrEnum]]] = {}

    def __post_init__(self) -> None:
        for spec in fields(cast("DataclassInstance", self)):
            value = getattr(self, spec.name)
            enum_cls = self._ENUMS.get(spec.name)
            if enum_cls is not None and value is not None:
                value = _parse_enum(enum_cls, value)
            elif isinstance(value, datetime):
                value = _as_utc(value)
            elif isinstance(value, Mapping):
                # An empty optional mapping is emitted as nothing and read back as None.
                value = None if spec.default is None and not value else _json_safe(value)
            elif isinstance(value, list | tuple):
                value = tuple(_json_safe(v) if isinstance(v, Mapping) else v for v in value)
            object.__setattr__(self, spec.name, value)


@dataclass(frozen=True, slots=True, kw_only=True)
class MetricData(_ApiValue):
    """One ``FinalMetricDataList`` item of DescribeTrainingJob."""

    metric_name: str
    value: float
    timestamp: datetime | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    _KEYS: ClassVar[frozenset[str]] = frozenset({"MetricName", "Value", "Timestamp"})

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Self:
        data = _mapping(data, cls.__name__)
        return cls(
            metric_name=_require(data, "MetricName", cls.__name__),
            value=float(_require(data, "Value", cls.__name__)),
            timestamp=_optional_datetime(data, "Timestamp"),
            extra=_extra(data, cls._KEYS),
        )

    def to_api(self) -> dict[str, Any]:
        return _emit(
            {"MetricName": self.metric_name, "Value": self.value, "Timestamp": self.timestamp},
            self.extra,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class StatusTransition(_ApiValue):
    """One ``SecondaryStatusTransitions`` item of DescribeTrainingJob."""

    status: SecondaryStatus
    start_time: datetime
    end_time: datetime | None = None
    status_message: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    _ENUMS: ClassVar[Mapping[str, type[StrEnum]]] = {"status": SecondaryStatus}
    _KEYS: ClassVar[frozenset[str]] = frozenset({"Status", "StartTime", "EndTime", "StatusMessage"})

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Self:
        data = _mapping(data, cls.__name__)
        return cls(
            status=_parse_enum(SecondaryStatus, _require(data, "Status", cls.__name__)),
            start_time=_parse_datetime(_require(data, "StartTime", cls.__name__), "StartTime"),
            end_time=_optional_datetime(data, "EndTime"),
            status_message=data.get("StatusMessage"),
            extra=_extra(data, cls._KEYS),
        )

    def to_api(self) -> dict[str, Any]:
        return _emit(
            {
                "Status": self.status.value,
                "StartTime": self.start_time,
                "EndTime": self.end_time,
                "StatusMessage": self.status_message,
            },
            self.extra,
        )


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
class TrainingJobDescription(_ApiValue):
    """DescribeTrainingJob's response.

    ``ModelArtifacts`` is flattened to ``model_artifacts`` (its ``S3ModelArtifacts``).
    """

    training_job_name: str
    training_job_arn: str | None = None
    training_job_status: TrainingJobStatus
    secondary_status: SecondaryStatus | None = None
    failure_reason: str | None = None
    model_artifacts: str | None = None
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

    _ENUMS: ClassVar[Mapping[str, type[StrEnum]]] = {
        "training_job_status": TrainingJobStatus,
        "secondary_status": SecondaryStatus,
    }
    _KEYS: ClassVar[frozenset[str]] = frozenset(
        {
            "TrainingJobName",
            "TrainingJobArn",
            "TrainingJobStatus",
            "SecondaryStatus",
            "FailureReason",
            "ModelArtifacts",
            "HyperParameters",
            "AlgorithmSpecification",
            "RoleArn",
            "InputDataConfig",
            "OutputDataConfig",
            "ResourceConfig",
            "StoppingCondition",
            "Environment",
            "VpcConfig",
            "CheckpointConfig",
            "EnableManagedSpotTraining",
            "CreationTime",
            "TrainingStartTime",
            "TrainingEndTime",
            "LastModifiedTime",
            "SecondaryStatusTransitions",
            "FinalMetricDataList",
            "TrainingTimeInSeconds",
            "BillableTimeInSeconds",
        }
    )

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Self:
        what = cls.__name__
        data = _mapping(data, what)
        secondary = data.get("SecondaryStatus")
        artifacts = _mapping(data.get("ModelArtifacts") or {}, "ModelArtifacts")
        return cls(
            training_job_name=_require(data, "TrainingJobName", what),
            training_job_arn=data.get("TrainingJobArn"),
            training_job_status=_parse_enum(
                TrainingJobStatus, _require(data, "TrainingJobStatus", what)
            ),
            secondary_status=None if secondary is None else _parse_enum(SecondaryStatus, secondary),
            failure_reason=data.get("FailureReason"),
            model_artifacts=artifacts.get("S3ModelArtifacts"),
            hyper_parameters=data.get("HyperParameters") or {},
            algorithm_specification=data.get("AlgorithmSpecification") or {},
            role_arn=data.get("RoleArn"),
            input_data_config=tuple(data.get("InputDataConfig") or ()),
            output_data_config=data.get("OutputDataConfig") or {},
            resource_config=data.get("ResourceConfig") or {},
            stopping_condition=data.get("StoppingCondition") or {},
            environment=data.get("Environment") or {},
            vpc_config=data.get("VpcConfig"),
            checkpoint_config=data.get("CheckpointConfig"),
            enable_managed_spot_training=bool(data.get("EnableManagedSpotTraining", False)),
            creation_time=_parse_datetime(_require(data, "CreationTime", what), "CreationTime"),
            training_start_time=_optional_datetime(data, "TrainingStartTime"),
            training_end_time=_optional_datetime(data, "TrainingEndTime"),
            last_modified_time=_optional_datetime(data, "LastModifiedTime"),
            secondary_status_transitions=tuple(
                StatusTransition.from_api(item)
                for item in data.get("SecondaryStatusTransitions") or ()
            ),
            final_metric_data_list=tuple(
                MetricData.from_api(item) for item in data.get("FinalMetricDataList") or ()
            ),
            training_time_in_seconds=_optional_int(data, "TrainingTimeInSeconds"),
            billable_time_in_seconds=_optional_int(data, "BillableTimeInSeconds"),
            extra=_extra(data, cls._KEYS),
        )

    def to_api(self) -> dict[str, Any]:
        return _emit(
            {
                "TrainingJobName": self.training_job_name,
                "TrainingJobArn": self.training_job_arn,
                "TrainingJobStatus": self.training_job_status.value,
                "SecondaryStatus": (
                    None if self.secondary_status is None else self.secondary_status.value
                ),
                "FailureReason": self.failure_reason,
                "ModelArtifacts": (
                    None
                    if self.model_artifacts is None
                    else {"S3ModelArtifacts": self.model_artifacts}
                ),
                "HyperParameters": self.hyper_parameters,
                "AlgorithmSpecification": self.algorithm_specification,
                "RoleArn": self.role_arn,
                "InputDataConfig": self.input_data_config,
                "OutputDataConfig": self.output_data_config,
                "ResourceConfig": self.resource_config,
                "StoppingCondition": self.stopping_condition,
                "Environment": self.environment,
                "VpcConfig": self.vpc_config,
                "CheckpointConfig": self.checkpoint_config,
                "EnableManagedSpotTraining": self.enable_managed_spot_training,
                "CreationTime": self.creation_time,
                "TrainingStartTime": self.training_start_time,
                "TrainingEndTime": self.training_end_time,
                "LastModifiedTime": self.last_modified_time,
                "SecondaryStatusTransitions": [
                    item.to_api() for item in self.secondary_status_transitions
                ],
                "FinalMetricDataList": [item.to_api() for item in self.final_metric_data_list],
                "TrainingTimeInSeconds": self.training_time_in_seconds,
                "BillableTimeInSeconds": self.billable_time_in_seconds,
            },
            self.extra,
        )

    @property
    def model_data(self) -> str | None:
        """The ``model.tar.gz`` URI (SDK name: ``estimator.model_data``)."""
        return self.model_artifacts

    @property
    def final_metrics(self) -> dict[str, float]:
        """Metric name -> value; a name listed more than once keeps its last value."""
        return {metric.metric_name: metric.value for metric in self.final_metric_data_list}

    @property
    def is_terminal(self) -> bool:
        return self.training_job_status.is_terminal()

    @property
    def is_failure(self) -> bool:
        """Failed or Stopped: the task that waited for the job fails."""
        return self.training_job_status.is_failure()

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
class ContainerDefinition(_ApiValue):
    """``PrimaryContainer`` of CreateModel / DescribeModel."""

    image: str
    model_data_url: str | None = None
    environment: Mapping[str, str] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict)

    _KEYS: ClassVar[frozenset[str]] = frozenset({"Image", "ModelDataUrl", "Environment"})

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Self:
        data = _mapping(data, cls.__name__)
        return cls(
            image=_require(data, "Image", cls.__name__),
            model_data_url=data.get("ModelDataUrl"),
            environment=data.get("Environment") or {},
            extra=_extra(data, cls._KEYS),
        )

    def to_api(self) -> dict[str, Any]:
        return _emit(
            {
                "Image": self.image,
                "ModelDataUrl": self.model_data_url,
                "Environment": self.environment,
            },
            self.extra,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelDescription(_ApiValue):
    """DescribeModel's response (single-container models: ``PrimaryContainer``)."""

    model_name: str
    model_arn: str | None = None
    primary_container: ContainerDefinition
    execution_role_arn: str | None = None
    creation_time: datetime
    vpc_config: Mapping[str, Any] | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    _KEYS: ClassVar[frozenset[str]] = frozenset(
        {
            "ModelName",
            "ModelArn",
            "PrimaryContainer",
            "ExecutionRoleArn",
            "CreationTime",
            "VpcConfig",
        }
    )

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Self:
        what = cls.__name__
        data = _mapping(data, what)
        return cls(
            model_name=_require(data, "ModelName", what),
            model_arn=data.get("ModelArn"),
            primary_container=ContainerDefinition.from_api(
                _require(data, "PrimaryContainer", what)
            ),
            execution_role_arn=data.get("ExecutionRoleArn"),
            creation_time=_parse_datetime(_require(data, "CreationTime", what), "CreationTime"),
            vpc_config=data.get("VpcConfig"),
            extra=_extra(data, cls._KEYS),
        )

    def to_api(self) -> dict[str, Any]:
        return _emit(
            {
                "ModelName": self.model_name,
                "ModelArn": self.model_arn,
                "PrimaryContainer": self.primary_container.to_api(),
                "ExecutionRoleArn": self.execution_role_arn,
                "CreationTime": self.creation_time,
                "VpcConfig": self.vpc_config,
            },
            self.extra,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class ProductionVariant(_ApiValue):
    """One ``ProductionVariants`` item of CreateEndpointConfig / DescribeEndpointConfig."""

    variant_name: str
    model_name: str
    initial_instance_count: int
    instance_type: str
    initial_variant_weight: float = 1.0
    extra: Mapping[str, Any] = field(default_factory=dict)

    _KEYS: ClassVar[frozenset[str]] = frozenset(
        {"VariantName", "ModelName", "InitialInstanceCount", "InstanceType", "InitialVariantWeight"}
    )

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Self:
        what = cls.__name__
        data = _mapping(data, what)
        return cls(
            variant_name=_require(data, "VariantName", what),
            model_name=_require(data, "ModelName", what),
            initial_instance_count=int(_require(data, "InitialInstanceCount", what)),
            instance_type=_require(data, "InstanceType", what),
            # SageMaker's default weight when CreateEndpointConfig omits it.
            initial_variant_weight=float(data.get("InitialVariantWeight", 1.0)),
            extra=_extra(data, cls._KEYS),
        )

    def to_api(self) -> dict[str, Any]:
        return _emit(
            {
                "VariantName": self.variant_name,
                "ModelName": self.model_name,
                "InitialInstanceCount": self.initial_instance_count,
                "InstanceType": self.instance_type,
                "InitialVariantWeight": self.initial_variant_weight,
            },
            self.extra,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class EndpointConfigDescription(_ApiValue):
    """DescribeEndpointConfig's response."""

    endpoint_config_name: str
    endpoint_config_arn: str | None = None
    production_variants: tuple[ProductionVariant, ...] = ()
    creation_time: datetime
    extra: Mapping[str, Any] = field(default_factory=dict)

    _KEYS: ClassVar[frozenset[str]] = frozenset(
        {"EndpointConfigName", "EndpointConfigArn", "ProductionVariants", "CreationTime"}
    )

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Self:
        what = cls.__name__
        data = _mapping(data, what)
        return cls(
            endpoint_config_name=_require(data, "EndpointConfigName", what),
            endpoint_config_arn=data.get("EndpointConfigArn"),
            production_variants=tuple(
                ProductionVariant.from_api(item) for item in data.get("ProductionVariants") or ()
            ),
            creation_time=_parse_datetime(_require(data, "CreationTime", what), "CreationTime"),
            extra=_extra(data, cls._KEYS),
        )

    def to_api(self) -> dict[str, Any]:
        return _emit(
            {
                "EndpointConfigName": self.endpoint_config_name,
                "EndpointConfigArn": self.endpoint_config_arn,
                "ProductionVariants": [item.to_api() for item in self.production_variants],
                "CreationTime": self.creation_time,
            },
            self.extra,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class EndpointDescription(_ApiValue):
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

    _ENUMS: ClassVar[Mapping[str, type[StrEnum]]] = {"endpoint_status": EndpointStatus}
    _KEYS: ClassVar[frozenset[str]] = frozenset(
        {
            "EndpointName",
            "EndpointArn",
            "EndpointConfigName",
            "EndpointStatus",
            "FailureReason",
            "CreationTime",
            "LastModifiedTime",
            "ProductionVariants",
        }
    )

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Self:
        what = cls.__name__
        data = _mapping(data, what)
        return cls(
            endpoint_name=_require(data, "EndpointName", what),
            endpoint_arn=data.get("EndpointArn"),
            endpoint_config_name=_require(data, "EndpointConfigName", what),
            endpoint_status=_parse_enum(EndpointStatus, _require(data, "EndpointStatus", what)),
            failure_reason=data.get("FailureReason"),
            creation_time=_parse_datetime(_require(data, "CreationTime", what), "CreationTime"),
            last_modified_time=_parse_datetime(
                _require(data, "LastModifiedTime", what), "LastModifiedTime"
            ),
            production_variants=tuple(
                _mapping(item, "ProductionVariants item")
                for item in data.get("ProductionVariants") or ()
            ),
            extra=_extra(data, cls._KEYS),
        )

    def to_api(self) -> dict[str, Any]:
        return _emit(
            {
                "EndpointName": self.endpoint_name,
                "EndpointArn": self.endpoint_arn,
                "EndpointConfigName": self.endpoint_config_name,
                "EndpointStatus": self.endpoint_status.value,
                "FailureReason": self.failure_reason,
                "CreationTime": self.creation_time,
                "LastModifiedTime": self.last_modified_time,
                "ProductionVariants": self.production_variants,
            },
            self.extra,
        )

    @property
    def is_terminal(self) -> bool:
        return self.endpoint_status.is_terminal()

    @property
    def is_failure(self) -> bool:
        """Failed, OutOfService or UpdateRollbackFailed: the endpoint cannot serve."""
        return self.endpoint_status.is_failure()
