"""The SageMaker training-container contract, laid out under a job directory.

What the ``sagemaker-training`` toolkit gives a script inside a SageMaker container (without
depending on that package, which downgrades the Amazon provider): the ``opt_ml`` tree, the three
config files, the ``SM_*`` environment and the hyperparameters as sorted command-line arguments.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from rl_provider.backends.local import transfer
from rl_provider.core import hyperparameters as hp
from rl_provider.core.packaging import safe_extract
from rl_provider.exceptions import RLConfigError

CURRENT_HOST = "algo-1"
# Hyperparameters the SDK adds for the container itself: not user arguments (sagemaker-training
# calls them "additional framework parameters").
FRAMEWORK_PARAMETER_PREFIX = "sagemaker_"


# What exists before the entry point starts (checkpoints/ only when the job uses it).
_CREATED = ("code", "input_config", "input_data", "model", "output_data", "output_intermediate")


@dataclass(frozen=True, slots=True)
class ContainerPaths:
    """``/opt/ml`` of a SageMaker container, rooted at ``<job dir>/opt_ml``.

    The layout is the attribute names: each is the path of that name under ``base``, ``_`` read
    as ``/`` (``output_intermediate`` is ``output/intermediate``).
    """

    base: Path
    code: Path = field(init=False)
    input: Path = field(init=False)
    input_config: Path = field(init=False)
    input_data: Path = field(init=False)
    model: Path = field(init=False)
    output: Path = field(init=False)
    output_data: Path = field(init=False)
    output_intermediate: Path = field(init=False)
    checkpoints: Path = field(init=False)

    def __post_init__(self) -> None:
        for path in fields(self)[1:]:
            object.__setattr__(self, path.name, self.base.joinpath(*path.name.split("_")))

    def channel(self, name: str) -> Path:
        return self.input_data / name

    def create(self) -> None:
        for name in _CREATED:
            Path(getattr(self, name)).mkdir(parents=True, exist_ok=True)


def split_hyperparameters(raw: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(user hyperparameters, sagemaker_* framework parameters), JSON-decoded."""
    decoded = hp.decode(raw)
    user = {k: v for k, v in decoded.items() if not k.startswith(FRAMEWORK_PARAMETER_PREFIX)}
    framework = {k: v for k, v in decoded.items() if k.startswith(FRAMEWORK_PARAMETER_PREFIX)}
    return user, framework


def _arg_value(value: Any) -> str:
    # sagemaker-training's mapping.to_cmd_args: dicts as "k=v,k2=v2", everything else str().
    if isinstance(value, Mapping):
        return ",".join(f"{k}={v}" for k, v in sorted(value.items()))
    return str(value)


def cli_args(hyperparameters: Mapping[str, Any]) -> list[str]:
    """Sorted ``--key value`` pairs (``-k value`` for one-letter keys), as sagemaker-training."""
    args: list[str] = []
    for key in sorted(hyperparameters):
        args += [f"-{key}" if len(key) == 1 else f"--{key}", _arg_value(hyperparameters[key])]
    return args


def _env_value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _env_key(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name).upper()


def resource_config(instance_type: str) -> dict[str, Any]:
    return {
        "current_host": CURRENT_HOST,
        "current_instance_type": instance_type,
        "current_group_name": "homogeneousCluster",
        "hosts": [CURRENT_HOST],
        "instance_groups": [
            {
                "instance_group_name": "homogeneousCluster",
                "instance_type": instance_type,
                "hosts": [CURRENT_HOST],
            }
        ],
        "network_interface_name": "eth0",
    }


def input_data_config(request: Mapping[str, Any]) -> dict[str, Any]:
    config = {}
    for channel in request.get("InputDataConfig", []):
        source = channel["DataSource"].get("S3DataSource", {})
        config[channel["ChannelName"]] = {
            "TrainingInputMode": channel.get(
                "InputMode", request["AlgorithmSpecification"].get("TrainingInputMode", "File")
            ),
            "S3DistributionType": source.get("S3DataDistributionType", "FullyReplicated"),
            "RecordWrapperType": channel.get("RecordWrapperType", "None"),
            **({"ContentType": channel["ContentType"]} if "ContentType" in channel else {}),
        }
    return config


