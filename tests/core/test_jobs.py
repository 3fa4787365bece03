"""Typed SageMaker descriptions: round trips through JSON, datetimes, extra keys, statuses."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from dateutil.tz import tzutc

from rl_provider.core.api_values import ApiValue, within
from rl_provider.core.enums import EndpointStatus, SecondaryStatus, TrainingJobStatus
from rl_provider.core.jobs import (
    ContainerDefinition,
    EndpointConfigDescription,
    EndpointDescription,
    MetricData,
    ModelDescription,
    ProductionVariant,
    StatusTransition,
    TrainingJobDescription,
)
from rl_provider.exceptions import BackendError

# botocore parses SageMaker timestamps into datetimes with dateutil's tzutc().
T0 = datetime(2025, 3, 1, 12, 0, 0, 123000, tzinfo=tzutc())
T1 = T0 + timedelta(minutes=2)
T2 = T0 + timedelta(minutes=9, seconds=30)
T3 = T0 + timedelta(minutes=11)

REGION_ACCOUNT = "us-west-2:123456789012"
ECR = "dkr.ecr.us-west-2.amazonaws.com"
IMAGE = f"462105765813.{ECR}/sagemaker-rl-ray-container:ray-1.6.0-torch-cpu-py36"
RESPONSE_METADATA: dict[str, Any] = {
    "RequestId": "0f3a8c1e-1111-2222-3333-444455556666",
    "HTTPStatusCode": 200,
    "HTTPHeaders": {"content-type": "application/x-amz-json-1.1", "date": "Sat, 01 Mar 2025"},
    "RetryAttempts": 0,
}

TRAINING_JOB: dict[str, Any] = {
    "TrainingJobName": "rl-cartpole-2025-03-01-12-00-00-123",
    "TrainingJobArn": f"arn:aws:sagemaker:{REGION_ACCOUNT}:training-job/rl-cartpole-2025-03-01",
    "ModelArtifacts": {
        "S3ModelArtifacts": "s3://bucket/rl-cartpole-2025-03-01-12-00-00-123/output/model.tar.gz"
    },
    "TrainingJobStatus": "Completed",
    "SecondaryStatus": "Completed",
    "HyperParameters": {
        "rl.training.stop.training_iteration": "10",
        "sagemaker_program": '"train-rl-cartpole-ray.py"',
        "sagemaker_container_log_level": "20",
    },
    "AlgorithmSpecification": {
        "TrainingImage": IMAGE,
        "TrainingInputMode": "File",
        "MetricDefinitions": [
            {
                "Name": "episode_reward_mean",
                "Regex": "episode_reward_mean: ([-+]?[0-9]*[.]?[0-9]+([eE][-+]?[0-9]+)?)",
            }
        ],
        "EnableSageMakerMetricsTimeSeries": False,
    },
    "RoleArn": "arn:aws:iam::123456789012:role/SageMakerRole",
    "InputDataConfig": [
        {
            "ChannelName": "training",
            "DataSource": {
                "S3DataSource": {
                    "S3DataType": "S3Prefix",
                    "S3Uri": "s3://bucket/data/",
                    "S3DataDistributionType": "FullyReplicated",
                }
            },
            "CompressionType": "None",
            "RecordWrapperType": "None",
        }
    ],
    "OutputDataConfig": {"KmsKeyId": "", "S3OutputPath": "s3://bucket/"},
    "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 30},
    "StoppingCondition": {"MaxRuntimeInSeconds": 86400},
    "Environment": {"RAY_DEDUP_LOGS": "0"},
    "VpcConfig": {"SecurityGroupIds": ["sg-0123"], "Subnets": ["subnet-0123"]},
    "CheckpointConfig": {"S3Uri": "s3://bucket/checkpoints/", "LocalPath": "/opt/ml/checkpoints"},
    "CreationTime": T0,
    "TrainingStartTime": T1,
    "TrainingEndTime": T2,
    "LastModifiedTime": T3,
    "SecondaryStatusTransitions": [
        {
            "Status": "Starting",
            "StartTime": T0,
            "EndTime": T1,
            "StatusMessage": "Preparing the instances for training",
        },
        {"Status": "Training", "StartTime": T1, "EndTime": T2, "StatusMessage": "Training"},
        {"Status": "Completed", "StartTime": T2, "EndTime": T2, "StatusMessage": "Job completed"},
    ],
    "FinalMetricDataList": [
        {"MetricName": "episode_reward_mean", "Value": 187.5, "Timestamp": T2},
        {"MetricName": "episode_reward_max", "Value": 500.0, "Timestamp": T2},
    ],
    "EnableNetworkIsolation": False,
    "EnableInterContainerTrafficEncryption": False,
    "EnableManagedSpotTraining": True,
    "TrainingTimeInSeconds": 450,
    "BillableTimeInSeconds": 135,
    "ProfilingStatus": "Disabled",
    "WarmPoolStatus": {"Status": "Terminated", "ResourceRetainedBillableTimeInSeconds": 0},
    "ProfilerRuleEvaluationStatuses": [
        {"RuleConfigurationName": "ProfilerReport", "LastModifiedTime": T3}
    ],
}

MODEL: dict[str, Any] = {
    "ModelName": "rl-cartpole-model",
    "PrimaryContainer": {
        "Image": f"763104351884.{ECR}/pytorch-inference:2.1-cpu-py310",
        "Mode": "SingleModel",
        "ModelDataUrl": "s3://bucket/rl-cartpole/output/model.tar.gz",
        "Environment": {"SAGEMAKER_PROGRAM": "rllib_handler.py", "SAGEMAKER_REGION": "us-west-2"},
    },
    "ExecutionRoleArn": "arn:aws:iam::123456789012:role/SageMakerRole",
    "VpcConfig": {"SecurityGroupIds": ["sg-0123"], "Subnets": ["subnet-0123"]},
    "CreationTime": T0,
    "ModelArn": f"arn:aws:sagemaker:{REGION_ACCOUNT}:model/rl-cartpole-model",
    "EnableNetworkIsolation": False,
    "DeploymentRecommendation": {"RecommendationStatus": "COMPLETED"},
}

ENDPOINT_CONFIG: dict[str, Any] = {
    "EndpointConfigName": "rl-cartpole-config",
    "EndpointConfigArn": f"arn:aws:sagemaker:{REGION_ACCOUNT}:endpoint-config/rl-cartpole-config",
    "ProductionVariants": [
        {
            "VariantName": "AllTraffic",
            "ModelName": "rl-cartpole-model",
            "InitialInstanceCount": 1,
            "InstanceType": "ml.m5.large",
            "InitialVariantWeight": 1.0,
            "VolumeSizeInGB": 4,
        }
    ],
    "CreationTime": T0,
    "EnableNetworkIsolation": False,
}

ENDPOINT: dict[str, Any] = {
    "EndpointName": "rl-cartpole",
    "EndpointArn": f"arn:aws:sagemaker:{REGION_ACCOUNT}:endpoint/rl-cartpole",
    "EndpointConfigName": "rl-cartpole-config",
    "ProductionVariants": [
        {
            "VariantName": "AllTraffic",
            "DeployedImages": [
                {
                    "SpecifiedImage": MODEL["PrimaryContainer"]["Image"],
                    "ResolvedImage": f"763104351884.{ECR}/pytorch-inference@sha256:ab12",
                    "ResolutionTime": T1,
                }
            ],
            "CurrentWeight": 1.0,
            "DesiredWeight": 1.0,
            "CurrentInstanceCount": 1,
            "DesiredInstanceCount": 1,
        }
    ],
    "EndpointStatus": "InService",
    "CreationTime": T0,
    "LastModifiedTime": T3,
}

CASES: list[tuple[type[Any], dict[str, Any]]] = [
    (TrainingJobDescription, TRAINING_JOB),
    (ModelDescription, MODEL),
    (EndpointConfigDescription, ENDPOINT_CONFIG),
    (EndpointDescription, ENDPOINT),
    (MetricData, TRAINING_JOB["FinalMetricDataList"][0]),
    (StatusTransition, TRAINING_JOB["SecondaryStatusTransitions"][0]),
    (ContainerDefinition, MODEL["PrimaryContainer"]),
    (ProductionVariant, ENDPOINT_CONFIG["ProductionVariants"][0]),
]
CASE_IDS = [cls.__name__ for cls, _ in CASES]


def as_json(value: Any) -> Any:
    """What a boto3 response looks like as JSON: datetimes as UTC ISO strings."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, Mapping):
        return {key: as_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [as_json(item) for item in value]
    return value


def with_metadata(response: dict[str, Any]) -> dict[str, Any]:
    return {**response, "ResponseMetadata": RESPONSE_METADATA}


@pytest.mark.parametrize(("cls", "response"), CASES, ids=CASE_IDS)
def test_round_trip_through_json(cls: type[Any], response: dict[str, Any]) -> None:
    described = cls.from_api(with_metadata(response))

    payload = json.dumps(described.to_api())
    again = cls.from_api(json.loads(payload))

    assert again == described
    assert again.to_api() == described.to_api()


@pytest.mark.parametrize(("cls", "response"), CASES, ids=CASE_IDS)
def test_to_api_is_the_response_as_json(cls: type[Any], response: dict[str, Any]) -> None:
    # Every fixture key has a value, so to_api() gives back each key, ResponseMetadata aside.
    assert cls.from_api(with_metadata(response)).to_api() == as_json(response)


@pytest.mark.parametrize(("cls", "response"), CASES, ids=CASE_IDS)
def test_iso_strings_read_like_datetimes(cls: type[Any], response: dict[str, Any]) -> None:
    assert cls.from_api(as_json(response)) == cls.from_api(response)


def test_training_job_fields() -> None:
    job = TrainingJobDescription.from_api(TRAINING_JOB)

    assert job.training_job_status is TrainingJobStatus.COMPLETED
    assert job.secondary_status is SecondaryStatus.COMPLETED
    assert (
        job.model_data == job.model_artifacts == TRAINING_JOB["ModelArtifacts"]["S3ModelArtifacts"]
    )
    assert job.creation_time == T0
    assert job.creation_time.tzinfo is UTC
    assert job.enable_managed_spot_training is True
    assert job.training_time_in_seconds == 450
    assert job.secondary_status_transitions[1] == StatusTransition(
        status=SecondaryStatus.TRAINING, start_time=T1, end_time=T2, status_message="Training"
    )
    assert job.final_metrics == {"episode_reward_mean": 187.5, "episode_reward_max": 500.0}
    assert job.extra["ProfilerRuleEvaluationStatuses"] == [
        {"RuleConfigurationName": "ProfilerReport", "LastModifiedTime": T3.isoformat()}
    ]
    assert "EnableNetworkIsolation" in job.extra


def test_endpoint_variants_are_json_safe_dicts() -> None:
    endpoint = EndpointDescription.from_api(ENDPOINT)

    deployed = endpoint.production_variants[0]["DeployedImages"][0]
    assert deployed["ResolutionTime"] == "2025-03-01T12:02:00.123000+00:00"
    json.dumps(endpoint.to_api())


@pytest.mark.parametrize(("cls", "response"), CASES, ids=CASE_IDS)
def test_response_metadata_is_dropped(cls: type[Any], response: dict[str, Any]) -> None:
    described = cls.from_api(with_metadata(response))

    assert "ResponseMetadata" not in described.extra
    assert "ResponseMetadata" not in described.to_api()


@pytest.mark.parametrize(("cls", "response"), CASES, ids=CASE_IDS)
def test_unknown_keys_are_kept_in_extra(cls: type[Any], response: dict[str, Any]) -> None:
    novel = {"FutureField": {"When": T1.astimezone(timezone(timedelta(hours=2))), "N": [1, 2]}}
    described = cls.from_api({**response, **novel})

    expected = {"When": "2025-03-01T12:02:00.123000+00:00", "N": [1, 2]}
    assert described.extra["FutureField"] == expected
    assert described.to_api()["FutureField"] == expected
    assert cls.from_api(json.loads(json.dumps(described.to_api()))) == described


EXPECTED_CREATION = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "creation_time",
    [
        pytest.param(datetime(2025, 3, 1, 12, 0, 0, tzinfo=tzutc()), id="botocore-tzutc"),
        pytest.param(datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC), id="aware-utc"),
        pytest.param(
            datetime(2025, 3, 1, 14, 0, 0, tzinfo=timezone(timedelta(hours=2))), id="aware-offset"
        ),
        pytest.param(datetime(2025, 3, 1, 12, 0, 0), id="naive-is-utc"),
        pytest.param("2025-03-01T12:00:00+00:00", id="iso-offset"),
        pytest.param("2025-03-01T12:00:00Z", id="iso-z"),
        pytest.param("2025-03-01T07:00:00-05:00", id="iso-negative-offset"),
        pytest.param("2025-03-01T12:00:00", id="iso-naive-is-utc"),
        pytest.param(EXPECTED_CREATION.timestamp(), id="epoch-seconds"),
    ],
)
def test_datetimes_become_utc(creation_time: object) -> None:
    job = TrainingJobDescription.from_api(
        {"TrainingJobName": "j", "TrainingJobStatus": "InProgress", "CreationTime": creation_time}
    )

    assert job.creation_time == EXPECTED_CREATION
    assert job.creation_time.tzinfo is UTC
    assert job.to_api()["CreationTime"] == "2025-03-01T12:00:00+00:00"


