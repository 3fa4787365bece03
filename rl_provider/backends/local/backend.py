"""``LocalBackend``: SageMaker's training and serving APIs on this machine, no AWS, no Docker.

``create_training_job(**request)`` validates the request, records the job and returns at once,
like the API; a detached runner (``rl_provider.backends.local.runner``) does the work. Any process
that shares the home (``RL_PROVIDER_HOME``) sees the same jobs.

Models, endpoint configs and endpoints live in the same database; each endpoint generation is a
detached model server on 127.0.0.1 (``rl_provider.backends.local.endpoint``, docs/SERVING.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import re
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar, Unpack

from rl_provider.backends.base import ListFilter, ListQuery
from rl_provider.backends.local import files, transfer
from rl_provider.backends.local.common import spawn_detached, utc
from rl_provider.backends.local.processes import same_process
from rl_provider.backends.local.runner import log_path
from rl_provider.backends.local.serving import LocalServing
from rl_provider.backends.local.store import JobRow, LocalStore, resolve_home
from rl_provider.core import hyperparameters as hp
from rl_provider.core.enums import SecondaryStatus, TrainingJobStatus
from rl_provider.core.jobs import (
    EndpointDescription,
    TrainingJobDescription,
    request_echo,
)
from rl_provider.core.naming import validate_name
from rl_provider.core.packaging import repack_model
from rl_provider.exceptions import (
    BackendError,
    ResourceExistsError,
    RLConfigError,
)

# SageMaker gives a stopped job's processes 120 s between SIGTERM and SIGKILL.
DEFAULT_STOP_GRACE_SECONDS = 120.0
# A job whose runner never registered within this time was orphaned by its creator.
_RUNNER_REGISTRATION_SECONDS = 60.0
_ARN = "arn:aws:sagemaker:local:000000000000:training-job/{}"

_T = TypeVar("_T")
_ENV_KEY = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]{0,511}")


def _request_uris(request: Mapping[str, Any]) -> list[str]:
    """Every location a training request reads or writes."""
    submit = request.get("HyperParameters", {}).get("sagemaker_submit_directory")
    uris = [
        str(request["OutputDataConfig"]["S3OutputPath"]),
        str(hp.decode_value(submit)) if submit else "",
    ]
    uris += [
        str(c.get("DataSource", {}).get("S3DataSource", {}).get("S3Uri", ""))
        for c in request.get("InputDataConfig", [])
    ]
    return uris


class LocalBackend(LocalServing):
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
        self.store = LocalStore.shared(self.home)
        self.stop_grace_seconds = stop_grace_seconds
        self._region = region
        self._local = threading.local()  # keep-alive connections are per thread (serving)

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
        try:
            transfer.publish(archive, uri)
        except OSError as err:  # a bare OSError would be retried by Airflow as if transient
            detail = files.out_of_space_message(uri, err) if files.is_out_of_space(err) else err
            raise BackendError(f"Could not upload the code to {uri}: {detail}") from err
        return uri

    def repack_model(self, model_data: str, code: Path | str, uri: str) -> str:
        """``model.tar.gz`` with ``code`` (a directory, ``sourcedir.tar.gz`` or its URI) added
        as ``code/``, published at ``uri``: the layout SageMaker's serving images read."""
        transfer.check_readable(model_data, "model_data")
        transfer.check_writable(uri, "Model location")
        with (
            tempfile.TemporaryDirectory(prefix="rl-provider-repack-") as tmp,
            contextlib.ExitStack() as stack,
        ):
            original = stack.enter_context(transfer.local_copy(model_data, Path(tmp) / "model"))
            if isinstance(code, str):
                transfer.check_readable(code, "Model code")
                code = stack.enter_context(transfer.local_copy(code, Path(tmp) / "code"))
            repacked = repack_model(original, Path(code), Path(tmp) / "model.tar.gz")
            transfer.publish(repacked.path, uri)
        return uri

    # -------------------------------------------------------------------------- training
    def create_training_job(self, **request: Any) -> dict[str, Any]:
        name = request.get("TrainingJobName", "")
        self.validate_training_request(request)
        submit = request["HyperParameters"]["sagemaker_submit_directory"]
        transfer.check_readable(str(hp.decode_value(submit)), "Code archive")
        self.store.insert_job(name, request, self.stop_grace_seconds)
        directory = files.private_dir(self.home / "jobs" / name)
        try:
            pid, started = spawn_detached(
                "rl_provider.backends.local.runner",
                [name],
                self.home,
                directory,
                _request_uris(request),
            )
        except OSError as err:
            self.store.transition(
                name,
                SecondaryStatus.FAILED,
                "Training job failed",
                status=TrainingJobStatus.FAILED,
                failure_reason=f"InternalServerError: could not start the local runner: {err}",
            )
        else:
            self.store.set_runner(name, pid, started)
        return {"TrainingJobArn": _ARN.format(name)}

    def validate_training_request(self, request: Mapping[str, Any]) -> None:
        """Everything that would make the job fail at once, refused before anything is uploaded
        or created (``fit()`` calls this before it uploads the code): a taken name above all, so
        a refused duplicate never overwrites the first job's ``sourcedir.tar.gz``."""
        name = validate_name(request.get("TrainingJobName", ""), kind="training job name")
        if self.store.job_exists(name):
            raise ResourceExistsError(
                f"Training job {name!r} already exists: training job names must be unique "
                "(SageMaker rule); pick another name or attach to it."
            )
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
        transfer.check_writable(str(hp.decode_value(submit)), "Code location")
        for channel in request.get("InputDataConfig", []):
            source = channel.get("DataSource", {}).get("S3DataSource")
            if source is None:
                raise RLConfigError(
                    f"Channel {channel.get('ChannelName')!r}: the local backend reads S3DataSource "
                    "channels (s3:// or file:// URIs)."
                )
            transfer.check_readable(source["S3Uri"], f"Channel {channel['ChannelName']!r}")
        max_runtime = request["StoppingCondition"].get("MaxRuntimeInSeconds")
        if isinstance(max_runtime, bool) or not isinstance(max_runtime, int) or max_runtime < 1:
            raise RLConfigError(f"MaxRuntimeInSeconds must be a positive int, got {max_runtime!r}.")
        for key, value in (request.get("Environment") or {}).items():
            # SageMaker's Environment rules (CreateTrainingJob): keys [a-zA-Z_][a-zA-Z0-9_]*, at
            # most 512 characters each; a NUL cannot be passed to a process at all.
            if not isinstance(key, str) or not _ENV_KEY.fullmatch(key):
                raise RLConfigError(
                    f"Environment key {key!r}: use letters, digits and underscores, not starting "
                    "with a digit, at most 512 characters (SageMaker rule)."
                )
            if not isinstance(value, str) or "\0" in value or len(value) > 512:
                raise RLConfigError(
                    f"Environment[{key!r}] = {value!r}: pass a string of at most 512 characters "
                    "without NUL (SageMaker rule)."
                )

    def describe_training_job(self, name: str) -> TrainingJobDescription:
        row = self._reap(self.store.get_job(name))
        request = row.request
        transitions = [
            {
                "Status": t["status"],
                "StartTime": utc(t["start_time"]),
                "EndTime": utc(t["end_time"]),
                "StatusMessage": t["message"],
            }
            for t in self.store.transitions(name)
        ]
        final = [
            {"MetricName": m["name"], "Value": m["value"], "Timestamp": utc(m["timestamp"])}
            for m in self.store.final_metrics(name)
        ]
        api: dict[str, Any] = request_echo(request)
        api.update(
            TrainingJobName=name,
            TrainingJobArn=_ARN.format(name),
            TrainingJobStatus=row.status.value,
            SecondaryStatus=row.secondary_status.value,
            FailureReason=row.failure_reason,
            CreationTime=utc(row.creation_time),
            TrainingStartTime=utc(row.training_start_time),
            TrainingEndTime=utc(row.training_end_time),
            LastModifiedTime=utc(row.last_modified_time),
            SecondaryStatusTransitions=transitions,
            FinalMetricDataList=final,
        )
        if row.model_artifacts:
            api["ModelArtifacts"] = {"S3ModelArtifacts": row.model_artifacts}
        if row.training_start_time is not None:
            end = row.training_end_time or time.time()
            api["TrainingTimeInSeconds"] = int(end - row.training_start_time)
        return TrainingJobDescription.from_api(api)

    def list_tags(self, arn: str) -> list[dict[str, str]]:
        """The ``Tags`` a training job was created with (ListTags of its ARN)."""
        name = arn.rsplit("/", 1)[-1]
        return [dict(tag) for tag in self.store.get_job(name).request.get("Tags", [])]

    def _reap(self, row: JobRow) -> JobRow:
        """A job whose runner is gone (kill -9, reboot) is marked Failed, saying so."""
        if row.status.is_terminal():
            return row
        if row.runner_pid is None:
            if time.time() - row.creation_time < _RUNNER_REGISTRATION_SECONDS:
                return row
            why = "its local runner never started"
        else:
            if same_process(row.runner_pid, row.runner_started):
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
        if row.runner_pid is not None and same_process(row.runner_pid, row.runner_started):
            with contextlib.suppress(ProcessLookupError):
                os.kill(row.runner_pid, signal.SIGTERM)

    def list_training_jobs(self, **filters: Unpack[ListFilter]) -> dict[str, Any]:
        query = ListQuery.of(filters)
        last_values = self.store.last_values()

        def summary(row: JobRow) -> dict[str, Any] | None:
            row = self._reap(row)
            if not query.wants(row.status.value):
                return None
            # Beyond ListTrainingJobs: the last metric values, which a listing shows and which
            # would otherwise cost one DescribeTrainingJob per job.
            metrics = [
                {"MetricName": m["name"], "Value": m["value"], "Timestamp": utc(m["timestamp"])}
                for m in last_values.get(row.name, ())
            ]
            return {
                "FinalMetricDataList": metrics,
                "TrainingJobName": row.name,
                "TrainingJobArn": _ARN.format(row.name),
                "TrainingJobStatus": row.status.value,
                "SecondaryStatus": row.secondary_status.value,
                "CreationTime": utc(row.creation_time),
                "TrainingEndTime": utc(row.training_end_time),
                "LastModifiedTime": utc(row.last_modified_time),
            }

        # The status filter applies after reaping: a job whose runner died is Failed, although
        # its row still says InProgress until something describes it.
        rows = self.store.list_jobs()
        return {"TrainingJobSummaries": query.page(rows, lambda row: row.name, summary)}

    def read_logs(self, name: str, cursor: Any = None) -> tuple[list[str], Any]:
        """Complete lines after ``cursor`` (a byte offset); a partial last line waits."""
        self.store.require_job(name)
        offset = int(cursor or 0)
        path = log_path(self.home, name)
        try:
            if path.stat().st_size <= offset:
                return [], offset  # nothing new: no open/read (a trigger asks at every poll)
            with open(path, "rb") as log:
                log.seek(offset)
                data = log.read()
        except FileNotFoundError:
            return [], offset
        end = data.rfind(b"\n") + 1
        # Split on "\n" only: str.splitlines() also breaks at \r, form feed and U+2028, which
        # programs (tqdm's progress bars) write inside one line. One decode, then one split (a
        # 0x0A byte is always "\n" in UTF-8): faster than splitlines() on a million lines.
        lines = data[:end].decode("utf-8", errors="replace").split("\n")[:-1]
        return lines, offset + end

    def log_location(self, name: str) -> str:
        """The job's log file (``rl-provider jobs describe`` shows it)."""
        return str(log_path(self.home, name))

    def metrics(self, name: str) -> dict[str, list[tuple[float, float]]]:
        self.store.get_job(name)
        return self.store.metrics(name)


