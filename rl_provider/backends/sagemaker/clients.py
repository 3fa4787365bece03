"""How the SageMaker backend calls AWS: its clients (one per service, built by a factory),
one call with retries and error translation, region, account and default bucket."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from rl_provider.backends.sagemaker.calls import RetryPolicy, call
from rl_provider.exceptions import BackendError, RLConfigError

__all__ = ["SageMakerClients", "default_client_factory"]


def default_client_factory(region_name: str | None) -> Callable[[str], Any]:
    """Clients of one plain boto3 session, with botocore's adaptive retry mode."""
    import boto3
    from botocore.config import Config

    session = boto3.session.Session(region_name=region_name)
    # Adaptive mode: standard retries plus client-side rate limiting when AWS throttles.
    config = Config(retries={"mode": "adaptive", "max_attempts": 10})

    def factory(service: str) -> Any:
        return session.client(service, config=config)

    return factory


class SageMakerClients:
    """The AWS side every part of ``SageMakerBackend`` shares."""

    def __init__(
        self,
        *,
        client_factory: Callable[[str], Any] | None = None,
        region_name: str | None = None,
        bucket: str | None = None,
        poll_interval: float = 30.0,
        retry: RetryPolicy | None = None,
    ) -> None:
        self._factory = client_factory
        self._region_name = region_name
        self._bucket = bucket
        self.poll_interval = poll_interval
        self.retry = retry or RetryPolicy()
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._account: str | None = None
        self._ensured_buckets: set[str] = set()

    def __repr__(self) -> str:
        return f"SageMakerBackend(region_name={self._region_name!r}, bucket={self._bucket!r})"

    # --------------------------------------------------------------------------- clients
    def client(self, service: str) -> Any:
        """The boto3 client for ``service`` (one per backend; boto3 clients are thread-safe)."""
        from botocore.exceptions import NoRegionError

        with self._lock:
            if service not in self._clients:
                if self._factory is None:
                    self._factory = default_client_factory(self._region_name)
                try:
                    self._clients[service] = self._factory(service)
                except NoRegionError:
                    raise RLConfigError(
                        "No AWS region: pass region_name= (or the rl connection's region_name "
                        "extra), or set AWS_DEFAULT_REGION."
                    ) from None
            return self._clients[service]

    def _call(
        self,
        service: str,
        operation: str,
        *,
        not_found: Callable[[str], BackendError] | None = None,
        exists: str | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """One AWS call through ``calls.call``, without boto3's ``ResponseMetadata``."""
        response: dict[str, Any] = call(
            self.client(service),
            operation,
            self.retry,
            not_found=not_found,
            exists=exists,
            **kwargs,
        )
        response.pop("ResponseMetadata", None)
        return response

    def _missing(
        self, error: type[BackendError], what: str, name: str
    ) -> Callable[[str], BackendError]:
        """``not_found`` for a describe or delete of the named resource (``calls.translate``)."""
        return lambda message: error(
            f"Could not find {what} {name!r} in {self.region} ({message})."
        )

    @property
    def region(self) -> str | None:
        if self._region_name:
            return self._region_name
        region = self.client("sagemaker").meta.region_name
        return str(region) if region else None

    @property
    def account(self) -> str:
        """The AWS account of the credentials (STS GetCallerIdentity, asked once)."""
        if self._account is None:
            self._account = str(self._call("sts", "get_caller_identity")["Account"])
        return self._account

    @property
    def bucket(self) -> str:
        return self._bucket or f"sagemaker-{self.region}-{self.account}"

    def default_output_path(self) -> str:
        return f"s3://{self.bucket}/"
