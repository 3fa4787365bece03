"""Triggers: every setting survives Airflow's serializer; the event loop is never blocked."""

from __future__ import annotations

import asyncio
import inspect
import logging
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import rl_provider.backends
from rl_provider.backends.local import LocalBackend
from rl_provider.core.enums import TrainingJobStatus
from rl_provider.hooks.rl import BackendSettings
from rl_provider.triggers.endpoint import RLEndpointTrigger
from rl_provider.triggers.training_job import RLTrainingJobTrigger
from tests.airflow import dagkit
from tests.airflow.dagkit import write_entry_point

# Non-default values for every argument: a setting lost on the way shows up as a difference.
SETTINGS = BackendSettings(
    conn_id="rl_prod",
    home="/srv/rl",
    aws_conn_id="aws_prod",
    region_name="eu-central-1",
    bucket="models",
    verify="/etc/ca.pem",
    botocore_config={"retries": {"mode": "adaptive", "max_attempts": 7}},
).to_dict()

TRIGGERS = [
    RLTrainingJobTrigger(
        job_name="job-1",
        poll_interval=7.5,
        deadline=1_900_000_000.5,
        stop_on_kill=False,
        print_log=False,
        log_cursor={"streams": {"job-1/algo-1": 42}},
        progress_key="rl_provider.log_cursor.d.t.r.-1",
        try_number=3,
        conn_id="rl_prod",
        backend_settings=SETTINGS,
        not_before=1_800_000_000.25,
    ),
    RLEndpointTrigger(
        endpoint_name="cartpole",
        endpoint_config_name="cartpole-config-2",
        poll_interval=3.0,
        deadline=1_900_000_000.0,
        conn_id="rl_prod",
        backend_settings=SETTINGS,
        not_before=1_800_000_000.5,
    ),
]


@pytest.mark.parametrize("trigger", TRIGGERS, ids=lambda t: type(t).__name__)
def test_serialize_recreate(airflow_db, trigger):
    """Through the Trigger row and BaseSerialization, as the triggerer gets it."""
    from airflow.jobs.triggerer_job_runner import TriggerRunner
    from airflow.models import Trigger
    from airflow.serialization.serialized_objects import BaseSerialization

    row = Trigger.from_object(trigger)
    params = BaseSerialization.deserialize(BaseSerialization.serialize(row.kwargs))
    cls = TriggerRunner().get_trigger_by_classpath(row.classpath)
    again = cls(**params)

    assert type(again) is type(trigger)
    assert Trigger.from_object(again).kwargs == row.kwargs
    classpath, kwargs = trigger.serialize()
    assert classpath == f"{type(trigger).__module__}.{type(trigger).__name__}"
    assert again.serialize() == (classpath, kwargs)
    # Every constructor argument travels, with its non-default value.
    for key, value in kwargs.items():
        assert getattr(again, key) == value, key
    assert again.backend_settings == SETTINGS
    hook = again.hook()
    assert hook.settings == BackendSettings.from_dict(SETTINGS)
    assert hook.settings.botocore_config == {"retries": {"mode": "adaptive", "max_attempts": 7}}


def test_trigger_class_paths_import():
    import importlib

    for trigger in TRIGGERS:
        classpath, _ = trigger.serialize()
        module, _, name = classpath.rpartition(".")
        assert getattr(importlib.import_module(module), name) is type(trigger)


# ------------------------------------------------------------------------- the event loop
# Two checks, one timing-free: (1) no synchronous backend code (and no time.sleep) runs on the
# loop's thread, seen by a profiler hook on that thread; (2) asyncio debug mode reports no step
# that held the loop for long. The threshold of (2) is generous because other test processes
# share these two cores; (1) is what catches a blocking call of any duration.
SLOW_CALLBACK = 0.5
BACKENDS_DIR = str(Path(rl_provider.backends.__file__).parent)


def run_strict(coro_factory, caplog) -> Any:
    """Run in asyncio debug mode; fail if the loop's thread ran blocking backend code."""
    blocking: list[str] = []

    def profile(frame, event, arg):
        if event == "call":
            code = frame.f_code
            if code.co_filename.startswith(BACKENDS_DIR) and not (
                code.co_flags & inspect.CO_COROUTINE
            ):
                blocking.append(f"{code.co_filename}:{code.co_name}")
        elif event == "c_call" and arg is time.sleep:
            blocking.append("time.sleep")

    async def main():
        asyncio.get_running_loop().slow_callback_duration = SLOW_CALLBACK
        sys.setprofile(profile)  # this thread only: worker threads may block, that is their job
        try:
            return await coro_factory()
        finally:
            sys.setprofile(None)

    with caplog.at_level(logging.WARNING, logger="asyncio"):
        result = asyncio.run(main(), debug=True)
    assert not blocking, sorted(set(blocking))
    slow = [r.getMessage() for r in caplog.records if r.name == "asyncio" and "took" in r.message]
    assert not slow, slow
    return result


async def collect(trigger) -> list[dict]:
    return [event.payload async for event in trigger.run()]


@pytest.mark.parametrize("how", ["sleep", "backend"])
def test_the_blocking_checks_can_fail(tmp_path, caplog, how):
    backend = LocalBackend(tmp_path / "home")

    async def blocking():
        if how == "sleep":
            time.sleep(SLOW_CALLBACK * 1.5)  # what a trigger must never do
        else:
            backend.list_training_jobs()  # a synchronous SQLite read on the loop

    with pytest.raises(AssertionError, match=r"time\.sleep|list_training_jobs"):
        run_strict(blocking, caplog)


def local_settings(home) -> dict:
    return BackendSettings(home=str(home)).to_dict()


def start_job(home, src, name, **hyperparameters) -> LocalBackend:
    backend = LocalBackend(home, stop_grace_seconds=5.0)
    dagkit.start_job(backend, src, name, **hyperparameters)
    return backend


