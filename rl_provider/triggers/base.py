"""``RLBaseTrigger``: every trigger carries its class path and *all* backend settings.

The Amazon provider lost settings between operator and trigger (region, verify, botocore
config); here the operator resolves the ``rl`` connection once (``RLHook.settings``) and every
setting travels in ``serialize()``, so the triggerer builds the very backend the worker used
without reading the connection again from its event loop.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, fields
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from rl_provider.core.lifecycle import Outcome
from rl_provider.exceptions import RLProviderError
from rl_provider.hooks.rl import DEFAULT_CONN_ID, BackendSettings, RLHook

if TYPE_CHECKING:
    from rl_provider.backends.base import AsyncBackend

__all__ = ["STAGGER_SECONDS", "EventStatus", "RLBaseTrigger", "defer_grace"]


class EventStatus(StrEnum):
    """The ``status`` of every trigger event: the core's ``Outcome`` values, plus ``error``
    when watching itself failed (a backend error)."""

    SUCCESS = Outcome.SUCCESS.value
    FAILED = Outcome.FAILED.value
    STOPPED = Outcome.STOPPED.value
    TIMEOUT = Outcome.TIMEOUT.value
    ERROR = "error"


# Measured in a real deployment (LocalExecutor, 2 loaded cores): the deferring task process
# exited 5.3 s after defer(); twice that leaves room for the executor to report it.
DEFAULT_DEFER_GRACE = 10.0


def defer_grace() -> float:
    """Seconds a deferrable operator waits in the worker before deferring, and the least time
    between a defer and its trigger's event: ``[rl_provider] defer_grace`` (default 10).

    Read when a task runs (never at import).
    """
    from airflow.sdk import conf

    return max(0.0, conf.getfloat("rl_provider", "defer_grace", fallback=DEFAULT_DEFER_GRACE))


# The first polls of triggers that start together spread over this many seconds at most.
STAGGER_SECONDS = 5.0


# Every rl_provider trigger class is a dataclass of its (keyword-only) constructor arguments:
# ``serialize()`` returns them all, so what is stored and what is sent to the triggerer cannot
# drift apart. eq=False and repr=False keep BaseTrigger's identity equality and its repr.
@dataclass(eq=False, repr=False, kw_only=True)
class RLBaseTrigger(BaseTrigger):
    """Base of the rl_provider triggers.

    :param poll_interval: seconds between two polls.
    :param conn_id: the ``rl`` connection the settings came from (shown in logs).
    :param backend_settings: ``BackendSettings.to_dict()`` of the operator's hook; without it
        the trigger reads ``conn_id`` itself.
    :param not_before: epoch seconds before which no event fires (``hold_event``): the deferring
        task process must have exited first (see ``defer_grace``).

    A subclass is declared with the same ``@dataclass(eq=False, repr=False, kw_only=True)``
    and lists its own arguments as fields (after these).
    """

    poll_interval: float = 30
    conn_id: str = DEFAULT_CONN_ID
    backend_settings: Mapping[str, Any] | None = None
    not_before: float | None = None

    def __post_init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # Airflow's BaseTrigger is untyped
        self.poll_interval = float(self.poll_interval)
        if self.backend_settings is not None:
            self.backend_settings = dict(self.backend_settings)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        kwargs = {field.name: getattr(self, field.name) for field in fields(self)}
        return f"{type(self).__module__}.{type(self).__qualname__}", kwargs

    def hook(self) -> RLHook:
        settings = (
            BackendSettings.from_dict(self.backend_settings)
            if self.backend_settings is not None
            else None
        )
        return RLHook(self.conn_id, settings=settings)

    async def hold_event(self) -> None:
        """Wait until ``not_before`` before firing: Airflow 3.3 fails a task whose trigger fired
        while the deferring process was still exiting ("executor reported success, but the task
        instance's state attribute is queued", apache/airflow #66374)."""
        if self.not_before is not None:
            await asyncio.sleep(max(0.0, self.not_before - time.time()))

    async def stagger(self) -> None:
        """Wait a random part of one interval (at most ``STAGGER_SECONDS``) before the first poll.

        A triggerer resumes all its triggers at once (start, restart); polling in step, their
        calls would complete in bursts that the loop runs as one long iteration (hundreds of ms
        for 1,000 triggers, bench/triggerer_scale.py). The first check is at most that late.
        """
        await asyncio.sleep(random.uniform(0, min(self.poll_interval, STAGGER_SECONDS)))

    async def sleep_between_polls(self) -> None:
        """``poll_interval`` +-10 %: triggers that started together drift apart instead of
        polling in step for the rest of their lives."""
        await asyncio.sleep(self.poll_interval * random.uniform(0.9, 1.1))

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Poll (``_poll``) with this trigger's own async backend, closed afterwards; a backend
        error becomes an ``error`` event (``_error_event``). One event, held until
        ``not_before``."""
        try:
            backend = await self.async_backend()
            try:
                event = await self._poll(backend)
            finally:
                await backend.aclose()  # no HTTP session outlives the trigger, nor on cancel
        except RLProviderError as err:
            self.log.error("%s failed: %s", self._watching(), err)
            event = self._error_event(str(err))
        await self.hold_event()
        yield TriggerEvent(event)  # type: ignore[no-untyped-call]  # untyped in Airflow

    async def _poll(self, backend: AsyncBackend) -> dict[str, Any]:
        """Poll until the resource settles; return the event."""
        raise NotImplementedError

    def _watching(self) -> str:
        """What this trigger watches, for the log ("Following training job x")."""
        raise NotImplementedError

    def _error_event(self, message: str) -> dict[str, Any]:
        """The ``error`` event of this trigger's schema."""
        raise NotImplementedError

    async def async_backend(self) -> AsyncBackend:
        """Build the hook's async backend on a worker thread: opening a home or a connection
        blocks. Triggers use nothing else (the sync backend would build a second set of clients).
        """
        return await asyncio.to_thread(lambda: self.hook().async_backend)
