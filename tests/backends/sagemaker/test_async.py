"""The async twin on aiobotocore against the moto server, watched for blocking the loop.

Every callback of the caller's loop is timed in CPU time (creating a SageMaker client on it
would use ~0.2-0.4 s) and asyncio's debug mode reports callbacks that hold it in wall time; the
tests fail on either, so work that would stall a triggerer's loop shows up here.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time

import pytest

from rl_provider.backends.sagemaker import AsyncSageMakerBackend, SageMakerBackend
from rl_provider.core.enums import EndpointStatus, TrainingJobStatus
from rl_provider.exceptions import EndpointNotFoundError, JobNotFoundError

from .conftest import FAKE_CREDENTIALS, REGION, ROLE
from .test_moto import estimator_on, put_events

# CPU time one loop callback may use: parsing an AWS response takes milliseconds; botocore
# parsing a service's JSON models on the loop (the blocking we guard against) takes ~0.2 s.
# CPU time, not wall time, so other processes loading this 2-core machine cannot fail the test.
CPU_PER_CALLBACK = 0.05
# Wall time for asyncio's own debug check: only gross blocking (a sleep, a network call).
SLOW_CALLBACK_SECONDS = 2.0


@pytest.fixture
def async_factory(moto_url):
    from aiobotocore.session import get_session

    session = get_session()

    def factory(service):
        return session.create_client(
            service, region_name=REGION, endpoint_url=moto_url, **FAKE_CREDENTIALS
        )

    return factory


def run_watched(coroutine_function, caplog):
    """Run in a debug-mode loop; fail if any callback held the loop (CPU or wall time)."""
    heavy: list[tuple[float, str]] = []
    original = asyncio.events.Handle._run
    caller = threading.get_ident()  # the loop under test; the backend's AWS loop may work

    def timed(handle):
        if threading.get_ident() != caller:
            return original(handle)
        start = time.thread_time()
        try:
            return original(handle)
        finally:
            spent = time.thread_time() - start
            if spent > CPU_PER_CALLBACK:
                heavy.append((round(spent, 3), repr(handle)[:300]))

    async def main():
        loop = asyncio.get_running_loop()
        loop.slow_callback_duration = SLOW_CALLBACK_SECONDS
        return await coroutine_function()

    asyncio.events.Handle._run = timed  # asyncio's, not ours: a stopwatch around each callback
    try:
        with caplog.at_level(logging.WARNING, logger="asyncio"):
            result = asyncio.run(main(), debug=True)
    finally:
        asyncio.events.Handle._run = original
    slow = [
        r.getMessage() for r in caplog.records if r.name == "asyncio" and "took" in r.getMessage()
    ]
    assert heavy == [], heavy
    assert slow == [], slow
    return result


def test_describe_and_logs_without_blocking_the_loop(
    backend, async_factory, source_dir, unique, caplog
):
    estimator = estimator_on(backend, source_dir)
    job = unique("rl-async")
    estimator.fit(job_name=job, logs=False)
    logs = backend.client("logs")
    with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
        logs.create_log_group(logGroupName="/aws/sagemaker/TrainingJobs")
    t0 = int(time.time() * 1000) - 10_000
    put_events(logs, f"{job}/algo-1-1700000000", [(t0, "one"), (t0 + 2, "three")])
    put_events(logs, f"{job}/algo-2-1700000000", [(t0 + 1, "two")])
    opened: list[str] = []

    def counting_factory(service):
        opened.append(service)
        return async_factory(service)

    aio = AsyncSageMakerBackend(async_client_factory=counting_factory, region_name=REGION)

    async def scenario():
        described = await aio.describe_training_job(job)
        lines, cursor = await aio.read_logs(job)
        again, cursor = await aio.read_logs(job, json.loads(json.dumps(cursor)))
        missing = []
        for coro in (aio.describe_training_job(unique("nope")), aio.describe_endpoint("nope")):
            try:
                await coro
            except (JobNotFoundError, EndpointNotFoundError) as err:
                missing.append(type(err))
        await aio.aclose()
        return described, lines, again, cursor, missing

    described, lines, again, cursor, missing = run_watched(scenario, caplog)
    # One client per service for the backend's life, not one per call (each costs ~50 ms CPU).
    assert opened == ["sagemaker", "logs"]
    assert described.training_job_status is TrainingJobStatus.COMPLETED
    assert described.to_api() == backend.describe_training_job(job).to_api()
    assert lines == ["[algo-1] one", "[algo-2] two", "[algo-1] three"]
    assert again == []
    assert missing == [JobNotFoundError, EndpointNotFoundError]

    # The sync and async cursors are the same thing: the sync backend continues from it.
    put_events(logs, f"{job}/algo-2-1700000000", [(t0 + 3, "four")])
    assert backend.read_logs(job, cursor)[0] == ["[algo-2] four"]


def test_describe_endpoint_async(backend, async_factory, unique, caplog):
    sm = backend.client("sagemaker")
    model, config, endpoint = unique("m"), unique("c"), unique("e")
    sm.create_model(ModelName=model, ExecutionRoleArn=ROLE, PrimaryContainer={"Image": "img"})
    sm.create_endpoint_config(
        EndpointConfigName=config,
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": model,
                "InitialInstanceCount": 1,
                "InstanceType": "ml.m5.large",
            }
        ],
    )
    sm.create_endpoint(EndpointName=endpoint, EndpointConfigName=config)
    aio = AsyncSageMakerBackend(async_client_factory=async_factory)

    async def scenario():
        try:
            return await aio.describe_endpoint(endpoint)
        finally:
            await aio.aclose()

    described = run_watched(scenario, caplog)
    assert described.endpoint_status is EndpointStatus.IN_SERVICE
    assert described.endpoint_config_name == config


def test_the_default_factories_build_clients_from_the_environment(monkeypatch, moto_url):
    """Outside Airflow: a plain boto3 / aiobotocore session (env credentials, given region)."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_url)  # botocore's own endpoint override
    sync = SageMakerBackend(region_name="eu-west-1")
    assert sync.client("sagemaker").meta.region_name == "eu-west-1"
    assert sync.client("sagemaker").meta.config.retries["mode"] == "adaptive"
    assert sync.default_output_path() == "s3://sagemaker-eu-west-1-123456789012/"

    aio = AsyncSageMakerBackend(region_name="eu-west-1")

    async def describe_missing():
        try:
            await aio.describe_training_job("no-such-job")
        finally:
            await aio.aclose()

    with pytest.raises(JobNotFoundError):
        asyncio.run(describe_missing())