# pid -> the executor every AsyncLocalBackend of that process runs its calls on (_off_loop); a
# forked child makes its own (it inherits the object, not the thread).
_EXECUTORS: dict[int, ThreadPoolExecutor] = {}


async def _off_loop(function: Callable[..., _T], *args: Any) -> _T:
    """Run a blocking call on the local executor, not on the loop nor on its default executor.

    A triggerer's default executor has min(32, cpus + 4) threads: every one opened its own
    SQLite connection per home, and 1,000 triggers polling at once completed their calls in
    bursts that the loop then ran as one long iteration (0.57 s of lag measured with
    bench/triggerer_scale.py). On one thread the calls complete one by one, each handed to the
    loop as it finishes, and a process holds one connection per home.
    """
    executor = _EXECUTORS.get(os.getpid())
    if executor is None:  # inline, not a helper: nothing synchronous of ours runs on the loop
        # setdefault is atomic; a loser's executor never started a thread.
        executor = _EXECUTORS.setdefault(
            os.getpid(), ThreadPoolExecutor(1, thread_name_prefix="rl-provider-local")
        )
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(executor, functools.partial(function, *args))


class AsyncLocalBackend:
    """The async twin for triggers: the same calls on a worker thread, never on the loop."""

    def __init__(self, backend: LocalBackend) -> None:
        self.backend = backend

    async def describe_training_job(self, name: str) -> TrainingJobDescription:
        return await _off_loop(self.backend.describe_training_job, name)

    async def read_logs(self, name: str, cursor: Any = None) -> tuple[list[str], Any]:
        return await _off_loop(self.backend.read_logs, name, cursor)

    async def stop_training_job(self, name: str) -> None:
        await _off_loop(self.backend.stop_training_job, name)

    async def describe_endpoint(self, name: str) -> EndpointDescription:
        return await _off_loop(self.backend.describe_endpoint, name)

    async def aclose(self) -> None:
        """Nothing to close: the local backend keeps no clients open (its SQLite connections
        are per thread and close with it)."""
