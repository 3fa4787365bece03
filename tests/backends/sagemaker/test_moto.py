"""The SageMaker backend against a moto server: upload, request, jobs, models, endpoints, logs."""

from __future__ import annotations

import contextlib
import io
import json
import tarfile
import time

import pytest

from rl_provider import RLEstimator
from rl_provider.backends.sagemaker import SageMakerBackend
from rl_provider.backends.sagemaker.logs import LOG_GROUP
from rl_provider.core.enums import EndpointStatus, TrainingJobStatus
from rl_provider.core.packaging import build_sourcedir
from rl_provider.exceptions import (
    BackendError,
    EndpointNotFoundError,
    JobNotFoundError,
    ModelNotFoundError,
    ResourceExistsError,
    RLConfigError,
)

from .conftest import ACCOUNT, FAKE_CREDENTIALS, REGION, ROLE

DEFAULT_BUCKET = f"sagemaker-{REGION}-{ACCOUNT}"
DESCRIBE_BASE = {
    "TrainingJobArn": "arn:aws:sagemaker:us-west-2:123456789012:training-job/x",
    "TrainingJobStatus": "InProgress",
    "SecondaryStatus": "Training",
    "ModelArtifacts": {"S3ModelArtifacts": ""},
    "AlgorithmSpecification": {"TrainingInputMode": "File"},
    "ResourceConfig": {"VolumeSizeInGB": 30},
    "StoppingCondition": {},
    "CreationTime": 0,
}


def estimator_on(backend, source_dir, **kwargs):
    defaults = dict(
        entry_point="train.py",
        source_dir=str(source_dir),
        toolkit="ray",
        toolkit_version="1.6.0",
        framework="tensorflow",
        role=ROLE,
        instance_type="ml.m5.large",
        hyperparameters={"rl.training.config.lr": 0.001, "env": "CartPole-v1"},
        backend=backend,
    )
    return RLEstimator(**{**defaults, **kwargs})


def put_model_artifact(s3, uri):
    import io
    import tarfile

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo("policy.json")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"{}"))
    bucket, key = uri[len("s3://") :].split("/", 1)
    s3.put_object(Bucket=bucket, Key=key, Body=buffer.getvalue())


def s3_object(backend, bucket, key):
    return backend.client("s3").get_object(Bucket=bucket, Key=key)


def test_fit_uploads_the_archive_byte_for_byte_and_sends_the_request_as_is(
    moto_url, aws_calls, source_dir, unique, tmp_path
):
    import boto3

    # A region no other test uses, so its default bucket does not exist yet.
    region = "ca-central-1"
    session = boto3.session.Session(region_name=region, **FAKE_CREDENTIALS)

    def factory(service):
        client = session.client(service, endpoint_url=moto_url)
        client.meta.events.register("provide-client-params.*.*", aws_calls.record)
        return client

    backend = SageMakerBackend(client_factory=factory, poll_interval=0.01)
    bucket = f"sagemaker-{region}-{ACCOUNT}"
    estimator = estimator_on(backend, source_dir)
    job = unique("rl-fit")
    estimator.fit(job_name=job, logs=False)

    # The default bucket was created in the backend's region and holds the code at the SDK's key.
    assert backend.region == region  # from the client: no region_name was given
    assert backend.default_output_path() == f"s3://{bucket}/"
    assert aws_calls.params["CreateBucket"] == [
        {"Bucket": bucket, "CreateBucketConfiguration": {"LocationConstraint": region}}
    ]
    local = build_sourcedir("train.py", str(source_dir), [], tmp_path)
    uploaded = s3_object(backend, bucket, f"{job}/source/sourcedir.tar.gz")
    assert uploaded["Body"].read() == local.path.read_bytes()
    assert uploaded["Metadata"] == {"sha256": local.sha256}

    # The request went out exactly as training_request() built it, and reads back the same.
    sent = aws_calls.params["CreateTrainingJob"]
    assert sent == [estimator.training_request(job)]
    described = backend.describe_training_job(job)
    # (moto echoes these back; it replaces MetricDefinitions with its own, so not those)
    for key in ("HyperParameters", "OutputDataConfig", "ResourceConfig", "RoleArn"):
        assert described.to_api()[key] == sent[0][key]
    assert described.algorithm_specification["TrainingImage"] == estimator.training_image_uri()
    assert described.hyper_parameters["sagemaker_submit_directory"] == json.dumps(
        f"s3://{bucket}/{job}/source/sourcedir.tar.gz"
    )
    assert described.training_job_status is TrainingJobStatus.COMPLETED
    assert estimator.model_data == described.model_artifacts


