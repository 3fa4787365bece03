"""fit / attach / model_data / create_model against a test double of the backend contract."""

from __future__ import annotations

import logging
import tarfile

import pytest

from rl_provider import RLEstimator, RLFramework, RLToolkit
from rl_provider.core.model import ModelKind
from rl_provider.exceptions import JobFailedError, RLConfigError
from tests.fakes import InMemoryBackend

ROLE = "arn:aws:iam::111122223333:role/SageMakerRole"


@pytest.fixture
def backend(tmp_path):
    return InMemoryBackend(store=tmp_path)


@pytest.fixture
def source(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "train.py").write_text("print('episode_reward_mean: 1.0')\n")
    (src / "util.py").write_text("X = 1\n")
    return src


def make(backend, source, **kwargs):
    defaults = dict(
        entry_point="train.py",
        source_dir=str(source),
        toolkit="coach",
        toolkit_version="0.11.0",
        framework="mxnet",
        role=ROLE,
        instance_type="ml.c4.4xlarge",
        output_path="s3://bucket/rl",
        backend=backend,
    )
    return RLEstimator(**{**defaults, **kwargs})


def test_fit_packages_uploads_and_sends_the_request(backend, source):
    estimator = make(backend, source, hyperparameters={"n": 2})
    estimator.fit("s3://bucket/data", job_name="job-1")
    assert backend.requests["job-1"] == estimator.training_request("job-1", "s3://bucket/data")
    code_uri = "s3://bucket/job-1/source/sourcedir.tar.gz"
    with tarfile.open(backend.uploads[code_uri]) as tar:
        assert sorted(tar.getnames()) == ["train.py", "util.py"]
    assert estimator.model_data == "s3://bucket/rl/job-1/output/model.tar.gz"
    assert estimator.latest_training_job.name == "job-1"


def test_fit_generates_a_name_from_the_image_repository(backend, source):
    estimator = make(backend, source)
    estimator.fit()
    (name,) = backend.requests
    assert name.startswith("sagemaker-rl-mxnet-")


def test_fit_refuses_bad_input_before_creating_anything(backend, source):
    estimator = make(backend, source, entry_point="missing.py")
    with pytest.raises(RLConfigError, match=r'No file named "missing\.py"'):
        estimator.fit(job_name="job-1")
    assert backend.requests == {}
    assert backend.uploads == {}


@pytest.mark.parametrize(
    ("status", "secondary", "reason", "message"),
    [
        ("Failed", "Failed", "AlgorithmError: boom", "ended Failed: AlgorithmError: boom"),
        ("Stopped", "MaxRuntimeExceeded", None, "ended Stopped: MaxRuntimeExceeded"),
        ("Stopped", "Stopped", None, "ended Stopped"),
    ],
)
def test_wait_raises_on_failed_and_stopped_jobs(
    backend, source, status, secondary, reason, message
):
    estimator = make(backend, source)
    estimator.fit(job_name="job-1", wait=False)
    api = {
        **backend.jobs["job-1"].to_api(),
        "TrainingJobStatus": status,
        "SecondaryStatus": secondary,
    }
    if reason:
        api["FailureReason"] = reason
    backend.add_job(api)
    with pytest.raises(JobFailedError, match=message) as info:
        estimator.latest_training_job.wait()
    assert info.value.status == status


def training_job(image, **overrides):
    return {
        "TrainingJobName": "job-1",
        "TrainingJobStatus": "Completed",
        "SecondaryStatus": "Completed",
        "AlgorithmSpecification": {"TrainingImage": image, "TrainingInputMode": "File"},
        "HyperParameters": {
            "iterations": "5",
            "env": '"CartPole-v1"',
            "sagemaker_program": '"train.py"',
            "sagemaker_submit_directory": '"s3://bucket/job-1/source/sourcedir.tar.gz"',
            "sagemaker_container_log_level": "20",
            "sagemaker_job_name": '"job-1"',
            "sagemaker_region": '"us-west-2"',
            "sagemaker_s3_output": '"s3://bucket/rl"',
            "sagemaker_estimator": '"RLEstimator"',
        },
        "RoleArn": ROLE,
        "OutputDataConfig": {"S3OutputPath": "s3://bucket/rl"},
        "ResourceConfig": {
            "InstanceType": "ml.c5.xlarge",
            "InstanceCount": 1,
            "VolumeSizeInGB": 30,
        },
        "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
        "ModelArtifacts": {"S3ModelArtifacts": "s3://bucket/rl/job-1/output/model.tar.gz"},
        **overrides,
    }


ECR = "520713654638.dkr.ecr.us-west-2.amazonaws.com"