@pytest.mark.parametrize("bad", ["yesterday", "", None, [2025, 3, 1], True])
def test_bad_datetime_names_the_key(bad: object) -> None:
    with pytest.raises(BackendError, match="CreationTime"):
        ModelDescription.from_api(
            {"ModelName": "m", "PrimaryContainer": {"Image": "i"}, "CreationTime": bad}
        )


def test_minimal_description_omits_keys_without_a_value() -> None:
    job = TrainingJobDescription.from_api(
        {
            "TrainingJobName": "j",
            "TrainingJobStatus": "InProgress",
            "CreationTime": T0,
            "HyperParameters": {},
            "VpcConfig": {},
        }
    )

    assert job.to_api() == {
        "TrainingJobName": "j",
        "TrainingJobStatus": "InProgress",
        "EnableManagedSpotTraining": False,
        "CreationTime": "2025-03-01T12:00:00.123000+00:00",
    }
    assert job.vpc_config is None
    assert job.hyper_parameters == {}
    assert job.model_data is None
    assert job.final_metrics == {}
    assert TrainingJobDescription.from_api(job.to_api()) == job


def test_constructor_normalizes_like_from_api() -> None:
    job = TrainingJobDescription(
        training_job_name="j",
        training_job_status="Stopped",  # type: ignore[arg-type]
        secondary_status="MaxRuntimeExceeded",  # type: ignore[arg-type]
        creation_time=datetime(2025, 3, 1, 12, 0, 0),
        input_data_config=[{"ChannelName": "training"}],
        final_metric_data_list=[MetricData(metric_name="loss", value=0.5)],  # type: ignore[arg-type]
        vpc_config={},
        extra={"Seen": datetime(2025, 3, 1, 12, 0, 0)},
    )

    assert job.training_job_status is TrainingJobStatus.STOPPED
    assert job.creation_time.tzinfo is UTC
    assert job.input_data_config == ({"ChannelName": "training"},)
    assert job.extra == {"Seen": "2025-03-01T12:00:00+00:00"}
    assert job.vpc_config is None
    assert TrainingJobDescription.from_api(json.loads(json.dumps(job.to_api()))) == job