def test_unchanged_code_is_not_uploaded_again(backend, aws_calls, source_dir, unique):
    estimator = estimator_on(backend, source_dir, output_path=f"s3://{DEFAULT_BUCKET}/out")
    job = unique("rl-retry")
    uri = f"s3://{DEFAULT_BUCKET}/{job}/source/sourcedir.tar.gz"

    assert estimator.upload_source(job) == uri
    assert aws_calls.count("PutObject") == 1
    estimator.upload_source(job)  # a retry of the same job, code unchanged
    assert aws_calls.count("PutObject") == 1
    assert aws_calls.count("HeadObject") == 2

    (source_dir / "train.py").write_text("print('changed')\n")
    estimator.upload_source(job)
    assert aws_calls.count("PutObject") == 2
    body = s3_object(backend, DEFAULT_BUCKET, f"{job}/source/sourcedir.tar.gz")["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body)) as tar:
        assert tar.extractfile("train.py").read() == b"print('changed')\n"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"role": None}, "no execution role"),
        ({"output_path": "file:///tmp/out"}, "not an s3:// URI"),
        ({"instance_type": "local", "toolkit_version": "2.60.0"}, "not a SageMaker instance"),
        ({"checkpoint_s3_uri": "/tmp/ckpt"}, "checkpoint_s3_uri"),
    ],
)
def test_bad_requests_are_refused_before_a_job_exists(
    backend, aws_calls, source_dir, unique, change, message
):
    estimator = estimator_on(backend, source_dir, **change)
    job = unique("rl-bad")
    with pytest.raises(RLConfigError, match=message):
        estimator.fit(job_name=job, logs=False)
    assert aws_calls.count("CreateTrainingJob") == 0
    with pytest.raises(JobNotFoundError, match=job):
        backend.describe_training_job(job)


def test_a_custom_bucket_must_exist(moto_factory, source_dir, unique):
    backend = SageMakerBackend(client_factory=moto_factory, bucket=unique("no-such-bucket"))
    estimator = estimator_on(backend, source_dir, output_path="s3://another-missing-bucket/x")
    with pytest.raises(BackendError, match="NoSuchBucket") as caught:
        estimator.upload_source(unique("rl-job"))
    assert "s3:PutObject" in str(caught.value)


def test_model_endpoint_config_endpoint_and_invoke(backend, aws_calls, source_dir, unique):
    estimator = estimator_on(backend, source_dir)
    estimator.fit(job_name=unique("rl-serve"), logs=False)
    put_model_artifact(backend.client("s3"), estimator.model_data)  # moto's jobs write no artifact
    model = estimator.create_model(name=unique("rl-model"))
    endpoint = unique("rl-endpoint")

    predictor = model.deploy(1, "ml.m5.large", endpoint_name=endpoint)

    described_model = backend.describe_model(model.name)
    assert described_model.primary_container.to_api() == model.prepare_container_def(
        "ml.m5.large", REGION
    )
    # The Ray policy is served with the built-in handler repacked under code/ (issue 12).
    container = described_model.primary_container
    assert container.environment["SAGEMAKER_SUBMIT_DIRECTORY"] == "/opt/ml/model/code"
    bucket, key = container.model_data_url[len("s3://") :].split("/", 1)
    import io
    import tarfile

    body = s3_object(backend, bucket, key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body)) as tar:
        assert {"policy.json", "code/rllib.py", "code/requirements.txt"} <= set(tar.getnames())
    assert described_model.execution_role_arn == ROLE
    described = backend.describe_endpoint(endpoint)
    assert described.endpoint_status is EndpointStatus.IN_SERVICE
    config = backend.describe_endpoint_config(described.endpoint_config_name)
    assert [(v.model_name, v.instance_type) for v in config.production_variants] == [
        (model.name, "ml.m5.large")
    ]
    assert aws_calls.params["CreateEndpoint"] == [
        {"EndpointName": endpoint, "EndpointConfigName": described.endpoint_config_name}
    ]
    # moto's runtime answers a fixed body; what matters is the call and the response shape.
    response = backend.invoke_endpoint(EndpointName=endpoint, Body="[1, 2]", ContentType="a/b")
    assert response["Body"].read() == b"body"
    assert aws_calls.params["InvokeEndpoint"][-1]["Body"] == b"[1, 2]"
    assert predictor.endpoint_name == endpoint

    # Deploying again without update_endpoint is refused; the listings show what exists.
    with pytest.raises(ResourceExistsError, match="update_endpoint=True"):
        backend.create_endpoint(EndpointName=endpoint, EndpointConfigName="x")
    assert endpoint in {e["EndpointName"] for e in backend.list_endpoints()["Endpoints"]}
    assert model.name in {m["ModelName"] for m in backend.list_models()["Models"]}

    backend.delete_endpoint(endpoint)
    backend.delete_endpoint_config(described.endpoint_config_name)
    backend.delete_model(model.name)
    with pytest.raises(EndpointNotFoundError):
        backend.describe_endpoint(endpoint)
    with pytest.raises(ModelNotFoundError):
        backend.describe_model(model.name)


def test_list_training_jobs(backend, source_dir, unique):
    estimator = estimator_on(backend, source_dir)
    job = unique("rl-list")
    estimator.fit(job_name=job, logs=False)
    found = backend.list_training_jobs(NameContains=job)["TrainingJobSummaries"]
    assert [s["TrainingJobName"] for s in found] == [job]
    assert backend.list_training_jobs(StatusEquals="InProgress", NameContains=job) == {
        "TrainingJobSummaries": []
    }