@pytest.mark.slow
def test_training_trigger_streams_logs_and_fires_one_success_event(tmp_path, caplog, capfd):
    home = tmp_path / "home"
    start_job(home, write_entry_point(tmp_path), "streamed", lines=6, interval=0.15)
    trigger = RLTrainingJobTrigger(
        job_name="streamed", poll_interval=0.1, backend_settings=local_settings(home)
    )
    capfd.readouterr()
    events = run_strict(lambda: collect(trigger), caplog)
    assert events == [
        {
            "status": "success",
            "job_name": "streamed",
            "failure_reason": None,
            "secondary_status": "Completed",
            "final_metrics": {"episode_reward_mean": 60.0},
        }
    ]
    # Airflow's logging writes to stdout; keep the trigger's own lines.
    printed = [
        line for line in capfd.readouterr().out.splitlines() if "RLTrainingJobTrigger" in line
    ]
    for i in range(6):
        expected = f"line {i}: episode_reward_mean: {10.0 * (i + 1)}"
        assert sum(expected in line for line in printed) == 1, expected
    # The first line was printed while the job ran, before its Completed status.
    first = next(i for i, line in enumerate(printed) if "line 0: episode_reward_mean" in line)
    completed = next(i for i, line in enumerate(printed) if "streamed: Completed" in line)
    assert first < completed


@pytest.mark.slow
def test_training_trigger_reports_a_failed_job(tmp_path, caplog):
    home = tmp_path / "home"
    start_job(home, write_entry_point(tmp_path), "broken", fail="boom: nan loss")
    trigger = RLTrainingJobTrigger(
        job_name="broken", poll_interval=0.1, backend_settings=local_settings(home)
    )
    [event] = run_strict(lambda: collect(trigger), caplog)
    assert event["status"] == "failed"
    assert "boom: nan loss" in event["failure_reason"]
    assert event["secondary_status"] == "Failed"


@pytest.mark.slow
def test_training_trigger_deadline_stops_the_job(tmp_path, caplog):
    home = tmp_path / "home"
    backend = start_job(home, write_entry_point(tmp_path), "too-long", sleep=120)
    trigger = RLTrainingJobTrigger(
        job_name="too-long",
        poll_interval=0.1,
        deadline=time.time() + 1.0,
        backend_settings=local_settings(home),
    )
    [event] = run_strict(lambda: collect(trigger), caplog)
    assert event["status"] == "timeout"
    assert "max_ingestion_time" in event["message"]
    assert wait_terminal(backend, "too-long").training_job_status is TrainingJobStatus.STOPPED


@pytest.mark.slow
@pytest.mark.parametrize("stop_on_kill", [True, False])
def test_trigger_on_kill_stops_the_job_when_asked(tmp_path, caplog, stop_on_kill):
    home = tmp_path / "home"
    backend = start_job(home, write_entry_point(tmp_path), "killed", sleep=120)
    trigger = RLTrainingJobTrigger(
        job_name="killed",
        poll_interval=0.1,
        stop_on_kill=stop_on_kill,
        backend_settings=local_settings(home),
    )

    async def user_kills_the_task():
        # The triggerer cancels run() and then calls on_kill() (Airflow 3.3 BaseTrigger).
        running = asyncio.create_task(collect(trigger))
        await asyncio.sleep(0.5)
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running
        await trigger.on_kill()

    run_strict(user_kills_the_task, caplog)
    if stop_on_kill:
        assert wait_terminal(backend, "killed").training_job_status is TrainingJobStatus.STOPPED
    else:
        assert backend.describe_training_job("killed").training_job_status is (
            TrainingJobStatus.IN_PROGRESS
        )
        backend.stop_training_job("killed")


@pytest.mark.parametrize(
    "trigger_factory",
    [
        lambda home: RLTrainingJobTrigger(
            job_name="nope", poll_interval=0.1, backend_settings=local_settings(home)
        ),
        lambda home: RLEndpointTrigger(
            endpoint_name="nope", poll_interval=0.1, backend_settings=local_settings(home)
        ),
    ],
    ids=["training", "endpoint"],
)
def test_unknown_resources_fire_an_error_event(tmp_path, caplog, trigger_factory):
    [event] = run_strict(lambda: collect(trigger_factory(tmp_path / "home")), caplog)
    assert event["status"] == "error"
    assert "nope" in event["message"]


def wait_terminal(backend, name, timeout=60.0):
    deadline = time.monotonic() + timeout
    while True:
        description = backend.describe_training_job(name)
        if description.is_terminal or time.monotonic() > deadline:
            return description
        time.sleep(0.2)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["training", "endpoint"])
def test_no_event_fires_before_not_before(tmp_path, caplog, kind):
    """Airflow 3.3's defer-exit race: an event must not come before the deferring process can
    have exited, even when the job or endpoint is done at the first poll."""
    home = tmp_path / "home"
    hold = 1.5
    if kind == "training":
        backend = start_job(home, write_entry_point(tmp_path), "quick", lines=1)
        wait_terminal(backend, "quick")
        trigger: Any = RLTrainingJobTrigger(
            job_name="quick",
            poll_interval=0.1,
            backend_settings=local_settings(home),
            not_before=time.time() + hold,
        )
    else:  # an unknown endpoint: an error event at the first poll, held as well
        trigger = RLEndpointTrigger(
            endpoint_name="nowhere",
            poll_interval=0.1,
            backend_settings=local_settings(home),
            not_before=time.time() + hold,
        )
    started = time.monotonic()
    [event] = run_strict(lambda: collect(trigger), caplog)
    assert time.monotonic() - started >= hold - 0.1
    assert event["status"] == ("success" if kind == "training" else "error")
