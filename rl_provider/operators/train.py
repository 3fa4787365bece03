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

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, overload

from airflow.sdk import Asset
from airflow.sdk.exceptions import AirflowException

from rl_provider.core.naming import validate_name
from rl_provider.exceptions import JobNotFoundError
from rl_provider.links import TRAINING_LINKS, RLExtraLinks
from rl_provider.operators.base import RLWaitOperator, config_errors_fail
from rl_provider.operators.job import (
    ActionIfJobExists,
    choose_job,
    deterministic_job_name,
    persist_training_links,
    training_event_error,
)
from rl_provider.progress import WatchRecord, forget_watch, save_watch, watch_variable

if TYPE_CHECKING:
    from airflow.sdk import Context
    from pydantic import JsonValue

    from rl_provider.backends.base import Backend
    from rl_provider.core.estimator import RLEstimator
    from rl_provider.core.jobs import TrainingJobDescription
    from rl_provider.core.lifecycle import Described, Lines

# ActionIfJobExists, config_errors_fail, deterministic_job_name and persist_training_links live
# in rl_provider.operators.job and .base; they are re-exported here, where DAGs found them first.
__all__ = [
    "ActionIfJobExists",
    "RLTrainOperator",
    "config_errors_fail",
    "deterministic_job_name",
    "model_asset",
    "persist_training_links",
]

# Longest sleep between two checks of the kill flag: on_kill runs in a SIGTERM handler and the
# task must end within Airflow's kill timeout, whatever check_interval is.
_KILL_CHECK = 0.5


def model_asset(name: str) -> Asset:
    """The Airflow ``Asset`` for a trained policy: a deploy DAG can be scheduled on it.

    Put it in ``outlets`` of an ``RLTrainOperator``: each successful run records an asset event
    whose ``extra`` holds ``model_data``, ``job_name`` and ``final_metrics``.
    """
    validate_name(name, kind="model asset name")
    # Name only (the URI defaults to it): an Asset with a URI scheme makes Airflow load every
    # provider's URI handlers, boto3 included, each time a DAG file using it is parsed (~130 ms).
    return Asset(name=f"rl_model/{name}", group="rl_model")


class RLTrainOperator(RLExtraLinks, RLWaitOperator):
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
        print_log: bool = True,
        action_if_job_exists: ActionIfJobExists | str = ActionIfJobExists.REATTACH,
        stop_on_kill: bool = True,
        **kwargs: Any,
    ) -> None:
        # conn_id, deferrable, wait_for_completion, check_interval, max_ingestion_time: the
        # bases' (RLWaitOperator).
        super().__init__(**kwargs)
        self.estimator = estimator
        self.inputs = inputs
        self.job_name = job_name
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
            self.check_wait_settings()
            hook = self.hook
            backend = hook.backend
            self.estimator.backend = backend
            ti = context["ti"]
            progress_key = watch_variable(ti.dag_id, ti.task_id, ti.run_id, ti.map_index)
            name, existing = choose_job(
                backend, self._base_name(context), action, ti.try_number, progress_key, self.log
            )
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
        # to the triggerer (operators.job.choose_job), and the trigger resumes the log from here.
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
        raise training_event_error(name, event)

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

    # ------------------------------------------------------------------------------ helpers
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

        follower = TrainingFollower(name, logs=self.print_log, deadline=deadline)
        ended = follow(follower, backend, pause=lambda: self._pause(until), report=report)
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
        """Sleep, but end the task within ``_KILL_CHECK`` seconds of ``on_kill``."""
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