@pytest.mark.parametrize(
    ("image", "toolkit", "version", "framework"),
    [
        (
            f"{ECR}/sagemaker-rl-mxnet:coach0.11.0-cpu-py3",
            RLToolkit.COACH,
            "0.11.0",
            RLFramework.MXNET,
        ),
        (
            f"{ECR}/sagemaker-rl-tensorflow:coach0.11-gpu-py3",
            RLToolkit.COACH,
            "0.11",
            RLFramework.TENSORFLOW,
        ),
        (
            f"{ECR}/sagemaker-rl-tensorflow:ray0.6.5-cpu-py3",
            RLToolkit.RAY,
            "0.6.5",
            RLFramework.TENSORFLOW,
        ),
        (
            "462105765813.dkr.ecr.us-west-2.amazonaws.com/sagemaker-rl-ray-container:ray-1.6.0-torch-cpu-py36",
            RLToolkit.RAY,
            "1.6.0",
            RLFramework.PYTORCH,
        ),
        ("rl-provider/ray:2.40.0-torch-cpu-py311", RLToolkit.RAY, "2.40.0", RLFramework.PYTORCH),
    ],
)
def test_attach_parses_rl_images(backend, image, toolkit, version, framework):
    backend.add_job(training_job(image))
    estimator = RLEstimator.attach("job-1", backend=backend)
    assert (estimator.toolkit, estimator.toolkit_version, estimator.framework) == (
        toolkit,
        version,
        framework,
    )
    assert estimator.image_uri is None
    assert estimator.entry_point == "train.py"
    assert estimator.source_dir == "s3://bucket/job-1/source/sourcedir.tar.gz"
    assert estimator._hyperparameters == {"iterations": 5, "env": "CartPole-v1"}
    assert estimator.role == ROLE
    assert estimator.max_run == 3600
    assert estimator.model_data == "s3://bucket/rl/job-1/output/model.tar.gz"
    # The rebuilt estimator asks for the same hyperparameters as the original job.
    assert estimator.hyperparameters() == backend.jobs["job-1"].hyper_parameters


@pytest.mark.parametrize("image", ["123456789012.dkr.ecr.us-east-1.amazonaws.com/my-rl:1.0"])
def test_attach_treats_other_images_as_custom(backend, image):
    backend.add_job(training_job(image))
    estimator = RLEstimator.attach("job-1", backend=backend)
    assert estimator.image_uri == image
    assert estimator.toolkit is None


@pytest.mark.parametrize(
    "image",
    [
        f"{ECR}/sagemaker-rl-mxnet:coach0.10-cpu-py3",
        # SDK v2.257.7 reads these as framework images too (tests/core/golden/.../attach.json).
        f"{ECR}/sagemaker-rl-tensorflow:vw8.7.0-cpu-py3",
        f"{ECR}/sagemaker-mxnet-py2-cpu:1.0.4",
    ],
)
def test_attach_wrong_framework_is_an_error(backend, image):
    backend.add_job(training_job(image))
    with pytest.raises(
        RLConfigError, match=r"didn't use (an )?image for (the )?requested framework"
    ):
        RLEstimator.attach("job-1", backend=backend)


def attached(backend, image):
    backend.add_job(training_job(image))
    return RLEstimator.attach("job-1", backend=backend)


MXNET_ENV = {
    "SAGEMAKER_PROGRAM": "train.py",
    "SAGEMAKER_SUBMIT_DIRECTORY": "s3://bucket/job-1/source/sourcedir.tar.gz",
    "SAGEMAKER_CONTAINER_LOG_LEVEL": "20",
    "SAGEMAKER_REGION": "us-west-2",
}


