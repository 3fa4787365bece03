"""``LocalServing``: SageMaker's model, endpoint-config and endpoint APIs on this machine.

The serving half of ``LocalBackend`` (``backend.py`` is the training half). Models, endpoint
configs and endpoints live in the home's database; each endpoint generation is a detached model
server on 127.0.0.1 (``rl_provider.backends.local.endpoint``, docs/SERVING.md).
"""

from __future__ import annotations

import io
import os
import shutil
import signal
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Unpack

from rl_provider.backends.base import ListFilter, ListQuery
from rl_provider.backends.local import files, transfer
from rl_provider.backends.local.common import alive, arn, signal_server, spawn_detached, utc
from rl_provider.backends.local.endpoint import MODEL_DIR_IN_CONTAINER
from rl_provider.backends.local.endpoint_state import EndpointRecord, Server
from rl_provider.backends.local.store import ENDPOINT, ENDPOINT_CONFIG, MODEL, LocalStore
from rl_provider.core.enums import EndpointStatus
from rl_provider.core.jobs import EndpointConfigDescription, EndpointDescription, ModelDescription
from rl_provider.core.naming import validate_name
from rl_provider.exceptions import (
    BackendError,
    EndpointNotFoundError,
    ModelInvocationError,
    ModelNotFoundError,
    ResourceExistsError,
    RLConfigError,
)
from rl_provider.serving.client import ServerConnection

# SageMaker's InvokeEndpoint payload limit; the model server enforces it too (413).
MAX_INVOCATION_BYTES = 6 * 1024 * 1024


