"""What the pages show, read from a backend: one function per page, shared by HTML and JSON.

Everything returned is JSON-safe (ISO-8601 datetimes, plain dicts and lists); the HTML pages
escape it when they render it (``render``), the API returns it as is.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from rl_provider.core.enums import TrainingJobStatus
from rl_provider.core.metrics import MetricExtractor
from rl_provider.exceptions import (
    BackendError,
    JobNotFoundError,
    ModelNotFoundError,
    RLConfigError,
)

if TYPE_CHECKING:
    from rl_provider.backends.base import Backend
    from rl_provider.core.jobs import ModelDescription, TrainingJobDescription

__all__ = [
    "LOG_TAIL_LINES",
    "MAX_JOBS",
    "endpoint_page",
    "endpoint_rows",
    "job_page",
    "job_rows",
    "log_tail",
    "metric_points",
    "model_page",
    "model_rows",
    "parse_status",
]

#: Most rows one jobs page lists (SageMaker pages through ListTrainingJobs 100 at a time).
MAX_JOBS = 1000
#: Lines a job page shows when it opens: the end of the log, not all of it.
LOG_TAIL_LINES = 500
# Jobs whose listing carries no final metrics (SageMaker's ListTrainingJobs has none) are
# described one by one for the first rows only: a page must stay fast with 1,000 jobs.
_DESCRIBED_ROWS = 20


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    return str(value)


def _seconds(start: Any, end: Any) -> float | None:
    """Seconds from ``start`` to ``end`` (now while it runs); None without a start."""
    if start is None:
        return None
    begin = start if isinstance(start, datetime) else datetime.fromisoformat(str(start))
    if end is None:
        finish = datetime.now(UTC)
    else:
        finish = end if isinstance(end, datetime) else datetime.fromisoformat(str(end))
    return max(0.0, (finish - begin).total_seconds())


def parse_status(value: str | None) -> TrainingJobStatus | None:
    """The jobs page's status filter; an unknown value is an error naming the valid ones."""
    if not value:
        return None
    for member in TrainingJobStatus:
        if member.value == value:
            return member
    valid = ", ".join(member.value for member in TrainingJobStatus)
    raise RLConfigError(f"Unknown status {value!r}: pick one of {valid}.")


def job_rows(
    backend: Backend, status: TrainingJobStatus | None = None, limit: int = MAX_JOBS
) -> list[dict[str, Any]]:
    """The jobs list, newest first: status, secondary status, times, last metric values."""
    if not 1 <= limit <= MAX_JOBS:
        raise RLConfigError(f"limit={limit}: pass 1 to {MAX_JOBS}.")
    response = backend.list_training_jobs(
        StatusEquals=None if status is None else status.value, MaxResults=limit
    )
    rows = []
    for index, summary in enumerate(response["TrainingJobSummaries"]):
        metrics: list[dict[str, Any]] | None = summary.get("FinalMetricDataList")
        if metrics is None and index < _DESCRIBED_ROWS:
            try:
                job = backend.describe_training_job(summary["TrainingJobName"])
            except JobNotFoundError:
                metrics = []  # deleted since it was listed
            else:
                metrics = [m.to_api() for m in job.final_metric_data_list]
        start = summary.get("TrainingStartTime") or summary.get("CreationTime")
        rows.append(
            {
                "name": summary["TrainingJobName"],
                "status": summary["TrainingJobStatus"],
                "secondary_status": summary.get("SecondaryStatus"),
                "created": _iso(summary.get("CreationTime")),
                "ended": _iso(summary.get("TrainingEndTime")),
                "duration_s": _seconds(start, summary.get("TrainingEndTime")),
                "metrics": {m["MetricName"]: m["Value"] for m in metrics or ()},
            }
        )
    return rows


def job_page(backend: Backend, name: str) -> dict[str, Any]:
    """One training job: status, transitions with durations, hyperparameters, artifacts."""
    job = backend.describe_training_job(name)
    api = job.to_api()
    transitions = [
        {
            "status": t.status.value,
            "start": _iso(t.start_time),
            "end": _iso(t.end_time),
            "duration_s": _seconds(t.start_time, t.end_time),
            "message": t.status_message,
        }
        for t in job.secondary_status_transitions
    ]
    output_path = job.output_data_config.get("S3OutputPath")
    artifacts = {
        "Model artifacts": job.model_artifacts,
        "Output data": _output_archive(job.model_artifacts),
        "Output path": output_path,
        "Checkpoints": (job.checkpoint_config or {}).get("S3Uri"),
        "Code": _code_uri(job.hyper_parameters),
    }
    return {
        "name": job.training_job_name,
        "status": job.training_job_status.value,
        "secondary_status": None if job.secondary_status is None else job.secondary_status.value,
        "terminal": job.is_terminal,
        "failure_reason": job.failure_reason,
        "created": _iso(job.creation_time),
        "started": _iso(job.training_start_time),
        "ended": _iso(job.training_end_time),
        "duration_s": _seconds(job.training_start_time or job.creation_time, job.training_end_time),
        "transitions": transitions,
        "hyperparameters": dict(job.hyper_parameters),
        "artifacts": {key: value for key, value in artifacts.items() if value},
        "metric_definitions": [
            d.get("Name") for d in job.algorithm_specification.get("MetricDefinitions", [])
        ],
        "final_metrics": job.final_metrics,
        "image": job.algorithm_specification.get("TrainingImage"),
        "instance": job.resource_config.get("InstanceType"),
        "describe": api,
    }


