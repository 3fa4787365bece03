"""The lifecycle every caller drives: one training-job follower, one endpoint wait rule.

Free of I/O policy: the follower is a generator that *asks* for backend calls (``Describe``,
``ReadLogs``, ``Stop``), *reports* what it saw (``Described``, ``Lines``) and *asks* to pause
(``Pause``); the caller performs each request with its own backend (sync or async), renders the
reports its own way (stdout, task log, trigger log, terminal) and sleeps its own way (a kill
flag, a jittered event-loop sleep, a spinner). The same rules hold for ``fit()``, the operators,
the triggers, the sensors and the CLI: describe before reading logs, drain the log once the job
has ended, stop the job at the deadline, and one outcome type for the end.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from rl_provider.core.enums import EndpointStatus, SecondaryStatus, TrainingJobStatus
from rl_provider.core.naming import name_from_base
from rl_provider.exceptions import ResourceBusyError, RLConfigError

if TYPE_CHECKING:
    from rl_provider.backends.base import Backend, TrainingBackend
    from rl_provider.core.jobs import (
        EndpointDescription,
        StatusTransition,
        TrainingJobDescription,
    )
    from rl_provider.exceptions import JobFailedError

__all__ = [
    "VARIANT_NAME",
    "DeployPlan",
    "Describe",
    "Described",
    "EndpointOutcome",
    "Lines",
    "Outcome",
    "Pause",
    "ReadLogs",
    "Stop",
    "TrainingFollower",
    "TrainingOutcome",
    "endpoint_outcome",
    "endpoint_step",
    "follow",
    "follow_to_end",
    "outcome_of",
    "plan_deploy",
    "production_variant",
    "require_updatable",
    "wait_for_outcome",
]


class Outcome(StrEnum):
    """How a wait ended: the one outcome type of training jobs and endpoints.

    ``STOPPED`` covers a job stopped by its ``MaxRuntimeInSeconds`` (secondary status
    ``MaxRuntimeExceeded``); ``TIMEOUT`` is the caller's own deadline passing.
    """

    SUCCESS = "success"
    FAILED = "failed"
    STOPPED = "stopped"
    TIMEOUT = "timeout"


_JOB_OUTCOME = {
    TrainingJobStatus.COMPLETED: Outcome.SUCCESS,
    TrainingJobStatus.FAILED: Outcome.FAILED,
    TrainingJobStatus.STOPPED: Outcome.STOPPED,
}


def outcome_of(description: TrainingJobDescription) -> Outcome:
    """The outcome of an ended (Completed, Failed or Stopped) job."""
    return _JOB_OUTCOME[description.training_job_status]


# ----------------------------------------------------------------------------- requests
@dataclass(frozen=True)
class Describe:
    """Send back ``describe_training_job(name)``."""


@dataclass(frozen=True)
class ReadLogs:
    """Send back ``read_logs(name, cursor)``: ``(lines, cursor)``."""

    cursor: Any


@dataclass(frozen=True)
class Stop:
    """Call ``stop_training_job(name)`` (send back nothing)."""


@dataclass(frozen=True)
class Pause:
    """Wait one poll interval before the next describe (send back nothing)."""


# ------------------------------------------------------------------------------ reports
@dataclass(frozen=True)
class Described:
    """A new description: ``changed`` when (status, secondary status) differs from the last,
    ``transitions`` the secondary-status transitions not reported before."""

    description: TrainingJobDescription
    changed: bool
    transitions: tuple[StatusTransition, ...]


@dataclass(frozen=True)
class Lines:
    """New log lines and the cursor after them (what a resumable caller stores)."""

    lines: tuple[str, ...]
    cursor: Any


Step = Describe | ReadLogs | Stop | Pause | Described | Lines


@dataclass(frozen=True)
class TrainingOutcome:
    """How following a job ended, with its last description and log cursor."""

    outcome: Outcome
    description: TrainingJobDescription
    cursor: Any

    @property
    def job_name(self) -> str:
        return self.description.training_job_name

    def error(self) -> JobFailedError:
        """The error of a Failed or Stopped job (``MaxRuntimeExceeded`` named)."""
        return self.description.failure_error()


class TrainingFollower:
    """Follows one training job until it ends (or ``deadline``, epoch seconds, passes).

    ``steps()`` is the generator a driver runs; ``cursor`` is the log cursor after the last
    lines reported (a driver that gives up early, e.g. to defer, hands it on).
    """

    def __init__(
        self,
        name: str,
        *,
        logs: bool = True,
        cursor: Any = None,
        deadline: float | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.name = name
        self.logs = logs
        self.cursor = cursor
        self.deadline = deadline
        self._clock = clock

    def steps(self) -> Generator[Step, Any, TrainingOutcome]:
        last: tuple[TrainingJobStatus, SecondaryStatus | None] | None = None
        reported = 0
        while True:
            # Describe before reading: once a terminal state is seen, every line the job wrote
            # is in its log, so the reads that follow get the last ones.
            description: TrainingJobDescription = yield Describe()
            status = (description.training_job_status, description.secondary_status)
            transitions = tuple(description.secondary_status_transitions[reported:])
            reported = len(description.secondary_status_transitions)
            yield Described(description, status != last, transitions)
            last = status
            if self.logs:
                yield from self._read()
            if description.is_terminal:
                # The last lines may land together with the terminal state: read until a
                # batch comes back empty.
                while self.logs and (yield from self._read()):
                    pass
                return TrainingOutcome(outcome_of(description), description, self.cursor)
            if self.deadline is not None and self._clock() >= self.deadline:
                yield Stop()
                return TrainingOutcome(Outcome.TIMEOUT, description, self.cursor)
            yield Pause()

    def _read(self) -> Generator[Step, Any, bool]:
        lines, cursor = yield ReadLogs(self.cursor)
        self.cursor = cursor
        if lines:
            yield Lines(tuple(lines), cursor)
        return bool(lines)


def follow(
    follower: TrainingFollower,
    backend: TrainingBackend,
    *,
    pause: Callable[[], bool],
    report: Callable[[Described | Lines], None],
) -> TrainingOutcome | None:
    """Drive ``follower`` with a synchronous backend.

    ``pause`` sleeps one interval and returns ``False`` to give up (the result is then
    ``None``: the job is still running, ``follower.cursor`` says where its log was left).
    """
    steps = follower.steps()
    reply: Any = None
    try:
        while True:
            step = steps.send(reply)
            reply = None
            if isinstance(step, Describe):
                reply = backend.describe_training_job(follower.name)
            elif isinstance(step, ReadLogs):
                reply = backend.read_logs(follower.name, step.cursor)
            elif isinstance(step, Stop):
                backend.stop_training_job(follower.name)
            elif isinstance(step, Pause):
                if not pause():
                    return None
            else:
                report(step)
    except StopIteration as end:
        outcome: TrainingOutcome = end.value
        return outcome


def follow_to_end(
    follower: TrainingFollower,
    backend: TrainingBackend,
    *,
    sleep: Callable[[], None],
    report: Callable[[Described | Lines], None],
) -> TrainingOutcome:
    """``follow`` for a caller that waits until the job ends (``sleep``: one interval)."""

    def pause() -> bool:
        sleep()
        return True

    ended = follow(follower, backend, pause=pause, report=report)
    if ended is None:  # pragma: no cover  # pause() above never gives up
        raise RuntimeError(f"Following training job {follower.name} gave up.")
    return ended


# ----------------------------------------------------------------------------- endpoints
@dataclass(frozen=True)
class EndpointOutcome:
    """How waiting for an endpoint ended (``SUCCESS``, ``FAILED`` or ``TIMEOUT``)."""

    outcome: Outcome
    description: EndpointDescription
    failure_reason: str | None = None


def endpoint_outcome(
    description: EndpointDescription, *, endpoint_config_name: str | None = None
) -> EndpointOutcome | None:
    """The wait rule: the outcome, or ``None`` while the endpoint is still changing.

    With ``endpoint_config_name`` (a create or update that must take effect), an InService
    endpoint that still serves another config is a failed update: SageMaker rolls a failed
    update back to the previous config and keeps the endpoint InService, with FailureReason.
    """
    status = description.endpoint_status
    if status.is_failure():
        return EndpointOutcome(Outcome.FAILED, description, description.failure_reason)
    if status is not EndpointStatus.IN_SERVICE:
        return None
    if endpoint_config_name is None or description.endpoint_config_name == endpoint_config_name:
        return EndpointOutcome(Outcome.SUCCESS, description)
    reason = description.failure_reason or "no reason given"
    return EndpointOutcome(
        Outcome.FAILED,
        description,
        f"The update to endpoint config {endpoint_config_name} failed and the endpoint still "
        f"serves {description.endpoint_config_name}: {reason}",
    )


def endpoint_step(
    description: EndpointDescription,
    *,
    endpoint_config_name: str | None = None,
    deadline: float | None = None,
    clock: Callable[[], float] = time.time,
) -> EndpointOutcome | None:
    """One poll of an endpoint wait: ``endpoint_outcome``, or ``TIMEOUT`` once ``deadline``
    (epoch seconds) has passed with the endpoint still changing."""
    outcome = endpoint_outcome(description, endpoint_config_name=endpoint_config_name)
    if outcome is None and deadline is not None and clock() >= deadline:
        return EndpointOutcome(Outcome.TIMEOUT, description)
    return outcome


def wait_for_outcome(
    backend: Backend,
    endpoint_name: str,
    *,
    endpoint_config_name: str | None = None,
    deadline: float | None = None,
    pause: Callable[[EndpointDescription], bool],
    report: Callable[[EndpointDescription], None] | None = None,
) -> EndpointOutcome | None:
    """Drive ``endpoint_step`` with a synchronous backend.

    ``report`` sees every description; ``pause`` each one still changing: it sleeps one
    interval and returns ``False`` to give up (the result is then ``None``).
    """
    while True:
        description = backend.describe_endpoint(endpoint_name)
        if report is not None:
            report(description)
        outcome = endpoint_step(
            description, endpoint_config_name=endpoint_config_name, deadline=deadline
        )
        if outcome is not None:
            return outcome
        if not pause(description):
            return None


# ----------------------------------------------------------------------------- deploying
#: The only variant name the SDK's deploy() creates (sagemaker.session.production_variant).
VARIANT_NAME = "AllTraffic"


def production_variant(
    model_name: str,
    instance_count: int,
    instance_type: str,
    *,
    variant_name: str = VARIANT_NAME,
) -> dict[str, Any]:
    """The ``ProductionVariants`` entry of a deploy: all traffic to one model."""
    return {
        "VariantName": variant_name,
        "ModelName": model_name,
        "InitialInstanceCount": instance_count,
        "InstanceType": instance_type,
        "InitialVariantWeight": 1.0,
    }


def require_updatable(endpoint_name: str, status: EndpointStatus) -> None:
    """SageMaker's rule: only an InService endpoint can be updated. A failed one is the user's
    to fix (``RLConfigError``); one still changing is ``ResourceBusyError`` (retryable).

    Checked before a deploy creates anything (nothing is left behind) and by every backend's
    ``update_endpoint``.
    """
    if status is EndpointStatus.IN_SERVICE:
        return
    rule = (
        f"Endpoint {endpoint_name!r} is {status.value}: SageMaker updates only InService "
        "endpoints (only an InService endpoint can be updated)"
    )
    if status.is_failure():  # it never becomes InService again: a user must act
        raise RLConfigError(f"{rule}; delete and recreate it.")
    # Creating, Updating, RollingBack, Deleting...: the same request can succeed later.
    raise ResourceBusyError(f"{rule}; wait for it to settle, then retry.")


@dataclass(frozen=True)
class DeployPlan:
    """Create or update (blue/green) ``endpoint_name`` with a new endpoint config."""

    endpoint_name: str
    config_name: str
    update: bool
    previous_config_name: str | None = None

    def start(self, backend: Backend, variants: list[dict[str, Any]]) -> None:
        """Create the endpoint config, then create or update the endpoint with it."""
        backend.create_endpoint_config(
            EndpointConfigName=self.config_name, ProductionVariants=variants
        )
        request = {"EndpointName": self.endpoint_name, "EndpointConfigName": self.config_name}
        if self.update:
            backend.update_endpoint(**request)
        else:
            backend.create_endpoint(**request)


def plan_deploy(endpoint_name: str, current: EndpointDescription | None) -> DeployPlan:
    """The plan for deploying to ``endpoint_name`` (``current``: its description, ``None`` when
    it does not exist). A new config per deploy (SDK: ``name_from_base``): configs are
    immutable in SageMaker."""
    if current is not None:
        require_updatable(endpoint_name, current.endpoint_status)
    return DeployPlan(
        endpoint_name=endpoint_name,
        config_name=name_from_base(endpoint_name),
        update=current is not None,
        previous_config_name=current.endpoint_config_name if current is not None else None,
    )
