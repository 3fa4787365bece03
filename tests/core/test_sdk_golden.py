"""Our core against SageMaker SDK v2.257.7, field by field (fixtures: ``tools/sdk_golden.py``).

Every fixture case is a test. The few cases where we chose not to copy the SDK are listed in
``DIFFERENCES`` with what we do instead (docs/DESIGN.md "SDK behaviour we chose not to copy").
"""

from __future__ import annotations

import inspect
import json
import time
from typing import Any

import pytest

from rl_provider import RLEstimator
from rl_provider.backends.sagemaker import SageMakerBackend
from rl_provider.core import images, naming
from rl_provider.core.inputs import FileSystemInput, TrainingInput
from rl_provider.core.model import ModelKind
from rl_provider.exceptions import RLConfigError
from tests.core.golden import cases, revive
from tests.fakes import InMemoryBackend

REGION = "us-west-2"
DEFAULT_BUCKET = "sagemaker-us-west-2-123456789012"
CLOCK = 1700000000.0

REQUESTS = cases("requests")
ERRORS = cases("errors")
IMAGES = cases("images")
NAMES = cases("names")
ATTACH = cases("attach")
SIGNATURE = cases("signature")

# Cases where we differ on purpose: what we do instead (DESIGN.md lists why).
DIFFERENCES = {
    "git_config": "RLConfigError: clone in a task and pass source_dir",
    "train_instance_type_renamed": "TypeError: SDK v1 argument names are not accepted",
}


def _no_aws(service: str) -> Any:
    raise AssertionError(f"a pure request must not make a {service} client")


def _estimator(kwargs: dict[str, Any]) -> RLEstimator:
    kwargs = revive(dict(kwargs))
    # The SDK session of the recording: SageMaker in us-west-2, default bucket of its account.
    backend = SageMakerBackend(client_factory=_no_aws, region_name=REGION, bucket=DEFAULT_BUCKET)
    return RLEstimator(**kwargs, backend=backend)


