"""training_request(): the exact CreateTrainingJob dict, valid for SageMaker's own service model."""

from __future__ import annotations

import botocore.session
import pytest
from botocore.validate import validate_parameters

from rl_provider import RLEstimator, TrainingInput
from rl_provider.exceptions import RLConfigError

ROLE = "arn:aws:iam::111122223333:role/SageMakerRole"


@pytest.fixture(scope="module")
def create_training_job_shape():
    model = botocore.session.get_session().get_service_model("sagemaker")
    return model.operation_model("CreateTrainingJob").input_shape


BASE = {"role": ROLE, "output_path": "s3://bucket/rl", "instance_type": "ml.c5.xlarge"}
ESTIMATORS = {
    "coach-tf": dict(toolkit="coach", toolkit_version="0.11.1", framework="tensorflow", **BASE),
    "coach-mxnet": dict(toolkit="coach", toolkit_version="0.11.0", framework="mxnet", **BASE),
    "ray-tf-gpu": dict(
        toolkit="ray",
        toolkit_version="1.6.0",
        framework="tensorflow",
        **{**BASE, "instance_type": "ml.p3.2xlarge"},
    ),
    "ray-torch": dict(toolkit="ray", toolkit_version="0.8.5", framework="pytorch", **BASE),
    "custom-image": dict(image_uri="123456789012.dkr.ecr.us-east-1.amazonaws.com/mine:1", **BASE),
    "everything": dict(
        toolkit="ray",
        toolkit_version="1.6.0",
        framework="pytorch",
        source_dir="src",
        hyperparameters={"iterations": 3, "env": "CartPole-v1", "nested": {"lr": 1e-4}},
        instance_count=2,
        volume_size=50,
        max_run=3600,
        max_wait=7200,
        use_spot_instances=True,
        checkpoint_s3_uri="s3://bucket/ckpt",
        checkpoint_local_path="/opt/ml/checkpoints",
        subnets=["subnet-1"],
        security_group_ids=["sg-1"],
        environment={"RAY_DEDUP_LOGS": "0"},
        tags={"team": "rl"},
        code_location="s3://code-bucket/prefix",
        **BASE,
    ),
}
INPUTS = [
    None,
    "s3://bucket/data",
    {
        "train": "s3://bucket/train",
        "eval": TrainingInput(s3_data="s3://bucket/eval", content_type="text/csv"),
    },
]


@pytest.mark.parametrize("name", sorted(ESTIMATORS))
@pytest.mark.parametrize("inputs", INPUTS, ids=["no-inputs", "str", "channels"])
def test_every_request_passes_botocore_validation(name, inputs, create_training_job_shape):
    request = RLEstimator("train.py", **ESTIMATORS[name]).training_request("job-1", inputs)
    validate_parameters(request, create_training_job_shape)  # raises ParamValidationError


