"""What moto cannot do, played with ``botocore.stub.Stubber`` on real boto3 clients.

Job state sequences, throttling, AWS's refusals, StopTrainingJob and UpdateEndpoint. The code
under test is the real backend and the real core (``TrainingJob.wait``, ``RLModel.deploy``).
"""

from __future__ import annotations

import datetime as dt
import io
import pickle

import pytest
from botocore.response import StreamingBody
from botocore.stub import ANY

from rl_provider.backends.sagemaker import (
    AWSAccessDeniedError,
    AWSThrottledError,
    AWSValidationError,
)
from rl_provider.core.enums import TrainingJobStatus
from rl_provider.core.estimator import TrainingJob
from rl_provider.core.model import ModelKind, RLModel
from rl_provider.exceptions import (
    BackendError,
    EndpointNotFoundError,
    JobFailedError,
    JobNotFoundError,
    ModelInvocationError,
    ModelNotFoundError,
    ResourceBusyError,
    ResourceExistsError,
    RLConfigError,
)

from .conftest import REGION, ROLE

JOB = "rl-job-1"
T0 = dt.datetime(2026, 11, 25, 9, 0, tzinfo=dt.UTC)


def describe(status, secondary, transitions=(), **extra):
    return {
        "TrainingJobName": JOB,
        "TrainingJobArn": f"arn:aws:sagemaker:us-west-2:123456789012:training-job/{JOB}",
        "TrainingJobStatus": status,
        "SecondaryStatus": secondary,
        "ModelArtifacts": {"S3ModelArtifacts": f"s3://b/out/{JOB}/output/model.tar.gz"},
        "AlgorithmSpecification": {"TrainingInputMode": "File", "TrainingImage": "img"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 2, "VolumeSizeInGB": 30},
        "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
        "CreationTime": T0,
        "SecondaryStatusTransitions": [
            {"Status": s, "StartTime": T0 + dt.timedelta(minutes=i), "StatusMessage": m}
            for i, (s, m) in enumerate(transitions)
        ],
        **extra,
    }


STEPS = [
    ("Starting", "Preparing the instances for training"),
    ("Downloading", "Downloading input data"),
    ("Training", "Training image download completed. Training in progress."),
    ("Uploading", "Uploading generated training model"),
    ("Completed", "Training job completed"),
]


def test_in_progress_through_every_secondary_status_to_completed(stubbed, capsys):
    backend, stubs = stubbed("sagemaker")
    for n, (secondary, _) in enumerate(STEPS, start=1):
        status = "Completed" if secondary == "Completed" else "InProgress"
        stubs["sagemaker"].add_response(
            "describe_training_job",
            describe(status, secondary, STEPS[:n]),
            {"TrainingJobName": JOB},
        )
    final = TrainingJob(JOB, backend).wait(logs=False, poll=0)

    assert final.training_job_status is TrainingJobStatus.COMPLETED
    printed = capsys.readouterr().out.splitlines()
    # Each secondary-status change printed once, in order, with SageMaker's message.
    assert [line.split(" ", 2)[2] for line in printed] == [f"{s} - {m}" for s, m in STEPS]
    stubs["sagemaker"].assert_no_pending_responses()


@pytest.mark.parametrize(
    ("status", "secondary", "reason", "expected"),
    [
        (
            "Failed",
            "Failed",
            "AlgorithmError: ExecuteUserScriptError: boom",
            "ended Failed: AlgorithmError",
        ),
        ("Stopped", "Stopped", None, "ended Stopped"),
        ("Stopped", "MaxRuntimeExceeded", None, "MaxRuntimeExceeded: the job was stopped"),
    ],
)
def test_failed_and_stopped_jobs_raise_with_the_reason(
    stubbed, status, secondary, reason, expected
):
    backend, stubs = stubbed("sagemaker")
    extra = {"FailureReason": reason} if reason else {}
    stubs["sagemaker"].add_response("describe_training_job", describe("InProgress", "Training"))
    stubs["sagemaker"].add_response("describe_training_job", describe(status, secondary, **extra))
    with pytest.raises(JobFailedError, match=expected) as caught:
        TrainingJob(JOB, backend).wait(logs=False, poll=0)
    assert caught.value.status == status
    assert pickle.loads(pickle.dumps(caught.value)).failure_reason == caught.value.failure_reason