@pytest.mark.parametrize(
    ("metrics", "expected"),
    [
        ([], {}),
        ([("reward", 1.0)], {"reward": 1.0}),
        ([("reward", 1.0), ("loss", 3.0), ("reward", 2.0)], {"reward": 2.0, "loss": 3.0}),
        ([("reward", 5.0), ("reward", -1.0)], {"reward": -1.0}),
    ],
)
def test_final_metrics_keep_the_last_value_per_name(
    metrics: list[tuple[str, float]], expected: dict[str, float]
) -> None:
    job = TrainingJobDescription.from_api(
        {
            "TrainingJobName": "j",
            "TrainingJobStatus": "Completed",
            "CreationTime": T0,
            "FinalMetricDataList": [
                {"MetricName": name, "Value": value, "Timestamp": T2} for name, value in metrics
            ],
        }
    )

    assert job.final_metrics == expected


@pytest.mark.parametrize(
    ("status", "terminal", "failure"),
    [
        ("InProgress", False, False),
        ("Completed", True, False),
        ("Failed", True, True),
        ("Stopping", False, False),
        ("Stopped", True, True),
    ],
)
def test_training_job_status_properties(status: str, terminal: bool, failure: bool) -> None:
    job = TrainingJobDescription.from_api({**TRAINING_JOB, "TrainingJobStatus": status})

    assert job.training_job_status is TrainingJobStatus(status)
    assert (job.is_terminal, job.is_failure) == (terminal, failure)


