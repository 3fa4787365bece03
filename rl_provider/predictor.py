"""``RLPredictor``: call a deployed policy with Python data, on any backend.

It sends SageMaker's ``InvokeEndpoint`` keyword arguments, so the same object works with the local
backend, the SageMaker backend or a plain boto3 ``sagemaker-runtime`` client.
"""

from __future__ import annotations

import json
from typing import Any

from rl_provider.backends.base import EndpointBackend, InvokeBackend
from rl_provider.exceptions import RLConfigError
from rl_provider.serving.handler import plain


class JSONSerializer:
    """Lists, dicts, numbers and numpy arrays to ``application/json``."""

    CONTENT_TYPE = "application/json"

    def serialize(self, data: Any) -> bytes:
        if isinstance(data, bytes):
            return data
        if isinstance(data, str):
            return data.encode("utf-8")
        return json.dumps(plain(data)).encode("utf-8")


class JSONDeserializer:
    ACCEPT = "application/json"

    def deserialize(self, body: bytes, content_type: str | None = None) -> Any:
        return json.loads(body.decode("utf-8")) if body else None


# The defaults are instances, as in the SDK's Predictor; they hold no state, so one is shared.
JSON_SERIALIZER = JSONSerializer()
JSON_DESERIALIZER = JSONDeserializer()


class RLPredictor:
    """Predict with the policy behind ``endpoint_name``.

    ``predictor.predict([0.0, 0.1, 0.0, -0.1])`` -> ``{"action": 1}``; a batch of observations
    gives ``{"actions": [...]}`` with the built-in RLlib handler.

    ``backend`` only has to invoke (``InvokeBackend``: e.g. a boto3 ``sagemaker-runtime``
    client); ``delete_endpoint`` needs one that also manages endpoints (``EndpointBackend``:
    every ``Backend``). Which one it is, is decided once, here.
    """

    def __init__(
        self,
        endpoint_name: str,
        backend: InvokeBackend | None = None,
        serializer: JSONSerializer = JSON_SERIALIZER,
        deserializer: JSONDeserializer = JSON_DESERIALIZER,
    ) -> None:
        self.endpoint_name = endpoint_name
        if backend is None:
            from rl_provider.backends.local import LocalBackend

            backend = LocalBackend()
        if not isinstance(backend, InvokeBackend):
            raise RLConfigError(
                f"backend={type(backend).__name__}: it has no invoke_endpoint. Pass a backend "
                "(RLHook(...).backend, LocalBackend()) or a boto3 'sagemaker-runtime' client."
            )
        self.backend = backend
        # Checked once: a client that only invokes (sagemaker-runtime) cannot delete.
        self._manager = backend if isinstance(backend, EndpointBackend) else None
        # None still means the default (the signature said so before issue 13).
        self.serializer = serializer or JSON_SERIALIZER
        self.deserializer = deserializer or JSON_DESERIALIZER

    def __repr__(self) -> str:
        return f"RLPredictor({self.endpoint_name!r})"

    def predict(self, data: Any, initial_args: dict[str, Any] | None = None) -> Any:
        request = {
            "EndpointName": self.endpoint_name,
            "Body": self.serializer.serialize(data),
            "ContentType": self.serializer.CONTENT_TYPE,
            "Accept": self.deserializer.ACCEPT,
            **(initial_args or {}),
        }
        response = self.backend.invoke_endpoint(**request)
        return self.deserializer.deserialize(response["Body"].read(), response.get("ContentType"))

    def delete_endpoint(self, delete_endpoint_config: bool = True) -> None:
        """Delete the endpoint and, as the SDK's ``Predictor`` does, its endpoint config."""
        manager = self._manager
        if manager is None:
            raise RLConfigError(
                f"{type(self.backend).__name__} only invokes endpoints: delete "
                f"{self.endpoint_name!r} through a backend (RLHook(...).backend, LocalBackend())."
            )
        config = manager.describe_endpoint(self.endpoint_name).endpoint_config_name
        manager.delete_endpoint(self.endpoint_name)
        if delete_endpoint_config:
            manager.delete_endpoint_config(config)