def test_throttling_is_retried_then_succeeds(stubbed):
    backend, stubs = stubbed("sagemaker")
    for _ in range(3):
        stubs["sagemaker"].add_client_error(
            "describe_training_job", "ThrottlingException", "Rate exceeded", 400
        )
    stubs["sagemaker"].add_response("describe_training_job", describe("Completed", "Completed"))
    assert backend.describe_training_job(JOB).training_job_status is TrainingJobStatus.COMPLETED
    stubs["sagemaker"].assert_no_pending_responses()


def test_throttling_that_never_ends_is_explained(stubbed):
    backend, stubs = stubbed("sagemaker")
    for _ in range(backend.retry.max_attempts):
        stubs["sagemaker"].add_client_error(
            "describe_endpoint", "ThrottlingException", "Rate exceeded"
        )
    with pytest.raises(
        AWSThrottledError, match=r"sagemaker:DescribeEndpoint.*Rate exceeded.*poll less"
    ):
        backend.describe_endpoint("ep")


REQUEST = {
    "TrainingJobName": JOB,
    "AlgorithmSpecification": {
        "TrainingImage": "123.dkr.ecr.us-west-2.amazonaws.com/i:1",
        "TrainingInputMode": "File",
    },
    "RoleArn": ROLE,
    "OutputDataConfig": {"S3OutputPath": "s3://bucket/out"},
    "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 30},
    "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
}


@pytest.mark.parametrize(
    ("code", "message", "error", "expected"),
    [
        (
            "AccessDeniedException",
            "User: arn:aws:iam::1:user/x is not authorized to perform: iam:PassRole",
            AWSAccessDeniedError,
            r"AWS denied sagemaker:CreateTrainingJob \(AccessDeniedException\): User: .*iam:PassRole.*Fix: give",
        ),
        (
            "ValidationException",
            "1 validation error detected: Value 'ml.nope' at 'resourceConfig.instanceType'",
            AWSValidationError,
            r"SageMaker rejected CreateTrainingJob .*'ml.nope'.*Fix the value",
        ),
        (
            "ResourceInUse",
            "Training job names must be unique within an AWS account and region",
            ResourceExistsError,
            r"exists: attach to it .*must be unique",
        ),
        (
            "ResourceLimitExceeded",
            "The account-level service limit 'ml.p3.2xlarge for training job usage' is 0",
            BackendError,
            r"quota.*Service Quotas",
        ),
    ],
)
def test_aws_refusals_keep_the_message_and_say_the_fix(stubbed, code, message, error, expected):
    backend, stubs = stubbed("sagemaker")
    stubs["sagemaker"].add_client_error("create_training_job", code, message, 400)
    with pytest.raises(error, match=expected) as caught:
        backend.create_training_job(**REQUEST)
    assert isinstance(caught.value, BackendError)
    assert str(pickle.loads(pickle.dumps(caught.value))) == str(caught.value)


def test_a_missing_job_is_job_not_found(stubbed):
    backend, stubs = stubbed("sagemaker")
    stubs["sagemaker"].add_client_error(
        "describe_training_job",
        "ValidationException",
        "Could not find requested job with name nope",
    )
    with pytest.raises(JobNotFoundError, match=r"'nope'.*Could not find"):
        backend.describe_training_job("nope")
    with pytest.raises(RLConfigError, match="Invalid training job name"):
        backend.describe_training_job("bad_name!")  # refused before any call


@pytest.mark.parametrize(
    ("operation", "error", "what"),
    [
        ("describe_model", ModelNotFoundError, "model"),
        ("delete_model", ModelNotFoundError, "model"),
        ("describe_endpoint_config", EndpointNotFoundError, "endpoint configuration"),
        ("delete_endpoint_config", EndpointNotFoundError, "endpoint configuration"),
        ("describe_endpoint", EndpointNotFoundError, "endpoint"),
        ("delete_endpoint", EndpointNotFoundError, "endpoint"),
    ],
)
def test_a_missing_resource_is_its_own_not_found(stubbed, operation, error, what):
    backend, stubs = stubbed("sagemaker")
    # SageMaker answers a describe or delete of a missing name with ValidationException.
    stubs["sagemaker"].add_client_error(operation, "ValidationException", "Could not find it")
    with pytest.raises(error, match=rf"{what} 'nope' in {REGION} \(.*Could not find it"):
        getattr(backend, operation)("nope")
    with pytest.raises(RLConfigError, match="Invalid"):
        getattr(backend, operation)("bad_name!")  # refused before any call
    stubs["sagemaker"].assert_no_pending_responses()