def test_every_training_job_status_is_covered() -> None:
    assert {s.value for s in TrainingJobStatus} == {
        "InProgress",
        "Completed",
        "Failed",
        "Stopping",
        "Stopped",
    }


@pytest.mark.parametrize(
    ("status", "terminal", "failure"),
    [
        ("OutOfService", True, True),
        ("Creating", False, False),
        ("Updating", False, False),
        ("SystemUpdating", False, False),
        ("RollingBack", False, False),
        ("InService", True, False),
        ("Deleting", False, False),
        ("Failed", True, True),
        ("UpdateRollbackFailed", True, True),
    ],
)
def test_endpoint_status_properties(status: str, terminal: bool, failure: bool) -> None:
    endpoint = EndpointDescription.from_api({**ENDPOINT, "EndpointStatus": status})

    assert endpoint.endpoint_status is EndpointStatus(status)
    assert (endpoint.is_terminal, endpoint.is_failure) == (terminal, failure)


def test_every_endpoint_status_is_covered() -> None:
    covered = {
        "OutOfService",
        "Creating",
        "Updating",
        "SystemUpdating",
        "RollingBack",
        "InService",
        "Deleting",
        "Failed",
        "UpdateRollbackFailed",
    }
    assert {s.value for s in EndpointStatus} == covered


