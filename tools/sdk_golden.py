#!/usr/bin/env python3
"""Record what SageMaker SDK v2.257.7 produces, as JSON fixtures our core is tested against.

    python tools/sdk_golden.py                     # venv in /tmp, fixtures in tests/core/golden/
    python tools/sdk_golden.py --venv DIR --out DIR

The SDK is never a project dependency: this script makes a throwaway virtualenv (default
``/tmp/rl-provider-sdk-golden``), ``pip install sagemaker==2.257.7`` there, and runs itself inside
it with ``--record``. ``make test`` never runs it; the fixtures it writes are committed.

Offline: the SDK's own boto3 session has fake credentials, and a botocore ``before-call`` handler
answers every AWS call (STS, S3, SageMaker) without sending it; a ``provide-client-params``
handler records each request's parameters. So the SDK's whole code path runs (session, default
bucket, code upload, request building) and only the network is replaced.

Fixtures (one JSON file per topic, each ``{"cases": {name: {...}}}``):

- ``signature.json``: every keyword argument of RLEstimator, Framework and EstimatorBase, the
  TrainingInput/FileSystemInput fields, and the class constants.
- ``requests.json``: the CreateTrainingJob request for one case per estimator argument (and
  channels), or the exception class and message the SDK raised.
- ``models.json``: ``create_model()`` branches and their ``prepare_container_def()``.
- ``attach.json``: ``RLEstimator.attach()`` from DescribeTrainingJob dicts.
- ``names.json``: ``name_from_base`` (fixed clock) and ``base_from_name``.
- ``images.json``: ``training_image_uri()`` per instance type (``ml.inf*``/``ml.trn*`` raise).
- ``errors.json``: the exception classes of the SDK's argument errors.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import inspect
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

SDK_VERSION = "2.257.7"
ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "tests" / "core" / "golden" / "sdk_v2_257_7"
DEFAULT_VENV = Path(tempfile.gettempdir()) / "rl-provider-sdk-golden"

REGION = "us-west-2"
ACCOUNT = "123456789012"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/SageMakerRole"
DEFAULT_BUCKET = f"sagemaker-{REGION}-{ACCOUNT}"
JOB = "rl-golden-job"
# 2023-11-14 22:13:20 UTC: the fixed clock for names made from the time.
CLOCK = 1700000000.0


# ------------------------------------------------------------------------------- outer mode
def make_venv(venv: Path) -> Path:
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    probe = subprocess.run(
        [str(python), "-c", "import sagemaker; print(sagemaker.__version__)"],
        capture_output=True,
        text=True,
        env={**os.environ, "SAGEMAKER_SUPPRESS_V2_WARNING": "1"},
    )
    if probe.stdout.strip() != SDK_VERSION:
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", f"sagemaker=={SDK_VERSION}"],
            check=True,
        )
    return python


# ------------------------------------------------------------------------------ record mode
class Fake:
    """Answers every botocore call (before-call) and records the parameters of each."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, dict[str, Any]]] = []
        self.describe: dict[str, Any] = {}
        self.tags: list[dict[str, str]] = []
        self.objects: dict[str, bytes] = {}

    def record(self, event_name: str, params: dict[str, Any], **_: Any) -> None:
        _, service, operation = event_name.split(".")[:3]
        copy = dict(params)
        body = copy.get("Body")
        if body is not None and operation == "PutObject":
            data = body.read() if hasattr(body, "read") else bytes(body)
            if hasattr(body, "seek"):
                body.seek(0)
            self.objects[f"s3://{copy['Bucket']}/{copy['Key']}"] = data
            copy["Body"] = f"<{len(data)} bytes>"
        self.calls.append((service, operation, copy))

    def answer(self, event_name: str, params: dict[str, Any], model: Any, **_: Any) -> Any:
        from botocore.awsrequest import AWSResponse
        from botocore.response import StreamingBody

        operation = model.name
        http = AWSResponse("https://fake", 200, {}, None)
        body: dict[str, Any] = {"ResponseMetadata": {"HTTPStatusCode": 200}}
        if operation == "GetCallerIdentity":
            body.update(Account=ACCOUNT, Arn=f"arn:aws:iam::{ACCOUNT}:user/golden", UserId="X")
        elif operation == "ListBuckets":
            body["Buckets"] = [{"Name": DEFAULT_BUCKET, "CreationDate": dt.datetime(2020, 1, 1)}]
        elif operation == "CreateTrainingJob":
            body["TrainingJobArn"] = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:training-job/x"
        elif operation == "DescribeTrainingJob":
            body.update(self.describe)
        elif operation == "ListTags":
            body["Tags"] = self.tags
        elif operation in ("HeadObject", "GetObject"):
            data = model_tar()
            body.update(ContentLength=len(data), ETag='"etag"')
            if operation == "GetObject":
                body["Body"] = StreamingBody(io.BytesIO(data), len(data))
        elif operation == "ListObjectsV2":
            body.update(KeyCount=0, Contents=[])
        return http, body

    def last(self, operation: str) -> dict[str, Any] | None:
        for _, op, params in reversed(self.calls):
            if op == operation:
                return params
        return None


