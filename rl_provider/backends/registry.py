"""Backend selection in one place: the kinds, their settings, and ``open_backend``.

The hook (from an Airflow connection), the CLI (from its options) and the core (from an
instance type or a SageMaker SDK session) all describe the backend they want as
``BackendSettings`` and call ``open_backend``. Light to import: the backend packages (boto3,
aiobotocore behind them) are imported only when one is opened.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rl_provider.core.enums import CoercibleEnum
from rl_provider.exceptions import RLConfigError

if TYPE_CHECKING:
    from rl_provider.backends.base import AsyncBackend, Backend

__all__ = [
    "DEFAULT_CONN_ID",
    "AwsClients",
    "BackendKind",
    "BackendSettings",
    "open_async_backend",
    "open_backend",
]

DEFAULT_CONN_ID = "rl_default"
# Extras written by the connection form of Airflow < 2.3 carry this prefix; accept both.
_PREFIX = "extra__rl__"


class BackendKind(CoercibleEnum):
    """Where jobs run: the embedded local backend or AWS SageMaker."""

    LOCAL = "local"
    SAGEMAKER = "sagemaker"


@dataclass(frozen=True, slots=True, kw_only=True)
class BackendSettings:
    """Everything needed to build a backend; JSON-safe so triggers can carry it."""

    conn_id: str = DEFAULT_CONN_ID
    backend: BackendKind = BackendKind.LOCAL
    home: str | None = None
    aws_conn_id: str | None = "aws_default"
    region_name: str | None = None
    bucket: str | None = None
    verify: bool | str | None = None
    botocore_config: Mapping[str, Any] | None = None

    @classmethod
    def from_extras(cls, conn_id: str, extras: Mapping[str, Any]) -> BackendSettings:
        """Read a connection's extras; unknown keys are refused (a typo must not be ignored)."""
        values = {
            (key[len(_PREFIX) :] if key.startswith(_PREFIX) else key): value
            for key, value in extras.items()
            if value not in (None, "")
        }
        known = {"backend", "home", "aws_conn_id", "region_name", "bucket", "verify"}
        known.add("botocore_config")
        unknown = sorted(set(values) - known)
        if unknown:
            raise RLConfigError(
                f"Connection {conn_id!r} has unknown extras {unknown}: allowed are "
                f"{sorted(known)}. Remove or rename them."
            )
        config = values.get("botocore_config")
        if config is not None and not isinstance(config, Mapping):
            raise RLConfigError(
                f"Connection {conn_id!r} has botocore_config={config!r}: it must be a JSON "
                'object of botocore Config arguments, e.g. {"retries": {"mode": "standard"}}.'
            )
        return cls(
            conn_id=conn_id,
            backend=BackendKind.coerce(
                values.get("backend", BackendKind.LOCAL),
                argument=f"backend extra of connection {conn_id!r}:",
                fix='Fix the connection\'s extra, e.g. {"backend": "local"}.',
            ),
            home=values.get("home"),
            aws_conn_id=values.get("aws_conn_id", "aws_default"),
            region_name=values.get("region_name"),
            bucket=values.get("bucket"),
            verify=values.get("verify"),
            botocore_config=dict(config) if config is not None else None,
        )

    def to_dict(self) -> dict[str, Any]:
        """The non-default settings, for a trigger's ``serialize()``."""
        out: dict[str, Any] = {"conn_id": self.conn_id, "backend": self.backend.value}
        for key in ("home", "region_name", "bucket", "verify", "botocore_config"):
            value = getattr(self, key)
            if value is not None:
                out[key] = dict(value) if isinstance(value, Mapping) else value
        out["aws_conn_id"] = self.aws_conn_id
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BackendSettings:
        conn_id = str(data.get("conn_id", DEFAULT_CONN_ID))
        return cls.from_extras(conn_id, {k: v for k, v in data.items() if k != "conn_id"})


@dataclass(frozen=True, slots=True, kw_only=True)
class AwsClients:
    """How a SageMaker backend gets its clients (default: boto3's / aiobotocore's own chain).

    The hook passes factories built from the Amazon provider's ``AwsBaseHook``; the core passes
    the clients of a SageMaker SDK session.
    """

    client_factory: Callable[[str], Any] | None = None
    async_client_factory: Callable[[str], Any] | None = None
    client_pool_key: Hashable | None = None


def open_backend(settings: BackendSettings, *, aws: AwsClients | None = None) -> Backend:
    """The synchronous backend ``settings`` name."""
    if settings.backend is BackendKind.SAGEMAKER:
        from rl_provider.backends.sagemaker import SageMakerBackend

        # No region given: the backend asks its client (the aws connection's region); resolving
        # it here would read the aws connection synchronously, also from a trigger.
        sagemaker: Backend = SageMakerBackend(
            client_factory=aws.client_factory if aws else None,
            region_name=settings.region_name,
            bucket=settings.bucket,
        )
        return sagemaker
    from rl_provider.backends.local import LocalBackend

    local: Backend = LocalBackend(settings.home, region=settings.region_name)
    return local


def open_async_backend(
    settings: BackendSettings, backend: Backend, *, aws: AwsClients | None = None
) -> AsyncBackend:
    """The async twin of ``backend`` (``open_backend(settings, aws=aws)``) for triggers."""
    if settings.backend is BackendKind.SAGEMAKER:
        from rl_provider.backends.sagemaker import AsyncSageMakerBackend

        sagemaker: AsyncBackend = AsyncSageMakerBackend(
            async_client_factory=aws.async_client_factory if aws else None,
            region_name=settings.region_name,
            client_pool_key=aws.client_pool_key if aws else None,
        )
        return sagemaker
    from rl_provider.backends.local import AsyncLocalBackend, LocalBackend

    if not isinstance(backend, LocalBackend):  # inside backends/: the kind's own class
        raise RLConfigError(f"{backend!r} is not the local backend that {settings!r} names.")
    return AsyncLocalBackend(backend)