def test_stop_and_throttling_on_aiobotocore_stubs(caplog):
    """What moto cannot do, on real aiobotocore clients under aiobotocore's Stubber."""
    from aiobotocore.session import get_session
    from aiobotocore.stub import AioStubber

    from rl_provider.backends.sagemaker import AWSAccessDeniedError

    from .conftest import FAST_RETRY
    from .test_stubber import JOB, describe

    session = get_session()
    expected: list[tuple[str, object]] = [
        ("error", "ThrottlingException"),
        ("describe_training_job", describe("InProgress", "Training")),
        ("stop_training_job", {}),
        ("describe_training_job", describe("Completed", "Completed")),
        ("error", "AccessDeniedException"),
    ]

    closed: list[str] = []

    # The backend keeps one client for all its calls: every response, in the order consumed
    # (describe throttled once then InProgress, stop, describe Completed -> no stop, denied).
    @contextlib.asynccontextmanager
    async def factory(service):
        async with session.create_client(service, region_name=REGION, **FAKE_CREDENTIALS) as client:
            stubber = AioStubber(client)
            for operation, response in expected:
                if operation == "error":
                    stubber.add_client_error("describe_training_job", response, "no", 400)
                else:
                    stubber.add_response(operation, response, {"TrainingJobName": JOB})
            with stubber:
                yield client
                stubber.assert_no_pending_responses()
            closed.append(service)

    aio = AsyncSageMakerBackend(async_client_factory=factory, retry=FAST_RETRY)

    async def scenario():
        await aio.stop_training_job(JOB)
        await aio.stop_training_job(JOB)
        with pytest.raises(AWSAccessDeniedError, match="sagemaker:DescribeTrainingJob"):
            await aio.describe_training_job(JOB)
        await aio.aclose()  # exits the client: the stubber checks every response was consumed

    run_watched(scenario, caplog)
    assert closed == ["sagemaker"]


def test_async_log_reads_without_a_group_and_refused_on_aiobotocore_stubs(caplog):
    """The async backend's log reads: a missing group is "no lines yet", a refusal is ours."""
    from aiobotocore.session import get_session
    from aiobotocore.stub import AioStubber

    from rl_provider.backends.sagemaker import AWSAccessDeniedError

    from .conftest import FAST_RETRY

    session = get_session()

    @contextlib.asynccontextmanager
    async def factory(service):
        async with session.create_client(service, region_name=REGION, **FAKE_CREDENTIALS) as client:
            stubber = AioStubber(client)
            for code in ("ResourceNotFoundException", "AccessDeniedException"):
                stubber.add_client_error("describe_log_streams", code, "no", 400)
            with stubber:
                yield client
                stubber.assert_no_pending_responses()

    aio = AsyncSageMakerBackend(async_client_factory=factory, retry=FAST_RETRY)

    async def scenario():
        assert await aio.read_logs("rl-job-1") == ([], {"streams": {}})
        with pytest.raises(AWSAccessDeniedError, match="AWS denied logs:DescribeLogStreams"):
            await aio.read_logs("rl-job-1")
        await aio.aclose()  # exits the client: the stubber checks every response was consumed

    run_watched(scenario, caplog)
