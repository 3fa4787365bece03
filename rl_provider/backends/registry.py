"""Backend selection in one place: ``open_backend`` (kinds and settings: ``rl_provider.settings``).

The hook (from an Airflow connection), the CLI (from its options) and the core (from an
instance type or a SageMaker SDK session) all describe the backend they want as
``BackendSettings`` and call ``open_backend``. Light to import: the backend packages (boto3,
aiobotocore behind them) are imported only when one is opened.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rl_provider.exceptions import RLConfigError
from rl_provider.settings import DEFAULT_CONN_ID, BackendKind, BackendSettings

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
    if settings.backend is BackendKind.RAY:
        from rl_provider.backends.local import LocalBackend
        from rl_provider.backends.ray import RayBackend

        # Models trained on Ray are served by the local backend (docs/RAY.md).
        ray: Backend = RayBackend(
            str(settings.address),
            token=settings.token,
            runtime_env=settings.runtime_env,
            storage=settings.storage,
            serving=LocalBackend(settings.home, region=settings.region_name),
            region=settings.region_name,
        )
        return ray
    return _local(settings)


def _local(settings: BackendSettings) -> Backend:
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

    if settings.backend is BackendKind.RAY:
        from rl_provider.backends.ray import AsyncRayBackend, RayBackend

        if not isinstance(backend, RayBackend):  # inside backends/: the kind's own class
            raise RLConfigError(f"{backend!r} is not the Ray backend that {settings!r} names.")
        return AsyncRayBackend(str(settings.address), token=settings.token, serving=backend.serving)
    if not isinstance(backend, LocalBackend):
        raise RLConfigError(f"{backend!r} is not the local backend that {settings!r} names.")
    return AsyncLocalBackend(backend)
