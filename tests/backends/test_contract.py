"""The backend contract, run against every backend: local, SageMaker (moto server), Ray (the
real two-node cluster of ``tests/backends/conftest.py``, started only when a Ray case runs) and
the in-memory fake of ``tests/fakes.py``. A new backend is added to ``BACKENDS`` and passes this
suite before anything else.

Every protocol method has one signature on every backend (checked by introspection), and the
calls every caller makes (create, describe, follow through the core's follower, list, tags,
logs, models, endpoint configs, endpoints) behave the same way. The state sequences moto cannot
produce (a job in progress, an endpoint Updating) are in tests/backends/sagemaker/test_stubber.py.
"""

from __future__ import annotations

import inspect
import textwrap
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from rl_provider import RLEstimator
from rl_provider.backends.base import AsyncBackend, Backend, TrainingBackend
from rl_provider.backends.local import AsyncLocalBackend, LocalBackend
from rl_provider.backends.ray import AsyncRayBackend, RayBackend
from rl_provider.backends.sagemaker import AsyncSageMakerBackend, SageMakerBackend
from rl_provider.core.enums import TrainingJobStatus
from rl_provider.core.lifecycle import Lines, Outcome, TrainingFollower, follow_to_end
from rl_provider.exceptions import (
    EndpointNotFoundError,
    JobNotFoundError,
    ModelNotFoundError,
    ResourceBusyError,
    RLConfigError,
)
from tests.backends.conftest import ray_backend
from tests.backends.sagemaker.conftest import (  # noqa: F401  # pytest fixtures
    FAST_RETRY,
    REGION,
    ROLE,
    aws_calls,
    moto_factory,
    moto_url,
)
from tests.fakes import InMemoryBackend

BACKENDS = ["local", "sagemaker", "memory", "ray"]
#: The backends that implement the whole ``Backend`` (the fake implements ``TrainingBackend``).
FULL_BACKENDS = ["local", "sagemaker", "ray"]

SCRIPT = """
print("episode_reward_mean: 1.5", flush=True)
print("done", flush=True)
"""


@dataclass
class Contract:
    kind: str
    backend: Any
    estimator: Callable[..., RLEstimator]
    unique: Callable[[str], str]
    #: Seconds between two polls while following a job (a real cluster is not polled flat out).
    pause: float = 0.0


def _protocol_methods(protocol: type) -> dict[str, inspect.Signature]:
    return {
        name: inspect.signature(member)
        for name, member in inspect.getmembers(protocol, inspect.isfunction)
        if not name.startswith("_")
    }


def _parameters(signature: inspect.Signature) -> list[tuple[str, Any, Any]]:
    """Name, kind and default of each parameter but ``self`` (a staticmethod has none)."""
    return [(p.name, p.kind, p.default) for p in signature.parameters.values() if p.name != "self"]


@pytest.fixture(params=BACKENDS)
def contract(request: pytest.FixtureRequest, tmp_path: Path) -> Contract:
    src = tmp_path / "src"
    src.mkdir()
    (src / "train.py").write_text(textwrap.dedent(SCRIPT))
    suffix = uuid.uuid4().hex[:8]
    kind = request.param
    backend: Any
    pause = 0.0
    if kind == "local":
        backend = LocalBackend(tmp_path / "home", stop_grace_seconds=5.0)
        options: dict[str, Any] = {
            "toolkit": "ray",
            "toolkit_version": "2.60.0",
            "framework": "pytorch",
        }
    elif kind == "sagemaker":
        backend = SageMakerBackend(
            client_factory=request.getfixturevalue("moto_factory"),
            region_name=REGION,
            poll_interval=0.01,
            retry=FAST_RETRY,
        )
        options = {
            "toolkit": "ray",
            "toolkit_version": "1.6.0",
            "framework": "tensorflow",
            "role": ROLE,
            "instance_type": "ml.m5.large",
        }
    elif kind == "ray":
        backend = ray_backend(request.getfixturevalue("ray_cluster"), tmp_path)
        options = {
            "toolkit": "ray",
            "toolkit_version": "2.60.0",
            "framework": "pytorch",
            "instance_type": "ray",
        }
        pause = 0.3
    else:
        store = tmp_path / "uploads"
        store.mkdir()
        backend = InMemoryBackend(store=store)
        options = {"toolkit": "ray", "toolkit_version": "1.6.0", "framework": "tensorflow"}

    def estimator(**kwargs: Any) -> RLEstimator:
        return RLEstimator(
            entry_point="train.py", source_dir=str(src), backend=backend, **{**options, **kwargs}
        )

    return Contract(kind, backend, estimator, lambda base: f"{base}-{suffix}", pause)


