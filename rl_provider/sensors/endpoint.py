"""``RLEndpointSensor``: waits until an endpoint serves; fails when it cannot."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue
from airflow.sdk.exceptions import AirflowException, AirflowSensorTimeout

from rl_provider.exceptions import EndpointNotFoundError
from rl_provider.operators.base import RLDeferrableOperator

if TYPE_CHECKING:
    from airflow.sdk import Context


class RLEndpointSensor(RLDeferrableOperator, BaseSensorOperator):
    """Wait for ``endpoint_name`` to be InService; a Failed or OutOfService endpoint fails.

    :param endpoint_name: the endpoint to watch.
    :param conn_id: the ``rl`` connection (``rl_default`` may be absent: local backend).
    :param deferrable: wait in the triggerer (``RLEndpointTrigger``), polling every
        ``poke_interval`` seconds until ``timeout``.

    Works in ``poke`` and ``reschedule`` mode. Returns the DescribeEndpoint response (JSON-safe).
    """

    template_fields: Sequence[str] = ("endpoint_name",)
    ui_color = "#d7ecff"

    def __init__(self, *, endpoint_name: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)  # conn_id, deferrable: RLDeferrableOperator's
        self.endpoint_name = endpoint_name

    def execute(self, context: Context) -> Any:
        if not self.deferrable:
            return super().execute(context)
        done = self.poke(context)  # already settled: no need to defer
        if done:
            return done.xcom_value
        from rl_provider.triggers.base import defer_grace
        from rl_provider.triggers.endpoint import RLEndpointTrigger

        hook = self.hook
        self.defer(
            trigger=RLEndpointTrigger(
                endpoint_name=self.endpoint_name,
                poll_interval=self.poke_interval,
                deadline=time.time() + self.timeout,
                conn_id=self.conn_id,
                backend_settings=hook.settings.to_dict(),
                # No event while this process may still be exiting (Airflow's defer-exit race).
                not_before=time.time() + defer_grace(),
            ),
            method_name="execute_complete",
        )

    def poke(self, context: Context) -> PokeReturnValue:
        from rl_provider.triggers.endpoint import endpoint_event

        try:
            description = self.connected_backend().describe_endpoint(self.endpoint_name)
        except EndpointNotFoundError as err:
            raise AirflowException(
                f"{err} Create it first (RLDeployOperator) or fix endpoint_name."
            ) from err
        self.log.info("Endpoint %s: %s", self.endpoint_name, description.endpoint_status.value)
        event = endpoint_event(description)
        if event is None:
            return PokeReturnValue(is_done=False)
        return PokeReturnValue(is_done=True, xcom_value=self._outcome(event))

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> Any:
        """Resume from the trigger: the event alone decides."""
        if event is None:
            raise AirflowException(f"The endpoint trigger for {self.endpoint_name} sent no event.")
        return self._outcome(event)

    def _outcome(self, event: dict[str, Any]) -> Any:
        from rl_provider.triggers.endpoint import EndpointEventStatus

        if event.get("status") == EndpointEventStatus.TIMEOUT.value:
            raise AirflowSensorTimeout(event.get("message") or "Timed out.")
        if event.get("status") != EndpointEventStatus.SUCCESS.value:
            detail = event.get("failure_reason") or event.get("message") or "no reason given"
            raise AirflowException(
                f"Endpoint {self.endpoint_name} ended {event.get('status')} "
                f"(endpoint {event.get('endpoint_status') or 'unknown'}): {detail}"
            )
        return event["endpoint"]