def test_stop_stops_a_running_job_and_leaves_an_ended_one(stubbed):
    backend, stubs = stubbed("sagemaker")
    stub = stubs["sagemaker"]
    stub.add_response("describe_training_job", describe("InProgress", "Training"))
    stub.add_response("stop_training_job", {}, {"TrainingJobName": JOB})
    backend.stop_training_job(JOB)
    stub.assert_no_pending_responses()

    stub.add_response("describe_training_job", describe("Completed", "Completed"))
    backend.stop_training_job(JOB)  # nothing to stop: no StopTrainingJob call
    stub.assert_no_pending_responses()

    # It ended between the describe and the stop: SageMaker refuses, nothing is wrong.
    stub.add_response("describe_training_job", describe("InProgress", "Uploading"))
    stub.add_client_error("stop_training_job", "ValidationException", "status Completed")
    stub.add_response("describe_training_job", describe("Completed", "Completed"))
    backend.stop_training_job(JOB)
    stub.assert_no_pending_responses()


def endpoint(status, config):
    return {
        "EndpointName": "ep",
        "EndpointArn": "arn:aws:sagemaker:us-west-2:123456789012:endpoint/ep",
        "EndpointConfigName": config,
        "EndpointStatus": status,
        "CreationTime": T0,
        "LastModifiedTime": T0,
    }


def test_deploy_to_an_existing_endpoint_updates_it(stubbed):
    backend, stubs = stubbed("sagemaker")
    stub = stubs["sagemaker"]
    model = RLModel(
        name="rl-model-2",
        model_data="s3://b/out/job/output/model.tar.gz",
        kind=ModelKind.CUSTOM,
        image_uri="123.dkr.ecr.us-west-2.amazonaws.com/serve:1",
        role=ROLE,
        backend=backend,
    )
    final = endpoint("InService", "set-below")
    # The config name is generated inside deploy(); the last answer reports the new one.
    backend.client("sagemaker").meta.events.register(
        "provide-client-params.sagemaker.CreateEndpointConfig",
        lambda params, **_: final.update(EndpointConfigName=params["EndpointConfigName"]),
    )
    stub.add_response("describe_endpoint", endpoint("InService", "old-config"))  # it exists
    stub.add_client_error("describe_model", "ValidationException", "Could not find model")
    stub.add_response(
        "create_model",
        {"ModelArn": "arn:aws:sagemaker:us-west-2:1:model/m"},
        model.create_model_request("ml.m5.large"),
    )
    stub.add_response(
        "create_endpoint_config",
        {"EndpointConfigArn": "arn:aws:sagemaker:us-west-2:1:endpoint-config/c"},
        {"EndpointConfigName": ANY, "ProductionVariants": ANY},
    )
    stub.add_response("describe_endpoint", endpoint("InService", "old-config"))  # update check
    stub.add_response(
        "update_endpoint",
        {"EndpointArn": "arn:aws:sagemaker:us-west-2:1:endpoint/ep"},
        {"EndpointName": "ep", "EndpointConfigName": ANY},
    )
    stub.add_response("describe_endpoint", endpoint("Updating", "old-config"))
    stub.add_response("describe_endpoint", final)

    predictor = model.deploy(1, "ml.m5.large", endpoint_name="ep", update_endpoint=True)

    assert predictor.endpoint_name == "ep"
    assert final["EndpointConfigName"].startswith("ep-")
    stub.assert_no_pending_responses()


def test_update_needs_an_in_service_endpoint(stubbed):
    backend, stubs = stubbed("sagemaker")
    stubs["sagemaker"].add_response("describe_endpoint", endpoint("Creating", "c"))
    # Creating is transient: a retryable error, not a config error (issue 13 point 4).
    with pytest.raises(ResourceBusyError, match="Creating: SageMaker updates only InService"):
        backend.update_endpoint(EndpointName="ep", EndpointConfigName="c2")
    stubs["sagemaker"].add_client_error(
        "describe_endpoint", "ValidationException", "Could not find endpoint"
    )
    with pytest.raises(EndpointNotFoundError, match="'ep'"):
        backend.update_endpoint(EndpointName="ep", EndpointConfigName="c2")


