"""What every rl_provider task shares: its connection, how long and where it waits, and how bad
input fails it.

- ``RLBaseOperator``: ``conn_id`` and the task's ``hook`` (one per try); a connection that
  cannot build its backend fails the task without retries.
- ``RLDeferrableOperator``: ``deferrable`` (the operators and the sensors).
- ``RLWaitOperator``: ``wait_for_completion``, ``check_interval`` and ``max_ingestion_time``
  (the Amazon provider's names) for the operators that start something and wait for it.

They derive from Airflow's ``BaseOperator``, so ``default_args`` reach these arguments as they
reach any operator's (Airflow applies them per ``__init__`` along the class hierarchy); a sensor
puts them before ``BaseSensorOperator`` in its bases.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator, conf
from airflow.sdk.exceptions import AirflowFailException

from rl_provider.exceptions import RLConfigError
from rl_provider.hooks.rl import DEFAULT_CONN_ID, RLHook

if TYPE_CHECKING:
    from rl_provider.backends.base import Backend

__all__ = ["RLBaseOperator", "RLDeferrableOperator", "RLWaitOperator", "config_errors_fail"]


@contextlib.contextmanager
def config_errors_fail() -> Iterator[None]:
    """Bad user input fails the task at once: retrying cannot fix a configuration."""
    try:
        yield
    except RLConfigError as err:
        raise AirflowFailException(str(err)) from err


def _positive_seconds(name: str, value: Any, fix: str = "") -> None:
    if not isinstance(value, int | float) or value <= 0:
        raise RLConfigError(f"{name}={value!r}: pass a positive number of seconds{fix}.")


class RLBaseOperator(BaseOperator):
    """Base of the rl_provider operators and sensors.

    :param conn_id: the ``rl`` connection (``rl_default`` may be absent: the local backend).
    """

    def __init__(self, *, conn_id: str = DEFAULT_CONN_ID, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.conn_id = conn_id

    @cached_property
    def hook(self) -> RLHook:
        """The connection's hook, made once per try (its backend is built on first use)."""
        return RLHook(self.conn_id)

    def connected_backend(self) -> Backend:
        """The connection's backend, built now: a bad connection fails the task (no retries)."""
        with config_errors_fail():
            return self.hook.backend


class RLDeferrableOperator(RLBaseOperator):
    """:param deferrable: wait in the triggerer instead of a worker slot (default:
    ``[operators] default_deferrable``)."""

    def __init__(
        self,
        *,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.deferrable = deferrable


class RLWaitOperator(RLDeferrableOperator):
    """An operator that starts a change and waits for it.

    :param wait_for_completion: wait for the change to end (else return once it is started).
    :param check_interval: seconds between two polls.
    :param max_ingestion_time: seconds to wait at most (``None``: no limit).
    """

    def __init__(
        self,
        *,
        wait_for_completion: bool = True,
        check_interval: float = 30,
        max_ingestion_time: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.wait_for_completion = wait_for_completion
        self.check_interval = check_interval
        self.max_ingestion_time = max_ingestion_time

    def check_wait_settings(self) -> None:
        """Raise ``RLConfigError`` for a wait setting that is not a positive number of seconds
        (rendered or set by the user: checked when the task runs, not in ``__init__``)."""
        _positive_seconds("check_interval", self.check_interval)
        if self.max_ingestion_time is not None:
            _positive_seconds(
                "max_ingestion_time", self.max_ingestion_time, ", or None for no limit"
            )

    def _pause(self, until: float | None) -> bool:
        """Sleep one ``check_interval`` (less when ``until`` comes first) and return True; return
        False at once when ``until`` has passed: the caller stops waiting here (and defers)."""
        seconds = self.check_interval
        if until is not None:
            left = until - time.time()
            if left <= 0:
                return False
            seconds = min(seconds, left)
        self._sleep(seconds)
        return True

    def _sleep(self, seconds: float) -> None:
        """How this task sleeps between polls (the training operator's wakes up when killed)."""
        time.sleep(seconds)