@pytest.mark.parametrize(
    ("secondary", "exceeded"),
    [("MaxRuntimeExceeded", True), ("Stopped", False), ("Completed", False), (None, False)],
)
def test_max_runtime_exceeded(secondary: str | None, exceeded: bool) -> None:
    response = {**TRAINING_JOB, "TrainingJobStatus": "Stopped", "SecondaryStatus": secondary}

    assert TrainingJobDescription.from_api(response).max_runtime_exceeded is exceeded


@pytest.mark.parametrize(
    ("cls", "response", "message"),
    [
        (
            TrainingJobDescription,
            {**TRAINING_JOB, "TrainingJobStatus": "Hibernating"},
            "Unknown TrainingJobStatus 'Hibernating'",
        ),
        (
            TrainingJobDescription,
            {**TRAINING_JOB, "SecondaryStatus": "Hibernating"},
            "Unknown SecondaryStatus 'Hibernating'",
        ),
        (
            TrainingJobDescription,
            {
                **TRAINING_JOB,
                "SecondaryStatusTransitions": [{"Status": "Hibernating", "StartTime": T0}],
            },
            "Unknown SecondaryStatus 'Hibernating'",
        ),
        (
            EndpointDescription,
            {**ENDPOINT, "EndpointStatus": "Hibernating"},
            "Unknown EndpointStatus 'Hibernating'",
        ),
        (
            TrainingJobDescription,
            {**TRAINING_JOB, "TrainingJobStatus": "completed"},
            "Unknown TrainingJobStatus 'completed'",
        ),
    ],
    ids=["status", "secondary", "transition", "endpoint", "wrong-case"],
)
def test_unknown_status_raises_backend_error(
    cls: type[Any], response: dict[str, Any], message: str
) -> None:
    with pytest.raises(BackendError, match=message) as raised:
        cls.from_api(response)

    assert "known values are" in str(raised.value)


@pytest.mark.parametrize(
    ("cls", "response", "key"),
    [
        (TrainingJobDescription, {"TrainingJobName": "j", "CreationTime": T0}, "TrainingJobStatus"),
        (
            TrainingJobDescription,
            {"TrainingJobName": "j", "TrainingJobStatus": "Failed"},
            "CreationTime",
        ),
        (ModelDescription, {"ModelName": "m", "CreationTime": T0}, "PrimaryContainer"),
        (ContainerDefinition, {"ModelDataUrl": "s3://b/m.tar.gz"}, "Image"),
        (
            ProductionVariant,
            {"VariantName": "v", "ModelName": "m", "InstanceType": "ml.m5.large"},
            "InitialInstanceCount",
        ),
        (EndpointDescription, {**ENDPOINT, "LastModifiedTime": None}, "LastModifiedTime"),
        (EndpointConfigDescription, {"CreationTime": T0}, "EndpointConfigName"),
    ],
)
def test_missing_required_key_names_it(cls: type[Any], response: dict[str, Any], key: str) -> None:
    response = {k: v for k, v in response.items() if v is not None}

    with pytest.raises(BackendError, match=key):
        cls.from_api(response)


