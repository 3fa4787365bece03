"""The core's lifecycle rules, driven step by step (it does no I/O: the test plays backend)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from rl_provider.core.enums import EndpointStatus
from rl_provider.core.jobs import EndpointDescription, TrainingJobDescription
from rl_provider.core.lifecycle import (
    Describe,
    Described,
    Lines,
    Outcome,
    Pause,
    ReadLogs,
    Stop,
    TrainingFollower,
    endpoint_outcome,
    endpoint_step,
    plan_deploy,
    production_variant,
)
from rl_provider.exceptions import JobFailedError, ResourceBusyError, RLConfigError

T0 = dt.datetime(2026, 11, 30, tzinfo=dt.UTC)


def job(status: str, secondary: str, *transitions: str, **extra: Any) -> TrainingJobDescription:
    return TrainingJobDescription.from_api(
        {
            "TrainingJobName": "job",
            "TrainingJobStatus": status,
            "SecondaryStatus": secondary,
            "CreationTime": T0,
            "SecondaryStatusTransitions": [
                {"Status": name, "StartTime": T0 + dt.timedelta(minutes=n)}
                for n, name in enumerate(transitions)
            ],
            **extra,
        }
    )


def endpoint(status: str, config: str = "new", reason: str | None = None) -> EndpointDescription:
    data: dict[str, Any] = {
        "EndpointName": "ep",
        "EndpointArn": "arn:aws:sagemaker:us-west-2:1:endpoint/ep",
        "EndpointConfigName": config,
        "EndpointStatus": status,
        "CreationTime": T0,
        "LastModifiedTime": T0,
    }
    if reason:
        data["FailureReason"] = reason
    return EndpointDescription.from_api(data)


class Script:
    """Plays the backend for a follower: a queue of descriptions and of log batches."""

    def __init__(self, descriptions: list[TrainingJobDescription], batches: list[list[str]]):
        self.descriptions = descriptions
        self.batches = batches
        self.steps: list[Any] = []

    def run(self, follower: TrainingFollower) -> Any:
        steps = follower.steps()
        reply: Any = None
        try:
            while True:
                step = steps.send(reply)
                self.steps.append(step)
                reply = None
                if isinstance(step, Describe):
                    reply = self.descriptions.pop(0)
                elif isinstance(step, ReadLogs):
                    lines = self.batches.pop(0)
                    reply = (lines, (step.cursor or 0) + len(lines))
        except StopIteration as end:
            return end.value


def kinds(steps: list[Any]) -> list[str]:
    return [type(step).__name__ for step in steps]


def test_follows_to_success_describing_before_reading_and_draining_the_log():
    script = Script(
        [
            job("InProgress", "Starting", "Starting"),
            job("InProgress", "Training", "Starting", "Training"),
            job("InProgress", "Training", "Starting", "Training"),
            job("Completed", "Completed", "Starting", "Training", "Completed"),
        ],
        [[], ["a", "b"], [], ["c"], ["d"], []],
    )
    ended = script.run(TrainingFollower("job"))
    assert kinds(script.steps) == [
        *("Describe", "Described", "ReadLogs", "Pause"),
        *("Describe", "Described", "ReadLogs", "Lines", "Pause"),
        *("Describe", "Described", "ReadLogs", "Pause"),
        # Ended: read until a batch comes back empty.
        *("Describe", "Described", "ReadLogs", "Lines", "ReadLogs", "Lines", "ReadLogs"),
    ]
    described = [step for step in script.steps if isinstance(step, Described)]
    assert [step.changed for step in described] == [True, True, False, True]
    # Each secondary-status transition reported once.
    assert [[t.status.value for t in step.transitions] for step in described] == [
        ["Starting"],
        ["Training"],
        [],
        ["Completed"],
    ]
    assert [step.lines for step in script.steps if isinstance(step, Lines)] == [
        ("a", "b"),
        ("c",),
        ("d",),
    ]
    assert ended.outcome is Outcome.SUCCESS
    assert ended.cursor == 4
    assert ended.job_name == "job"


def test_a_stopped_job_at_its_max_runtime_is_stopped_and_says_why():
    script = Script([job("Stopped", "MaxRuntimeExceeded")], [])
    ended = script.run(TrainingFollower("job", logs=False))
    assert kinds(script.steps) == ["Describe", "Described"]  # logs=False: no read
    assert ended.outcome is Outcome.STOPPED
    error = ended.error()
    assert isinstance(error, JobFailedError)
    assert "MaxRuntimeExceeded" in str(error)


def test_failed_job_outcome():
    script = Script([job("Failed", "Failed", FailureReason="boom")], [[], []])
    ended = script.run(TrainingFollower("job", cursor=7))
    assert ended.outcome is Outcome.FAILED
    assert ended.cursor == 7  # nothing new: the given cursor is kept
    assert "boom" in str(ended.error())


def test_the_deadline_stops_the_job_and_ends_in_timeout():
    now = [100.0]
    script = Script([job("InProgress", "Training")] * 2, [[], []])
    follower = TrainingFollower("job", deadline=150.0, clock=lambda: now[0])
    steps = follower.steps()
    assert isinstance(steps.send(None), Describe)
    assert isinstance(steps.send(script.descriptions.pop()), Described)
    assert isinstance(steps.send(None), ReadLogs)
    assert isinstance(steps.send(([], None)), Pause)  # before the deadline: poll again
    now[0] = 150.0
    assert isinstance(steps.send(None), Describe)
    assert isinstance(steps.send(script.descriptions.pop()), Described)
    assert isinstance(steps.send(None), ReadLogs)
    assert isinstance(steps.send(([], None)), Stop)
    with pytest.raises(StopIteration) as end:
        steps.send(None)
    assert end.value.value.outcome is Outcome.TIMEOUT


def test_endpoint_wait_rule():
    assert endpoint_outcome(endpoint("Creating")) is None
    assert endpoint_outcome(endpoint("InService")).outcome is Outcome.SUCCESS
    failed = endpoint_outcome(endpoint("Failed", reason="bad model"))
    assert (failed.outcome, failed.failure_reason) == (Outcome.FAILED, "bad model")
    # A failed update rolls back: InService on the old config is a failure of the update.
    rolled_back = endpoint_outcome(
        endpoint("InService", "old", "it crashed"), endpoint_config_name="new"
    )
    assert rolled_back.outcome is Outcome.FAILED
    assert "still serves old: it crashed" in rolled_back.failure_reason
    # The deadline only ends a wait that is still changing.
    assert endpoint_step(endpoint("Updating"), deadline=1.0, clock=lambda: 2.0).outcome is (
        Outcome.TIMEOUT
    )
    assert endpoint_step(endpoint("Updating"), deadline=3.0, clock=lambda: 2.0) is None
    assert endpoint_step(endpoint("InService"), deadline=1.0, clock=lambda: 2.0).outcome is (
        Outcome.SUCCESS
    )


def test_deploy_plan_creates_or_updates_only_an_in_service_endpoint():
    create = plan_deploy("ep", None)
    assert (create.update, create.previous_config_name) == (False, None)
    assert create.config_name.startswith("ep-")
    update = plan_deploy("ep", endpoint("InService", "old"))
    assert (update.update, update.previous_config_name) == (True, "old")
    # A failed endpoint is the user's to fix; one still changing is worth a retry, and must not
    # be an RLConfigError (operators turn those into AirflowFailException: no retry).
    with pytest.raises(RLConfigError, match="only an InService endpoint can be updated"):
        plan_deploy("ep", endpoint(EndpointStatus.FAILED.value))
    for status in (EndpointStatus.UPDATING, EndpointStatus.CREATING, EndpointStatus.ROLLING_BACK):
        with pytest.raises(ResourceBusyError, match="only an InService endpoint") as busy:
            plan_deploy("ep", endpoint(status.value))
        assert not isinstance(busy.value, RLConfigError)
    assert production_variant("m", 2, "ml.m5.large") == {
        "VariantName": "AllTraffic",
        "ModelName": "m",
        "InitialInstanceCount": 2,
        "InstanceType": "ml.m5.large",
        "InitialVariantWeight": 1.0,
    }
