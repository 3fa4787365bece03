"""``LocalBackend``: SageMaker's training API on this machine, no AWS, no Docker.

``create_training_job(**request)`` validates the request, records the job and returns at once,
like the API; a detached runner (``rl_provider.backends.local.runner``) does the work. Any process
that shares the home (``RL_PROVIDER_HOME``) sees the same jobs.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from rl_provider.backends.local import transfer
from rl_provider.backends.local.runner import log_path
from rl_provider.backends.local.store import JobRow, LocalStore, resolve_home
from rl_provider.core import hyperparameters as hp
from rl_provider.core.enums import SecondaryStatus, TrainingJobStatus
from rl_provider.core.jobs import TrainingJobDescription
from rl_provider.core.naming import validate_name
from rl_provider.exceptions import RLConfigError

# SageMaker gives a stopped job's processes 120 s between SIGTERM and SIGKILL.
DEFAULT_STOP_GRACE_SECONDS = 120.0
# A job whose runner never registered within this time was orphaned by its creator.
_RUNNER_REGISTRATION_SECONDS = 60.0
_ARN = "arn:aws:sagemaker:local:000000000000:training-job/{}"


def _utc(ts: float | None) -> dt.datetime | None:
    return None if ts is None else dt.datetime.fromtimestamp(ts, tz=dt.UTC)


def _process_start(pid: int) -> float | None:
    """Start time of ``pid`` (seconds since the epoch), None if it is gone or a zombie."""
    import psutil

    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return None
        return float(process.create_time())
    except psutil.Error:
        return None


class LocalBackend:
    """The embedded backend. ``home``: ``RL_PROVIDER_HOME``, ``$AIRFLOW_HOME/rl_provider``, ~."""

    poll_interval = 0.5

    def __init__(
        self,
        home: str | os.PathLike[str] | None = None,
        *,
        stop_grace_seconds: float = DEFAULT_STOP_GRACE_SECONDS,
        region: str | None = None,
    ) -> None:
        self.home = resolve_home(home)
        self.store = LocalStore(self.home)
        self.stop_grace_seconds = stop_grace_seconds
        self._region = region

    def __repr__(self) -> str:
        return f"LocalBackend(home={str(self.home)!r})"

    @property
    def region(self) -> str | None:
        return self._region

    def default_output_path(self) -> str:
        return (self.home / "output").as_uri()

    # ------------------------------------------------------------------------------ code
    def upload_code(self, archive: Path, uri: str) -> str:
        transfer.check_writable(uri, "Code location")
        transfer.publish(archive, uri)
        return uri

    # -------------------------------------------------------------------------- training
    def create_training_job(self, **request: Any) -> dict[str, Any]:
        name = request.get("TrainingJobName", "")
        self._validate(request)
        self.store.insert_job(name, request, self.stop_grace_seconds)
        directory = self.home / "jobs" / name
        directory.mkdir(parents=True, exist_ok=True)
        spawned = subprocess.run(
            [
                sys.executable,
                "-m",
                "rl_provider.backends.local.runner",
                str(self.home),
                name,
                "--detach",
            ],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            cwd=directory,
        )
        if spawned.returncode != 0 or not spawned.stdout.strip().isdigit():
            reason = (
                f"InternalServerError: could not start the local runner: {spawned.stderr.strip()}"
            )
            self.store.transition(
                name,
                SecondaryStatus.FAILED,
                "Training job failed",
                status=TrainingJobStatus.FAILED,
                failure_reason=reason,
            )
            return {"TrainingJobArn": _ARN.format(name)}
        pid = int(spawned.stdout.strip())
        started = _process_start(pid)
        self.store.set_runner(name, pid, started if started is not None else 0.0)
        return {"TrainingJobArn": _ARN.format(name)}

    def _validate(self, request: dict[str, Any]) -> None:
        """Everything that would make the job fail at once is refused before it is created."""
        validate_name(request.get("TrainingJobName", ""), kind="training job name")
        for key in (
            "AlgorithmSpecification",
            "OutputDataConfig",
            "ResourceConfig",
            "StoppingCondition",
        ):
            if key not in request:
                raise RLConfigError(
                    f"CreateTrainingJob request without {key}: build it with training_request()."
                )
        instance_type = request["ResourceConfig"].get("InstanceType", "")
        if request["ResourceConfig"].get("InstanceCount", 1) != 1:
            raise RLConfigError(
                f"InstanceCount={request['ResourceConfig']['InstanceCount']}: the local backend "
                "runs one instance; use instance_count=1 (or the SageMaker backend for clusters)."
            )
        if not instance_type.startswith(("local", "ml.")):
            raise RLConfigError(f"Instance type {instance_type!r} is neither local* nor ml.*.")
        transfer.check_writable(request["OutputDataConfig"]["S3OutputPath"], "Output path")
        hyperparameters = request.get("HyperParameters", {})
        if "sagemaker_program" not in hyperparameters:
            raise RLConfigError(
                "The request has no sagemaker_program hyperparameter: the local backend runs "
                "script "
                "mode jobs; build the request with RLEstimator.training_request()."
            )
        submit = hyperparameters.get("sagemaker_submit_directory")
        if submit is None:
            raise RLConfigError("The request has no sagemaker_submit_directory (the code archive).")
        transfer.check_readable(str(hp.decode_value(submit)), "Code archive")
        for channel in request.get("InputDataConfig", []):
            source = channel.get("DataSource", {}).get("S3DataSource")
            if source is None:
                raise RLConfigError(
                    f"Channel {channel.get('ChannelName')!r}: the local backend reads S3DataSource "
                    "channels (s3:// or file:// URIs)."
                )
            transfer.check_readable(source["S3Uri"], f"Channel {channel['ChannelName']!r}")
        max_runtime = request["StoppingCondition"].get("MaxRuntimeInSeconds")
        if not isinstance(max_runtime, int) or max_runtime < 1:
            raise RLConfigError(f"MaxRuntimeInSeconds must be a positive int, got {max_runtime!r}.")

    def describe_training_job(self, name: str) -> TrainingJobDescription:
        row = self._reap(self.store.get_job(name))
        request = row.request
        transitions = [
            {
                "Status": t["status"],
                "StartTime": _utc(t["start_time"]),
                "EndTime": _utc(t["end_time"]),
                "StatusMessage": t["message"],
            }
            for t in self.store.transitions(name)
        ]
        final = [
            {"MetricName": m["name"], "Value": m["value"], "Timestamp": _utc(m["timestamp"])}
            for m in self.store.final_metrics(name)
        ]
        api: dict[str, Any] = {
            key: request[key]
            for key in (
                "AlgorithmSpecification",
                "HyperParameters",
                "RoleArn",
                "InputDataConfig",
                "OutputDataConfig",
                "ResourceConfig",
                "StoppingCondition",
                "Environment",
                "VpcConfig",
                "CheckpointConfig",
                "EnableManagedSpotTraining",
            )
            if key in request
        }
        api.update(
            TrainingJobName=name,
            TrainingJobArn=_ARN.format(name),
            TrainingJobStatus=row.status.value,
            SecondaryStatus=row.secondary_status.value,
            FailureReason=row.failure_reason,
            CreationTime=_utc(row.creation_time),
            TrainingStartTime=_utc(row.training_start_time),
            TrainingEndTime=_utc(row.training_end_time),
            LastModifiedTime=_utc(row.last_modified_time),
            SecondaryStatusTransitions=transitions,
            FinalMetricDataList=final,
        )
        if row.model_artifacts:
            api["ModelArtifacts"] = {"S3ModelArtifacts": row.model_artifacts}
        if row.training_start_time is not None:
            end = row.training_end_time or time.time()
            api["TrainingTimeInSeconds"] = int(end - row.training_start_time)
        return TrainingJobDescription.from_api(api)

    def _reap(self, row: JobRow) -> JobRow:
        """A job whose runner is gone (kill -9, reboot) is marked Failed, saying so."""
        if row.status.is_terminal():
            return row
        if row.runner_pid is None:
            if time.time() - row.creation_time < _RUNNER_REGISTRATION_SECONDS:
                return row
            why = "its local runner never started"
        else:
            started = _process_start(row.runner_pid)
            if started is not None and abs(started - (row.runner_started or started)) < 1.0:
                return row
            why = f"its local runner (pid {row.runner_pid}) exited without finishing it"
        if row.entry_pid is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(row.entry_pid, signal.SIGKILL)  # no orphaned training process
        reason = (
            f"InternalServerError: {why} (killed, or the machine restarted). Logs so far: "
            f"{log_path(self.home, row.name)}. Start a new job to train again."
        )
        self.store.transition(
            row.name,
            SecondaryStatus.FAILED,
            "Training job failed",
            status=TrainingJobStatus.FAILED,
            failure_reason=reason,
        )
        return self.store.get_job(row.name)

    def stop_training_job(self, name: str) -> None:
        """Ask the runner to stop: SIGTERM to the entry point, grace period, SIGKILL."""
        row = self._reap(self.store.get_job(name))
        if row.status is not TrainingJobStatus.IN_PROGRESS:
            return  # SageMaker ignores a stop of a job that is stopping or ended
        self.store.transition(
            name,
            SecondaryStatus.STOPPING,
            "Stopping the training job",
            status=TrainingJobStatus.STOPPING,
        )
        if row.runner_pid is not None and _process_start(row.runner_pid) is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(row.runner_pid, signal.SIGTERM)

    def list_training_jobs(
        self,
        StatusEquals: str | None = None,
        MaxResults: int = 100,
        NameContains: str | None = None,
    ) -> dict[str, Any]:
        summaries = []
        for row in self.store.list_jobs(StatusEquals):
            if NameContains and NameContains not in row.name:
                continue
            row = self._reap(row)
            summaries.append(
                {
                    "TrainingJobName": row.name,
                    "TrainingJobArn": _ARN.format(row.name),
                    "TrainingJobStatus": row.status.value,
                    "SecondaryStatus": row.secondary_status.value,
                    "CreationTime": _utc(row.creation_time),
                    "TrainingEndTime": _utc(row.training_end_time),
                    "LastModifiedTime": _utc(row.last_modified_time),
                }
            )
            if len(summaries) >= MaxResults:
                break
        return {"TrainingJobSummaries": summaries}

    def read_logs(self, name: str, cursor: Any = None) -> tuple[list[str], Any]:
        """Complete lines after ``cursor`` (a byte offset); a partial last line waits."""
        self.store.get_job(name)
        offset = int(cursor or 0)
        try:
            with open(log_path(self.home, name), "rb") as log:
                log.seek(offset)
                data = log.read()
        except FileNotFoundError:
            return [], offset
        end = data.rfind(b"\n") + 1
        lines = data[:end].decode("utf-8", errors="replace").splitlines()
        return lines, offset + end

    def log_file(self, name: str) -> Path:
        return log_path(self.home, name)

    def metrics(self, name: str) -> dict[str, list[tuple[float, float]]]:
        self.store.get_job(name)
        return self.store.metrics(name)


class AsyncLocalBackend:
    """The async twin for triggers: the same calls on a worker thread, never on the loop."""

    def __init__(self, backend: LocalBackend) -> None:
        self.backend = backend

    async def describe_training_job(self, name: str) -> TrainingJobDescription:
        return await asyncio.to_thread(self.backend.describe_training_job, name)

    async def read_logs(self, name: str, cursor: Any = None) -> tuple[list[str], Any]:
        return await asyncio.to_thread(self.backend.read_logs, name, cursor)

    async def stop_training_job(self, name: str) -> None:
        await asyncio.to_thread(self.backend.stop_training_job, name)