@pytest.mark.parametrize("kind", BACKENDS)
def test_every_method_has_the_protocol_signature(kind: str) -> None:
    cls = {
        "local": LocalBackend,
        "sagemaker": SageMakerBackend,
        "memory": InMemoryBackend,
        "ray": RayBackend,
    }[kind]
    protocol = Backend if kind in FULL_BACKENDS else TrainingBackend
    for name, wanted in _protocol_methods(protocol).items():
        method = getattr(cls, name, None)
        assert method is not None, f"{cls.__name__} lacks {name}"
        got = inspect.signature(method)
        assert _parameters(got) == _parameters(wanted), (
            f"{cls.__name__}.{name}{got} differs from the protocol's {name}{wanted}"
        )


@pytest.mark.parametrize("kind", FULL_BACKENDS)
def test_every_async_method_has_the_protocol_signature(kind: str) -> None:
    cls = {
        "local": AsyncLocalBackend,
        "sagemaker": AsyncSageMakerBackend,
        "ray": AsyncRayBackend,
    }[kind]
    for name, wanted in _protocol_methods(AsyncBackend).items():
        method = getattr(cls, name, None)
        assert inspect.iscoroutinefunction(method), f"{cls.__name__}.{name} is not async"
        assert _parameters(inspect.signature(method)) == _parameters(wanted), name


def test_training_job_through_the_core_follower(contract: Contract) -> None:
    backend = contract.backend
    name = contract.unique("contract")
    estimator = contract.estimator(tags=[{"Key": "team", "Value": "rl"}])
    estimator.fit(wait=False, job_name=name)

    lines: list[str] = []
    outcome = follow_to_end(
        TrainingFollower(name),
        backend,
        sleep=lambda: time.sleep(contract.pause),
        report=lambda step: lines.extend(step.lines) if isinstance(step, Lines) else None,
    )
    assert outcome.outcome is Outcome.SUCCESS
    assert outcome.job_name == name
    description = backend.describe_training_job(name)
    assert description.training_job_status is TrainingJobStatus.COMPLETED
    assert description.is_terminal
    assert not description.is_failure

    # Logs: a read from the follower's cursor brings nothing twice.
    again, _ = backend.read_logs(name, outcome.cursor)
    assert again == []
    if contract.kind in ("local", "ray"):  # the backends here that run the script
        assert lines.count("done") == 1
        # The default MetricDefinitions of a Ray toolkit match the script's line.
        assert [v for _, v in backend.metrics(name)["episode_reward_mean"]] == [1.5]
        assert description.final_metrics["episode_reward_mean"] == 1.5
    location = backend.log_location(name)
    assert name in location
    assert isinstance(backend.metrics(name), dict)

    # Listing: one signature, the same filters.
    listed = backend.list_training_jobs(NameContains=name)["TrainingJobSummaries"]
    assert [s["TrainingJobName"] for s in listed] == [name]
    assert backend.list_training_jobs(StatusEquals="Completed", NameContains=name)[
        "TrainingJobSummaries"
    ]
    assert (
        backend.list_training_jobs(StatusEquals="Failed", NameContains=name)["TrainingJobSummaries"]
        == []
    )
    assert len(backend.list_training_jobs(MaxResults=1)["TrainingJobSummaries"]) == 1
    # attach() reads the tags back through list_tags.
    assert {"Key": "team", "Value": "rl"} in backend.list_tags(description.training_job_arn)
    assert RLEstimator.attach(name, backend=backend).tags == backend.list_tags(
        description.training_job_arn
    )


