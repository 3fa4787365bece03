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
import datetime as dt
import functools
import io
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from rl_provider.backends.local import container, files, transfer
from rl_provider.backends.local.endpoint import (
    ENDPOINT,
    ENDPOINT_CONFIG,
    MODEL,
    MODEL_DIR_IN_CONTAINER,
)
from rl_provider.backends.local.processes import process_start, same_process
from rl_provider.backends.local.runner import log_path
from rl_provider.backends.local.store import JobRow, LocalStore, resolve_home
from rl_provider.core import hyperparameters as hp
from rl_provider.core.enums import EndpointStatus, SecondaryStatus, TrainingJobStatus
from rl_provider.core.jobs import (
    EndpointConfigDescription,
    EndpointDescription,
    ModelDescription,
    TrainingJobDescription,
)
from rl_provider.core.lifecycle import require_updatable
from rl_provider.core.naming import validate_name
from rl_provider.core.packaging import repack_model
from rl_provider.exceptions import (
    BackendError,
    EndpointNotFoundError,
    ModelInvocationError,
    ModelNotFoundError,
    ResourceExistsError,
    RLConfigError,
)
from rl_provider.serving.client import ServerConnection

# SageMaker gives a stopped job's processes 120 s between SIGTERM and SIGKILL.
DEFAULT_STOP_GRACE_SECONDS = 120.0
# A job whose runner never registered within this time was orphaned by its creator.
_RUNNER_REGISTRATION_SECONDS = 60.0
_ARN = "arn:aws:sagemaker:local:000000000000:training-job/{}"
# SageMaker's InvokeEndpoint payload limit; the model server enforces it too (413).
MAX_INVOCATION_BYTES = 6 * 1024 * 1024

_T = TypeVar("_T")
_ENV_KEY = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]{0,511}")


def _arn(kind: str, name: str) -> str:
    return f"arn:aws:sagemaker:local:000000000000:{kind}/{name}"


def _utc(ts: float | None) -> dt.datetime | None:
    return None if ts is None else dt.datetime.fromtimestamp(ts, tz=dt.UTC)


def _spawn_detached(
    module: str, args: list[str], home: Path, cwd: Path, uris: list[str]
) -> tuple[int, float]:
    """Start ``python -m module HOME ARGS --detach``; return the detached process's pid/start.

    The process gets the scrubbed environment and a private umask; if ``uris`` include s3://
    locations it gets the caller's AWS credentials on stdin (kept in its memory, never in an
    environment user code can read).
    """
    spawned = subprocess.run(
        [sys.executable, "-m", module, str(home), *args, "--detach"],
        input=transfer.credentials_for(uris) + "\n",
        capture_output=True,
        text=True,
        cwd=cwd,
        env=container.scrubbed_env(),
        umask=files.PRIVATE_UMASK,
    )
    if spawned.returncode != 0 or not spawned.stdout.strip().isdigit():
        raise OSError(spawned.stderr.strip() or f"{module} exited {spawned.returncode}")
    pid = int(spawned.stdout.strip())
    started = process_start(pid)
    return pid, started if started is not None else 0.0


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


def _listing(
    items: Iterable[_T],
    name: Callable[[_T], str],
    name_contains: str | None,
    max_results: int,
    summary: Callable[[_T], dict[str, Any] | None],
) -> list[dict[str, Any]]:
    """A List* page: the summaries of the items whose name contains ``name_contains``, in order,
    at most ``max_results``; ``summary`` returns None for an item to leave out."""
    if isinstance(max_results, bool) or not isinstance(max_results, int) or max_results < 1:
        # SageMaker's List* calls take MaxResults between 1 and 100.
        raise RLConfigError(f"MaxResults={max_results!r}: pass a positive int.")
    summaries: list[dict[str, Any]] = []
    for item in items:
        if name_contains and name_contains not in name(item):
            continue
        entry = summary(item)
        if entry is not None:
            summaries.append(entry)
            if len(summaries) >= max_results:
                break
    return summaries


