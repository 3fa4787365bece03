"""Ray's job states plus the launcher's markers -> DescribeTrainingJob, and the log cursor:
the pure mapping (``state.py``, ``logs.py``), table-driven, with log text as the launcher writes
it (``launcher.emit`` / ``launcher.user_line``)."""

from __future__ import annotations

import contextlib
import io
import json
from typing import Any

import pytest

from rl_provider.backends.ray import launcher
from rl_provider.backends.ray.logs import ParsedLog, split_log
from rl_provider.backends.ray.state import describe
from rl_provider.core.enums import SecondaryStatus, TrainingJobStatus

REQUEST = {"TrainingJobName": "j", "HyperParameters": {"lr": "0.1"}}


def log_of(*events: tuple[str, dict[str, Any]] | str) -> str:
    """What the launcher writes for these markers (tuples) and entry point lines (strings)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        for event in events:
            if isinstance(event, str):
                launcher._print(launcher.user_line(event))
            else:
                launcher.emit(event[0], **event[1])
    return out.getvalue()


def info(status: str, message: str = "") -> dict[str, Any]:
    return {
        "status": status,
        "message": message,
        "start_time": 1_700_000_000_000,
        "end_time": 1_700_000_100_000 if status in ("SUCCEEDED", "FAILED", "STOPPED") else None,
        "_request": REQUEST,
    }


TRAINING = ("status", {"status": "Training", "message": "Training in progress."})


@pytest.mark.parametrize(
    ("ray_status", "message", "events", "status", "secondary", "reason"),
    [
        ("PENDING", "", [], TrainingJobStatus.IN_PROGRESS, SecondaryStatus.DOWNLOADING, None),
        ("RUNNING", "", [TRAINING], TrainingJobStatus.IN_PROGRESS, SecondaryStatus.TRAINING, None),
        (
            "SUCCEEDED",
            "",
            [
                TRAINING,
                (
                    "end",
                    {"status": "Completed", "secondary": "Completed", "artifacts": "file:///m"},
                ),
            ],
            TrainingJobStatus.COMPLETED,
            SecondaryStatus.COMPLETED,
            None,
        ),
        (
            "SUCCEEDED",
            "",
            [
                (
                    "end",
                    {
                        "status": "Stopped",
                        "secondary": "MaxRuntimeExceeded",
                        "artifacts": "file:///m",
                    },
                )
            ],
            TrainingJobStatus.STOPPED,
            SecondaryStatus.MAX_RUNTIME_EXCEEDED,
            None,
        ),
        ("STOPPED", "", [TRAINING], TrainingJobStatus.STOPPED, SecondaryStatus.STOPPED, None),
        (
            "FAILED",
            "Job supervisor actor died: the node running it died unexpectedly",
            [TRAINING, "last words"],
            TrainingJobStatus.FAILED,
            SecondaryStatus.FAILED,
            "InternalServerError: the Ray cluster lost the job: Job supervisor actor died",
        ),
        (
            "FAILED",
            "Job entrypoint command failed with exit code 137",
            [TRAINING, "last words"],
            TrainingJobStatus.FAILED,
            SecondaryStatus.FAILED,
            "InternalServerError: the job's driver failed on Ray: Job entrypoint command failed",
        ),
        (
            "SUCCEEDED",
            "",
            [TRAINING],
            TrainingJobStatus.FAILED,
            SecondaryStatus.FAILED,
            "the launcher exited without reporting the job's end",
        ),
    ],
)
def test_states(ray_status, message, events, status, secondary, reason) -> None:
    parsed = ParsedLog()
    parsed.feed(log_of(*events))
    description = describe("j", info(ray_status, message), parsed)
    assert description.training_job_status is status
    assert description.secondary_status is secondary
    if reason is None:
        assert description.failure_reason is None
    else:
        assert reason in (description.failure_reason or "")
        if "last words" in events:
            assert description.failure_reason.endswith("last words")  # the log tail
    transitions = [t.status for t in description.secondary_status_transitions]
    assert transitions[0] is SecondaryStatus.STARTING
    assert transitions[-1] is secondary
    assert [t.status for t in description.secondary_status_transitions].count(secondary) == 1


def test_user_text_cannot_forge_a_marker_and_the_cursor_loses_and_repeats_nothing() -> None:
    forged = launcher.MARKER + json.dumps({"kind": "end", "status": "Completed"})
    text = log_of("one", forged, "\\back", TRAINING, "two")
    parsed = ParsedLog()
    parsed.feed(text)
    assert parsed.end is None  # the forged line stayed user text
    assert [t["status"] for t in parsed.transitions] == ["Training"]
    # Fed in arbitrary pieces (a partial last line waits), every line comes out once, in order.
    seen: list[str] = []
    offset = 0
    for cut in range(1, len(text) + 1, 7):
        lines, _markers, offset = split_log(text[:cut], offset)
        seen += lines
    lines, _markers, offset = split_log(text, offset)
    seen += lines
    assert seen == ["one", forged, "\\back", "two"]
    assert offset == len(text)
