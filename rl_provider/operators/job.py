"""The training job a task works on, across the tries of one task instance.

``RLTrainOperator`` and ``RLTrainingJobSensor`` share it:

- the job's name: deterministic per (dag_id, task_id, run_id, map_index), with ``-r<try>`` for a
  try that must start afresh (``choose_job`` decides: re-attach, return, or start a new one,
  reading the task instance's watch record, ``rl_provider.progress``);
- the XComs its extra links read (``persist_training_links``);
- the error a training trigger event other than ``success`` becomes (``training_event_error``).
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any, Protocol

from airflow.sdk.exceptions import AirflowException

from rl_provider.core.enums import CoercibleEnum, TrainingJobStatus
from rl_provider.core.jobs import job_failed_error
from rl_provider.core.naming import MAX_NAME_LENGTH, name_from_base, sanitize_base, validate_name
from rl_provider.exceptions import JobFailedError, JobNotFoundError, RLConfigError
from rl_provider.hooks.rl import BackendKind
from rl_provider.links import TRAINING_LINKS, persist_links
from rl_provider.progress import forget_watch, load_watch

if TYPE_CHECKING:
    from airflow.sdk import Context

    from rl_provider.backends.base import Backend
    from rl_provider.core.jobs import TrainingJobDescription
    from rl_provider.hooks.rl import RLHook

__all__ = [
    "ActionIfJobExists",
    "choose_job",
    "deterministic_job_name",
    "persist_training_links",
    "retry_name",
    "training_event_error",
]


class _Log(Protocol):
    """The task's logger (``BaseOperator.log``): the messages go into the task log."""

    def info(self, event: str, *args: Any) -> Any: ...


# Room kept after a deterministic name for the retry suffix "-r<try>" (up to 3 digits).
_RETRY_SUFFIX_ROOM = 5
_DIGEST_LENGTH = 10


class ActionIfJobExists(CoercibleEnum):
    """What a task does when its job name is taken (the Amazon provider's option, + reattach)."""

    REATTACH = "reattach"
    TIMESTAMP = "timestamp"
    FAIL = "fail"


def deterministic_job_name(
    dag_id: str, task_id: str, run_id: str, map_index: int = -1, base: str | None = None
) -> str:
    """``<base>-<digest>``: the same for every try of one task instance, unique across them.

    ``base`` defaults to ``<dag_id>-<task_id>``; it is sanitized and trimmed so that the name
    plus a retry suffix (``-r<try>``) stays within SageMaker's 63 characters.
    """
    key = "\x1f".join((dag_id, task_id, run_id, str(map_index)))
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:_DIGEST_LENGTH]
    room = MAX_NAME_LENGTH - _RETRY_SUFFIX_ROOM - _DIGEST_LENGTH - 1
    prefix = sanitize_base(base or f"{dag_id}-{task_id}")[:room].rstrip("-") or "rl"
    return validate_name(f"{prefix}-{digest}", kind="training job name")


def retry_name(name: str, try_number: int) -> str:
    """The name try ``try_number`` uses when it cannot follow the job of an earlier try."""
    suffix = f"-r{try_number}"
    return validate_name(
        f"{name[: MAX_NAME_LENGTH - len(suffix)].rstrip('-')}{suffix}", kind="training job name"
    )


