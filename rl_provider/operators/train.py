"""``RLTrainOperator``: run an ``RLEstimator`` training job from Airflow, safely across retries.

Lessons from the Amazon provider's SageMaker operators are built in:

- the job name is deterministic per (dag_id, task_id, run_id, map_index), so a retry after the
  worker died re-attaches to the running job instead of starting a second one (or failing on a
  name clash);
- ``Failed`` *and* ``Stopped`` fail the task, with the job's FailureReason (and whether it was
  MaxRuntimeExceeded) in the error;
- every backend setting travels to the trigger; ``execute_complete`` decides from the event only;
- killing the task stops the job (``stop_on_kill``) and ends the task at once; a new try after
  a clear of a deferred try starts a new job instead of following the one being stopped;
- log lines are printed while deferred too, each once per try (``rl_provider.progress``);
- a short wait never defers, and no trigger fires before the deferring process has exited;
- XCom values are ``to_api()`` dicts: JSON with ISO-8601 datetimes.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, overload

from airflow.sdk import Asset, BaseOperator, conf
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from rl_provider.core.enums import CoercibleEnum, TrainingJobStatus
from rl_provider.core.jobs import job_failed_error
from rl_provider.core.naming import MAX_NAME_LENGTH, name_from_base, sanitize_base, validate_name
from rl_provider.exceptions import JobFailedError, JobNotFoundError, RLConfigError
from rl_provider.hooks.rl import DEFAULT_CONN_ID, BackendKind, RLHook
from rl_provider.links import TRAINING_LINKS, RLExtraLinks, persist_links
from rl_provider.progress import WatchRecord, forget_watch, load_watch, save_watch, watch_variable

if TYPE_CHECKING:
    from airflow.sdk import Context
    from pydantic import JsonValue

    from rl_provider.backends.base import Backend
    from rl_provider.core.estimator import RLEstimator
    from rl_provider.core.jobs import TrainingJobDescription
    from rl_provider.core.lifecycle import Described, Lines

__all__ = [
    "ActionIfJobExists",
    "RLTrainOperator",
    "config_errors_fail",
    "deterministic_job_name",
    "model_asset",
    "persist_training_links",
]

# Room kept after a deterministic name for the retry suffix "-r<try>" (up to 3 digits).
_RETRY_SUFFIX_ROOM = 5
_DIGEST_LENGTH = 10
# Longest sleep between two checks of the kill flag: on_kill runs in a SIGTERM handler and the
# task must end within Airflow's kill timeout, whatever check_interval is.
_KILL_CHECK = 0.5


class ActionIfJobExists(CoercibleEnum):
    """What a task does when its job name is taken (the Amazon provider's option, + reattach)."""

    REATTACH = "reattach"
    TIMESTAMP = "timestamp"
    FAIL = "fail"


@contextlib.contextmanager
def config_errors_fail() -> Iterator[None]:
    """Bad user input fails the task at once: retrying cannot fix a configuration."""
    try:
        yield
    except RLConfigError as err:
        raise AirflowFailException(str(err)) from err


def model_asset(name: str) -> Asset:
    """The Airflow ``Asset`` for a trained policy: a deploy DAG can be scheduled on it.

    Put it in ``outlets`` of an ``RLTrainOperator``: each successful run records an asset event
    whose ``extra`` holds ``model_data``, ``job_name`` and ``final_metrics``.
    """
    validate_name(name, kind="model asset name")
    # Name only (the URI defaults to it): an Asset with a URI scheme makes Airflow load every
    # provider's URI handlers, boto3 included, each time a DAG file using it is parsed (~130 ms).
    return Asset(name=f"rl_model/{name}", group="rl_model")


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


def _retry_name(name: str, try_number: int) -> str:
    suffix = f"-r{try_number}"
    return validate_name(
        f"{name[: MAX_NAME_LENGTH - len(suffix)].rstrip('-')}{suffix}", kind="training job name"
    )


class RLTrainOperator(RLExtraLinks, BaseOperator):
    """Train an ``RLEstimator`` on the connection's backend and wait for the job.

    :param estimator: the ``RLEstimator``; its ``template_fields`` (hyperparameters, output_path,
        base_job_name, environment, tags, ...) are rendered by Airflow.
    :param inputs: training channels (``estimator.fit(inputs)``); templated.
    :param job_name: the training job name; default: deterministic per task instance (see
        ``deterministic_job_name``, on top of ``estimator.base_job_name`` when set); templated.
    :param conn_id: the ``rl`` connection (absent ``rl_default``: the local backend).
    :param wait_for_completion: wait for the job to end (else return once it is created).
    :param deferrable: wait in the triggerer instead of a worker slot.
    :param check_interval: seconds between two polls.
    :param max_ingestion_time: seconds to wait at most; then the job is stopped and the task
        fails. ``None``: no limit (the job's own ``max_run`` still applies).
    :param print_log: print the job's log lines into the task log.
    :param action_if_job_exists: ``reattach`` (running: follow it; Completed: return it;
        Failed/Stopped: start ``<name>-r<try>``), ``timestamp`` (always a new timestamped
        name), ``fail``.
    :param stop_on_kill: stop the job when the task is killed.

    Returns ``{"Training": <DescribeTrainingJob>}`` and pushes the XComs ``job_name``,
    ``model_data`` and ``final_metrics``.
    """

    template_fields: Sequence[str] = ("estimator", "inputs", "job_name")
    template_fields_renderers = {"inputs": "json"}
    rl_links = TRAINING_LINKS
    ui_color = "#d8ecd3"

    def __init__(
        self,
        *,
        estimator: RLEstimator,
        inputs: Any = None,
        job_name: str | None = None,
        conn_id: str = DEFAULT_CONN_ID,
        wait_for_completion: bool = True,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        check_interval: float = 30,
        max_ingestion_time: float | None = None,
        print_log: bool = True,
        action_if_job_exists: ActionIfJobExists | str = ActionIfJobExists.REATTACH,
        stop_on_kill: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.estimator = estimator
        self.inputs = inputs
        self.job_name = job_name
        self.conn_id = conn_id
        self.wait_for_completion = wait_for_completion
        self.deferrable = deferrable
        self.check_interval = check_interval
        self.max_ingestion_time = max_ingestion_time
        self.print_log = print_log
        self.action_if_job_exists = action_if_job_exists
        self.stop_on_kill = stop_on_kill
        self._active_job: str | None = None
        self._killed = False

    # ------------------------------------------------------------------------------ execute
    def execute(self, context: Context) -> dict[str, Any]:
        with config_errors_fail():
            action = ActionIfJobExists.coerce(
                self.action_if_job_exists,
                argument="action_if_job_exists",
                fix="'reattach' follows the existing job, 'timestamp' always starts a new one.",
            )
            self._check_numbers()
            hook = self.hook
            backend = hook.backend
            self.estimator.backend = backend
            ti = context["ti"]
            progress_key = watch_variable(ti.dag_id, ti.task_id, ti.run_id, ti.map_index)
            name, existing = self._choose_job(context, backend, action, ti.try_number, progress_key)
        self._active_job = name
        ti.xcom_push(key="job_name", value=name)
        persist_training_links(context, hook, backend, name)
        if existing is None:
            with config_errors_fail():
                self.log.info("Creating training job %s on %r.", name, backend)
                self.estimator.fit(self.inputs, wait=False, job_name=name)
        else:
            self.log.info(
                "Training job %s exists (%s): re-attaching.",
                name,
                existing.training_job_status.value,
            )
            if existing.is_terminal:
                return self._finish(context, existing)
        if not self.wait_for_completion:
            return {"Training": backend.describe_training_job(name).to_api()}
        deadline = None
        if self.max_ingestion_time is not None:
            deadline = time.time() + self.max_ingestion_time
        if not self.deferrable:
            return self._finish(context, self._wait(backend, name, deadline)[0])
        # Imported here: the trigger module pulls in Airflow's pydantic trigger models, which
        # a DAG file that never defers should not pay for at every parse.
        from rl_provider.triggers.base import defer_grace
        from rl_provider.triggers.training_job import RLTrainingJobTrigger

        # A job that ends within the grace never defers; a longer one defers, and its trigger
        # holds its event until the grace has passed again (DESIGN: short deferrals).
        grace = defer_grace()
        ended, cursor = self._wait(backend, name, deadline, until=time.time() + grace)
        if ended is not None:
            return self._finish(context, ended)
        # Recorded before deferring: a new try of this task instance knows this job was handed
        # to the triggerer (see _choose_job), and the trigger resumes the log from here.
        save_watch(
            progress_key,
            WatchRecord(job_name=name, cursor=cursor, try_number=ti.try_number, deferred=True),
        )
        self.defer(
            trigger=RLTrainingJobTrigger(
                job_name=name,
                poll_interval=self.check_interval,
                deadline=deadline,
                stop_on_kill=self.stop_on_kill,
                print_log=self.print_log,
                log_cursor=cursor,
                progress_key=progress_key,
                try_number=ti.try_number,
                conn_id=self.conn_id,
                backend_settings=hook.settings.to_dict(),
                not_before=time.time() + grace,
            ),
            method_name="execute_complete",
        )

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> Any:
        """Resume after the trigger: the event alone says whether the job succeeded."""
        from rl_provider.triggers.training_job import TrainingEventStatus

        if not isinstance(event, dict) or "status" not in event or "job_name" not in event:
            raise AirflowException(f"Training trigger sent no valid event: {event!r}")
        name = str(event["job_name"])
        self._active_job = name
        ti = context["ti"]
        forget_watch(watch_variable(ti.dag_id, ti.task_id, ti.run_id, ti.map_index))
        status = event["status"]
        if status == TrainingEventStatus.SUCCESS:
            description = self.hook.backend.describe_training_job(name)
            return self._finish(context, description)
        raise _event_error(name, event)

    def on_kill(self) -> None:
        """The task was killed: ask its job to stop (unless ``stop_on_kill=False``) and return.

        Runs in Airflow's SIGTERM handler, which then resumes ``execute``: the wait loop sees
        ``_killed`` within ``_KILL_CHECK`` seconds and ends the task, without waiting for the job
        to reach Stopped (that can take longer than Airflow's kill timeout).
        """
        self._killed = True
        if not self.stop_on_kill or self._active_job is None:
            return
        self.log.info("Task killed: stopping training job %s.", self._active_job)
        try:
            self.hook.backend.stop_training_job(self._active_job)
        except JobNotFoundError:
            self.log.info("Training job %s was never created.", self._active_job)

    @property
    def hook(self) -> RLHook:
        hook: RLHook | None = self.__dict__.get("_hook")
        if hook is None:
            hook = self.__dict__["_hook"] = RLHook(self.conn_id)
        return hook

    # ------------------------------------------------------------------------------ helpers
    def _check_numbers(self) -> None:
        if not isinstance(self.check_interval, int | float) or self.check_interval <= 0:
            raise RLConfigError(
                f"check_interval={self.check_interval!r}: pass a positive number of seconds."
            )
        if self.max_ingestion_time is not None and (
            not isinstance(self.max_ingestion_time, int | float) or self.max_ingestion_time <= 0
        ):
            raise RLConfigError(
                f"max_ingestion_time={self.max_ingestion_time!r}: pass a positive number of "
                "seconds, or None for no limit."
            )

    def _base_name(self, context: Context) -> str:
        if self.job_name:
            return validate_name(self.job_name, kind="training job name")
        ti = context["ti"]
        return deterministic_job_name(
            ti.dag_id,
            ti.task_id,
            ti.run_id,
            ti.map_index if ti.map_index is not None else -1,
            base=self.estimator.base_job_name,
        )

    def _choose_job(
        self,
        context: Context,
        backend: Backend,
        action: ActionIfJobExists,
        try_number: int,
        progress_key: str,
    ) -> tuple[str, TrainingJobDescription | None]:
        """The job this try works on, and its description if it exists already."""
        name = self._base_name(context)
        if action is ActionIfJobExists.TIMESTAMP:
            return validate_name(name_from_base(name), kind="training job name"), None
        # Earlier tries of this task instance may have started name, name-r2, ... name-r<try>.
        chain = [name] + [_retry_name(name, n) for n in range(2, try_number + 1)]
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
        retry = _retry_name(name, try_number)
        if retry == latest.training_job_name:  # this very try created it
            return retry, latest
        if latest.training_job_status is TrainingJobStatus.STOPPING:
            # The previous try was killed (clear/mark of a running task): its job is going away.
            self.log.info(
                "Training job %s is being stopped (its try was killed): starting %s.",
                latest.training_job_name,
                retry,
            )
            return retry, None
        if not latest.is_terminal and self._handed_off_by_earlier_try(
            latest.training_job_name, try_number, progress_key
        ):
            self.log.info(
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
        self.log.info(
            "Training job %s ended %s (%s): starting %s.",
            latest.training_job_name,
            latest.training_job_status.value,
            latest.failure_reason or "no reason given",
            retry,
        )
        return retry, None

    def _handed_off_by_earlier_try(self, job_name: str, try_number: int, key: str) -> bool:
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

    @overload
    def _wait(
        self, backend: Backend, name: str, deadline: float | None
    ) -> tuple[TrainingJobDescription, Any]: ...

    @overload
    def _wait(
        self, backend: Backend, name: str, deadline: float | None, *, until: float
    ) -> tuple[TrainingJobDescription | None, Any]: ...

    def _wait(
        self,
        backend: Backend,
        name: str,
        deadline: float | None,
        *,
        until: float | None = None,
    ) -> tuple[TrainingJobDescription | None, Any]:
        """Poll until the job ends (its description) or ``until`` passes (``None``); with the
        log cursor after the lines printed."""
        # Imported when a task runs: DAG files that only declare the task never pay for it.
        from rl_provider.core.lifecycle import Lines, Outcome, TrainingFollower, follow

        def report(step: Described | Lines) -> None:
            if isinstance(step, Lines):
                for line in step.lines:
                    self.log.info("%s", line)
            elif step.changed:
                description = step.description
                self.log.info(
                    "Training job %s: %s - %s",
                    name,
                    description.training_job_status.value,
                    description.secondary_status.value if description.secondary_status else "-",
                )

        def pause() -> bool:
            seconds = self.check_interval
            if until is not None:
                if time.time() >= until:
                    return False
                seconds = min(seconds, until - time.time())
            self._sleep(seconds)
            return True

        follower = TrainingFollower(name, logs=self.print_log, deadline=deadline)
        ended = follow(follower, backend, pause=pause, report=report)
        if ended is None:
            return None, follower.cursor
        if ended.outcome is Outcome.TIMEOUT:
            self.log.error("max_ingestion_time reached: stopped training job %s.", name)
            raise AirflowException(
                f"Training job {name} exceeded max_ingestion_time "
                f"({self.max_ingestion_time} s) and was stopped."
            )
        return ended.description, ended.cursor

    def _sleep(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while True:
            if self._killed:
                raise AirflowException(
                    f"Task killed while waiting for training job {self._active_job}"
                    + (" (asked to stop)." if self.stop_on_kill else " (left running).")
                )
            left = end - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(left, _KILL_CHECK))

    def _finish(self, context: Context, description: TrainingJobDescription) -> dict[str, Any]:
        name = description.training_job_name
        if description.is_failure:
            raise description.failure_error()
        self._active_job = None  # nothing left to stop
        ti = context["ti"]
        ti.xcom_push(key="job_name", value=name)
        ti.xcom_push(key="model_data", value=description.model_data)
        ti.xcom_push(key="final_metrics", value=description.final_metrics)
        extra: dict[str, JsonValue] = {
            "job_name": name,
            "model_data": description.model_data,
            "final_metrics": dict(description.final_metrics),
        }
        for outlet in self.outlets:
            if isinstance(outlet, Asset):
                context["outlet_events"][outlet].extra.update(extra)
        self.log.info(
            "Training job %s completed: model %s, final metrics %s",
            name,
            description.model_data,
            description.final_metrics,
        )
        return {"Training": description.to_api()}


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


def _event_error(name: str, event: dict[str, Any]) -> AirflowException | JobFailedError:
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