def test_non_mapping_response_is_a_backend_error() -> None:
    with pytest.raises(BackendError, match="mapping"):
        EndpointDescription.from_api(["EndpointName"])  # type: ignore[arg-type]


def test_production_variant_weight_defaults_to_one() -> None:
    variant = ProductionVariant.from_api(
        {
            "VariantName": "AllTraffic",
            "ModelName": "m",
            "InitialInstanceCount": 1,
            "InstanceType": "local",
        }
    )

    assert variant.initial_variant_weight == 1.0
    assert variant.to_api()["InitialVariantWeight"] == 1.0


def test_described_values_are_frozen() -> None:
    job = TrainingJobDescription.from_api(TRAINING_JOB)

    with pytest.raises(AttributeError):
        job.training_job_name = "other"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("cls", "response", "key"),
    [
        (
            TrainingJobDescription,
            {**TRAINING_JOB, "InputDataConfig": ["training"]},
            "InputDataConfig",
        ),
        (EndpointDescription, {**ENDPOINT, "ProductionVariants": [1]}, "ProductionVariants"),
    ],
)
def test_list_of_mappings_refuses_other_items(
    cls: type[Any], response: dict[str, Any], key: str
) -> None:
    with pytest.raises(BackendError, match=f"{key} item must be a mapping"):
        cls.from_api(response)


@pytest.mark.parametrize(
    ("cls", "response", "field", "default"),
    [
        (
            ProductionVariant,
            ENDPOINT_CONFIG["ProductionVariants"][0],
            "initial_variant_weight",
            1.0,
        ),
        (TrainingJobDescription, TRAINING_JOB, "enable_managed_spot_training", False),
        (TrainingJobDescription, TRAINING_JOB, "hyper_parameters", {}),
        (TrainingJobDescription, TRAINING_JOB, "final_metric_data_list", ()),
        (TrainingJobDescription, TRAINING_JOB, "model_artifacts", None),
        (ModelDescription, MODEL, "vpc_config", None),
    ],
)
def test_null_optional_key_reads_as_its_default(
    cls: type[Any], response: dict[str, Any], field: str, default: object
) -> None:
    key = "".join(part.capitalize() for part in field.split("_"))
    described = cls.from_api({**response, key: None})

    assert getattr(described, field) == default
    assert cls.from_api(described.to_api()) == described


@dataclass(frozen=True, slots=True, kw_only=True)
class WarmPool(ApiValue):
    """A description written the way a new one would be: its fields and nothing else."""

    status: TrainingJobStatus
    resource_retained_billable_time_in_seconds: int | None = None
    last_modified_time: datetime | None = None
    metrics: tuple[MetricData, ...] = ()
    kms_key: str | None = field(default=None, metadata=within("KmsKeyId"))
    extra: Mapping[str, Any] = field(default_factory=dict)


def test_a_new_description_is_only_its_fields() -> None:
    response = {
        "Status": "Completed",
        "ResourceRetainedBillableTimeInSeconds": "0",
        "LastModifiedTime": T1,
        "Metrics": [{"MetricName": "loss", "Value": "0.5"}],
        "KmsKey": {"KmsKeyId": "alias/k"},
        "Other": [T2],
    }

    pool = WarmPool.from_api(response)

    assert pool == WarmPool(
        status=TrainingJobStatus.COMPLETED,
        resource_retained_billable_time_in_seconds=0,
        last_modified_time=T1,
        metrics=(MetricData(metric_name="loss", value=0.5),),
        kms_key="alias/k",
        extra={"Other": [T2.isoformat()]},
    )
    assert pool.to_api() == {
        **as_json(response),
        "ResourceRetainedBillableTimeInSeconds": 0,
        "Metrics": [{"MetricName": "loss", "Value": 0.5}],
    }
    with pytest.raises(BackendError, match="WarmPool: the response has no 'Status'"):
        WarmPool.from_api({"KmsKey": {}})


SECONDARY_ENDS = {"Completed", "Failed", "Stopped", "MaxRuntimeExceeded", "MaxWaitTimeExceeded"}


@pytest.mark.parametrize("status", list(SecondaryStatus), ids=str)
def test_secondary_status_ends(status: SecondaryStatus) -> None:
    assert status.is_terminal() is (status.value in SECONDARY_ENDS)
    assert status.is_failure() is (status.value in SECONDARY_ENDS - {"Completed"})
    assert (status.progress() == 5) is status.is_terminal()
