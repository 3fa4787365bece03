"""Many local triggers in one event loop, as in a triggerer: descriptors stay constant.

Each trigger builds its own hook and backend; the backends share the process's store of the
home (one SQLite connection per worker thread) and one worker thread, so 200 triggers hold no
more descriptors than one (a store per trigger held ~10 each: ``ulimit -n 1024`` broke at ~100).
The SageMaker twin is tests/backends/sagemaker/test_shared_clients.py; the figures at 1,000
triggers come from bench/triggerer_scale.py (docs/PERFORMANCE.md).
"""

from __future__ import annotations

import asyncio
import os
import re
from typing import Any

import pytest

from rl_provider.triggers.training_job import RLTrainingJobTrigger
from tests.airflow.dagkit import write_entry_point
from tests.airflow.test_triggers import local_settings, start_job


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def follow_all(triggers: list[Any]) -> tuple[int, int, list[Any]]:
    """Run every trigger to its first event in this loop, as a triggerer does: (descriptors
    before, most descriptors open meanwhile, the events' payloads)."""

    async def first_event(trigger: Any) -> Any:
        async for event in trigger.run():
            return event.payload
        return None

    before = open_fds()
    tasks = [asyncio.create_task(first_event(t)) for t in triggers]
    peak = before
    while not all(task.done() for task in tasks):
        peak = max(peak, open_fds())
        await asyncio.sleep(0.05)
    return before, peak, [task.result() for task in tasks]


@pytest.mark.slow  # 200 triggers following a ~3 s job
def test_200_local_triggers_hold_a_constant_number_of_descriptors(tmp_path, capfd):
    home = tmp_path / "home"
    start_job(home, write_entry_point(tmp_path), "shared", lines=20, interval=0.15)
    triggers = [
        RLTrainingJobTrigger(
            job_name="shared", poll_interval=0.2, backend_settings=local_settings(home)
        )
        for _ in range(200)
    ]

    capfd.readouterr()
    before, peak, events = asyncio.run(follow_all(triggers))
    assert {e["status"] for e in events} == {"success"}
    # One SQLite connection (3 descriptors) on the worker thread, the log file being read, the
    # default executor's threads opening nothing: a constant, not ~10 per trigger.
    assert peak - before <= 12, (before, peak)
    printed = capfd.readouterr().out.splitlines()
    for i in range(20):  # every trigger streamed every line of the job exactly once
        line = re.compile(rf"line {i}: episode_reward_mean: {10.0 * (i + 1)}\b")
        assert sum(bool(line.search(p)) for p in printed) == len(triggers), i