def stage_job(paths: ContainerPaths, request: Mapping[str, Any], scratch: Path) -> None:
    """The job's code (``sagemaker_submit_directory``) unpacked into ``code/``, its entry point
    checked, the config files written and the channels copied in: what a SageMaker container
    holds before the entry point starts. ``scratch``: where an s3:// object is downloaded."""
    _, framework = split_hyperparameters(request.get("HyperParameters", {}))
    submit = framework.get("sagemaker_submit_directory")
    if submit:
        with transfer.local_copy(str(submit), scratch) as archive:
            safe_extract(archive, paths.code)
    program = paths.code / str(framework.get("sagemaker_program", ""))
    if not program.is_file():
        raise RLConfigError(
            f"The entry point {framework.get('sagemaker_program')!r} is not in the code "
            f"archive {submit!r}."
        )
    write_configs(paths, request)
    for channel in request.get("InputDataConfig", []):
        uri = channel["DataSource"]["S3DataSource"]["S3Uri"]
        transfer.stage(uri, paths.channel(channel["ChannelName"]))


def write_configs(paths: ContainerPaths, request: Mapping[str, Any]) -> None:
    """``hyperparameters.json`` (strings, as SageMaker writes it), resource and data configs."""
    configs = {
        "hyperparameters.json": dict(request.get("HyperParameters", {})),
        "resourceconfig.json": resource_config(request["ResourceConfig"]["InstanceType"]),
        "inputdataconfig.json": input_data_config(request),
    }
    for name, body in configs.items():
        (paths.input_config / name).write_text(json.dumps(body, indent=2, sort_keys=True))


def training_env(
    paths: ContainerPaths, request: Mapping[str, Any], num_cpus: int, num_gpus: int = 0
) -> dict[str, str]:
    """Every ``SM_*`` variable, ``TRAINING_JOB_NAME`` and the request's ``Environment``."""
    user, framework = split_hyperparameters(request.get("HyperParameters", {}))
    program = str(framework.get("sagemaker_program", ""))
    module_name = program[:-3] if program.endswith(".py") else program
    log_level = int(framework.get("sagemaker_container_log_level", 20))
    channels = sorted(c["ChannelName"] for c in request.get("InputDataConfig", []))
    instance_type = request["ResourceConfig"]["InstanceType"]
    resources = resource_config(instance_type)
    data_config = input_data_config(request)
    args = cli_args(user)
    job_name = request["TrainingJobName"]
    channel_dirs = {name: str(paths.channel(name)) for name in channels}
    env_json = {
        "additional_framework_parameters": framework,
        "channel_input_dirs": channel_dirs,
        "current_host": CURRENT_HOST,
        "current_instance_type": instance_type,
        "hosts": [CURRENT_HOST],
        "hyperparameters": user,
        "input_config_dir": str(paths.input_config),
        "input_data_config": data_config,
        "input_dir": str(paths.input),
        "is_master": True,
        "job_name": job_name,
        "log_level": log_level,
        "master_hostname": CURRENT_HOST,
        "model_dir": str(paths.model),
        "module_dir": str(framework.get("sagemaker_submit_directory", "")),
        "module_name": module_name,
        "network_interface_name": "eth0",
        "num_cpus": num_cpus,
        "num_gpus": num_gpus,
        "output_data_dir": str(paths.output_data),
        "output_dir": str(paths.output),
        "output_intermediate_dir": str(paths.output_intermediate),
        "resource_config": resources,
        "user_entry_point": program,
    }
    env = {
        "SAGEMAKER_BASE_DIR": str(paths.base),
        "SM_MODEL_DIR": str(paths.model),
        "SM_CHANNELS": json.dumps(channels),
        "SM_HPS": json.dumps(user, sort_keys=True),
        "SM_OUTPUT_DATA_DIR": str(paths.output_data),
        "SM_OUTPUT_INTERMEDIATE_DIR": str(paths.output_intermediate),
        "SM_INPUT_DIR": str(paths.input),
        "SM_INPUT_CONFIG_DIR": str(paths.input_config),
        "SM_OUTPUT_DIR": str(paths.output),
        "SM_CURRENT_HOST": CURRENT_HOST,
        "SM_CURRENT_INSTANCE_TYPE": instance_type,
        "SM_HOSTS": json.dumps([CURRENT_HOST]),
        "SM_NETWORK_INTERFACE_NAME": "eth0",
        "SM_NUM_CPUS": str(num_cpus),
        "SM_NUM_GPUS": str(num_gpus),
        "SM_RESOURCE_CONFIG": json.dumps(resources, sort_keys=True),
        "SM_INPUT_DATA_CONFIG": json.dumps(data_config, sort_keys=True),
        "SM_TRAINING_ENV": json.dumps(env_json, sort_keys=True),
        "SM_USER_ARGS": json.dumps(args),
        "SM_MODULE_NAME": module_name,
        "SM_MODULE_DIR": str(framework.get("sagemaker_submit_directory", "")),
        "SM_LOG_LEVEL": str(log_level),
        "SM_USER_ENTRY_POINT": program,
        "SM_FRAMEWORK_PARAMS": json.dumps(framework, sort_keys=True),
        "TRAINING_JOB_NAME": job_name,
    }
    for name, path in channel_dirs.items():
        env[f"SM_CHANNEL_{_env_key(name)}"] = path
    for key, value in user.items():
        env[f"SM_HP_{_env_key(key)}"] = _env_value(value)
    env.update({str(k): str(v) for k, v in request.get("Environment", {}).items()})
    return env


