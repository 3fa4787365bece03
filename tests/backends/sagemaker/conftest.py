"""AWS for the SageMaker backend's tests, without an AWS account.

A moto server on 127.0.0.1 (one per session; names are unique per test, so no reset between
tests) stands in for SageMaker, S3, CloudWatch Logs, STS and sagemaker-runtime;
``botocore.stub.Stubber`` on real boto3 clients plays the state sequences moto cannot (moto
completes jobs at creation and lacks StopTrainingJob / UpdateEndpoint). Credentials are fakes
passed to each session, never read from the machine.
"""

from __future__ import annotations

import logging
import textwrap
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from rl_provider.backends.sagemaker import RetryPolicy, SageMakerBackend

REGION = "us-west-2"
ACCOUNT = "123456789012"  # moto's account
ROLE = f"arn:aws:iam::{ACCOUNT}:role/SageMakerRole"
FAKE_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
# Throttling retries in tests: the real schedule, shrunk to milliseconds.
FAST_RETRY = RetryPolicy(max_attempts=4, base_delay=0.001, max_delay=0.01)


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@dataclass
class AwsCalls:
    """API calls seen by the clients (botocore's ``provide-client-params`` event), with params."""

    params: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def record(self, event_name: str, params: dict[str, Any], **_: Any) -> None:
        operation = event_name.rsplit(".", 1)[-1]
        self.params.setdefault(operation, []).append(dict(params))

    def count(self, operation: str) -> int:
        return len(self.params.get(operation, []))

    def counts(self) -> Counter[str]:
        return Counter({op: len(calls) for op, calls in self.params.items()})


@pytest.fixture
def aws_calls() -> AwsCalls:
    return AwsCalls()


@pytest.fixture
def moto_factory(moto_url: str, aws_calls: AwsCalls) -> Callable[[str], Any]:
    """``client_factory`` for the moto server; every call is recorded in ``aws_calls``."""
    import boto3

    session = boto3.session.Session(region_name=REGION, **FAKE_CREDENTIALS)

    def factory(service: str) -> Any:
        client = session.client(service, endpoint_url=moto_url)
        client.meta.events.register("provide-client-params.*.*", aws_calls.record)
        return client

    return factory


@pytest.fixture
def backend(moto_factory: Callable[[str], Any]) -> SageMakerBackend:
    return SageMakerBackend(
        client_factory=moto_factory, region_name=REGION, poll_interval=0.01, retry=FAST_RETRY
    )


@pytest.fixture
def unique() -> Callable[[str], str]:
    """A name unique to this test (the moto server lives for the whole session)."""
    suffix = uuid.uuid4().hex[:8]
    return lambda base: f"{base}-{suffix}"


@pytest.fixture
def source_dir(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    (src / "lib").mkdir(parents=True)
    (src / "train.py").write_text(
        textwrap.dedent(
            """
            import lib.policy
            print("episode_reward_mean: 1.0")
            """
        )
    )
    (src / "lib" / "__init__.py").write_text("")
    (src / "lib" / "policy.py").write_text("WEIGHTS = [0.1, 0.2]\n")
    return src


@pytest.fixture
def stubbed() -> Iterator[Callable[..., tuple[SageMakerBackend, dict[str, Any]]]]:
    """A backend on real boto3 clients under ``Stubber`` (no network): (backend, stubbers)."""
    import boto3
    from botocore.stub import Stubber

    session = boto3.session.Session(region_name=REGION, **FAKE_CREDENTIALS)
    stubbers: dict[str, Stubber] = {}

    def factory(service: str) -> Any:
        return stubbers[service].client

    def make(*services: str) -> tuple[SageMakerBackend, dict[str, Stubber]]:
        for service in services or ("sagemaker",):
            stubber = Stubber(session.client(service))
            stubber.activate()
            stubbers[service] = stubber
        return (
            SageMakerBackend(
                client_factory=factory,
                region_name=REGION,
                bucket="stub-default-bucket",
                poll_interval=0.0,
                retry=FAST_RETRY,
            ),
            stubbers,
        )

    yield make
    for stubber in stubbers.values():
        stubber.deactivate()
