"""Ray's job states plus the launcher's markers, as DescribeTrainingJob.

Ray says PENDING (runtime env installing, or waiting for the entrypoint's resources), RUNNING,
SUCCEEDED, FAILED, STOPPED; the launcher's markers say where the job is within RUNNING
(Downloading, Training, Stopping, Uploading) and how it ended. The launcher's end marker is the
truth when there is one; without it Ray's state and message are (docs/RAY.md has the table).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Mapping
from typing import Any

from rl_provider.backends.ray.logs import ParsedLog
from rl_provider.core.enums import SecondaryStatus, TrainingJobStatus
from rl_provider.core.jobs import TrainingJobDescription, request_echo

ARN = "arn:aws:sagemaker:ray:000000000000:training-job/{}"
REQUEST_KEY = "rl_provider_request"
# Ray's terminal job states (JobStatus.is_terminal() in ray.dashboard.modules.job.common).
TERMINAL = frozenset({"SUCCEEDED", "FAILED", "STOPPED"})
# Ray's messages when the cluster, not the job, ended it (node death, head restart, the
# supervisor actor gone); matched to say "the cluster lost the job" in FailureReason.
_LOST = ("supervisor actor", "node", "died", "unexpectedly", "lost", "raylet")
_MESSAGES = {
    SecondaryStatus.STARTING: "Starting the training job on the Ray cluster",
    SecondaryStatus.DOWNLOADING: "Preparing the job's runtime environment on the Ray cluster",
    SecondaryStatus.COMPLETED: "Training job completed",
    SecondaryStatus.FAILED: "Training job failed",
    SecondaryStatus.STOPPED: "Training job stopped",
    SecondaryStatus.MAX_RUNTIME_EXCEEDED: "Job stopped: MaxRuntimeInSeconds reached",
}


def _utc(seconds: float | None) -> dt.datetime | None:
    return None if seconds is None else dt.datetime.fromtimestamp(seconds, tz=dt.UTC)


def _seconds(ms: object) -> float | None:
    return float(ms) / 1000.0 if isinstance(ms, int | float) and ms else None


def _end_state(
    info: Mapping[str, Any], parsed: ParsedLog
) -> tuple[TrainingJobStatus, SecondaryStatus, str | None, str | None]:
    """(status, secondary, FailureReason, model artifacts) of a job Ray reports terminal."""
    if parsed.end is not None:
        end = parsed.end
        return (
            TrainingJobStatus(end["status"]),
            SecondaryStatus(end["secondary"]),
            end.get("reason"),
            end.get("artifacts"),
        )
    ray_status = str(info.get("status"))
    if ray_status == "STOPPED":
        return TrainingJobStatus.STOPPED, SecondaryStatus.STOPPED, None, None
    message = str(info.get("message") or "").strip()
    if ray_status == "SUCCEEDED":
        message = "the launcher exited without reporting the job's end"
    lost = any(word in message.lower() for word in _LOST)
    what = "the Ray cluster lost the job" if lost else "the job's driver failed on Ray"
    tail = "\n".join(parsed.tail).strip()
    reason = f"InternalServerError: {what}: {message}" + (f"\n{tail}" if tail else "")
    return TrainingJobStatus.FAILED, SecondaryStatus.FAILED, reason, None


def describe(
    name: str, info: Mapping[str, Any], parsed: ParsedLog, stop_requested: bool = False
) -> TrainingJobDescription:
    request: Mapping[str, Any] = info.get("_request") or {}
    created = _seconds(info.get("start_time")) or time.time()
    ended = _seconds(info.get("end_time"))
    ray_status = str(info.get("status"))
    points: list[tuple[SecondaryStatus, float, str]] = [
        (SecondaryStatus.STARTING, created, _MESSAGES[SecondaryStatus.STARTING])
    ]
    if ray_status == "PENDING" or parsed.transitions:
        # PENDING is the runtime env installing (or resources awaited): Downloading.
        points.append(
            (SecondaryStatus.DOWNLOADING, created, _MESSAGES[SecondaryStatus.DOWNLOADING])
        )
    for transition in parsed.transitions:
        secondary = SecondaryStatus(transition["status"])
        if points[-1][0] is secondary:
            continue
        points.append((secondary, transition["time"], transition["message"]))
    status = TrainingJobStatus.IN_PROGRESS
    reason = artifacts = None
    if ray_status in TERMINAL:
        status, secondary, reason, artifacts = _end_state(info, parsed)
        points.append((secondary, ended or time.time(), _MESSAGES[secondary]))
    elif stop_requested or points[-1][0] is SecondaryStatus.STOPPING:
        status = TrainingJobStatus.STOPPING
        if points[-1][0] is not SecondaryStatus.STOPPING:
            points.append((SecondaryStatus.STOPPING, time.time(), "Stopping the training job"))
    transitions = [
        {
            "Status": secondary.value,
            "StartTime": _utc(start),
            "EndTime": _utc(points[i + 1][1]) if i + 1 < len(points) else None,
            "StatusMessage": message,
        }
        for i, (secondary, start, message) in enumerate(points)
    ]
    if points[-1][0].is_terminal():
        transitions[-1]["EndTime"] = transitions[-1]["StartTime"]
    training = next((start for s, start, _ in points if s is SecondaryStatus.TRAINING), None)
    final = [
        {"MetricName": metric, "Value": values[-1][1], "Timestamp": _utc(values[-1][0])}
        for metric, values in sorted(parsed.metrics.items())
    ]
    api: dict[str, Any] = request_echo(request)
    api.update(
        TrainingJobName=name,
        TrainingJobArn=ARN.format(name),
        TrainingJobStatus=status.value,
        SecondaryStatus=points[-1][0].value,
        FailureReason=reason,
        CreationTime=_utc(created),
        TrainingStartTime=_utc(training),
        TrainingEndTime=_utc(ended) if status.is_terminal() else None,
        LastModifiedTime=_utc(max(p[1] for p in points)),
        SecondaryStatusTransitions=transitions,
        FinalMetricDataList=final,
    )
    if artifacts:
        api["ModelArtifacts"] = {"S3ModelArtifacts": artifacts}
    if training is not None:
        api["TrainingTimeInSeconds"] = int((ended or time.time()) - training)
    return TrainingJobDescription.from_api(api)
