"""``RLTrainingJobSensor``: wait for a training job that another task (or a person) started.

Poke, reschedule and deferrable modes. Each log line reaches the task log once: in poke mode
the cursor lives on the sensor, deferred it travels in the trigger, and in reschedule mode
(a new process per poke, and Airflow 3 clears a task's own XComs whenever it starts again) it
is kept in an Airflow Variable named after the task instance, deleted when the sensor ends.
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue
from airflow.sdk.exceptions import AirflowException

from rl_provider.links import TRAINING_LINKS, RLExtraLinks
from rl_provider.operators.base import RLDeferrableOperator
from rl_provider.operators.job import persist_training_links, training_event_error
from rl_provider.progress import WatchRecord, forget_watch, load_watch, save_watch, watch_variable

if TYPE_CHECKING:
    from airflow.sdk import Context

    from rl_provider.backends.base import Backend
    from rl_provider.core.jobs import TrainingJobDescription
    from rl_provider.core.lifecycle import Described, Lines

__all__ = ["RLTrainingJobSensor", "log_cursor_variable"]

_MISSING = object()


# Name of the Variable holding a reschedule-mode sensor's log cursor (``rl_provider.progress``).
log_cursor_variable = watch_variable


class RLTrainingJobSensor(RLExtraLinks, RLDeferrableOperator, BaseSensorOperator):
    """Wait until a training job ends; fail if it ends ``Failed`` or ``Stopped``.

    :param job_name: the training job (templated; e.g. the train task's ``job_name`` XCom).
    :param conn_id: the ``rl`` connection.
    :param print_log: print the job's new log lines at every poke (each line once).
    :param deferrable: wait in the triggerer.

    Returns ``{"Training": <DescribeTrainingJob>}``. The job is never stopped by this sensor.
    """

    template_fields: Sequence[str] = ("job_name",)
    rl_links = TRAINING_LINKS
    ui_color = "#d8ecd3"

    def __init__(self, *, job_name: str, print_log: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)  # conn_id, deferrable: RLDeferrableOperator's
        self.job_name = job_name
        self.print_log = print_log
        self._cursor: Any = _MISSING

    def execute(self, context: Context) -> Any:
        backend = self.connected_backend()
        # Before a defer or the end: Airflow reads every extra link then.
        persist_training_links(context, self.hook, backend, self.job_name)
        if not self.deferrable:
            return super().execute(context)
        description, cursor, ended = self._check(backend, None)
        if ended:
            return self._finish(context, description)
        from rl_provider.triggers.base import defer_grace  # only when deferring
        from rl_provider.triggers.training_job import RLTrainingJobTrigger

        self.defer(
            trigger=RLTrainingJobTrigger(
                job_name=self.job_name,
                poll_interval=self.poke_interval,
                stop_on_kill=False,
                print_log=self.print_log,
                log_cursor=cursor,
                conn_id=self.conn_id,
                backend_settings=self.hook.settings.to_dict(),
                # No event while this process may still be exiting (Airflow's defer-exit race).
                not_before=time.time() + defer_grace(),
            ),
            method_name="execute_complete",
            # The sensor's own timeout, enforced by Airflow (the trigger's deadline would stop
            # the job, which a sensor must not do).
            timeout=datetime.timedelta(seconds=self.timeout) if self.timeout else None,
        )

    def poke(self, context: Context) -> PokeReturnValue:
        backend = self.connected_backend()
        description, cursor, ended = self._check(backend, self._load_cursor(context))
        if not ended:
            self._save_cursor(context, cursor)
            return PokeReturnValue(is_done=False)
        return PokeReturnValue(is_done=True, xcom_value=self._finish(context, description))

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> Any:
        """Resume after the trigger: the event alone says whether the job succeeded."""
        from rl_provider.triggers.training_job import TrainingEventStatus

        if not isinstance(event, dict) or "status" not in event:
            raise AirflowException(f"Training trigger sent no valid event: {event!r}")
        if event["status"] == TrainingEventStatus.SUCCESS:
            return {"Training": self.hook.backend.describe_training_job(self.job_name).to_api()}
        raise training_event_error(self.job_name, event)

    # ------------------------------------------------------------------------------ helpers
    def _finish(self, context: Context, description: TrainingJobDescription) -> dict[str, Any]:
        self._forget_cursor(context)
        if description.is_failure:
            raise description.failure_error()
        return {"Training": description.to_api()}

    def _check(self, backend: Backend, cursor: Any) -> tuple[TrainingJobDescription, Any, bool]:
        """One poll of the core's follower: the description, the log cursor after the lines
        printed (every line, once the job has ended), and whether the job has ended."""
        from rl_provider.core.lifecycle import Lines, TrainingFollower, follow

        seen: list[TrainingJobDescription] = []

        def report(step: Described | Lines) -> None:
            if isinstance(step, Lines):
                for line in step.lines:
                    self.log.info("%s", line)
                return
            description = step.description
            seen.append(description)
            self.log.info(
                "Training job %s: %s - %s",
                self.job_name,
                description.training_job_status.value,
                description.secondary_status.value if description.secondary_status else "-",
            )

        follower = TrainingFollower(self.job_name, logs=self.print_log, cursor=cursor)
        ended = follow(follower, backend, pause=lambda: False, report=report)
        self._cursor = follower.cursor
        return seen[-1], follower.cursor, ended is not None

    def _variable(self, context: Context) -> str:
        ti = context["ti"]
        return watch_variable(ti.dag_id, ti.task_id, ti.run_id, ti.map_index)

    def _load_cursor(self, context: Context) -> Any:
        if self._cursor is not _MISSING:
            return self._cursor
        if self.reschedule:
            record = load_watch(self._variable(context))
            if record is not None and record.job_name == self.job_name:
                return record.cursor
        return None

    def _save_cursor(self, context: Context, cursor: Any) -> None:
        self._cursor = cursor
        if self.reschedule and self.print_log:
            save_watch(self._variable(context), WatchRecord(job_name=self.job_name, cursor=cursor))

    def _forget_cursor(self, context: Context) -> None:
        if self.reschedule and self.print_log:
            forget_watch(self._variable(context))
