"""``RLTrainingJobTrigger``: follows a training job from the triggerer, without blocking it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rl_provider.core.lifecycle import (
    Describe,
    Described,
    Lines,
    Outcome,
    Pause,
    ReadLogs,
    Stop,
    TrainingFollower,
    TrainingOutcome,
    outcome_of,
)
from rl_provider.triggers.base import EventStatus, RLBaseTrigger

if TYPE_CHECKING:
    from rl_provider.backends.base import AsyncBackend
    from rl_provider.core.jobs import TrainingJobDescription

__all__ = ["RLTrainingJobTrigger", "TrainingEventStatus", "training_event"]


#: The ``status`` values of a training event (DESIGN section 5).
TrainingEventStatus = EventStatus


def training_event(
    description: TrainingJobDescription,
    *,
    status: TrainingEventStatus | None = None,
    message: str | None = None,
) -> dict[str, Any]:
    """The one event schema, from a description (``status`` overrides the job's own).

    Plain JSON values only: events cross processes through Airflow's serializer.
    """
    event: dict[str, Any] = {
        "status": (status or TrainingEventStatus(outcome_of(description).value)).value,
        "job_name": description.training_job_name,
        "failure_reason": description.failure_reason,
        "secondary_status": (
            description.secondary_status.value if description.secondary_status else None
        ),
        "final_metrics": description.final_metrics,
    }
    if message is not None:
        event["message"] = message
    return event


# Fields, not an __init__: see RLBaseTrigger.
@dataclass(eq=False, repr=False, kw_only=True)
class RLTrainingJobTrigger(RLBaseTrigger):
    """Poll a training job until it ends; print its new log lines into the task log meanwhile.

    :param job_name: the training job.
    :param poll_interval: seconds between polls.
    :param deadline: epoch seconds after which the job is stopped and a ``timeout`` event fired
        (the operator's ``max_ingestion_time``; absolute so a triggerer restart keeps it).
    :param stop_on_kill: stop the job when the deferred task is killed by a user.
    :param print_log: print the job's log lines.
    :param log_cursor: the backend's log cursor where the operator left off (no line twice).
    :param progress_key: the task instance's ``rl_provider.progress`` Variable; the trigger
        resumes from the cursor stored there (a triggerer restart rebuilds it with the cursor of
        the defer time) and stores its cursor after each batch of printed lines.
    :param try_number: the deferring try (the record is only used and written for it).
    :param not_before: no event before this epoch time (``RLBaseTrigger.hold_event``).

    Yields exactly one event ``{"status", "job_name", "failure_reason", "secondary_status",
    "final_metrics"}`` (+ ``message`` for ``timeout``/``error``).
    """

    job_name: str
    deadline: float | None = None
    stop_on_kill: bool = True
    print_log: bool = True
    log_cursor: Any = None
    progress_key: str | None = None
    try_number: int | None = None

    def _watching(self) -> str:
        return f"Following training job {self.job_name}"

    def _error_event(self, message: str) -> dict[str, Any]:
        return {
            "status": TrainingEventStatus.ERROR.value,
            "job_name": self.job_name,
            "failure_reason": None,
            "secondary_status": None,
            "final_metrics": {},
            "message": message,
        }

    async def _poll(self, backend: AsyncBackend) -> dict[str, Any]:
        """Drive the core's follower (``rl_provider.core.lifecycle``) with the async backend."""
        follower = TrainingFollower(
            self.job_name,
            logs=self.print_log,
            cursor=self._stored_cursor() if self.print_log else None,
            deadline=self.deadline,
        )
        steps = follower.steps()
        reply: Any = None
        await self.stagger()
        try:
            while True:
                step = steps.send(reply)
                reply = None
                if isinstance(step, Describe):
                    reply = await backend.describe_training_job(self.job_name)
                elif isinstance(step, ReadLogs):
                    reply = await backend.read_logs(self.job_name, step.cursor)
                elif isinstance(step, Stop):
                    self.log.error(
                        "Training job %s still running at the max_ingestion_time deadline: "
                        "stopping it.",
                        self.job_name,
                    )
                    await backend.stop_training_job(self.job_name)
                elif isinstance(step, Pause):
                    await self.sleep_between_polls()
                else:
                    self._report(step)
        except StopIteration as end:
            ended: TrainingOutcome = end.value
        if ended.outcome is Outcome.TIMEOUT:
            return training_event(
                ended.description,
                status=TrainingEventStatus.TIMEOUT,
                message=f"Training job {self.job_name} exceeded max_ingestion_time and was "
                "stopped.",
            )
        return training_event(ended.description)

    def _report(self, step: Described | Lines) -> None:
        if isinstance(step, Lines):
            for line in step.lines:
                self.log.info("%s", line)
            self._store_cursor(step.cursor)
        elif step.changed:
            description = step.description
            self.log.info(
                "Training job %s: %s - %s",
                self.job_name,
                description.training_job_status.value,
                description.secondary_status.value if description.secondary_status else "-",
            )

    def _stored_cursor(self) -> Any:
        """The cursor after the last line this try printed: the stored one, else the defer's."""
        if self.progress_key is None:
            return self.log_cursor
        from rl_provider.progress import load_watch

        record = load_watch(self.progress_key)
        if (
            record is not None
            and record.job_name == self.job_name
            and record.try_number == self.try_number
            and record.cursor is not None
        ):
            return record.cursor
        return self.log_cursor

    def _store_cursor(self, cursor: Any) -> None:
        if self.progress_key is None:
            return
        from rl_provider.progress import WatchRecord, load_watch, save_watch

        record = load_watch(self.progress_key)
        if record is not None and (
            record.job_name != self.job_name or record.try_number != self.try_number
        ):
            return  # a newer try owns the record: this trigger is being cancelled
        save_watch(
            self.progress_key,
            WatchRecord(
                job_name=self.job_name, cursor=cursor, try_number=self.try_number, deferred=True
            ),
        )

    async def on_kill(self) -> None:
        """A user killed the deferred task (mark failed/success, clear): stop the job."""
        if not self.stop_on_kill:
            return
        self.log.info("Task killed: stopping training job %s.", self.job_name)
        backend = await self.async_backend()
        try:
            await backend.stop_training_job(self.job_name)
        finally:
            await backend.aclose()