@pytest.mark.parametrize(
    ("image", "kind", "model_image", "environment"),
    [
        (
            f"{ECR}/sagemaker-rl-tensorflow:coach0.11.1-cpu-py3",
            ModelKind.TENSORFLOW_SERVING,
            f"{ECR}/sagemaker-tensorflow-serving:1.12-cpu",
            {"SAGEMAKER_TFS_NGINX_LOGLEVEL": "info"},
        ),
        (
            f"{ECR}/sagemaker-rl-tensorflow:coach0.10-cpu-py3",
            ModelKind.TENSORFLOW_SERVING,
            f"{ECR}/sagemaker-tensorflow-serving:1.11-cpu",
            {"SAGEMAKER_TFS_NGINX_LOGLEVEL": "info"},
        ),
        (
            f"{ECR}/sagemaker-rl-mxnet:coach0.11.0-cpu-py3",
            ModelKind.MXNET,
            f"{ECR}/sagemaker-mxnet:1.3-cpu-py3",
            MXNET_ENV,
        ),
        (
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/my-rl:1.0",
            ModelKind.CUSTOM,
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/my-rl:1.0",
            # Custom images get the training code repacked into model.tar.gz (SDK v2).
            {**MXNET_ENV, "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code"},
        ),
        (
            "rl-provider/ray:2.40.0-torch-cpu-py311",
            ModelKind.PYTORCH,
            "763104351884.dkr.ecr.us-west-2.amazonaws.com/pytorch-inference:2.6.0-cpu-py312",
            {
                "SAGEMAKER_PROGRAM": "rllib.py",
                "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code",
                "SAGEMAKER_CONTAINER_LOG_LEVEL": "20",
                "SAGEMAKER_REGION": "us-west-2",
            },
        ),
        (
            "462105765813.dkr.ecr.us-west-2.amazonaws.com/sagemaker-rl-ray-container:ray-1.6.0-torch-cpu-py36",
            ModelKind.PYTORCH,
            "763104351884.dkr.ecr.us-west-2.amazonaws.com/pytorch-inference:1.8.1-cpu-py3",
            {
                "SAGEMAKER_PROGRAM": "rllib.py",
                "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code",
                "SAGEMAKER_CONTAINER_LOG_LEVEL": "20",
                "SAGEMAKER_REGION": "us-west-2",
            },
        ),
    ],
)
def test_create_model_branches(backend, image, kind, model_image, environment):
    model = attached(backend, image).create_model(name="policy-1")
    assert model.kind is kind
    repacked = environment.get("SAGEMAKER_SUBMIT_DIRECTORY") == "/opt/ml/model/code"
    assert model.prepare_container_def(instance_type="ml.c5.large", region="us-west-2") == {
        "Image": model_image,
        "Environment": environment,
        # Repacked: <default bucket>/<model name>/model.tar.gz, as SDK v2's repack_model.
        "ModelDataUrl": "s3://default-bucket/policy-1/model.tar.gz"
        if repacked
        else "s3://bucket/rl/job-1/output/model.tar.gz",
    }
    assert model.repack_from == ("s3://bucket/rl/job-1/output/model.tar.gz" if repacked else None)
    request = model.create_model_request("ml.c5.large")
    assert request["ModelName"] == "policy-1"
    assert request["ExecutionRoleArn"] == ROLE


def test_model_for_estimator_keeps_its_old_name(backend):
    # Issue 13 moved the choice to core.model_request; the old entry point still answers.
    from rl_provider.core.model import model_for_estimator

    estimator = attached(backend, "rl-provider/ray:2.40.0-torch-cpu-py311")
    assert model_for_estimator(estimator, name="policy-1") == estimator.create_model(
        name="policy-1"
    )


def test_ray_model_takes_the_users_inference_code(backend, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "serve").mkdir()
    (tmp_path / "serve" / "inference.py").write_text("def model_fn(d):\n    return d\n")
    model = attached(backend, "rl-provider/ray:2.40.0-torch-cpu-py311").create_model(
        name="policy-1", entry_point="inference.py", source_dir="serve"
    )
    assert model.code is not None
    assert model.code.entry_point == "inference.py"
    assert (
        model.prepare_container_def("ml.g4dn.xlarge")["Environment"]["SAGEMAKER_PROGRAM"]
        == "inference.py"
    )
    assert (
        "pytorch-inference:2.6.0-gpu-py312"
        in model.prepare_container_def("ml.g4dn.xlarge")["Image"]
    )


def test_ray_model_uses_the_built_in_rllib_handler(backend):
    model = attached(backend, "rl-provider/ray:2.40.0-torch-cpu-py311").create_model(
        name="policy-1"
    )
    assert model.code is not None
    assert model.code.entry_point.endswith("rl_provider/serving/rllib.py")


def test_create_model_errors(backend, source, caplog):
    with pytest.raises(RLConfigError, match="no training job yet"):
        make(backend, source).create_model()
    estimator = attached(backend, f"{ECR}/sagemaker-rl-mxnet:coach0.11.0-cpu-py3")
    with pytest.raises(RLConfigError, match="entry_point"):
        estimator.create_model(source_dir="x")
    with pytest.raises(RLConfigError, match="Invalid model name"):
        estimator.create_model(name="bad_name")
    with pytest.raises(RLConfigError, match="instance type"):
        estimator.create_model(name="m").prepare_container_def()
    tf = attached(backend, f"{ECR}/sagemaker-rl-tensorflow:coach0.11.1-cpu-py3")
    with caplog.at_level(logging.WARNING):
        tf.create_model(name="m", entry_point="inference.py")
    assert "ignoring entry_point" in caplog.text
