"""``RLEndpointTrigger``: waits for an endpoint to serve (or fail) from the triggerer.

``endpoint_event()`` is the one place that turns a DescribeEndpoint response into an outcome;
the deploy operator's synchronous wait and the endpoint sensor use it too, so every mode agrees.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from airflow.triggers.base import TriggerEvent

from rl_provider.core.enums import EndpointStatus
from rl_provider.exceptions import RLProviderError
from rl_provider.hooks.rl import DEFAULT_CONN_ID
from rl_provider.triggers.base import RLBaseTrigger

if TYPE_CHECKING:
    from rl_provider.backends.base import AsyncTrainingBackend
    from rl_provider.core.jobs import EndpointDescription

__all__ = ["EndpointEventStatus", "RLEndpointTrigger", "endpoint_event"]


class EndpointEventStatus(StrEnum):
    """The ``status`` values of an endpoint event (DESIGN section 5)."""

    SUCCESS = "success"
    FAILED = "failed"
    TIMEOUT = "timeout"
    ERROR = "error"


def _event(
    endpoint_name: str,
    status: EndpointEventStatus,
    description: EndpointDescription | None,
    failure_reason: str | None = None,
    message: str | None = None,
) -> dict[str, Any]:
    """The one event schema. Plain JSON values only: events cross processes."""
    event: dict[str, Any] = {
        "status": status.value,
        "endpoint_name": endpoint_name,
        "failure_reason": failure_reason,
        "endpoint_status": description.endpoint_status.value if description else None,
        "endpoint_config_name": description.endpoint_config_name if description else None,
        "endpoint": description.to_api() if description else None,
    }
    if message is not None:
        event["message"] = message
    return event


def endpoint_event(
    description: EndpointDescription, *, endpoint_config_name: str | None = None
) -> dict[str, Any] | None:
    """The outcome of a wait, or ``None`` while the endpoint is still changing.

    With ``endpoint_config_name`` (a create or update that must take effect), an InService
    endpoint that still serves another config is a failed update: SageMaker rolls a failed
    update back to the previous config and keeps the endpoint InService, with FailureReason.
    """
    name = description.endpoint_name
    status = description.endpoint_status
    if status.is_failure():
        return _event(name, EndpointEventStatus.FAILED, description, description.failure_reason)
    if status is not EndpointStatus.IN_SERVICE:
        return None
    if endpoint_config_name is None or description.endpoint_config_name == endpoint_config_name:
        return _event(name, EndpointEventStatus.SUCCESS, description)
    reason = description.failure_reason or "no reason given"
    return _event(
        name,
        EndpointEventStatus.FAILED,
        description,
        f"The update to endpoint config {endpoint_config_name} failed and the endpoint still "
        f"serves {description.endpoint_config_name}: {reason}",
    )


class RLEndpointTrigger(RLBaseTrigger):
    """Poll an endpoint until it is InService (with the wanted config) or has failed.

    :param endpoint_name: the endpoint.
    :param endpoint_config_name: the config a create/update must end on; ``None`` accepts any
        InService state (the sensor).
    :param poll_interval: seconds between polls.
    :param deadline: epoch seconds after which a ``timeout`` event fires (absolute, so a
        triggerer restart keeps it).

    Yields exactly one event ``{"status", "endpoint_name", "failure_reason", "endpoint_status",
    "endpoint_config_name", "endpoint"}`` (``endpoint``: the DescribeEndpoint response, JSON-safe)
    + ``message`` for ``timeout``/``error``.
    """

    serialized_fields = ("endpoint_name", "endpoint_config_name", "deadline")

    def __init__(
        self,
        *,
        endpoint_name: str,
        endpoint_config_name: str | None = None,
        poll_interval: float = 30,
        deadline: float | None = None,
        conn_id: str = DEFAULT_CONN_ID,
        backend_settings: Mapping[str, Any] | None = None,
        not_before: float | None = None,
    ) -> None:
        super().__init__(
            poll_interval=poll_interval,
            conn_id=conn_id,
            backend_settings=backend_settings,
            not_before=not_before,
        )
        self.endpoint_name = endpoint_name
        self.endpoint_config_name = endpoint_config_name
        self.deadline = deadline

    async def run(self) -> AsyncIterator[TriggerEvent]:
        try:
            event = await self._watch()
        except RLProviderError as err:
            self.log.error("Watching endpoint %s failed: %s", self.endpoint_name, err)
            event = _event(self.endpoint_name, EndpointEventStatus.ERROR, None, message=str(err))
        await self.hold_event()
        yield TriggerEvent(event)  # type: ignore[no-untyped-call]  # untyped in Airflow

    async def _watch(self) -> dict[str, Any]:
        backend = await self.async_backend()
        try:
            return await self._poll(backend)
        finally:
            await backend.aclose()  # no HTTP session outlives the trigger, also on cancellation

    async def _poll(self, backend: AsyncTrainingBackend) -> dict[str, Any]:
        last_status: EndpointStatus | None = None
        await self.stagger()
        while True:
            description = await backend.describe_endpoint(self.endpoint_name)
            if description.endpoint_status is not last_status:
                last_status = description.endpoint_status
                self.log.info("Endpoint %s: %s", self.endpoint_name, last_status.value)
            event = endpoint_event(description, endpoint_config_name=self.endpoint_config_name)
            if event is not None:
                return event
            if self.deadline is not None and time.time() >= self.deadline:
                return _event(
                    self.endpoint_name,
                    EndpointEventStatus.TIMEOUT,
                    description,
                    message=f"Endpoint {self.endpoint_name} was still "
                    f"{description.endpoint_status.value} at the deadline.",
                )
            await self.sleep_between_polls()
