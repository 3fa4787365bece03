"""A triggerer's worth of SageMaker triggers: shared clients, and logs read less often.

Many triggers in one event loop share one aiobotocore client per service (``ClientPool``), so
descriptors and client builds stay constant; a trigger reads CloudWatch only at every
``log_read_every``-th poll or when the describe changed, and every line still reaches the task
log once, in order. AWS is the moto server; moto completes jobs at creation, so its
DescribeTrainingJob is made to answer InProgress while a test says the job runs (faking AWS
only), and its CloudWatch calls are counted there.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import threading
import time
from collections import Counter

import boto3
import pytest

from rl_provider.backends.sagemaker import AsyncSageMakerBackend
from rl_provider.backends.sagemaker.aio import aws_loop
from rl_provider.core.enums import TrainingJobStatus
from rl_provider.triggers.training_job import RLTrainingJobTrigger
from tests.airflow.test_triggerer_scale import follow_all

from .conftest import FAKE_CREDENTIALS, REGION
from .test_async import async_factory  # noqa: F401  (a fixture)
from .test_moto import estimator_on, put_events

LOG_GROUP = "/aws/sagemaker/TrainingJobs"


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.fixture
def running_job(backend, source_dir, unique, monkeypatch):
    """A moto training job that stays InProgress until ``state["running"]`` is False; moto's
    CloudWatch calls counted in ``state["calls"]``."""
    from moto.logs import models as logs_models
    from moto.sagemaker import models

    job = unique("rl-shared")
    estimator_on(backend, source_dir).fit(job_name=job, logs=False)
    state = {"running": True, "calls": Counter(), "job": job}
    describe = models.SageMakerModelBackend.describe_training_job

    def in_progress(self, training_job_name):
        response = dict(describe(self, training_job_name))
        if training_job_name == job and state["running"]:
            response.update(TrainingJobStatus="InProgress", SecondaryStatus="Training")
            response.pop("TrainingEndTime", None)
        return response

    monkeypatch.setattr(models.SageMakerModelBackend, "describe_training_job", in_progress)
    for operation in ("describe_log_streams", "get_log_events"):
        original = getattr(logs_models.LogsBackend, operation)

        def counted(self, *args, _original=original, _operation=operation, **kwargs):
            state["calls"][_operation] += 1
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(logs_models.LogsBackend, operation, counted)
    logs = backend.client("logs")
    with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
        logs.create_log_group(logGroupName=LOG_GROUP)
    return state


def test_200_backends_with_one_pool_key_share_one_client_per_service(
    async_factory,  # noqa: F811  (the fixture imported above)
    running_job,
    unique,
):
    job = running_job["job"]
    opened: list[str] = []

    def counting_factory(service):
        opened.append(service)
        return async_factory(service)

    key = ("test", unique("pool"))
    backends = [
        AsyncSageMakerBackend(
            async_client_factory=counting_factory, region_name=REGION, client_pool_key=key
        )
        for _ in range(200)
    ]

    aws_loop()  # the process's AWS loop (its selector and wake-up pipe) is not per client

    async def scenario():
        before = open_fds()
        described = await asyncio.gather(*(b.describe_training_job(job) for b in backends))
        await asyncio.gather(*(b.read_logs(job) for b in backends))
        during = open_fds()
        await asyncio.gather(*(b.aclose() for b in backends))
        return before, during, open_fds(), described

    before, during, after, described = asyncio.run(scenario())
    assert opened == ["sagemaker", "logs"]  # one client per service for all 200
    assert {d.training_job_status for d in described} == {TrainingJobStatus.IN_PROGRESS}
    # Two clients' HTTP pools (at most 10 connections each), not 200 x 2 clients.
    assert during - before <= 24, (before, during)
    assert after <= before + 2, (before, after)  # the last holder closed them


@pytest.mark.slow  # 50 triggers polling for ~2 s
def test_triggers_share_clients_and_still_stream_every_line_once(
    running_job, moto_url, monkeypatch, capfd, caplog
):
    """The real triggers through the hook (aws connection = the environment, pointed at moto):
    clients shared by all, CloudWatch read at most every 6th poll, every line once."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", FAKE_CREDENTIALS["aws_access_key_id"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", FAKE_CREDENTIALS["aws_secret_access_key"])
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_url)
    job, calls = running_job["job"], running_job["calls"]
    settings = {"backend": "sagemaker", "aws_conn_id": None, "region_name": REGION}
    triggers = [
        RLTrainingJobTrigger(job_name=job, poll_interval=0.1, backend_settings=settings)
        for _ in range(50)
    ]
    logs = boto3.client("logs", region_name=REGION, endpoint_url=moto_url, **FAKE_CREDENTIALS)
    stream = f"{job}/algo-1-1700000000"
    lines = [f"iteration {i}" for i in range(12)]

    def training():  # the job prints a line every 0.15 s, then ends
        for line in lines:
            put_events(logs, stream, [(int(time.time() * 1000), line)])
            time.sleep(0.15)
        running_job["running"] = False

    async def main():
        printer = threading.Thread(target=training)
        printer.start()
        try:
            return await follow_all(triggers)
        finally:
            await asyncio.to_thread(printer.join)

    capfd.readouterr()
    before, peak, events = asyncio.run(main())
    assert {e["status"] for e in events} == {"success"}
    # Two shared clients of at most 10 connections each, counted twice: the moto server runs in
    # this process and holds the other end. A client per trigger: 100 clients, 200+ descriptors.
    assert peak - before <= 50, (before, peak)
    printed = [line for line in capfd.readouterr().out.splitlines() if "[algo-1] iteration" in line]
    for line in lines:  # every trigger printed every line exactly once
        exact = re.compile(rf"\[algo-1\] {line}\b")
        assert sum(bool(exact.search(p)) for p in printed) == len(triggers), line
    # Each trigger polled ~18 times while the job ran (1.8 s at 0.1 s). It read CloudWatch at
    # its first poll, at every 6th, and at the end (one page per stream per read until then):
    # ~8 GetLogEvents, where reading at every poll took 18-36.
    assert calls["get_log_events"] <= 50 * (18 / 6 + 4), calls
    # Streams are listed at a trigger's first read and when the describe changed (here: once,
    # at the end), not at every read.
    assert calls["describe_log_streams"] <= 3 * 50, calls