def process_env(container_env: Mapping[str, str], code_dir: Path) -> dict[str, str]:
    """The entry point's whole environment: ours, minus secrets, plus the container's."""
    env = scrubbed_env(container_env)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(code_dir), *filter(None, [os.environ.get("PYTHONPATH")])]
    )
    env["PYTHONUNBUFFERED"] = "1"  # log lines reach us (and metrics) as they are printed
    return env


def scrubbed_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The one environment every process the backend starts gets: this process's environment
    without credentials or connection secrets (SageMaker never hands a container the caller's
    credentials), plus ``extra`` (the request's own ``Environment``, which the user chose).

    Used for the runner, the model server, the entry point and ``pip install -r
    requirements.txt``; docs/RELIABILITY.md lists what is dropped.
    """
    env = {k: v for k, v in os.environ.items() if not is_secret(k)}
    env.update({str(k): str(v) for k, v in (extra or {}).items()})
    return env


def drop_secrets() -> None:
    """Remove the credentials from this process's own ``os.environ`` (runner, model server)."""
    for key in [k for k in os.environ if is_secret(k)]:
        del os.environ[key]


# Never hand credentials or connection secrets to user code or its logs. AWS_* holds keys,
# tokens, profiles and endpoints; Airflow's connections, variables, Fernet key, metadata database
# and Celery broker URLs hold passwords; the words catch the rest (GITHUB_TOKEN, DB_PASSWORD,
# GOOGLE_APPLICATION_CREDENTIALS, ...).
_SECRET_PREFIXES = (
    "AWS_",
    "AIRFLOW_CONN_",
    "AIRFLOW_VAR_",
    "AIRFLOW__CORE__FERNET",
    "AIRFLOW__DATABASE__",
    "AIRFLOW__CELERY__",
    "AIRFLOW__API_AUTH__",
)
_SECRET_WORDS = (
    "SECRET",
    "PASSWORD",
    "PASSWD",
    "TOKEN",
    "CREDENTIAL",
    "API_KEY",
    "APIKEY",
    "PRIVATE_KEY",
)
# Not secrets, and SDKs in the job need them to pick a region.
_KEPT = ("AWS_REGION", "AWS_DEFAULT_REGION")


def is_secret(name: str) -> bool:
    upper = name.upper()
    if upper in _KEPT:
        return False
    return upper.startswith(_SECRET_PREFIXES) or any(word in upper for word in _SECRET_WORDS)


def failure_reason(
    paths: ContainerPaths, exit_code: int | None, tail: list[str], note: str | None = None
) -> str:
    """A failed entry point's FailureReason: ``output/failure`` when it wrote one (SageMaker's
    rule), else how it exited (``note`` appended) and its last stderr lines."""
    failure = paths.output / "failure"
    if failure.is_file() and failure.read_text(errors="replace").strip():
        return failure.read_text(errors="replace").strip()
    if exit_code is not None and exit_code < 0:
        how = f"killed by signal {signal.Signals(-exit_code).name}"
    else:
        how = f"ExitCode {exit_code}"
    if note:
        how += f"; {note}"
    last = "\n".join(tail[-10:]).strip()
    return f"AlgorithmError: {how}" + (f"\n{last}" if last else "")


def python_for(env_dir: Path | None) -> str:
    return str(env_dir / "bin" / "python") if env_dir else sys.executable