def model_tar() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        data = b"weights"
        info = tarfile.TarInfo("policy.bin")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return repr(value)


def error(exc: BaseException) -> dict[str, Any]:
    return {
        "error": type(exc).__name__,
        "mro": [c.__name__ for c in type(exc).__mro__],
        "message": str(exc),
    }


@contextlib.contextmanager
def frozen_clock(moment: float):
    real = time.time
    time.time = lambda: moment  # type: ignore[assignment]
    try:
        yield
    finally:
        time.time = real  # type: ignore[assignment]


def record(out: Path) -> None:
    import boto3
    import sagemaker
    from sagemaker import utils
    from sagemaker.debugger import (
        CollectionConfig,
        DebuggerHookConfig,
        ProfilerConfig,
        TensorBoardOutputConfig,
    )
    from sagemaker.estimator import EstimatorBase, Framework
    from sagemaker.inputs import FileSystemInput, ShuffleConfig, TrainingInput
    from sagemaker.rl import RLEstimator, RLFramework, RLToolkit

    if sagemaker.__version__ != SDK_VERSION:
        raise SystemExit(f"sagemaker {sagemaker.__version__} is installed, not {SDK_VERSION}")
    fake = Fake()
    boto = boto3.session.Session(
        aws_access_key_id="golden", aws_secret_access_key="golden", region_name=REGION
    )
    boto.events.register("provide-client-params.*.*", fake.record)
    boto.events.register("before-call.*.*", fake.answer)
    session = sagemaker.session.Session(boto_session=boto)
    # The SDK reports usage over plain HTTPS (not botocore); opt out, as its docs say.
    from sagemaker.telemetry import telemetry_logging

    telemetry_logging._requests_helper = lambda url, timeout: None

    work = Path(tempfile.mkdtemp(prefix="sdk-golden-"))
    src = work / "src"
    src.mkdir()
    (src / "train.py").write_text("print('episode_reward_mean: 1.0')\n")
    (src / "inference.py").write_text("def model_fn(d):\n    return d\n")
    lib = work / "lib"
    lib.mkdir()
    (lib / "util.py").write_text("X = 1\n")
    os.chdir(work)

    base = {
        "entry_point": "train.py",
        "source_dir": "src",
        "toolkit": RLToolkit.RAY,
        "toolkit_version": "1.6.0",
        "framework": RLFramework.TENSORFLOW,
        "role": ROLE,
        "instance_count": 1,
        "instance_type": "ml.c5.xlarge",
        "output_path": "s3://bucket/out",
        "sagemaker_session": session,
    }

    def describe_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
        shown = {}
        for key, value in kwargs.items():
            if key == "sagemaker_session":
                continue
            if hasattr(value, "_to_request_dict"):
                value = {"__sdk__": type(value).__name__, "request": value._to_request_dict()}
            elif isinstance(value, RLToolkit | RLFramework):
                value = value.value
            elif isinstance(value, list) and value and hasattr(value[0], "config"):
                value = [{"__sdk__": type(v).__name__, "config": v.config} for v in value]
            shown[key] = jsonable(value)
        return shown

    def made(cls: Any, *args: Any, **kwargs: Any) -> Any:
        """An SDK input object that remembers its arguments (ours are built from them)."""
        sdk_kwargs = dict(kwargs)
        if "shuffle_config" in sdk_kwargs:
            sdk_kwargs["shuffle_config"] = ShuffleConfig(seed=kwargs["shuffle_config"]["Seed"])
        obj = cls(*args, **sdk_kwargs)
        obj.golden_arguments = {"args": list(args), "kwargs": kwargs}
        return obj

    def describe_inputs(inputs: Any) -> Any:
        if inputs is None or isinstance(inputs, str):
            return inputs
        if hasattr(inputs, "config"):
            described = {"__sdk__": type(inputs).__name__, "config": jsonable(inputs.config)}
            described.update(jsonable(getattr(inputs, "golden_arguments", {})))
            return described
        return {name: describe_inputs(value) for name, value in inputs.items()}

    def fit_case(
        overrides: dict[str, Any], inputs: Any = None, job_name: str | None = JOB
    ) -> dict[str, Any]:
        kwargs = {**base, **overrides}
        kwargs = {k: v for k, v in kwargs.items() if v is not _DROP}
        case: dict[str, Any] = {
            "kwargs": describe_kwargs(kwargs),
            "inputs": describe_inputs(inputs),
        }
        fake.calls.clear()
        try:
            with frozen_clock(CLOCK + 0.123):
                estimator = RLEstimator(**kwargs)
                estimator.fit(inputs, wait=False, logs=False, job_name=job_name)
        except Exception as exc:
            case.update(error(exc))
            return case
        case["request"] = jsonable(fake.last("CreateTrainingJob"))
        case["uploads"] = sorted(
            f"s3://{p['Bucket']}/{p['Key']}" for s, op, p in fake.calls if op == "PutObject"
        )
        return case

    # ---- signature and constants
    def params(cls: Any) -> dict[str, Any]:
        return {
            name: jsonable(p.default) if p.default is not p.empty else "<required>"
            for name, p in inspect.signature(cls.__init__).parameters.items()
            if name != "self" and p.kind is not p.VAR_KEYWORD
        }

    signature = {
        "sdk_version": sagemaker.__version__,
        "RLEstimator": params(RLEstimator),
        "Framework": params(Framework),
        "EstimatorBase": params(EstimatorBase),
        "TrainingInput": params(TrainingInput),
        "FileSystemInput": params(FileSystemInput),
        "create_model": {
            n: jsonable(p.default) if p.default is not p.empty else "<required>"
            for n, p in inspect.signature(RLEstimator.create_model).parameters.items()
            if n != "self" and p.kind is not p.VAR_KEYWORD
        },
        "constants": {
            "COACH_LATEST_VERSION_TF": RLEstimator.COACH_LATEST_VERSION_TF,
            "COACH_LATEST_VERSION_MXNET": RLEstimator.COACH_LATEST_VERSION_MXNET,
            "RAY_LATEST_VERSION": RLEstimator.RAY_LATEST_VERSION,
        },
    }
    accepted = sorted(
        set(signature["RLEstimator"])
        | set(signature["Framework"])
        | set(signature["EstimatorBase"])
    )
    signature["accepted"] = accepted

    # ---- one request per argument
    tb = "s3://bucket/tensorboard"
    arg_cases: dict[str, dict[str, Any]] = {
        "defaults": {},
        "role": {"role": "arn:aws:iam::111122223333:role/Other"},
        "instance_count": {"instance_count": 3},
        "instance_type_gpu": {"instance_type": "ml.p3.2xlarge"},
        "keep_alive_period_in_seconds": {"keep_alive_period_in_seconds": 1800},
        "volume_size": {"volume_size": 50},
        "volume_kms_key": {"volume_kms_key": "kms-volume"},
        "max_run": {"max_run": 3600},
        "input_mode_pipe": {"input_mode": "Pipe"},
        "input_mode_fastfile": {"input_mode": "FastFile"},
        "output_path_default": {"output_path": _DROP},
        "output_kms_key": {"output_kms_key": "kms-output"},
        "tags": {"tags": [{"Key": "team", "Value": "rl"}, {"Key": "cost", "Value": "42"}]},
        "tags_dict": {"tags": {"team": "rl"}},
        "vpc": {"subnets": ["subnet-1", "subnet-2"], "security_group_ids": ["sg-1"]},
        "model_uri": {"model_uri": "s3://bucket/pretrained/model.tar.gz"},
        "model_uri_channel": {
            "model_uri": "s3://bucket/pretrained/model.tar.gz",
            "model_channel_name": "pretrained",
        },
        "metric_definitions": {"metric_definitions": [{"Name": "loss", "Regex": "loss=(\\S+)"}]},
        "encrypt_inter_container_traffic": {"encrypt_inter_container_traffic": True},
        "spot": {"use_spot_instances": True, "max_run": 3600, "max_wait": 7200},
        "max_wait_only": {"max_wait": 7200},
        "checkpoint": {
            "checkpoint_s3_uri": "s3://bucket/ckpt",
            "checkpoint_local_path": "/opt/ml/checkpoints",
        },
        "checkpoint_s3_only": {"checkpoint_s3_uri": "s3://bucket/ckpt"},
        "rules_empty": {"rules": []},
        "debugger_hook_config_false": {"debugger_hook_config": False},
        "debugger_hook_config": {
            "debugger_hook_config": DebuggerHookConfig(
                s3_output_path="s3://bucket/debug",
                collection_configs=[CollectionConfig(name="losses")],
            )
        },
        "tensorboard_output_config": {
            "tensorboard_output_config": TensorBoardOutputConfig(
                s3_output_path=tb, container_local_output_path="/opt/ml/tb"
            )
        },
        "enable_sagemaker_metrics": {"enable_sagemaker_metrics": True},
        "enable_sagemaker_metrics_false": {"enable_sagemaker_metrics": False},
        "enable_network_isolation": {"enable_network_isolation": True},
        "profiler_config": {
            "profiler_config": ProfilerConfig(
                s3_output_path="s3://bucket/profile", system_monitor_interval_millis=500
            )
        },
        "disable_profiler": {"disable_profiler": True},
        "environment": {"environment": {"RAY_DEDUP_LOGS": "0", "N": "1"}},
        "max_retry_attempts": {"max_retry_attempts": 3},
        "source_dir_none": {"source_dir": None, "entry_point": "src/train.py"},
        "source_dir_s3": {"source_dir": "s3://bucket/code/sourcedir.tar.gz"},
        "git_config": {
            "git_config": {"repo": "https://github.com/example/repo.git", "branch": "main"}
        },
        "hyperparameters": {
            "hyperparameters": {"iterations": 3, "env": "CartPole-v1", "nested": {"lr": 1e-4}}
        },
        "container_log_level": {"container_log_level": 10},
        "code_location": {"code_location": "s3://code-bucket/prefix"},
        "dependencies": {"dependencies": ["lib"]},
        "instance_groups": {"instance_groups": "SKIP"},
        "training_repository_access_mode": {"training_repository_access_mode": "Vpc"},
        "training_repository_credentials_provider_arn": {
            "training_repository_access_mode": "Vpc",
            "training_repository_credentials_provider_arn": (
                f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:creds"
            ),
        },
        "enable_infra_check": {"enable_infra_check": True},
        "container_entry_point": {"container_entry_point": ["python", "-m", "x"]},
        "container_arguments": {"container_arguments": ["--a", "1"]},
        "disable_output_compression": {"disable_output_compression": True},
        "enable_remote_debug": {"enable_remote_debug": True},
        "enable_session_tag_chaining": {"enable_session_tag_chaining": True},
        "training_plan": {"training_plan": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:training-plan/p"},
        "instance_placement_config": {"instance_placement_config": "SKIP"},
        "framework_version_none": {"framework_version": None},
        "framework_version": {"framework_version": "2.5.0"},
        "py_version": {"py_version": "py3"},
        "base_job_name": {"base_job_name": "cartpole"},
        "image_uri": {
            "image_uri": "123456789012.dkr.ecr.us-west-2.amazonaws.com/mine:1",
            "toolkit": None,
            "toolkit_version": None,
            "framework": None,
        },
        "coach_tf": {
            "toolkit": RLToolkit.COACH,
            "toolkit_version": "0.11.1",
            "framework": RLFramework.TENSORFLOW,
        },
        "coach_mxnet": {
            "toolkit": RLToolkit.COACH,
            "toolkit_version": "0.11.0",
            "framework": RLFramework.MXNET,
        },
        "ray_torch": {"framework": RLFramework.PYTORCH},
        "train_instance_type_renamed": {
            "instance_type": _DROP,
            "train_instance_type": "ml.c5.2xlarge",
        },
    }
    requests: dict[str, Any] = {}
    for name, overrides in arg_cases.items():
        if "SKIP" in overrides.values():
            continue  # needs SDK objects with no request of their own to compare (see DESIGN)
        requests[name] = fit_case(overrides)
    # Names made from the clock (no job_name passed).
    requests["generated_name"] = fit_case({}, job_name=None)
    requests["generated_name_base"] = fit_case({"base_job_name": "cartpole"}, job_name=None)

    # ---- channels
    channel_cases = {
        "string": "s3://bucket/data",
        "dict_of_strings": {"train": "s3://bucket/train", "eval": "s3://bucket/eval"},
        "training_input_defaults": made(TrainingInput, "s3://bucket/data"),
        "training_input_all": made(
            TrainingInput,
            "s3://bucket/data",
            distribution="ShardedByS3Key",
            compression="Gzip",
            content_type="text/csv",
            record_wrapping="RecordIO",
            s3_data_type="ManifestFile",
            input_mode="Pipe",
            attribute_names=["source-ref", "label"],
            shuffle_config={"Seed": 7},
        ),
        "training_input_fastfile": made(TrainingInput, "s3://bucket/data", input_mode="FastFile"),
        "training_input_augmented": made(
            TrainingInput,
            "s3://bucket/manifest",
            s3_data_type="AugmentedManifestFile",
            attribute_names=["a"],
        ),
        "file_system_input": made(
            FileSystemInput,
            file_system_id="fs-0123456789abcdef0",
            file_system_type="EFS",
            directory_path="/data",
            file_system_access_mode="rw",
            content_type="application/x-npy",
        ),
        "file_system_input_defaults": made(
            FileSystemInput,
            file_system_id="fs-0fedcba9876543210",
            file_system_type="FSxLustre",
            directory_path="/fsx/data",
        ),
        "mixed": {
            "train": made(TrainingInput, "s3://bucket/train", input_mode="Pipe"),
            "fs": made(FileSystemInput, "fs-00000000000000001", "EFS", "/d"),
            "raw": "s3://bucket/raw",
        },
    }
    for name, inputs in channel_cases.items():
        requests[f"channels_{name}"] = fit_case({}, inputs=inputs)
    requests["channels_isolation_model_uri"] = fit_case(
        {"enable_network_isolation": True, "model_uri": "s3://bucket/m/model.tar.gz"},
        inputs={"train": "s3://bucket/train", "eval": "s3://bucket/eval"},
    )
    # The estimator block of an SDK v2 notebook (tests/test_sdk_migration.py runs it on moto).
    requests["notebook"] = fit_case(
        {
            "framework_version": None,
            "base_job_name": "rl-notebook",
            "hyperparameters": {"iterations": 1, "env": "CartPole-v1"},
        },
        inputs={
            "train": made(TrainingInput, "s3://bucket/data/train"),
            "eval": made(TrainingInput, "s3://bucket/data/eval", content_type="application/json"),
        },
    )
    requests["channels_with_model_uri"] = fit_case(
        {"model_uri": "s3://bucket/m/model.tar.gz"}, inputs="s3://bucket/data"
    )
    write(out / "requests.json", requests)

    # ---- errors
    errors: dict[str, Any] = {}
    error_cases = {
        "missing_all": {"toolkit": None, "toolkit_version": None, "framework": None},
        "missing_version": {"toolkit_version": None},
        "unsupported_combination": {
            "toolkit": RLToolkit.COACH,
            "toolkit_version": "1.0.0",
            "framework": RLFramework.MXNET,
        },
        "bad_toolkit": {"toolkit": "ray"},
        "bad_framework": {"framework": "tensorflow"},
        "unsupported_version": {"toolkit_version": "9.9"},
    }
    for name, overrides in error_cases.items():
        errors[name] = fit_case(overrides)

    # ---- images and processors
    image_cases: dict[str, Any] = {}
    for toolkit, version, framework in (
        (RLToolkit.RAY, "1.6.0", RLFramework.TENSORFLOW),
        (RLToolkit.RAY, "1.6.0", RLFramework.PYTORCH),
        (RLToolkit.COACH, "0.11.0", RLFramework.MXNET),
        (RLToolkit.COACH, "1.0.0", RLFramework.TENSORFLOW),
    ):
        for instance_type in (
            "ml.c5.xlarge",
            "ml.p3.2xlarge",
            "ml.g4dn.xlarge",
            "ml.inf1.xlarge",
            "ml.inf2.xlarge",
            "ml.trn1.2xlarge",
            "ml.trn1n.32xlarge",
            "local",
            "local_gpu",
        ):
            name = f"{toolkit.value}-{version}-{framework.value}-{instance_type}"
            try:
                estimator = RLEstimator(
                    **{
                        **base,
                        "toolkit": toolkit,
                        "toolkit_version": version,
                        "framework": framework,
                        "instance_type": instance_type
                        if not instance_type.startswith("local")
                        else "ml.c5.xlarge",
                    }
                )
                if instance_type.startswith("local"):
                    estimator.instance_type = instance_type
                image_cases[name] = {
                    "toolkit": toolkit.value,
                    "toolkit_version": version,
                    "framework": framework.value,
                    "instance_type": instance_type,
                    "image": estimator.training_image_uri(),
                }
            except Exception as exc:
                image_cases[name] = {
                    "toolkit": toolkit.value,
                    "toolkit_version": version,
                    "framework": framework.value,
                    "instance_type": instance_type,
                    **error(exc),
                }
    write(out / "images.json", image_cases)

    # ---- create_model branches
    fake.describe = describe_dict(
        "rl-golden-job",
        "462105765813.dkr.ecr.us-west-2.amazonaws.com/sagemaker-rl-tensorflow:ray1.6.0-cpu-py3",
    )
    models: dict[str, Any] = {}
    model_cases = {
        "tensorflow": ({"toolkit": RLToolkit.COACH, "toolkit_version": "0.11.1"}, {}),
        "tensorflow_entry_point": (
            {"toolkit": RLToolkit.COACH, "toolkit_version": "0.11.1"},
            {"entry_point": "inference.py"},
        ),
        "mxnet": (
            {
                "toolkit": RLToolkit.COACH,
                "toolkit_version": "0.11.0",
                "framework": RLFramework.MXNET,
            },
            {},
        ),
        "mxnet_entry_point": (
            {
                "toolkit": RLToolkit.COACH,
                "toolkit_version": "0.11.0",
                "framework": RLFramework.MXNET,
            },
            {"entry_point": "inference.py"},
        ),
        "custom_image": (
            {
                "image_uri": "123456789012.dkr.ecr.us-west-2.amazonaws.com/mine:1",
                "toolkit": None,
                "toolkit_version": None,
                "framework": None,
            },
            {},
        ),
        "custom_image_entry_point": (
            {
                "image_uri": "123456789012.dkr.ecr.us-west-2.amazonaws.com/mine:1",
                "toolkit": None,
                "toolkit_version": None,
                "framework": None,
            },
            {"entry_point": "inference.py"},
        ),
        "custom_image_entry_point_source_dir": (
            {
                "image_uri": "123456789012.dkr.ecr.us-west-2.amazonaws.com/mine:1",
                "toolkit": None,
                "toolkit_version": None,
                "framework": None,
            },
            {"entry_point": "inference.py", "source_dir": "src"},
        ),
        "ray": ({}, {}),
        "source_dir_without_entry_point": ({}, {"source_dir": "src"}),
        "vpc_override": (
            {
                "subnets": ["subnet-1"],
                "security_group_ids": ["sg-1"],
                "toolkit": RLToolkit.COACH,
                "toolkit_version": "0.11.1",
            },
            {"vpc_config_override": {"Subnets": ["subnet-9"], "SecurityGroupIds": ["sg-9"]}},
        ),
        "vpc_default": (
            {
                "subnets": ["subnet-1"],
                "security_group_ids": ["sg-1"],
                "toolkit": RLToolkit.COACH,
                "toolkit_version": "0.11.1",
            },
            {},
        ),
    }
    for name, (overrides, model_kwargs) in model_cases.items():
        case: dict[str, Any] = {
            "kwargs": describe_kwargs({**overrides}),
            "model_kwargs": jsonable(model_kwargs),
        }
        try:
            estimator = RLEstimator(**{**base, **overrides})
            estimator.fit(wait=False, logs=False, job_name=JOB)
            fake.calls.clear()
            with frozen_clock(CLOCK + 0.456):
                model = estimator.create_model(**model_kwargs)
                container = model.prepare_container_def(instance_type="ml.c5.xlarge")
            case.update(
                model_class=type(model).__name__,
                name=model.name,
                role=model.role,
                vpc_config=jsonable(model.vpc_config),
                entry_point=getattr(model, "entry_point", None),
                source_dir=getattr(model, "source_dir", None),
                container=jsonable(container),
                uploads=sorted(
                    f"s3://{p['Bucket']}/{p['Key']}" for s, op, p in fake.calls if op == "PutObject"
                ),
            )
            repacked = [
                key for key in fake.objects if key.endswith("model.tar.gz") and "/out/" not in key
            ]
            if repacked:
                with tarfile.open(fileobj=io.BytesIO(fake.objects[repacked[-1]])) as tar:
                    case["repacked_members"] = sorted(tar.getnames())
            fake.objects.clear()
        except Exception as exc:
            case.update(error(exc))
            case["traceback_tail"] = traceback.format_exc().splitlines()[-3:]
        models[name] = case
    write(out / "models.json", models)

    # ---- attach
    attach: dict[str, Any] = {}
    attach_cases = {
        "ray_tf": ("rl-golden-job", "sagemaker-rl-tensorflow:ray1.6.0-cpu-py3", []),
        "coach_mxnet": ("coach-job", "sagemaker-rl-mxnet:coach0.11.0-gpu-py3", []),
        "neo_base_and_tags": (
            "neo-2017-11-06-14-14-15-672",
            "sagemaker-rl-tensorflow:coach0.11.1-cpu-py3",
            [{"Key": "team", "Value": "rl"}],
        ),
        "short_name": ("x-171106-1414", "sagemaker-rl-tensorflow:coach0.11.1-cpu-py3", []),
        "custom_image": ("custom-job", "123456789012.dkr.ecr.us-west-2.amazonaws.com/mine:1", []),
        "other_framework": ("mx-job", "sagemaker-mxnet-py2-cpu:1.0.4", []),
        "unsupported_rl": ("bad-job", "sagemaker-rl-mxnet:coach1.0.0-cpu-py3", []),
    }
    attach_cases["request_options"] = (
        "opts-job",
        "sagemaker-rl-tensorflow:coach0.11.1-cpu-py3",
        [],
    )
    for name, (job_name, image, tags) in attach_cases.items():
        if "/" not in image:
            image = f"520713654638.dkr.ecr.us-west-2.amazonaws.com/{image}"
        fake.describe = describe_dict(job_name, image)
        if name == "request_options":
            fake.describe["OutputDataConfig"]["KmsKeyId"] = "kms-output"
            fake.describe["ResourceConfig"].update(
                VolumeKmsKeyId="kms-volume", KeepAlivePeriodInSeconds=1800
            )
            fake.describe.update(
                EnableInterContainerTrafficEncryption=True,
                RetryStrategy={"MaximumRetryAttempts": 3},
                EnableManagedSpotTraining=True,
                InputDataConfig=[
                    {
                        "ChannelName": "pretrained",
                        "ContentType": "application/x-sagemaker-model",
                        "InputMode": "File",
                        "DataSource": {
                            "S3DataSource": {
                                "S3DataType": "S3Prefix",
                                "S3Uri": "s3://bucket/m/model.tar.gz",
                                "S3DataDistributionType": "FullyReplicated",
                            }
                        },
                    }
                ],
            )
            fake.describe["StoppingCondition"]["MaxWaitTimeInSeconds"] = 172800
        fake.tags = tags
        case = {"describe": jsonable(fake.describe), "tags": tags}
        try:
            estimator = RLEstimator.attach(job_name, sagemaker_session=session)
            case["estimator"] = {
                key: jsonable(value.value if isinstance(value, RLToolkit | RLFramework) else value)
                for key, value in (
                    ("base_job_name", estimator.base_job_name),
                    ("tags", estimator.tags),
                    ("toolkit", getattr(estimator, "toolkit", None)),
                    ("toolkit_version", getattr(estimator, "toolkit_version", None)),
                    ("framework", getattr(estimator, "framework", None)),
                    ("framework_version", getattr(estimator, "framework_version", None)),
                    ("image_uri", estimator.image_uri),
                    ("entry_point", estimator.entry_point),
                    ("source_dir", estimator.source_dir),
                    ("role", estimator.role),
                    ("instance_count", estimator.instance_count),
                    ("instance_type", estimator.instance_type),
                    ("volume_size", estimator.volume_size),
                    ("max_run", estimator.max_run),
                    ("output_path", estimator.output_path),
                    ("hyperparameters", estimator.hyperparameters()),
                    ("container_log_level", estimator.container_log_level),
                    ("model_data", estimator.model_data),
                    ("output_kms_key", estimator.output_kms_key),
                    ("volume_kms_key", estimator.volume_kms_key),
                    ("keep_alive_period_in_seconds", estimator.keep_alive_period_in_seconds),
                    ("encrypt_inter_container_traffic", estimator.encrypt_inter_container_traffic),
                    ("max_retry_attempts", estimator.max_retry_attempts),
                    ("use_spot_instances", estimator.use_spot_instances),
                    ("max_wait", estimator.max_wait),
                    ("model_uri", estimator.model_uri),
                    ("model_channel_name", estimator.model_channel_name),
                    ("enable_network_isolation", estimator.enable_network_isolation()),
                )
            }
        except Exception as exc:
            case.update(error(exc))
        attach[name] = case
    write(out / "attach.json", attach)

    # ---- names
    names: dict[str, Any] = {"name_from_base": {}, "base_from_name": {}}
    for moment in (CLOCK, CLOCK + 0.123, CLOCK + 0.5, CLOCK + 0.9996, CLOCK + 59.9999, 1e9 + 0.001):
        for base_name, max_length in (("neo", 63), ("x" * 70, 63), ("base", 20)):
            with frozen_clock(moment):
                made = utils.name_from_base(base_name, max_length=max_length)
            names["name_from_base"][f"{base_name[:10]}-{max_length}-{moment!r}"] = {
                "base": base_name,
                "max_length": max_length,
                "moment": moment,
                "name": made,
            }
    for name in (
        "neo-2017-11-06-14-14-15-672",
        "neo-2017-11-06-14-14-15-672-extra",
        "x-171106-1414",
        "x-171106-1414-more",
        "my-base-2017-11-06-14-14-15-67",
        "noname",
        "a-b-c",
        "base-123456-1234",
        "rl-golden-job",
        "2017-11-06-14-14-15-672",
        "-2017-11-06-14-14-15-672",
    ):
        names["base_from_name"][name] = {"name": name, "base": utils.base_from_name(name)}
    write(out / "names.json", names)
    write(out / "errors.json", errors)
    write(out / "signature.json", signature)


def describe_dict(job_name: str, image: str) -> dict[str, Any]:
    return {
        "TrainingJobName": job_name,
        "TrainingJobArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:training-job/{job_name}",
        "TrainingJobStatus": "Completed",
        "ModelArtifacts": {"S3ModelArtifacts": f"s3://bucket/out/{job_name}/output/model.tar.gz"},
        "AlgorithmSpecification": {"TrainingImage": image, "TrainingInputMode": "File"},
        "HyperParameters": {
            "sagemaker_program": '"train.py"',
            "sagemaker_submit_directory": f'"s3://bucket/{job_name}/source/sourcedir.tar.gz"',
            "sagemaker_container_log_level": "20",
            "sagemaker_job_name": f'"{job_name}"',
            "sagemaker_region": f'"{REGION}"',
            "sagemaker_estimator": '"RLEstimator"',
            "sagemaker_s3_output": '"s3://bucket/out"',
            "iterations": "3",
        },
        "RoleArn": ROLE,
        "OutputDataConfig": {"S3OutputPath": "s3://bucket/out", "KmsKeyId": ""},
        "ResourceConfig": {
            "InstanceType": "ml.c5.xlarge",
            "InstanceCount": 1,
            "VolumeSizeInGB": 30,
        },
        "StoppingCondition": {"MaxRuntimeInSeconds": 86400},
        "CreationTime": dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
        "VpcConfig": {"Subnets": ["subnet-1"], "SecurityGroupIds": ["sg-1"]},
        "EnableNetworkIsolation": False,
        "EnableInterContainerTrafficEncryption": False,
        "EnableManagedSpotTraining": False,
    }


class _Drop:
    def __repr__(self) -> str:
        return "<drop>"


_DROP = _Drop()


def write(path: Path, cases: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"sdk_version": SDK_VERSION, "cases": cases}
    path.write_text(json.dumps(payload, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {path} ({len(cases)} cases)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venv", type=Path, default=DEFAULT_VENV)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--record", action="store_true", help="(inside the venv) record now")
    args = parser.parse_args()
    if args.record:
        record(args.out.resolve())
        return
    python = make_venv(args.venv)
    env = {**os.environ, "SAGEMAKER_SUPPRESS_V2_WARNING": "1", "AWS_EC2_METADATA_DISABLED": "true"}
    for key in ("AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        env.pop(key, None)
    subprocess.run(
        [str(python), str(Path(__file__).resolve()), "--record", "--out", str(args.out.resolve())],
        check=True,
        env=env,
    )


if __name__ == "__main__":
    main()