def put_events(logs, stream, events):
    with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
        logs.create_log_stream(logGroupName=LOG_GROUP, logStreamName=stream)
    logs.put_log_events(
        logGroupName=LOG_GROUP,
        logStreamName=stream,
        logEvents=[{"timestamp": ts, "message": message} for ts, message in events],
    )


@pytest.fixture
def log_group(backend):
    logs = backend.client("logs")
    with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
        logs.create_log_group(logGroupName=LOG_GROUP)
    return logs


def test_two_instances_interleaved_by_time_and_never_repeated(backend, log_group, unique):
    job = unique("rl-logs")
    t0 = int(time.time() * 1000) - 60_000
    assert backend.read_logs(job) == ([], {"streams": {}})  # no stream yet: nothing, no error

    put_events(log_group, f"{job}/algo-1-1700000000", [(t0, "a1"), (t0 + 20, "a2")])
    put_events(log_group, f"{job}/algo-2-1700000000", [(t0 + 10, "b1"), (t0 + 30, "b2\nb2-tb")])
    put_events(log_group, f"{job}x/algo-1-1700000000", [(t0, "another job's line")])

    lines, cursor = backend.read_logs(job, None)
    assert lines == ["[algo-1] a1", "[algo-2] b1", "[algo-1] a2", "[algo-2] b2", "[algo-2] b2-tb"]
    cursor = json.loads(json.dumps(cursor))  # through XCom / a trigger event

    assert backend.read_logs(job, cursor) == ([], cursor)
    put_events(log_group, f"{job}/algo-2-1700000000", [(t0 + 40, "b3")])
    put_events(log_group, f"{job}/algo-1-1700000000", [(t0 + 50, "a3")])
    lines, cursor = backend.read_logs(job, json.loads(json.dumps(cursor)))
    assert lines == ["[algo-2] b3", "[algo-1] a3"]
    assert backend.read_logs(job, cursor)[0] == []

    with pytest.raises(RLConfigError, match="not a SageMaker log cursor"):
        backend.read_logs(job, 1234)


def test_metrics_come_from_the_logs_with_the_jobs_definitions(
    moto_factory, log_group, stubbed, unique
):
    # moto replaces MetricDefinitions with its own: the description comes from a Stubber.
    _, stubbers = stubbed("sagemaker")
    backend = SageMakerBackend(
        client_factory=lambda s: stubbers[s].client if s == "sagemaker" else moto_factory(s)
    )
    job = unique("rl-metrics")
    definitions = RLEstimator.default_metric_definitions("ray")
    stubbers["sagemaker"].add_response(
        "describe_training_job",
        {
            **DESCRIBE_BASE,
            "TrainingJobName": job,
            "AlgorithmSpecification": {
                "TrainingImage": "i",
                "TrainingInputMode": "File",
                "MetricDefinitions": definitions,
            },
        },
    )
    t0 = int(time.time() * 1000) - 60_000
    put_events(
        log_group,
        f"{job}/algo-1-1700000000",
        [
            (t0, "episode_reward_mean: 10.5"),
            (t0 + 1000, "noise"),
            (t0 + 2000, "episode_reward_mean: 12"),
        ],
    )
    series = backend.metrics(job)
    assert series["episode_reward_mean"] == [(t0 / 1000, 10.5), ((t0 + 2000) / 1000, 12.0)]


def test_repack_puts_the_code_under_code_in_the_model_archive(backend, unique, tmp_path):
    """SageMaker's PyTorch inference images read the handler from model.tar.gz's code/."""
    model_dir = tmp_path / "model"
    (model_dir / "code").mkdir(parents=True)
    (model_dir / "policy.pt").write_bytes(b"weights")
    (model_dir / "code" / "stale.py").write_text("old")
    original = tmp_path / "model.tar.gz"
    with tarfile.open(original, "w:gz") as tar:
        tar.add(model_dir / "policy.pt", "policy.pt")
        tar.add(model_dir / "code", "code")
    job = unique("rl-repack")
    backend.upload_code(original, f"s3://{DEFAULT_BUCKET}/{job}/output/model.tar.gz")
    code = tmp_path / "serving"
    code.mkdir()
    (code / "rllib.py").write_text("def model_fn(model_dir): ...\n")
    (code / "requirements.txt").write_text("ray[rllib]==2.60.0\n")

    uri = backend.repack_model(
        f"s3://{DEFAULT_BUCKET}/{job}/output/model.tar.gz",
        code,
        f"s3://{DEFAULT_BUCKET}/{job}/m.tar.gz",
    )
    body = s3_object(backend, DEFAULT_BUCKET, f"{job}/m.tar.gz")["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body)) as tar:
        files = {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}
    assert uri == f"s3://{DEFAULT_BUCKET}/{job}/m.tar.gz"
    assert files == {
        "policy.pt": b"weights",
        "code/rllib.py": b"def model_fn(model_dir): ...\n",
        "code/requirements.txt": b"ray[rllib]==2.60.0\n",
    }