def test_unknown_job_is_not_found(contract: Contract) -> None:
    name = contract.unique("never")
    with pytest.raises(JobNotFoundError):
        contract.backend.describe_training_job(name)
    # read_logs of an unknown job never yields lines: JobNotFoundError where the backend knows
    # without another call (local, memory), else nothing (SageMaker: CloudWatch has no stream,
    # and a describe per read would double a trigger's calls).
    try:
        lines, _ = contract.backend.read_logs(name)
    except JobNotFoundError:
        assert contract.kind != "sagemaker"
    else:
        assert (contract.kind, lines) == ("sagemaker", [])


@dataclass
class FullContract:
    backend: Any
    model_data: str
    instance_type: str
    role: str | None
    unique: Callable[[str], str]


@pytest.fixture(params=FULL_BACKENDS)
def full(request: pytest.FixtureRequest, tmp_path: Path) -> FullContract:
    suffix = uuid.uuid4().hex[:8]
    if request.param in ("local", "ray"):
        data = tmp_path / "model.tar.gz"
        data.write_bytes(b"")
        backend: Any = (
            LocalBackend(tmp_path / "home")
            if request.param == "local"
            else ray_backend(request.getfixturevalue("ray_cluster"), tmp_path)
        )
        return FullContract(backend, data.as_uri(), "local", None, f"{{}}-{suffix}".format)
    backend = SageMakerBackend(
        client_factory=request.getfixturevalue("moto_factory"), region_name=REGION, retry=FAST_RETRY
    )
    return FullContract(
        backend, "s3://bucket/model.tar.gz", "ml.m5.large", ROLE, f"{{}}-{suffix}".format
    )


def test_models_and_endpoint_configs(full: FullContract) -> None:
    backend = full.backend
    model = full.unique("contract-model")
    request: dict[str, Any] = {
        "ModelName": model,
        "PrimaryContainer": {"Image": "rl-image:1", "ModelDataUrl": full.model_data},
    }
    if full.role:
        request["ExecutionRoleArn"] = full.role
    backend.create_model(**request)
    assert backend.describe_model(model).model_name == model
    names = [m["ModelName"] for m in backend.list_models(NameContains=model)["Models"]]
    assert model in names
    if not isinstance(backend, SageMakerBackend):  # moto ignores ListModels' NameContains
        assert names == [model]
    assert len(backend.list_models(MaxResults=1)["Models"]) == 1

    config = full.unique("contract-config")
    variant = {
        "VariantName": "AllTraffic",
        "ModelName": model,
        "InitialInstanceCount": 1,
        "InstanceType": full.instance_type,
        "InitialVariantWeight": 1.0,
    }
    backend.create_endpoint_config(EndpointConfigName=config, ProductionVariants=[variant])
    described = backend.describe_endpoint_config(config)
    assert [v.model_name for v in described.production_variants] == [model]
    backend.delete_endpoint_config(config)
    with pytest.raises(EndpointNotFoundError):
        backend.describe_endpoint_config(config)

    backend.delete_model(model)
    with pytest.raises(ModelNotFoundError):
        backend.describe_model(model)


def test_endpoint_calls_on_a_missing_endpoint(full: FullContract) -> None:
    backend = full.backend
    name = full.unique("contract-endpoint")
    with pytest.raises(EndpointNotFoundError):
        backend.describe_endpoint(name)
    with pytest.raises(EndpointNotFoundError):
        backend.update_endpoint(EndpointName=name, EndpointConfigName="nope")
    with pytest.raises(EndpointNotFoundError):
        backend.delete_endpoint(name)
    # One listing signature on every backend.
    listed = backend.list_endpoints(StatusEquals="InService", MaxResults=5, NameContains=name)
    assert listed["Endpoints"] == []


def test_the_update_rule_errors_are_distinct() -> None:
    # Shared by every backend's update_endpoint (core.lifecycle.require_updatable): a changing
    # endpoint is worth a retry, a failed one is not.
    assert not issubclass(ResourceBusyError, RLConfigError)
