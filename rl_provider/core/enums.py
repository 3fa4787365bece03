"""Closed sets of values: toolkits, frameworks and the job/endpoint state machines.

Strings are accepted wherever an enum is, and coerced once with ``coerce()``. Each state enum
lists its terminal states once, in its ``@terminal(...)`` line, and answers ``is_terminal()`` /
``is_failure()`` from it: no other module lists states.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import ClassVar, Self, TypeVar

from rl_provider.exceptions import RLConfigError


class CoercibleEnum(StrEnum):
    """A closed set of options that users may also write as strings (coerced once)."""

    @classmethod
    def coerce(cls, value: object, *, argument: str, fix: str | None = None) -> Self:
        """Return the member for ``value`` (a member or its string, case-insensitive).

        Anything else is an ``RLConfigError`` naming ``argument``, the value, the allowed values
        and ``fix`` (default: pass one of them).
        """
        if isinstance(value, cls):
            return value
        if isinstance(value, str):
            for member in cls:
                if value.strip().lower() in (member.value.lower(), member.name.lower()):
                    return member
        valid = ", ".join(repr(member.value) for member in cls)
        if fix is None:
            raise RLConfigError(
                f"Invalid {argument} {value!r}: valid values are {valid} "
                f"(pass one of them or {cls.__name__}.<NAME>)."
            )
        raise RLConfigError(f"Invalid {argument} {value!r}: valid values are {valid}. {fix}")


class RLToolkit(CoercibleEnum):
    """RL toolkit the training code uses (``sagemaker.rl.RLToolkit``)."""

    COACH = "coach"
    RAY = "ray"


class RLFramework(CoercibleEnum):
    """Deep-learning framework under the toolkit (``sagemaker.rl.RLFramework``)."""

    TENSORFLOW = "tensorflow"
    MXNET = "mxnet"
    PYTORCH = "pytorch"


class StatusEnum(StrEnum):
    """A status of one of SageMaker's state machines (DESIGN section 3)."""

    # Set by ``@terminal``: the terminal states, the one success first.
    _terminal: ClassVar[tuple[StatusEnum, ...]]

    def is_terminal(self) -> bool:
        return self in self._terminal

    def is_failure(self) -> bool:
        """Terminal but not the success: the task that waited for it fails."""
        return self.is_terminal() and self is not self._terminal[0]


_S = TypeVar("_S", bound=StatusEnum)


def terminal(success: str, *failures: str) -> Callable[[type[_S]], type[_S]]:
    """Class decorator: the state machine ends in ``success`` or one of ``failures``."""

    def mark(cls: type[_S]) -> type[_S]:
        cls._terminal = tuple(cls(value) for value in (success, *failures))  # a typo raises here
        return cls

    return mark


# A Failed or Stopped job fails the task that waited for it.
@terminal("Completed", "Failed", "Stopped")
class TrainingJobStatus(StatusEnum):
    """``TrainingJobStatus`` of DescribeTrainingJob."""

    IN_PROGRESS = "InProgress"
    COMPLETED = "Completed"
    FAILED = "Failed"
    STOPPING = "Stopping"
    STOPPED = "Stopped"


@terminal("Completed", "Failed", "Stopped", "MaxRuntimeExceeded", "MaxWaitTimeExceeded")
class SecondaryStatus(StatusEnum):
    """``SecondaryStatus`` of DescribeTrainingJob (every value the SageMaker API documents)."""

    STARTING = "Starting"
    LAUNCHING_ML_INSTANCES = "LaunchingMLInstances"
    PREPARING_TRAINING_STACK = "PreparingTrainingStack"
    DOWNLOADING = "Downloading"
    DOWNLOADING_TRAINING_IMAGE = "DownloadingTrainingImage"
    TRAINING = "Training"
    UPLOADING = "Uploading"
    STOPPING = "Stopping"
    STOPPED = "Stopped"
    MAX_RUNTIME_EXCEEDED = "MaxRuntimeExceeded"
    COMPLETED = "Completed"
    FAILED = "Failed"
    INTERRUPTED = "Interrupted"
    MAX_WAIT_TIME_EXCEEDED = "MaxWaitTimeExceeded"
    UPDATING = "Updating"
    RESTARTING = "Restarting"
    PENDING = "Pending"

    def progress(self) -> int:
        """Where the status sits in a job's life; a job's secondary status never moves to a
        lower one (a stop accepted during Downloading must not be followed by Training)."""
        if self.is_terminal():
            return 5
        order = {
            SecondaryStatus.STARTING: 0,
            SecondaryStatus.PENDING: 0,
            SecondaryStatus.LAUNCHING_ML_INSTANCES: 0,
            SecondaryStatus.PREPARING_TRAINING_STACK: 0,
            SecondaryStatus.DOWNLOADING: 1,
            SecondaryStatus.DOWNLOADING_TRAINING_IMAGE: 1,
            SecondaryStatus.STOPPING: 3,
            SecondaryStatus.UPLOADING: 4,
        }
        # Training and the spot/warm-pool states (Interrupted, Restarting, Updating) sit at 2.
        return order.get(self, 2)


# OutOfService counts as failed: the endpoint cannot serve (DESIGN section 3).
@terminal("InService", "Failed", "OutOfService", "UpdateRollbackFailed")
class EndpointStatus(StatusEnum):
    """``EndpointStatus`` of DescribeEndpoint."""

    OUT_OF_SERVICE = "OutOfService"
    CREATING = "Creating"
    UPDATING = "Updating"
    SYSTEM_UPDATING = "SystemUpdating"
    ROLLING_BACK = "RollingBack"
    IN_SERVICE = "InService"
    DELETING = "Deleting"
    FAILED = "Failed"
    UPDATE_ROLLBACK_FAILED = "UpdateRollbackFailed"