def _output_archive(model_artifacts: str | None) -> str | None:
    """``output.tar.gz`` sits next to ``model.tar.gz`` (SageMaker's layout, and ours)."""
    if not model_artifacts or not model_artifacts.endswith("/model.tar.gz"):
        return None
    return model_artifacts[: -len("model.tar.gz")] + "output.tar.gz"


def _code_uri(hyperparameters: Mapping[str, str]) -> str | None:
    raw = hyperparameters.get("sagemaker_submit_directory")
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        return raw
    return value if isinstance(value, str) else raw


def metric_points(
    backend: Backend, job: TrainingJobDescription, cursor: Any
) -> tuple[dict[str, list[list[float]]], Any]:
    """New points of every metric after ``cursor``, and the cursor after them.

    The cursor is the log cursor of ``read_logs`` (incremental on every backend: a byte offset,
    CloudWatch tokens, a character offset); the points are the new lines matched against the
    job's MetricDefinitions with the extractor the backends record metrics with, so a poll reads
    only what the previous one did not. The timestamp is the time of the read (lines carry none
    on every backend); the page plots by report number. Returns ``({metric: [[timestamp,
    value], ...]}, cursor)``: only the metrics with new points (a metric defined but never
    reported gets no empty series on the chart).
    """
    definitions = job.algorithm_specification.get("MetricDefinitions", [])
    lines, after = _read_logs(backend, job.training_job_name, cursor)
    new: dict[str, list[list[float]]] = {}
    extractor = MetricExtractor(definitions)
    now = time.time()
    for line in lines:
        for match in extractor.match(line):
            new.setdefault(match.name, []).append([now, match.value])
    return dict(sorted(new.items())), after


def _read_logs(backend: Backend, name: str, cursor: Any) -> tuple[list[str], Any]:
    """``read_logs`` with a cursor from the page: one it cannot parse is a 400, not a 500."""
    try:
        return backend.read_logs(name, cursor)
    except (ValueError, TypeError, OSError) as err:
        raise RLConfigError(f"Invalid log cursor {cursor!r}: {err}") from None


def log_tail(backend: Backend, name: str, cursor: Any) -> tuple[list[str], Any, int]:
    """New log lines after ``cursor`` (the end of the log when it is None).

    Returns ``(lines, cursor, skipped)``: the first read keeps the last ``LOG_TAIL_LINES`` lines
    and says how many came before them.
    """
    lines, after = _read_logs(backend, name, cursor)
    skipped = 0
    if cursor is None and len(lines) > LOG_TAIL_LINES:
        skipped = len(lines) - LOG_TAIL_LINES
        lines = lines[skipped:]
    return lines, after, skipped


def training_job_of(backend: Backend, model: ModelDescription) -> str | None:
    """The training job whose ``model.tar.gz`` the model serves, when it still exists.

    ``<output_path>/<job>/output/model.tar.gz`` is the layout of SageMaker and of every backend
    here; a model built from an artifact elsewhere has no training job to show.
    """
    url = model.primary_container.model_data_url or ""
    parts = urlsplit(url).path.rstrip("/").split("/")
    if len(parts) < 3 or parts[-2:] != ["output", "model.tar.gz"]:
        return None
    candidate = parts[-3]
    try:
        job = backend.describe_training_job(candidate)
    except (JobNotFoundError, RLConfigError):
        return None
    return candidate if job.model_artifacts == url else None


def model_rows(backend: Backend) -> list[dict[str, Any]]:
    response = backend.list_models(MaxResults=MAX_JOBS)
    return [
        {"name": m["ModelName"], "created": _iso(m.get("CreationTime"))} for m in response["Models"]
    ]


def model_page(backend: Backend, name: str) -> dict[str, Any]:
    model = backend.describe_model(name)
    container = model.primary_container
    return {
        "name": model.model_name,
        "created": _iso(model.creation_time),
        "image": container.image,
        "model_data_url": container.model_data_url,
        "environment": dict(container.environment),
        "training_job": training_job_of(backend, model),
        "describe": model.to_api(),
    }


def endpoint_rows(backend: Backend) -> list[dict[str, Any]]:
    response = backend.list_endpoints(MaxResults=MAX_JOBS)
    return [
        {
            "name": e["EndpointName"],
            "status": e["EndpointStatus"],
            "created": _iso(e.get("CreationTime")),
            "modified": _iso(e.get("LastModifiedTime")),
        }
        for e in response["Endpoints"]
    ]


def endpoint_page(backend: Backend, name: str) -> dict[str, Any]:
    """An endpoint: status, its config's variants, each model and the job that trained it."""
    endpoint = backend.describe_endpoint(name)
    variants: list[dict[str, Any]] = []
    try:
        config = backend.describe_endpoint_config(endpoint.endpoint_config_name)
    except BackendError:
        config = None  # deleted behind the endpoint's back: show what the endpoint says
    for variant in config.production_variants if config else ():
        row: dict[str, Any] = {
            "variant": variant.variant_name,
            "model": variant.model_name,
            "instance_type": variant.instance_type,
            "instance_count": variant.initial_instance_count,
            "weight": variant.initial_variant_weight,
            "training_job": None,
            "model_data_url": None,
        }
        try:
            model = backend.describe_model(variant.model_name)
        except ModelNotFoundError:
            pass
        else:
            row["training_job"] = training_job_of(backend, model)
            row["model_data_url"] = model.primary_container.model_data_url
        variants.append(row)
    return {
        "name": endpoint.endpoint_name,
        "status": endpoint.endpoint_status.value,
        "failure_reason": endpoint.failure_reason,
        "config": endpoint.endpoint_config_name,
        "created": _iso(endpoint.creation_time),
        "modified": _iso(endpoint.last_modified_time),
        "variants": variants,
        "describe": endpoint.to_api(),
    }
