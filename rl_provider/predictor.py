"""``RLPredictor``: call a deployed policy with Python data, on any backend.

It sends SageMaker's ``InvokeEndpoint`` keyword arguments, so the same object works with the local
backend, the SageMaker backend or a plain boto3 ``sagemaker-runtime`` client.
"""

from __future__ import annotations

import json
from typing import Any, Protocol

from rl_provider.exceptions import RLConfigError
from rl_provider.serving.handler import plain


class _Runtime(Protocol):
    def invoke_endpoint(self, **request: Any) -> dict[str, Any]: ...


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


class RLPredictor:
    """Predict with the policy behind ``endpoint_name``.

    ``predictor.predict([0.0, 0.1, 0.0, -0.1])`` -> ``{"action": 1}``; a batch of observations
    gives ``{"actions": [...]}`` with the built-in RLlib handler.
    """

    def __init__(
        self,
        endpoint_name: str,
        backend: _Runtime | None = None,
        serializer: JSONSerializer | None = None,
        deserializer: JSONDeserializer | None = None,
    ) -> None:
        self.endpoint_name = endpoint_name
        if backend is None:
            from rl_provider.backends.local import LocalBackend

            backend = LocalBackend()
        self.backend = backend
        self.serializer = serializer or JSONSerializer()
        self.deserializer = deserializer or JSONDeserializer()

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
        delete = getattr(self.backend, "delete_endpoint", None)
        describe = getattr(self.backend, "describe_endpoint", None)
        if delete is None or describe is None:
            raise RLConfigError(
                f"{type(self.backend).__name__} only invokes endpoints: delete "
                f"{self.endpoint_name!r} through a backend (RLHook(...).backend, LocalBackend()) "
                "or a boto3 'sagemaker' client."
            )
        config = describe(self.endpoint_name).endpoint_config_name
        delete(self.endpoint_name)
        delete_config = getattr(self.backend, "delete_endpoint_config", None)
        if delete_endpoint_config and delete_config is not None:
            delete_config(config)
