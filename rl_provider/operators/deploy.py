"""``RLDeployOperator``: serve a model on an endpoint, creating it or updating it blue/green.

Re-running the task is safe: an endpoint that already serves the model (same instance type and
count) is left alone, and one in the middle of a change is waited for before it is updated.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, overload

from airflow.sdk.exceptions import AirflowException, AirflowFailException

from rl_provider.core.enums import EndpointStatus
from rl_provider.core.lifecycle import Outcome, plan_deploy, production_variant, wait_for_outcome
from rl_provider.core.naming import validate_name
from rl_provider.exceptions import (
    EndpointNotFoundError,
    ModelNotFoundError,
    ResourceExistsError,
    RLConfigError,
)
from rl_provider.links import ENDPOINT_LINKS, RLExtraLinks, persist_links
from rl_provider.operators.base import RLWaitOperator, config_errors_fail

if TYPE_CHECKING:
    from airflow.sdk import Context

    from rl_provider.backends.base import Backend
    from rl_provider.core.jobs import EndpointDescription
    from rl_provider.hooks.rl import RLHook

# The trigger module (and with it airflow.triggers.base, which builds pydantic models at import)
# is imported in the methods that run a task, not when a DAG file is parsed.


class RLDeployOperator(RLExtraLinks, RLWaitOperator):
    """Deploy ``model_name`` on ``endpoint_name``: create the endpoint, or update it blue/green.

    :param model_name: an existing model (``RLCreateModelOperator``).
    :param endpoint_name: the endpoint to create or update.
    :param instance_type: ``local`` on the local backend, an ``ml.*`` type on SageMaker.
    :param initial_instance_count: instances behind the endpoint.
    :param conn_id: the ``rl`` connection (``rl_default`` may be absent: local backend).
    :param wait_for_completion: wait until the endpoint serves the model.
    :param deferrable: wait in the triggerer (``RLEndpointTrigger``) instead of a worker slot.
    :param check_interval: seconds between two status checks.
    :param max_ingestion_time: give up waiting after this many seconds (``None``: no limit
        besides the task's ``execution_timeout``); the Amazon provider's name.

    Returns ``{"EndpointConfig": ..., "Endpoint": ...}`` (DescribeEndpointConfig and
    DescribeEndpoint responses, JSON-safe; the local backend's ``Endpoint`` has its ``Url``).
    A Failed endpoint, or an update that did not take effect, fails the task with FailureReason.
    """

    template_fields: Sequence[str] = ("model_name", "endpoint_name", "instance_type")
    rl_links = ENDPOINT_LINKS
    ui_color = "#d7ecff"

    def __init__(
        self,
        *,
        model_name: str,
        endpoint_name: str,
        instance_type: str,
        initial_instance_count: int = 1,
        **kwargs: Any,
    ) -> None:
        # conn_id, deferrable, wait_for_completion, check_interval, max_ingestion_time: the
        # bases' (RLWaitOperator).
        super().__init__(**kwargs)
        self.model_name = model_name
        self.endpoint_name = endpoint_name
        self.instance_type = instance_type
        self.initial_instance_count = initial_instance_count

    # ---------------------------------------------------------------------------- execute
    def execute(self, context: Context) -> dict[str, Any]:
        self._validate()
        hook = self.hook
        backend = self.connected_backend()
        try:
            backend.describe_model(self.model_name)
        except ModelNotFoundError as err:
            raise AirflowFailException(
                f"{err} Create it first (RLCreateModelOperator) or fix model_name."
            ) from err
        deadline = (
            None if self.max_ingestion_time is None else time.time() + self.max_ingestion_time
        )
        # Recorded now (no URL yet): Airflow reads every extra link when a task defers, and a
        # missing XCom is logged as an error.
        self._persist_link(context, hook, None)
        current = self._settled_endpoint(backend, hook, deadline)
        if current is not None and self._serves_model(backend, current):
            self.log.info(
                "Endpoint %s already serves model %s on %s x %s: nothing to change.",
                self.endpoint_name,
                self.model_name,
                self.initial_instance_count,
                self.instance_type,
            )
            return self._result(context, hook, current.endpoint_config_name, current)
        try:
            plan = plan_deploy(self.endpoint_name, current)
            config_name = plan.config_name
            if plan.update:
                self.log.info(
                    "Updating endpoint %s (blue/green) from %s to %s (model %s).",
                    self.endpoint_name,
                    plan.previous_config_name,
                    config_name,
                    self.model_name,
                )
            else:
                self.log.info(
                    "Creating endpoint %s with model %s.", self.endpoint_name, self.model_name
                )
            plan.start(
                backend,
                [
                    production_variant(
                        self.model_name, self.initial_instance_count, self.instance_type
                    )
                ],
            )
        except RLConfigError as err:
            raise AirflowFailException(str(err)) from err
        except ResourceExistsError as err:
            raise AirflowException(
                f"{err} Another deployment created it since this task looked; a retry of this "
                "task updates it instead."
            ) from err
        if not self.wait_for_completion:
            return self._result(context, hook, config_name)
        event = self._wait_or_defer(backend, hook, config_name, deadline, "execute_complete")
        return self._complete(context, hook, event)

    def execute_complete(
        self, context: Context, event: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Resume from the trigger: the event alone decides success."""
        if event is None:
            raise AirflowException(f"The endpoint trigger for {self.endpoint_name} sent no event.")
        self.connected_backend()
        return self._complete(context, self.hook, event)

    def resume_when_settled(
        self, context: Context, event: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Resume after waiting (deferred) for a change someone else started: deploy now."""
        from rl_provider.triggers.endpoint import EndpointEventStatus

        if event is not None and event.get("status") == EndpointEventStatus.TIMEOUT.value:
            raise AirflowException(event.get("message") or "Timed out waiting for the endpoint.")
        return self.execute(context)

    # ---------------------------------------------------------------------------- helpers
    @config_errors_fail()
    def _validate(self) -> None:
        validate_name(self.endpoint_name, kind="endpoint name")
        validate_name(self.model_name, kind="model name")
        if not isinstance(self.instance_type, str) or not self.instance_type:
            raise RLConfigError(
                f"instance_type={self.instance_type!r}: pass 'local' for the local backend or an "
                "ml.* instance type (e.g. 'ml.m5.large') for SageMaker."
            )
        count = self.initial_instance_count
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise RLConfigError(
                f"initial_instance_count={count!r}: pass a positive int (1 or more)."
            )
        self.check_wait_settings()

    def _settled_endpoint(
        self, backend: Backend, hook: RLHook, deadline: float | None
    ) -> EndpointDescription | None:
        """The endpoint once no change is in flight (``None``: it does not exist)."""
        from rl_provider.triggers.endpoint import EndpointEventStatus

        try:
            description = backend.describe_endpoint(self.endpoint_name)
        except EndpointNotFoundError:
            return None
        status = description.endpoint_status
        if status is EndpointStatus.IN_SERVICE:
            return description
        if status.is_failure():
            raise AirflowFailException(
                f"Endpoint {self.endpoint_name} is {status.value} "
                f"({description.failure_reason or 'no reason given'}): SageMaker cannot update "
                f"a failed endpoint. Delete it (rl-provider endpoints delete "
                f"{self.endpoint_name}) and rerun this task."
            )
        if status is EndpointStatus.DELETING:
            raise AirflowException(
                f"Endpoint {self.endpoint_name} is being deleted: rerun (or retry) this task "
                "once it is gone to create it again."
            )
        self.log.info(
            "Endpoint %s is %s: waiting for that change to finish before deploying.",
            self.endpoint_name,
            status.value,
        )
        try:
            event = self._wait_or_defer(backend, hook, None, deadline, "resume_when_settled")
        except EndpointNotFoundError:
            return None  # deleted meanwhile: create it
        if event["status"] == EndpointEventStatus.TIMEOUT.value:
            raise AirflowException(event["message"])
        return self._settled_endpoint(backend, hook, deadline)

    def _serves_model(self, backend: Backend, description: EndpointDescription) -> bool:
        config = backend.describe_endpoint_config(description.endpoint_config_name)
        return [
            (v.model_name, v.instance_type, v.initial_instance_count)
            for v in config.production_variants
        ] == [(self.model_name, self.instance_type, self.initial_instance_count)]

    def _wait_or_defer(
        self,
        backend: Backend,
        hook: RLHook,
        config_name: str | None,
        deadline: float | None,
        method_name: str,
    ) -> dict[str, Any]:
        """Wait here; deferrable: only for the grace, then defer (resuming in ``method_name``).

        A short wait never defers, and the trigger holds its event until the grace has passed
        again, so it cannot fire while this process is still exiting (Airflow's defer-exit race).
        """
        if not self.deferrable:
            return self._wait(backend, config_name, deadline)
        from rl_provider.triggers.base import defer_grace
        from rl_provider.triggers.endpoint import RLEndpointTrigger

        grace = defer_grace()
        event = self._wait(backend, config_name, deadline, until=time.time() + grace)
        if event is not None:
            return event
        self.defer(
            trigger=RLEndpointTrigger(
                endpoint_name=self.endpoint_name,
                endpoint_config_name=config_name,
                poll_interval=self.check_interval,
                deadline=deadline,
                conn_id=self.conn_id,
                backend_settings=hook.settings.to_dict(),
                not_before=time.time() + grace,
            ),
            method_name=method_name,
        )

    @overload
    def _wait(
        self, backend: Backend, config_name: str | None, deadline: float | None
    ) -> dict[str, Any]: ...

    @overload
    def _wait(
        self,
        backend: Backend,
        config_name: str | None,
        deadline: float | None,
        *,
        until: float,
    ) -> dict[str, Any] | None: ...

    def _wait(
        self,
        backend: Backend,
        config_name: str | None,
        deadline: float | None,
        *,
        until: float | None = None,
    ) -> dict[str, Any] | None:
        """Poll on this worker: the same outcomes as the trigger (``endpoint_event``);
        ``None`` once ``until`` has passed with the endpoint still changing."""
        from rl_provider.triggers.endpoint import EndpointEventStatus, endpoint_event

        last_status: list[EndpointStatus] = []

        def report(description: EndpointDescription) -> None:
            if last_status[-1:] != [description.endpoint_status]:
                last_status.append(description.endpoint_status)
                self.log.info(
                    "Endpoint %s: %s", self.endpoint_name, description.endpoint_status.value
                )

        outcome = wait_for_outcome(
            backend,
            self.endpoint_name,
            endpoint_config_name=config_name,
            deadline=deadline,
            pause=lambda _: self._pause(until),
            report=report,
        )
        if outcome is None:
            return None
        if outcome.outcome is Outcome.TIMEOUT:
            return {
                "status": EndpointEventStatus.TIMEOUT.value,
                "endpoint_name": self.endpoint_name,
                "message": f"Endpoint {self.endpoint_name} was still "
                f"{outcome.description.endpoint_status.value} after max_ingestion_time="
                f"{self.max_ingestion_time}s.",
            }
        return endpoint_event(outcome.description, endpoint_config_name=config_name)

    def _complete(self, context: Context, hook: RLHook, event: dict[str, Any]) -> dict[str, Any]:
        from rl_provider.triggers.endpoint import EndpointEventStatus

        status = event.get("status")
        if status != EndpointEventStatus.SUCCESS.value:
            detail = event.get("failure_reason") or event.get("message") or "no reason given"
            raise AirflowException(
                f"Deploying model {self.model_name} on endpoint {self.endpoint_name} ended "
                f"{status} (endpoint {event.get('endpoint_status') or 'unknown'}): {detail}"
            )
        endpoint = event["endpoint"]
        self.log.info(
            "Endpoint %s is InService with %s%s.",
            self.endpoint_name,
            event.get("endpoint_config_name"),
            f" at {endpoint['Url']}" if endpoint.get("Url") else "",
        )
        self._persist_link(context, hook, endpoint.get("Url"))
        # The config is immutable: reading it adds detail to the result, not to the decision.
        config = hook.backend.describe_endpoint_config(event["endpoint_config_name"])
        return {"EndpointConfig": config.to_api(), "Endpoint": endpoint}

    def _result(
        self,
        context: Context,
        hook: RLHook,
        config_name: str,
        endpoint: EndpointDescription | None = None,
    ) -> dict[str, Any]:
        backend = hook.backend
        endpoint = endpoint or backend.describe_endpoint(self.endpoint_name)
        self._persist_link(context, hook, endpoint.extra.get("Url"))
        return {
            "EndpointConfig": backend.describe_endpoint_config(config_name).to_api(),
            "Endpoint": endpoint.to_api(),
        }

    def _persist_link(self, context: Context, hook: RLHook, url: Any) -> None:
        persist_links(
            ENDPOINT_LINKS,
            context,
            backend=hook.settings.backend.value,
            region=hook.settings.region_name or hook.backend.region,
            endpoint_name=self.endpoint_name,
            url=url,
            conn_id=hook.conn_id,
        )
