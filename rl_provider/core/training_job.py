"""``TrainingJob``: a handle on one training job, followed with the core's lifecycle."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from rl_provider.core.lifecycle import Described, Lines, Outcome, TrainingFollower, follow_to_end
from rl_provider.exceptions import BackendError

if TYPE_CHECKING:
    from rl_provider.backends.base import TrainingBackend
    from rl_provider.core.jobs import TrainingJobDescription

log = logging.getLogger(__name__)


class TrainingJob:
    """A handle on one training job: describe, follow its logs, wait, stop."""

    def __init__(self, name: str, backend: TrainingBackend) -> None:
        self.name = name
        self.backend = backend

    def __repr__(self) -> str:
        return f"TrainingJob({self.name!r})"

    def describe(self) -> TrainingJobDescription:
        return self.backend.describe_training_job(self.name)

    def model_artifacts(self, output_path: Callable[[], str | None]) -> str | None:
        """Its ``ModelArtifacts``; while the backend does not know them (yet), where they will be
        under ``output_path()`` (asked only then)."""
        try:
            artifacts = self.describe().model_artifacts
        except BackendError:  # the backend may not know it (yet): fall back to the known layout
            log.debug("describe failed for %s", self.name, exc_info=True)
            artifacts = None
        if artifacts:
            return artifacts
        output = output_path()
        if output is None:
            return None
        return f"{output.rstrip('/')}/{self.name}/output/model.tar.gz"

    def stop(self) -> None:
        self.backend.stop_training_job(self.name)

    def wait(
        self,
        logs: bool = True,
        poll: float | None = None,
        render: Callable[[str], None] | None = None,
    ) -> TrainingJobDescription:
        """Block until the job ends; render its logs and status changes as the SDK prints them.

        ``render`` receives each line (default: standard output, as the SDK). Unlike the SDK
        (which accepts ``Stopped``), a ``Failed`` or ``Stopped`` job raises ``JobFailedError``:
        a stopped job did not produce the model that was asked for.
        """
        interval = poll if poll is not None else self.backend.poll_interval
        out = render or _to_stdout

        def report(step: Described | Lines) -> None:
            if isinstance(step, Lines):
                for line in step.lines:
                    out(line)
                return
            for transition in step.transitions:
                message = f" - {transition.status_message}" if transition.status_message else ""
                out(f"{transition.start_time:%Y-%m-%d %H:%M:%S} {transition.status}{message}")

        ended = follow_to_end(
            TrainingFollower(self.name, logs=logs),
            self.backend,
            sleep=lambda: time.sleep(interval),
            report=report,
        )
        if ended.outcome is not Outcome.SUCCESS:
            raise ended.error()
        return ended.description


def _to_stdout(line: str) -> None:
    """The SDK's rendering of a followed job: each line on standard output."""
    sys.stdout.write(line + "\n")