def test_request_is_exact():
    estimator = RLEstimator("train.py", **ESTIMATORS["everything"])
    request = estimator.training_request(
        "cartpole-1", {"train": "s3://bucket/train"}, region="eu-west-1"
    )
    assert request == {
        "TrainingJobName": "cartpole-1",
        "AlgorithmSpecification": {
            "TrainingImage": "462105765813.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-rl-ray-container:ray-1.6.0-torch-cpu-py36",
            "TrainingInputMode": "File",
            "MetricDefinitions": RLEstimator.default_metric_definitions("ray"),
        },
        "HyperParameters": {
            "iterations": "3",
            "env": '"CartPole-v1"',
            "nested": '{"lr": 0.0001}',
            "sagemaker_program": '"train.py"',
            "sagemaker_submit_directory": '"s3://code-bucket/prefix/cartpole-1/source/sourcedir.tar.gz"',
            "sagemaker_container_log_level": "20",
            "sagemaker_job_name": '"cartpole-1"',
            "sagemaker_region": '"eu-west-1"',
            "sagemaker_s3_output": '"s3://bucket/rl"',
            "sagemaker_estimator": '"RLEstimator"',
        },
        "RoleArn": ROLE,
        "InputDataConfig": [
            {
                "ChannelName": "train",
                "DataSource": {
                    "S3DataSource": {
                        "S3DataType": "S3Prefix",
                        "S3Uri": "s3://bucket/train",
                        "S3DataDistributionType": "FullyReplicated",
                    }
                },
            }
        ],
        "OutputDataConfig": {"S3OutputPath": "s3://bucket/rl"},
        "ResourceConfig": {
            "InstanceType": "ml.c5.xlarge",
            "InstanceCount": 2,
            "VolumeSizeInGB": 50,
        },
        "StoppingCondition": {"MaxRuntimeInSeconds": 3600, "MaxWaitTimeInSeconds": 7200},
        "VpcConfig": {"Subnets": ["subnet-1"], "SecurityGroupIds": ["sg-1"]},
        "CheckpointConfig": {"S3Uri": "s3://bucket/ckpt", "LocalPath": "/opt/ml/checkpoints"},
        "Environment": {"RAY_DEDUP_LOGS": "0"},
        "Tags": [{"Key": "team", "Value": "rl"}],
        "EnableManagedSpotTraining": True,
        # SDK v2.257.7 defaults (issue 12 point 8).
        "DebugHookConfig": {"S3OutputPath": "s3://bucket/rl", "CollectionConfigurations": []},
        "ProfilerConfig": {"S3OutputPath": "s3://bucket/rl", "DisableProfiler": False},
    }


def test_code_goes_to_the_output_bucket_by_default():
    estimator = RLEstimator("train.py", **ESTIMATORS["coach-tf"])
    assert estimator.code_uri("j") == "s3://bucket/j/source/sourcedir.tar.gz"
    estimator.source_dir = "s3://bucket/prebuilt/sourcedir.tar.gz"
    assert estimator.code_uri("j") == "s3://bucket/prebuilt/sourcedir.tar.gz"


def test_local_paths_become_file_uris(tmp_path):
    estimator = RLEstimator(
        "train.py", **{**ESTIMATORS["coach-tf"], "output_path": tmp_path.as_uri()}
    )
    request = estimator.training_request("j", str(tmp_path))
    assert request["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"] == tmp_path.as_uri()
    assert request["HyperParameters"]["sagemaker_submit_directory"] == (
        f'"{tmp_path.as_uri()}/j/source/sourcedir.tar.gz"'
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"output_path": None}, "output_path is not set"),
        ({"output_path": "/tmp/out"}, "must be an s3:// or file:// URI"),
        ({"instance_type": "c5.xlarge"}, "c5.xlarge"),
        ({"instance_count": 0}, "positive int"),
        ({"use_spot_instances": True}, "max_wait >= max_run"),
        ({"subnets": ["subnet-1"]}, "pass both or neither"),
        ({"instance_type": "local", "instance_count": 2}, "local backend runs one instance"),
    ],
)
def test_bad_requests_are_config_errors(change, message):
    estimator = RLEstimator("train.py", **{**ESTIMATORS["coach-tf"], **change})
    with pytest.raises(RLConfigError, match=message):
        estimator.training_request("job-1")


@pytest.mark.parametrize("name", ["job_1", "-job", "x" * 64])
def test_bad_job_name_is_refused_before_anything_is_built(name):
    with pytest.raises(RLConfigError, match="Invalid training job name"):
        RLEstimator("train.py", **ESTIMATORS["coach-tf"]).training_request(name)


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ("ftp://host/data", "Unsupported data location"),
        ({"bad name!": "s3://b/k"}, "Invalid channel name"),
        ({"train": 3}, "give a URI string"),
        (42, "inputs must be"),
    ],
)
def test_bad_inputs(inputs, message):
    with pytest.raises(RLConfigError, match=message):
        RLEstimator("train.py", **ESTIMATORS["coach-tf"]).training_request("j", inputs)
