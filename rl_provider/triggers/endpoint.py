"""``RLEndpointTrigger``: waits for an endpoint to serve (or fail) from the triggerer.

``endpoint_event()`` is the one place that turns a DescribeEndpoint response into an outcome;
the deploy operator's synchronous wait and the endpoint sensor use it too, so every mode agrees.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rl_provider.core.enums import EndpointStatus
from rl_provider.core.lifecycle import Outcome, endpoint_outcome, endpoint_step
from rl_provider.triggers.base import EventStatus, RLBaseTrigger

if TYPE_CHECKING:
    from rl_provider.backends.base import AsyncBackend
    from rl_provider.core.jobs import EndpointDescription

__all__ = ["EndpointEventStatus", "RLEndpointTrigger", "endpoint_event"]


#: The ``status`` values of an endpoint event (DESIGN section 5; never ``stopped``).
EndpointEventStatus = EventStatus


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
    """The event of the core's wait rule (``rl_provider.core.lifecycle.endpoint_outcome``), or
    ``None`` while the endpoint is still changing."""
    outcome = endpoint_outcome(description, endpoint_config_name=endpoint_config_name)
    if outcome is None:
        return None
    return _event(
        description.endpoint_name,
        EndpointEventStatus(outcome.outcome.value),
        description,
        outcome.failure_reason,
    )


# Fields, not an __init__: see RLBaseTrigger.
@dataclass(eq=False, repr=False, kw_only=True)
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

    endpoint_name: str
    endpoint_config_name: str | None = None
    deadline: float | None = None

    def _watching(self) -> str:
        return f"Watching endpoint {self.endpoint_name}"

    def _error_event(self, message: str) -> dict[str, Any]:
        return _event(self.endpoint_name, EndpointEventStatus.ERROR, None, message=message)

    async def _poll(self, backend: AsyncBackend) -> dict[str, Any]:
        last_status: EndpointStatus | None = None
        await self.stagger()
        while True:
            description = await backend.describe_endpoint(self.endpoint_name)
            if description.endpoint_status is not last_status:
                last_status = description.endpoint_status
                self.log.info("Endpoint %s: %s", self.endpoint_name, last_status.value)
            outcome = endpoint_step(
                description,
                endpoint_config_name=self.endpoint_config_name,
                deadline=self.deadline,
            )
            if outcome is None:
                await self.sleep_between_polls()
                continue
            if outcome.outcome is Outcome.TIMEOUT:
                return _event(
                    self.endpoint_name,
                    EndpointEventStatus.TIMEOUT,
                    description,
                    message=f"Endpoint {self.endpoint_name} was still "
                    f"{description.endpoint_status.value} at the deadline.",
                )
            return _event(
                self.endpoint_name,
                EndpointEventStatus(outcome.outcome.value),
                description,
                outcome.failure_reason,
            )