def _alive(record: Mapping[str, Any] | None) -> bool:
    """Whether the process a record names (pid + start time) still runs."""
    if not record or not record.get("pid"):
        return False
    return same_process(int(record["pid"]), record.get("started"))


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
        self.store = LocalStore.shared(self.home)
        self.stop_grace_seconds = stop_grace_seconds
        self._region = region
        self._local = threading.local()  # keep-alive connections are per thread

    @property
    def _connections(self) -> dict[str, ServerConnection]:
        """This thread's keep-alive connections; a forked child (Airflow workers fork) starts
        afresh rather than share its parent's sockets."""
        connections: dict[str, ServerConnection] | None = getattr(self._local, "connections", None)
        if connections is None or self._local.pid != os.getpid():
            connections = self._local.connections = {}
            self._local.pid = os.getpid()
        return connections

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
            pid, started = _spawn_detached(
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

    def list_training_jobs(
        self,
        StatusEquals: str | None = None,
        MaxResults: int = 100,
        NameContains: str | None = None,
    ) -> dict[str, Any]:
        def summary(row: JobRow) -> dict[str, Any] | None:
            row = self._reap(row)
            if StatusEquals is not None and row.status.value != StatusEquals:
                return None
            return {
                "TrainingJobName": row.name,
                "TrainingJobArn": _ARN.format(row.name),
                "TrainingJobStatus": row.status.value,
                "SecondaryStatus": row.secondary_status.value,
                "CreationTime": _utc(row.creation_time),
                "TrainingEndTime": _utc(row.training_end_time),
                "LastModifiedTime": _utc(row.last_modified_time),
            }

        # The status filter applies after reaping: a job whose runner died is Failed, although
        # its row still says InProgress until something describes it.
        rows = self.store.list_jobs()
        return {
            "TrainingJobSummaries": _listing(
                rows, lambda row: row.name, NameContains, MaxResults, summary
            )
        }

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

    # --------------------------------------------------------------------------- models
    def create_model(self, **request: Any) -> dict[str, Any]:
        name = validate_name(request.get("ModelName", ""), kind="model name")
        container = request.get("PrimaryContainer")
        if not isinstance(container, Mapping) or not container.get("Image"):
            raise RLConfigError(
                f"Model {name!r} needs PrimaryContainer with an Image (and ModelDataUrl): build "
                "the request with RLModel.create_model_request()."
            )
        if container.get("ModelDataUrl"):
            transfer.check_readable(container["ModelDataUrl"], "ModelDataUrl")
        submit = container.get("Environment", {}).get("SAGEMAKER_SUBMIT_DIRECTORY")
        if submit and not submit.startswith(MODEL_DIR_IN_CONTAINER):
            transfer.check_readable(submit, "SAGEMAKER_SUBMIT_DIRECTORY")
        body = {
            "ModelName": name,
            "PrimaryContainer": dict(container),
            "ExecutionRoleArn": request.get("ExecutionRoleArn"),
            "VpcConfig": request.get("VpcConfig"),
        }
        try:
            self.store.put(MODEL, name, body)
        except ResourceExistsError:
            raise ResourceExistsError(
                f"Cannot create already existing model {name!r} (SageMaker rule): delete it or "
                "pick another name."
            ) from None
        return {"ModelArn": _arn("model", name)}

    def describe_model(self, name: str) -> ModelDescription:
        body = self._get(MODEL, name, ModelNotFoundError, "Model")
        return ModelDescription.from_api(
            {**body, "ModelArn": _arn("model", name), "CreationTime": _utc(body["_created"])}
        )

    def delete_model(self, name: str) -> None:
        if not self.store.delete(MODEL, name):
            raise ModelNotFoundError(f"Could not find model {name!r}.")

    def list_models(self, MaxResults: int = 100, NameContains: str | None = None) -> dict[str, Any]:
        def summary(name: str) -> dict[str, Any]:
            return {"ModelName": name, "ModelArn": _arn("model", name)}

        names = self.store.names(MODEL)
        return {"Models": _listing(names, str, NameContains, MaxResults, summary)}

    # ------------------------------------------------------------------ endpoint configs
    def create_endpoint_config(self, **request: Any) -> dict[str, Any]:
        name = validate_name(request.get("EndpointConfigName", ""), kind="endpoint config name")
        variants = request.get("ProductionVariants") or []
        if len(variants) != 1:
            raise RLConfigError(
                f"Endpoint config {name!r} has {len(variants)} production variants: the local "
                "backend serves exactly one."
            )
        for variant in variants:
            missing = [k for k in ("ModelName", "InstanceType") if not variant.get(k)]
            if missing:
                raise RLConfigError(
                    f"Endpoint config {name!r}: the production variant has no "
                    f"{' or '.join(missing)} (SageMaker requires both); got {dict(variant)}."
                )
            self._get(MODEL, variant["ModelName"], ModelNotFoundError, "Model")
        body = {
            "EndpointConfigName": name,
            "ProductionVariants": [
                # SageMaker's defaults for what the variant leaves out.
                {
                    "InitialVariantWeight": 1.0,
                    "VariantName": "AllTraffic",
                    "InitialInstanceCount": 1,
                    **v,
                }
                for v in variants
            ],
        }
        try:
            self.store.put(ENDPOINT_CONFIG, name, body)
        except ResourceExistsError:
            raise ResourceExistsError(
                f"Cannot create already existing endpoint configuration {name!r}."
            ) from None
        return {"EndpointConfigArn": _arn("endpoint-config", name)}

    def describe_endpoint_config(self, name: str) -> EndpointConfigDescription:
        body = self._get(ENDPOINT_CONFIG, name, EndpointNotFoundError, "Endpoint configuration")
        return EndpointConfigDescription.from_api(
            {
                **body,
                "EndpointConfigArn": _arn("endpoint-config", name),
                "CreationTime": _utc(body["_created"]),
            }
        )

    def delete_endpoint_config(self, name: str) -> None:
        if not self.store.delete(ENDPOINT_CONFIG, name):
            raise EndpointNotFoundError(f"Could not find endpoint configuration {name!r}.")

    # ------------------------------------------------------------------------ endpoints
    def create_endpoint(self, **request: Any) -> dict[str, Any]:
        name = validate_name(request.get("EndpointName", ""), kind="endpoint name")
        config = request.get("EndpointConfigName", "")
        self._get(ENDPOINT_CONFIG, config, EndpointNotFoundError, "Endpoint configuration")
        now = time.time()
        body = {
            "EndpointName": name,
            "EndpointConfigName": config,
            "EndpointStatus": EndpointStatus.CREATING.value,
            "LastModifiedTime": now,
            "generation": 1,
            "active": None,
            "pending": {"generation": 1, "config": config},
        }
        try:
            self.store.put(ENDPOINT, name, body)
        except ResourceExistsError:
            raise ResourceExistsError(
                f"Cannot create already existing endpoint {name!r}: update it "
                "(update_endpoint / deploy(update_endpoint=True)) or delete it first."
            ) from None
        self._start_server(name, 1, config)
        return {"EndpointArn": _arn("endpoint", name)}

    def update_endpoint(self, **request: Any) -> dict[str, Any]:
        """Blue/green: a new server starts; it takes over once its /ping answers."""
        name = request.get("EndpointName", "")
        config = request.get("EndpointConfigName", "")
        self._get(ENDPOINT_CONFIG, config, EndpointNotFoundError, "Endpoint configuration")
        self.describe_endpoint(name)  # not found -> EndpointNotFoundError; dead servers reaped
        generation: list[int] = []

        def start_update(body: dict[str, Any]) -> dict[str, Any]:
            # Checked inside the transaction: of two concurrent updates only one starts.
            require_updatable(name, EndpointStatus(body["EndpointStatus"]))
            body["generation"] = int(body["generation"]) + 1
            body["pending"] = {"generation": body["generation"], "config": config}
            body["EndpointStatus"] = EndpointStatus.UPDATING.value
            body["LastModifiedTime"] = time.time()
            generation.append(body["generation"])
            return body

        if self.store.update(ENDPOINT, name, start_update) is None:
            raise EndpointNotFoundError(f"Endpoint {name!r} was deleted while being updated.")
        self._start_server(name, generation[0], config)
        return {"EndpointArn": _arn("endpoint", name)}

    def _start_server(self, name: str, generation: int, config: str) -> None:
        variants = (self.store.get(ENDPOINT_CONFIG, config) or {}).get("ProductionVariants", [])
        model = self.store.get(MODEL, variants[0]["ModelName"]) if variants else None
        container_def = (model or {}).get("PrimaryContainer", {})
        uris = [
            str(container_def.get("ModelDataUrl") or ""),
            str(container_def.get("Environment", {}).get("SAGEMAKER_SUBMIT_DIRECTORY") or ""),
        ]
        directory = files.private_dir(self.home / "endpoints" / name / str(generation))
        try:
            pid, started = _spawn_detached(
                "rl_provider.backends.local.endpoint",
                [name, str(generation)],
                self.home,
                directory,
                uris,
            )
        except OSError as err:
            reason = f"could not start the model server: {err}"

            def fail(body: dict[str, Any]) -> dict[str, Any]:
                body["pending"] = None
                body["EndpointStatus"] = (
                    EndpointStatus.IN_SERVICE.value
                    if body.get("active")
                    else EndpointStatus.FAILED.value
                )
                body["FailureReason"] = reason
                return body

            self.store.update(ENDPOINT, name, fail)
            return

        def record(body: dict[str, Any]) -> dict[str, Any] | None:
            for slot in ("pending", "active"):
                entry = body.get(slot) or {}
                if entry.get("generation") == generation:
                    body[slot] = {**entry, "pid": pid, "started": started}
                    return body
            return None

        self.store.update(ENDPOINT, name, record)

    def describe_endpoint(self, name: str) -> EndpointDescription:
        body = self._reap_endpoint(self._get(ENDPOINT, name, EndpointNotFoundError, "Endpoint"))
        config = self.store.get(ENDPOINT_CONFIG, body["EndpointConfigName"]) or {}
        variants = [
            {
                "VariantName": v.get("VariantName", "AllTraffic"),
                "CurrentInstanceCount": v.get("InitialInstanceCount", 1),
                "DesiredInstanceCount": v.get("InitialInstanceCount", 1),
                "CurrentWeight": v.get("InitialVariantWeight", 1.0),
            }
            for v in config.get("ProductionVariants", [])
        ]
        api: dict[str, Any] = {
            "EndpointName": name,
            "EndpointArn": _arn("endpoint", name),
            "EndpointConfigName": body["EndpointConfigName"],
            "EndpointStatus": body["EndpointStatus"],
            "FailureReason": body.get("FailureReason"),
            "CreationTime": _utc(body["_created"]),
            "LastModifiedTime": _utc(body["LastModifiedTime"]),
            "ProductionVariants": variants,
        }
        active = body.get("active") or {}
        if active.get("port"):
            api["Url"] = f"http://127.0.0.1:{active['port']}"
            api["ServerPid"] = active.get("pid")
        return EndpointDescription.from_api(api)

    def _reap_endpoint(self, body: dict[str, Any]) -> dict[str, Any]:
        """Servers that died (killed, model_fn crashed hard) are reflected in the status."""
        pending, active = body.get("pending"), body.get("active")
        stale_pending = pending and pending.get("pid") and not _alive(pending)
        stale_active = active and active.get("pid") and not _alive(active)
        if not (stale_pending or stale_active):
            return body
        log = self.home / "endpoints" / body["EndpointName"]

        def reap(current: dict[str, Any]) -> dict[str, Any]:
            if (
                current.get("pending")
                and not _alive(current["pending"])
                and current["pending"].get("pid")
            ):
                gen = current["pending"]["generation"]
                current["pending"] = None
                reason = f"the model server exited while starting (see {log}/{gen}/server.log)"
                if current.get("active"):
                    current["EndpointStatus"] = EndpointStatus.IN_SERVICE.value
                    current["FailureReason"] = f"Update failed: {reason}"
                else:
                    current["EndpointStatus"] = EndpointStatus.FAILED.value
                    current["FailureReason"] = reason
            if (
                current.get("active")
                and not _alive(current["active"])
                and current["active"].get("pid")
            ):
                gen = current["active"]["generation"]
                current["active"] = None
                if not current.get("pending"):
                    current["EndpointStatus"] = EndpointStatus.FAILED.value
                    current["FailureReason"] = (
                        f"the model server exited (see {log}/{gen}/server.log); update or "
                        "recreate the endpoint"
                    )
            current["LastModifiedTime"] = time.time()
            return current

        return self.store.update(ENDPOINT, body["EndpointName"], reap) or body

    def delete_endpoint(self, name: str) -> None:
        """Stop every server of the endpoint (and wait for them), then forget it."""
        body = self._get(ENDPOINT, name, EndpointNotFoundError, "Endpoint")
        self.store.update(
            ENDPOINT, name, lambda b: {**b, "EndpointStatus": EndpointStatus.DELETING.value}
        )
        records: list[dict[str, Any]] = [
            r for r in (body.get("active"), body.get("pending")) if r and _alive(r)
        ]
        for record in records:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(record["pid"]), signal.SIGTERM)
        deadline = time.monotonic() + 15.0
        while any(_alive(r) for r in records) and time.monotonic() < deadline:
            time.sleep(0.05)
        for record in records:
            if _alive(record):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(record["pid"]), signal.SIGKILL)
        self.store.delete(ENDPOINT, name)
        cached = self._connections.pop(name, None)
        if cached is not None:
            cached.close()
        # The unpacked model and code go; each generation's server.log stays for post-mortems.
        for generation in (self.home / "endpoints" / name).glob("*"):
            for scratch in ("model", "code", "download"):
                shutil.rmtree(generation / scratch, ignore_errors=True)

    def list_endpoints(
        self,
        StatusEquals: str | None = None,
        MaxResults: int = 100,
        NameContains: str | None = None,
    ) -> dict[str, Any]:
        """ListEndpoints' response, newest first (SageMaker's default order)."""

        def summary(name: str) -> dict[str, Any] | None:
            try:
                d = self.describe_endpoint(name)
            except EndpointNotFoundError:
                return None  # deleted meanwhile
            if StatusEquals and d.endpoint_status.value != StatusEquals:
                return None
            return {
                "EndpointName": d.endpoint_name,
                "EndpointArn": d.endpoint_arn,
                "EndpointStatus": d.endpoint_status.value,
                "CreationTime": d.creation_time,
                "LastModifiedTime": d.last_modified_time,
            }

        names = self.store.names(ENDPOINT)
        return {"Endpoints": _listing(names, str, NameContains, MaxResults, summary)}

    def invoke_endpoint(self, **request: Any) -> dict[str, Any]:
        """POST the body to the endpoint's server (``sagemaker-runtime`` InvokeEndpoint shape)."""
        name = request.get("EndpointName", "")
        body = request.get("Body", b"")
        if isinstance(body, str):
            body = body.encode("utf-8")
        if len(body) > MAX_INVOCATION_BYTES:
            raise RLConfigError(
                f"The request body is {len(body)} bytes: InvokeEndpoint takes at most "
                f"{MAX_INVOCATION_BYTES} (6 MB, SageMaker's limit). Send fewer observations per "
                "request."
            )
        headers = {"Content-Type": request.get("ContentType") or "application/json"}
        if request.get("Accept"):
            headers["Accept"] = request["Accept"]
        # A server being replaced closes its idle connections once its successor is recorded:
        # re-read the port and send again (inference is a pure function of the request).
        for attempt in range(5):
            connection = self._connection(name, refresh=attempt > 0)
            try:
                status, fields, data = connection.request("POST", "/invocations", body, headers)
            except ConnectionError:
                self._connections.pop(name, None)
                time.sleep(0.02 * attempt)
                continue
            except (TimeoutError, ValueError) as err:
                self._connections.pop(name, None)
                raise BackendError(
                    f"Endpoint {name!r} did not answer ({type(err).__name__}: {err}); see its "
                    f"server log under {self.home / 'endpoints' / name}."
                ) from None
            if status >= 400:
                message = data.decode("utf-8", "replace").strip()
                raise ModelInvocationError(name, status, message)
            return {
                "Body": io.BytesIO(data),
                "ContentType": fields.get("content-type", ""),
                "InvokedProductionVariant": "AllTraffic",
            }
        raise EndpointNotFoundError(
            f"Endpoint {name!r} did not accept the request after 5 attempts: "
            f"{self.describe_endpoint(name).endpoint_status.value}."
        )

    def _connection(self, name: str, refresh: bool = False) -> ServerConnection:
        cached = None if refresh else self._connections.get(name)
        if cached is not None:
            return cached
        description = self.describe_endpoint(name)
        url = description.extra.get("Url")
        if description.endpoint_status is EndpointStatus.FAILED or not url:
            raise EndpointNotFoundError(
                f"Endpoint {name!r} is {description.endpoint_status.value} and serves no requests"
                + (f": {description.failure_reason}" if description.failure_reason else ".")
            )
        port = int(str(url).rsplit(":", 1)[1])
        connection = ServerConnection(port, timeout=60.0)
        self._connections[name] = connection
        return connection

    def _get(self, kind: str, name: str, error: type[BackendError], what: str) -> dict[str, Any]:
        body = self.store.get(kind, name)
        if body is None:
            raise error(f"Could not find {what.lower()} {name!r} in {self.home}.")
        return body


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