def choose_job(
    backend: Backend,
    name: str,
    action: ActionIfJobExists,
    try_number: int,
    progress_key: str,
    log: _Log,
) -> tuple[str, TrainingJobDescription | None]:
    """The job this try works on (``name`` is the task's base name), and its description if it
    exists already."""
    if action is ActionIfJobExists.TIMESTAMP:
        return validate_name(name_from_base(name), kind="training job name"), None
    # Earlier tries of this task instance may have started name, name-r2, ... name-r<try>.
    chain = [name] + [retry_name(name, n) for n in range(2, try_number + 1)]
    latest: TrainingJobDescription | None = None
    for candidate in chain:
        try:
            latest = backend.describe_training_job(candidate)
        except JobNotFoundError:
            continue
    if latest is None:
        return name, None
    if action is ActionIfJobExists.FAIL:
        raise RLConfigError(
            f"Training job {latest.training_job_name} exists "
            f"({latest.training_job_status.value}) and action_if_job_exists='fail': pass "
            "another job_name, or action_if_job_exists='reattach' or 'timestamp'."
        )
    retry = retry_name(name, try_number)
    if retry == latest.training_job_name:  # this very try created it
        return retry, latest
    if latest.training_job_status is TrainingJobStatus.STOPPING:
        # The previous try was killed (clear/mark of a running task): its job is going away.
        log.info(
            "Training job %s is being stopped (its try was killed): starting %s.",
            latest.training_job_name,
            retry,
        )
        return retry, None
    if not latest.is_terminal and _handed_off_by_earlier_try(
        latest.training_job_name, try_number, progress_key
    ):
        log.info(
            "Training job %s belongs to a deferred earlier try that a user action (clear, "
            "mark failed/success) or a trigger failure ended: stopping it, starting %s.",
            latest.training_job_name,
            retry,
        )
        # The old trigger's on_kill stops it too, but it may run after this try starts.
        backend.stop_training_job(latest.training_job_name)
        return retry, None
    if not latest.is_failure:  # running: follow it; Completed: it is the result
        return latest.training_job_name, latest
    log.info(
        "Training job %s ended %s (%s): starting %s.",
        latest.training_job_name,
        latest.training_job_status.value,
        latest.failure_reason or "no reason given",
        retry,
    )
    return retry, None


def _handed_off_by_earlier_try(job_name: str, try_number: int, key: str) -> bool:
    """Whether an earlier try deferred on ``job_name`` and never resumed.

    A deferred try gets a successor only through a user action (clear, mark) or a failed
    trigger, never through a worker death (a deferred task has no worker): the job is
    being stopped, or nobody follows it any more. A try that died while running in a worker
    left no such record, and its successor re-attaches.
    """
    record = load_watch(key)
    if (
        record is None
        or not record.deferred
        or record.job_name != job_name
        or record.try_number is None
        or record.try_number >= try_number
    ):
        return False
    forget_watch(key)  # handled: this try starts afresh
    return True


def persist_training_links(context: Context, hook: RLHook, backend: Backend, name: str) -> None:
    """Record what the training links of a task need (``TRAINING_LINKS``).

    Called before a task can defer or end: Airflow reads every extra link then, and logs an
    ``error`` for a link whose XCom is missing. Shared by the operator and the sensor.
    """
    settings = hook.settings
    values: dict[str, Any] = {
        "backend": settings.backend.value,
        "region": settings.region_name or backend.region,
        "job_name": name,
        "conn_id": hook.conn_id,
    }
    if settings.backend is BackendKind.RAY and settings.address:
        # The job's page in the Ray dashboard (the job server is the dashboard).
        values["dashboard_url"] = f"{settings.address.rstrip('/')}/#/jobs/{name}"
    persist_links(TRAINING_LINKS, context, **values)


def training_event_error(name: str, event: dict[str, Any]) -> AirflowException | JobFailedError:
    """The task's error for a training trigger event other than ``success``.

    Shared by ``RLTrainOperator`` and ``RLTrainingJobSensor``: one mapping from event status
    to error, whichever task deferred.
    """
    from rl_provider.triggers.training_job import TrainingEventStatus

    status = event["status"]
    job_status = {
        TrainingEventStatus.FAILED: TrainingJobStatus.FAILED,
        TrainingEventStatus.STOPPED: TrainingJobStatus.STOPPED,
    }.get(status)
    if job_status is not None:
        return job_failed_error(
            name, job_status, event.get("failure_reason"), event.get("secondary_status")
        )
    return AirflowException(event.get("message") or f"Training job {name}: {status}")