def _job_name(estimator: RLEstimator, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setattr(naming.time, "time", lambda: CLOCK + 0.123)
    return estimator._new_job_name()


@pytest.mark.parametrize("case_name", sorted(REQUESTS))
def test_create_training_job_request_matches_the_sdk(case_name, tmp_path, monkeypatch):
    case = REQUESTS[case_name]
    monkeypatch.chdir(tmp_path)  # entry points are never read by a pure request
    if case_name in DIFFERENCES:
        expected = TypeError if "TypeError" in DIFFERENCES[case_name] else RLConfigError
        with pytest.raises(expected):
            _estimator(case["kwargs"])
        return
    estimator = _estimator(case["kwargs"])
    generated = case["request"]["TrainingJobName"] != "rl-golden-job"
    job_name = _job_name(estimator, monkeypatch) if generated else "rl-golden-job"
    expected = case["request"]
    inputs = revive(case["inputs"])
    if isinstance(inputs, dict):
        # JSON sorted the recorded dict's keys; the SDK kept the user's order, as we do.
        order = [channel["ChannelName"] for channel in expected["InputDataConfig"]]
        inputs = {name: inputs[name] for name in sorted(inputs, key=order.index)}
    request = estimator.training_request(job_name, inputs, region=REGION)
    for key in sorted(set(expected) | set(request)):
        assert request.get(key) == expected.get(key), key
    assert estimator.code_uri(job_name) in [*case["uploads"], estimator.source_dir]


OURS = {"TrainingInput": TrainingInput, "FileSystemInput": FileSystemInput}


def _ours(recorded: Any) -> Any:
    """The recorded SDK inputs rebuilt as OUR classes, from the arguments the SDK was given."""
    if isinstance(recorded, dict) and "__sdk__" in recorded:
        return OURS[recorded["__sdk__"]](*recorded["args"], **recorded["kwargs"])
    if isinstance(recorded, dict):
        return {name: _ours(value) for name, value in recorded.items()}
    return recorded


INPUT_CASES = sorted(
    name
    for name, case in REQUESTS.items()
    if "__sdk__" in json.dumps(case["inputs"]) and "error" not in case
)


@pytest.mark.parametrize("case_name", INPUT_CASES)
def test_our_input_classes_make_the_sdk_channels(case_name):
    case = REQUESTS[case_name]
    expected = case["request"]
    inputs = _ours(case["inputs"])
    if isinstance(inputs, dict):
        order = [channel["ChannelName"] for channel in expected["InputDataConfig"]]
        inputs = {name: inputs[name] for name in sorted(inputs, key=order.index)}
    request = _estimator(case["kwargs"]).training_request("rl-golden-job", inputs, region=REGION)
    assert request["InputDataConfig"] == expected["InputDataConfig"]
    assert request["AlgorithmSpecification"] == expected["AlgorithmSpecification"]


def test_file_system_input_refuses_what_the_sdk_refuses():
    with pytest.raises(ValueError, match="Unrecognized file system type"):
        FileSystemInput("fs-1", "NFS", "/d")
    with pytest.raises(ValueError, match="Unrecognized file system access mode"):
        FileSystemInput("fs-1", "EFS", "/d", "rx")


@pytest.mark.parametrize("case_name", sorted(ERRORS))
def test_argument_errors_raise_the_sdk_exception_class(case_name):
    case = ERRORS[case_name]
    kwargs = dict(case["kwargs"])
    sdk_class = {"AttributeError": AttributeError, "ValueError": ValueError}[case["error"]]
    if case_name in ("bad_toolkit", "bad_framework"):
        # The SDK refuses strings ("ray"); we coerce them (DESIGN: Enums). A bad value raises
        # the SDK's class.
        kwargs[case_name.split("_")[1]] = "nope"
    with pytest.raises(sdk_class):
        _estimator(kwargs)


@pytest.mark.parametrize("case_name", sorted(IMAGES))
def test_training_image_and_processor_rules_match_the_sdk(case_name):
    case = IMAGES[case_name]
    kwargs = {
        "toolkit": case["toolkit"],
        "toolkit_version": case["toolkit_version"],
        "framework": case["framework"],
        "instance_type": case["instance_type"],
        "output_path": "s3://bucket/out",
    }
    estimator = RLEstimator("train.py", **kwargs)
    if "error" in case:
        with pytest.raises(ValueError, match=r"Unsupported (processor|framework)"):
            estimator.training_image_uri(REGION)
    else:
        assert estimator.training_image_uri(REGION) == case["image"]


@pytest.mark.parametrize("case_name", sorted(NAMES["name_from_base"]))
def test_name_from_base_matches_the_sdk(case_name):
    case = NAMES["name_from_base"][case_name]
    ours = naming.name_from_base(case["base"], case["max_length"], moment=case["moment"])
    sdk = case["name"]
    sdk_stamp = sdk.rsplit("-", 1)[1]
    if len(sdk_stamp) == 3:
        # Same stamp (milliseconds truncated, never rounded into the past) and same base.
        assert ours == sdk
    else:
        # SDK: "x.5" -> "-5" (repr's decimals, unpadded); ours always has three digits.
        assert ours.rsplit("-", 1)[1] == sdk_stamp.ljust(3, "0")
        assert ours.rsplit("-", 7)[1:-1] == sdk.rsplit("-", 7)[1:-1]


def test_timestamp_never_runs_ahead_or_behind_its_second():
    assert naming.timestamp(CLOCK + 0.9996).endswith("-20-999")
    assert naming.timestamp(CLOCK + 59.9999).endswith("-14-19-999")
    stamps = [naming.timestamp(CLOCK + i / 10000) for i in range(9990, 10011)]
    assert stamps == sorted(stamps)


@pytest.mark.parametrize("name", sorted(NAMES["base_from_name"]))
def test_base_from_name_matches_the_sdk(name):
    assert naming.base_from_name(name) == NAMES["base_from_name"][name]["base"]


def test_short_names_use_the_sdk_short_format():
    name = naming.name_from_base("x", moment=CLOCK, short=True)
    assert name == "x-231114-2213"
    assert naming.base_from_name(name) == "x"


def test_generated_job_name_is_made_at_call_time(monkeypatch):
    estimator = _estimator({"entry_point": "train.py", "image_uri": "1.dkr.ecr/a/mine:1"})
    monkeypatch.setattr(time, "time", lambda: CLOCK + 0.9996)
    assert estimator._new_job_name() == "mine-2023-11-14-22-13-20-999"


# --------------------------------------------------------------------------------- attach
class DescribedBackend:
    """The backend contract over one recorded DescribeTrainingJob (and its ListTags)."""

    poll_interval = 0.0
    region = REGION

    def __init__(self, describe: dict[str, Any], tags: list[dict[str, str]]) -> None:
        from rl_provider.core.jobs import TrainingJobDescription

        self.description = TrainingJobDescription.from_api(describe)
        self.tags = tags

    def describe_training_job(self, name: str) -> Any:
        assert name == self.description.training_job_name
        return self.description

    def list_tags(self, arn: str) -> list[dict[str, str]]:
        assert arn == self.description.training_job_arn
        return self.tags

    def default_output_path(self) -> str:
        return f"s3://{DEFAULT_BUCKET}/"


@pytest.mark.parametrize("case_name", sorted(ATTACH))
def test_attach_matches_the_sdk(case_name):
    case = ATTACH[case_name]
    backend = DescribedBackend(case["describe"], case["tags"])
    name = case["describe"]["TrainingJobName"]
    if "error" in case:
        with pytest.raises(ValueError, match="didn't use"):
            RLEstimator.attach(name, backend=backend)  # type: ignore[arg-type]
        return
    estimator = RLEstimator.attach(name, backend=backend)  # type: ignore[arg-type]
    sdk = case["estimator"]
    ours = {
        "base_job_name": estimator.base_job_name,
        "tags": estimator.tags,
        "toolkit": estimator.toolkit and estimator.toolkit.value,
        "toolkit_version": estimator.toolkit_version,
        "framework": estimator.framework and estimator.framework.value,
        "framework_version": estimator.framework_version,
        "image_uri": estimator.image_uri,
        "entry_point": estimator.entry_point,
        "role": estimator.role,
        "instance_count": estimator.instance_count,
        "instance_type": estimator.instance_type,
        "volume_size": estimator.volume_size,
        "max_run": estimator.max_run,
        "output_path": estimator.output_path,
        "hyperparameters": estimator.hyperparameters(),
        "container_log_level": estimator.container_log_level,
        "model_data": estimator.model_data,
        "use_spot_instances": estimator.use_spot_instances,
        "max_wait": estimator.max_wait,
    }
    options = estimator.sagemaker_options
    for option in (
        "output_kms_key",
        "volume_kms_key",
        "keep_alive_period_in_seconds",
        "encrypt_inter_container_traffic",
        "max_retry_attempts",
        "model_uri",
        "model_channel_name",
        "enable_network_isolation",
    ):
        ours[option] = getattr(options, option)
    for key, value in ours.items():
        assert value == sdk[key], key
    # The SDK keeps the training code's S3 location as source_dir (create_model's default).
    assert estimator.source_dir == sdk["source_dir"]


# ------------------------------------------------------------------------ signature, constants
def test_every_sdk_argument_is_accepted():
    ours = set(inspect.signature(RLEstimator.__init__).parameters) - {"self"}
    missing = set(SIGNATURE["accepted"]) - ours
    assert not missing
    # Also taken (and ignored, as the SDK's **kwargs do) by notebooks' estimator blocks.
    assert {"framework_version", "py_version", "sagemaker_session"} <= ours


def test_every_sdk_argument_default_is_the_sdks():
    ours = inspect.signature(RLEstimator.__init__).parameters
    seen: set[str] = set()
    for cls in ("RLEstimator", "Framework", "EstimatorBase"):
        for name, default in SIGNATURE[cls].items():
            if name in seen or name in ("instance_type", "instance_count"):
                continue  # the subclass's default wins; ours run one local instance by default
            seen.add(name)
            if default == "<required>":
                assert ours[name].default is inspect.Parameter.empty, name
            else:
                assert ours[name].default == default, name


def test_class_constants_are_the_sdks():
    for name, value in SIGNATURE["constants"].items():
        assert getattr(RLEstimator, name) == value


def test_inferentia_and_trainium_have_no_image():
    with pytest.raises(ValueError, match="Unsupported processor: inf"):
        images.retrieve("pytorch", REGION, "2.6.0", "ml.inf2.xlarge", scope="inference")
    with pytest.raises(ValueError, match="Unsupported framework"):
        images.retrieve("ray-pytorch", REGION, "1.6.0", "ml.trn1.2xlarge")


# ------------------------------------------------------------------------------- create_model
MODELS = cases("models")


class SessionBackend(InMemoryBackend):
    """The backend contract with the recording session's default bucket."""

    def default_output_path(self) -> str:
        return f"s3://{DEFAULT_BUCKET}/"


@pytest.mark.parametrize("case_name", sorted(MODELS))
def test_create_model_matches_the_sdk(case_name, tmp_path, monkeypatch):
    case = MODELS[case_name]
    monkeypatch.chdir(tmp_path)
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "train.py").write_text("print('episode_reward_mean: 1.0')\n")
    (tmp_path / "src" / "inference.py").write_text("def model_fn(d):\n    return d\n")
    kwargs = {
        "entry_point": "train.py",
        "source_dir": "src",
        "toolkit": "ray",
        "toolkit_version": "1.6.0",
        "framework": "tensorflow",
        "role": "arn:aws:iam::123456789012:role/SageMakerRole",
        "instance_count": 1,
        "instance_type": "ml.c5.xlarge",
        "output_path": "s3://bucket/out",
        **revive(case["kwargs"]),
    }
    estimator = RLEstimator(**kwargs, backend=SessionBackend(store=tmp_path))
    estimator.fit(job_name="rl-golden-job", logs=False)
    monkeypatch.setattr(naming.time, "time", lambda: CLOCK + 0.456)
    model_kwargs = revive(case["model_kwargs"])
    if case_name == "ray":
        # SDK: NotImplementedError; ours serves the policy with the built-in RLlib handler.
        model = estimator.create_model(**model_kwargs)
        assert model.kind is ModelKind.PYTORCH
        assert model.prepare_container_def("ml.c5.xlarge")["Environment"] == {
            "SAGEMAKER_PROGRAM": "rllib.py",
            "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code",
            "SAGEMAKER_CONTAINER_LOG_LEVEL": "20",
            "SAGEMAKER_REGION": REGION,
        }
        return
    if "error" in case:
        with pytest.raises({"AttributeError": AttributeError}[case["error"]]):
            estimator.create_model(**model_kwargs)
        return
    model = estimator.create_model(**model_kwargs)
    assert model.prepare_container_def("ml.c5.xlarge") == case["container"]
    assert model.name == case["name"]
    assert model.role == case["role"]
    assert model.vpc_config == case["vpc_config"]
    repacked = case["container"]["Environment"].get("SAGEMAKER_SUBMIT_DIRECTORY")
    if repacked == "/opt/ml/model/code":
        # SDK: the training artifact + the code, under code/ of a new model.tar.gz.
        assert model.repack_from == "s3://bucket/out/rl-golden-job/output/model.tar.gz"
        assert model.code is not None


def test_attach_to_an_isolated_job_finds_its_code_in_the_code_channel():
    request = REQUESTS["enable_network_isolation"]["request"]
    describe = {
        **request,
        "TrainingJobArn": "arn:aws:sagemaker:us-west-2:123456789012:training-job/rl-golden-job",
        "TrainingJobStatus": "Completed",
        "CreationTime": "2024-01-01T00:00:00+00:00",
        "ModelArtifacts": {"S3ModelArtifacts": "s3://bucket/out/rl-golden-job/output/model.tar.gz"},
    }
    backend = DescribedBackend(describe, [])
    estimator = RLEstimator.attach("rl-golden-job", backend=backend)  # type: ignore[arg-type]
    assert estimator.source_dir == "s3://bucket/rl-golden-job/source/sourcedir.tar.gz"
    assert estimator.sagemaker_options.enable_network_isolation is True
    # Re-fitting it sends the same request again.
    estimator.output_path = "s3://bucket/out"
    again = estimator.training_request("rl-golden-job", region=REGION)
    assert again["InputDataConfig"] == request["InputDataConfig"]
    assert again["HyperParameters"] == request["HyperParameters"]