class LocalServing:
    """Models, endpoint configs and endpoints of a local home (mixed into ``LocalBackend``)."""

    home: Path
    store: LocalStore
    _local: threading.local

    @property
    def _connections(self) -> dict[str, ServerConnection]:
        """This thread's keep-alive connections; a forked child (Airflow workers fork) starts
        afresh rather than share its parent's sockets."""
        connections: dict[str, ServerConnection] | None = getattr(self._local, "connections", None)
        if connections is None or self._local.pid != os.getpid():
            connections = self._local.connections = {}
            self._local.pid = os.getpid()
        return connections

    # --------------------------------------------------------------------------- models
    def create_model(self, **request: Any) -> dict[str, Any]:
        name = validate_name(request.get("ModelName", ""), kind="model name")
        container = request.get("PrimaryContainer")
        if not isinstance(container, Mapping) or not container.get("Image"):
            raise RLConfigError(
                f"Model {name!r} needs PrimaryContainer with an Image (and ModelDataUrl): build "
                "the request with RLModel.create_model_request()."
            )
        if container.get("ModelDataUrl"):
            transfer.check_readable(container["ModelDataUrl"], "ModelDataUrl")
        submit = container.get("Environment", {}).get("SAGEMAKER_SUBMIT_DIRECTORY")
        if submit and not submit.startswith(MODEL_DIR_IN_CONTAINER):
            transfer.check_readable(submit, "SAGEMAKER_SUBMIT_DIRECTORY")
        body = {
            "ModelName": name,
            "PrimaryContainer": dict(container),
            "ExecutionRoleArn": request.get("ExecutionRoleArn"),
            "VpcConfig": request.get("VpcConfig"),
        }
        try:
            self.store.put(MODEL, name, body)
        except ResourceExistsError:
            raise ResourceExistsError(
                f"Cannot create already existing model {name!r} (SageMaker rule): delete it or "
                "pick another name."
            ) from None
        return {"ModelArn": arn("model", name)}

    def describe_model(self, name: str) -> ModelDescription:
        body = self._get(MODEL, name, ModelNotFoundError, "Model")
        return ModelDescription.from_api(
            {**body, "ModelArn": arn("model", name), "CreationTime": utc(body["_created"])}
        )

    def delete_model(self, name: str) -> None:
        if not self.store.delete(MODEL, name):
            raise ModelNotFoundError(f"Could not find model {name!r}.")

    def list_models(self, **filters: Unpack[ListFilter]) -> dict[str, Any]:
        def summary(name: str) -> dict[str, Any]:
            return {"ModelName": name, "ModelArn": arn("model", name)}

        return {"Models": ListQuery.of(filters).page(self.store.names(MODEL), str, summary)}

    # ------------------------------------------------------------------ endpoint configs
    def create_endpoint_config(self, **request: Any) -> dict[str, Any]:
        name = validate_name(request.get("EndpointConfigName", ""), kind="endpoint config name")
        variants = request.get("ProductionVariants") or []
        if len(variants) != 1:
            raise RLConfigError(
                f"Endpoint config {name!r} has {len(variants)} production variants: the local "
                "backend serves exactly one."
            )
        for variant in variants:
            missing = [k for k in ("ModelName", "InstanceType") if not variant.get(k)]
            if missing:
                raise RLConfigError(
                    f"Endpoint config {name!r}: the production variant has no "
                    f"{' or '.join(missing)} (SageMaker requires both); got {dict(variant)}."
                )
            self._get(MODEL, variant["ModelName"], ModelNotFoundError, "Model")
        body = {
            "EndpointConfigName": name,
            "ProductionVariants": [
                # SageMaker's defaults for what the variant leaves out.
                {
                    "InitialVariantWeight": 1.0,
                    "VariantName": "AllTraffic",
                    "InitialInstanceCount": 1,
                    **v,
                }
                for v in variants
            ],
        }
        try:
            self.store.put(ENDPOINT_CONFIG, name, body)
        except ResourceExistsError:
            raise ResourceExistsError(
                f"Cannot create already existing endpoint configuration {name!r}."
            ) from None
        return {"EndpointConfigArn": arn("endpoint-config", name)}

    def describe_endpoint_config(self, name: str) -> EndpointConfigDescription:
        body = self._get(ENDPOINT_CONFIG, name, EndpointNotFoundError, "Endpoint configuration")
        return EndpointConfigDescription.from_api(
            {
                **body,
                "EndpointConfigArn": arn("endpoint-config", name),
                "CreationTime": utc(body["_created"]),
            }
        )

    def delete_endpoint_config(self, name: str) -> None:
        if not self.store.delete(ENDPOINT_CONFIG, name):
            raise EndpointNotFoundError(f"Could not find endpoint configuration {name!r}.")

    # ------------------------------------------------------------------------ endpoints
    def create_endpoint(self, **request: Any) -> dict[str, Any]:
        name = validate_name(request.get("EndpointName", ""), kind="endpoint name")
        config = request.get("EndpointConfigName", "")
        self._get(ENDPOINT_CONFIG, config, EndpointNotFoundError, "Endpoint configuration")
        try:
            self.store.insert_endpoint(EndpointRecord.creating(name, config, time.time()))
        except ResourceExistsError:
            raise ResourceExistsError(
                f"Cannot create already existing endpoint {name!r}: update it "
                "(update_endpoint / deploy(update_endpoint=True)) or delete it first."
            ) from None
        self._start_server(name, 1, config)
        return {"EndpointArn": arn("endpoint", name)}

    def update_endpoint(self, **request: Any) -> dict[str, Any]:
        """Blue/green: a new server starts; it takes over once its /ping answers."""
        name = request.get("EndpointName", "")
        config = request.get("EndpointConfigName", "")
        self._get(ENDPOINT_CONFIG, config, EndpointNotFoundError, "Endpoint configuration")
        self.describe_endpoint(name)  # not found -> EndpointNotFoundError; dead servers reaped
        # Checked inside the transaction (``updating`` raises unless InService): of two
        # concurrent updates only one starts.
        updated = self.store.change_endpoint(name, lambda r: r.updating(config, time.time()))
        if updated is None:
            raise EndpointNotFoundError(f"Endpoint {name!r} was deleted while being updated.")
        self._start_server(name, updated.generation, config)
        return {"EndpointArn": arn("endpoint", name)}

    def _start_server(self, name: str, generation: int, config: str) -> None:
        variants = (self.store.get(ENDPOINT_CONFIG, config) or {}).get("ProductionVariants", [])
        model = self.store.get(MODEL, variants[0]["ModelName"]) if variants else None
        container_def = (model or {}).get("PrimaryContainer", {})
        uris = [
            str(container_def.get("ModelDataUrl") or ""),
            str(container_def.get("Environment", {}).get("SAGEMAKER_SUBMIT_DIRECTORY") or ""),
        ]
        directory = files.private_dir(self.home / "endpoints" / name / str(generation))
        try:
            pid, started = spawn_detached(
                "rl_provider.backends.local.endpoint",
                [name, str(generation)],
                self.home,
                directory,
                uris,
            )
        except OSError as err:
            reason = f"could not start the model server: {err}"
            self.store.change_endpoint(
                name, lambda r: r.pending_failed(generation, reason, time.time())
            )
        else:
            self.store.change_endpoint(name, lambda r: r.with_process(generation, pid, started))

    def describe_endpoint(self, name: str) -> EndpointDescription:
        record = self._reap_endpoint(self._endpoint(name))
        config = self.store.get(ENDPOINT_CONFIG, record.config_name) or {}
        variants = [
            {
                "VariantName": v.get("VariantName", "AllTraffic"),
                "CurrentInstanceCount": v.get("InitialInstanceCount", 1),
                "DesiredInstanceCount": v.get("InitialInstanceCount", 1),
                "CurrentWeight": v.get("InitialVariantWeight", 1.0),
            }
            for v in config.get("ProductionVariants", [])
        ]
        api: dict[str, Any] = {
            "EndpointName": name,
            "EndpointArn": arn("endpoint", name),
            "EndpointConfigName": record.config_name,
            "EndpointStatus": record.status.value,
            "FailureReason": record.failure_reason,
            "CreationTime": utc(record.created),
            "LastModifiedTime": utc(record.last_modified),
            "ProductionVariants": variants,
        }
        if record.active is not None and record.active.port:
            api["Url"] = f"http://127.0.0.1:{record.active.port}"
            api["ServerPid"] = record.active.pid
        return EndpointDescription.from_api(api)

    def _reap_endpoint(self, record: EndpointRecord) -> EndpointRecord:
        """Servers that died (killed, model_fn crashed hard) are reflected in the status."""
        if not any(_exited(server) for server in record.servers()):
            return record
        log = self.home / "endpoints" / record.name

        def reap(current: EndpointRecord) -> EndpointRecord:
            now = time.time()
            if current.pending is not None and _exited(current.pending):
                gen = current.pending.generation
                reason = f"the model server exited while starting (see {log}/{gen}/server.log)"
                current = current.pending_failed(gen, reason, now) or current
            if current.active is not None and _exited(current.active):
                reason = (
                    f"the model server exited (see {log}/{current.active.generation}/server.log);"
                    " update or recreate the endpoint"
                )
                current = current.active_exited(reason, now) or current
            return current

        return self.store.change_endpoint(record.name, reap) or record

    def delete_endpoint(self, name: str) -> None:
        """Stop every server of the endpoint (and wait for them), then forget it."""
        record = self._endpoint(name)
        self.store.change_endpoint(name, lambda r: r.deleting())
        servers = [server for server in record.servers() if alive(server)]
        for server in servers:
            signal_server(server, signal.SIGTERM)
        deadline = time.monotonic() + 15.0
        while any(alive(server) for server in servers) and time.monotonic() < deadline:
            time.sleep(0.05)
        for server in servers:
            if alive(server):
                signal_server(server, signal.SIGKILL)
        self.store.delete(ENDPOINT, name)
        cached = self._connections.pop(name, None)
        if cached is not None:
            cached.close()
        # The unpacked model and code go; each generation's server.log stays for post-mortems.
        for generation in (self.home / "endpoints" / name).glob("*"):
            for scratch in ("model", "code", "download"):
                shutil.rmtree(generation / scratch, ignore_errors=True)

    def list_endpoints(self, **filters: Unpack[ListFilter]) -> dict[str, Any]:
        """ListEndpoints' response, newest first (SageMaker's default order)."""
        query = ListQuery.of(filters)

        def summary(name: str) -> dict[str, Any] | None:
            try:
                d = self.describe_endpoint(name)
            except EndpointNotFoundError:
                return None  # deleted meanwhile
            if not query.wants(d.endpoint_status.value):
                return None
            return {
                "EndpointName": d.endpoint_name,
                "EndpointArn": d.endpoint_arn,
                "EndpointStatus": d.endpoint_status.value,
                "CreationTime": d.creation_time,
                "LastModifiedTime": d.last_modified_time,
            }

        return {"Endpoints": query.page(self.store.names(ENDPOINT), str, summary)}

    def invoke_endpoint(self, **request: Any) -> dict[str, Any]:
        """POST the body to the endpoint's server (``sagemaker-runtime`` InvokeEndpoint shape)."""
        name = request.get("EndpointName", "")
        body = request.get("Body", b"")
        if isinstance(body, str):
            body = body.encode("utf-8")
        if len(body) > MAX_INVOCATION_BYTES:
            raise RLConfigError(
                f"The request body is {len(body)} bytes: InvokeEndpoint takes at most "
                f"{MAX_INVOCATION_BYTES} (6 MB, SageMaker's limit). Send fewer observations per "
                "request."
            )
        headers = {"Content-Type": request.get("ContentType") or "application/json"}
        if request.get("Accept"):
            headers["Accept"] = request["Accept"]
        # A server being replaced closes its idle connections once its successor is recorded:
        # re-read the port and send again (inference is a pure function of the request).
        for attempt in range(5):
            connection = self._connection(name, refresh=attempt > 0)
            try:
                status, fields, data = connection.request("POST", "/invocations", body, headers)
            except ConnectionError:
                self._connections.pop(name, None)
                time.sleep(0.02 * attempt)
                continue
            except (TimeoutError, ValueError) as err:
                self._connections.pop(name, None)
                raise BackendError(
                    f"Endpoint {name!r} did not answer ({type(err).__name__}: {err}); see its "
                    f"server log under {self.home / 'endpoints' / name}."
                ) from None
            if status >= 400:
                message = data.decode("utf-8", "replace").strip()
                raise ModelInvocationError(name, status, message)
            return {
                "Body": io.BytesIO(data),
                "ContentType": fields.get("content-type", ""),
                "InvokedProductionVariant": "AllTraffic",
            }
        raise EndpointNotFoundError(
            f"Endpoint {name!r} did not accept the request after 5 attempts: "
            f"{self.describe_endpoint(name).endpoint_status.value}."
        )

    def _connection(self, name: str, refresh: bool = False) -> ServerConnection:
        cached = None if refresh else self._connections.get(name)
        if cached is not None:
            return cached
        description = self.describe_endpoint(name)
        url = description.extra.get("Url")
        if description.endpoint_status is EndpointStatus.FAILED or not url:
            raise EndpointNotFoundError(
                f"Endpoint {name!r} is {description.endpoint_status.value} and serves no requests"
                + (f": {description.failure_reason}" if description.failure_reason else ".")
            )
        port = int(str(url).rsplit(":", 1)[1])
        connection = ServerConnection(port, timeout=60.0)
        self._connections[name] = connection
        return connection

    def _endpoint(self, name: str) -> EndpointRecord:
        record = self.store.endpoint(name)
        if record is None:
            raise EndpointNotFoundError(f"Could not find endpoint {name!r} in {self.home}.")
        return record

    def _get(self, kind: str, name: str, error: type[BackendError], what: str) -> dict[str, Any]:
        body = self.store.get(kind, name)
        if body is None:
            raise error(f"Could not find {what.lower()} {name!r} in {self.home}.")
        return body


def _exited(server: Server) -> bool:
    """Whether a server that was running (its pid recorded) is gone."""
    return server.pid is not None and not alive(server)