def test_invoke_errors_are_model_invocation_errors(stubbed):
    backend, stubs = stubbed("sagemaker-runtime")
    runtime = stubs["sagemaker-runtime"]
    runtime.add_response(
        "invoke_endpoint",
        {
            "Body": StreamingBody(io.BytesIO(b'{"action": 1}'), 13),
            "ContentType": "application/json",
        },
        {"EndpointName": "ep", "Body": b"[0.1]", "ContentType": "application/json"},
    )
    response = backend.invoke_endpoint(
        EndpointName="ep", Body="[0.1]", ContentType="application/json"
    )
    assert response["Body"].read() == b'{"action": 1}'

    runtime.add_client_error(
        "invoke_endpoint",
        "ModelError",
        "Received client error (400) from primary",
        400,
        response_meta={},
        modeled_fields={
            "OriginalStatusCode": 422,
            "OriginalMessage": "observation has 3 values, expected 4",
        },
    )
    with pytest.raises(
        ModelInvocationError, match="answered 422: ModelError: observation has 3"
    ) as caught:
        backend.invoke_endpoint(EndpointName="ep", Body=b"[1]")
    assert caught.value.status_code == 422

    runtime.add_client_error(
        "invoke_endpoint", "ValidationError", "Endpoint ep of account 1 not found.", 400
    )
    with pytest.raises(ModelInvocationError, match="400: ValidationError: Endpoint ep"):
        backend.invoke_endpoint(EndpointName="ep", Body=b"[1]")

    runtime.add_client_error("invoke_endpoint", "AccessDeniedException", "not authorized", 403)
    with pytest.raises(AWSAccessDeniedError, match="sagemaker:InvokeEndpoint"):
        backend.invoke_endpoint(EndpointName="ep", Body=b"[1]")


def test_default_bucket_created_once_and_a_foreign_one_explained(stubbed):
    backend, stubs = stubbed("s3")
    s3 = stubs["s3"]
    s3.add_client_error("head_bucket", "404", "Not Found", 404)
    s3.add_client_error(
        "create_bucket",
        "BucketAlreadyOwnedByYou",
        "Your previous request to create the named bucket succeeded",
        409,
        expected_params={
            "Bucket": "stub-default-bucket",
            "CreateBucketConfiguration": {"LocationConstraint": "us-west-2"},
        },
    )
    backend.ensure_bucket("stub-default-bucket")  # created meanwhile by another process: fine
    backend.ensure_bucket("stub-default-bucket")  # known now: no call
    backend.ensure_bucket("someone-elses-bucket")  # not the backend's: never created
    s3.assert_no_pending_responses()

    other, stubs = stubbed("s3")
    stubs["s3"].add_client_error("head_bucket", "403", "Forbidden", 403)
    with pytest.raises(AWSAccessDeniedError, match=r"belongs to another account.*pass bucket="):
        other.ensure_bucket("stub-default-bucket")


def test_log_reads_without_a_group_or_stream_and_their_refusals(stubbed):
    """A missing log group or stream is "no lines yet"; throttling is retried; a refusal is ours."""
    backend, stubs = stubbed("sagemaker", "logs")
    logs = stubs["logs"]
    prefix = {"logGroupName": "/aws/sagemaker/TrainingJobs", "logStreamNamePrefix": f"{JOB}/"}
    stream = f"{JOB}/algo-1-1700000000"
    read = {"logGroupName": "/aws/sagemaker/TrainingJobs", "logStreamName": stream}
    logs.add_client_error("describe_log_streams", "ResourceNotFoundException", "no group", 400)
    assert backend.read_logs(JOB) == ([], {"streams": {}})

    logs.add_response("describe_log_streams", {"logStreams": [{"logStreamName": stream}]}, prefix)
    logs.add_client_error("get_log_events", "ResourceNotFoundException", "no stream", 400)
    assert backend.read_logs(JOB) == ([], {"streams": {}})

    logs.add_response("describe_log_streams", {"logStreams": [{"logStreamName": stream}]}, prefix)
    logs.add_client_error("get_log_events", "ThrottlingException", "slow down", 400)
    page = {"events": [{"timestamp": 1, "message": "hello"}], "nextForwardToken": "f/1"}
    logs.add_response("get_log_events", page, {**read, "startFromHead": True})
    logs.add_response(
        "get_log_events",
        {"events": [], "nextForwardToken": "f/1"},
        {**read, "startFromHead": True, "nextToken": "f/1"},
    )
    assert backend.read_logs(JOB) == (["[algo-1] hello"], {"streams": {stream: "f/1"}})

    logs.add_client_error("describe_log_streams", "AccessDeniedException", "not allowed", 400)
    with pytest.raises(AWSAccessDeniedError, match=r"AWS denied logs:DescribeLogStreams"):
        backend.read_logs(JOB)
    logs.assert_no_pending_responses()
