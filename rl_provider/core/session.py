"""Which backend an estimator trains on: its instance type, or the SDK v2 session it was given.

The core never imports a backend module at import time: each function goes through
``rl_provider.backends.registry`` when called.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from rl_provider.core import images
from rl_provider.exceptions import RLConfigError

if TYPE_CHECKING:
    from rl_provider.backends.base import TrainingBackend

DEFAULT_REGION = "us-west-2"


def resolve_region(backend: TrainingBackend | None = None) -> str:
    """The backend's region; else ``AWS_REGION`` / ``AWS_DEFAULT_REGION``; else us-west-2."""
    region = backend.region if backend is not None else None
    if region:
        return region
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or DEFAULT_REGION


def default_backend(instance_type: str) -> TrainingBackend:
    """The local backend for ``local*`` instance types, SageMaker otherwise.

    Through ``rl_provider.backends.registry``, imported when called: the core never depends on
    a backend module at import time.
    """
    if images.is_ray_instance_type(instance_type):
        raise RLConfigError(
            f"instance_type={instance_type!r} trains on a Ray cluster: pass "
            "backend=RayBackend('http://<head>:8265', token=...) "
            "(from rl_provider.backends.ray import RayBackend)."
        )
    from rl_provider.backends.registry import open_backend
    from rl_provider.settings import BackendKind, BackendSettings

    kind = BackendKind.LOCAL if instance_type.startswith("local") else BackendKind.SAGEMAKER
    return open_backend(BackendSettings(backend=kind))


def backend_for_session(session: object) -> TrainingBackend:
    """The backend an SDK v2 ``sagemaker_session`` stands for (duck-typed, the SDK is never
    imported): a ``sagemaker.local.LocalSession`` (``local_mode`` true) is the local backend; a
    ``sagemaker.session.Session`` (``boto_session``, ``sagemaker_client``) is SageMaker with that
    session's boto3 clients, region and default bucket.
    """
    from rl_provider.backends.registry import AwsClients, open_backend
    from rl_provider.settings import BackendKind, BackendSettings

    if getattr(session, "local_mode", False):
        return open_backend(BackendSettings(backend=BackendKind.LOCAL))
    boto_session = getattr(session, "boto_session", None)
    sagemaker_client = getattr(session, "sagemaker_client", None)
    if boto_session is None or sagemaker_client is None or not hasattr(session, "default_bucket"):
        raise RLConfigError(
            f"sagemaker_session={session!r} is neither a sagemaker.session.Session (boto_session, "
            "sagemaker_client, default_bucket()) nor a sagemaker.local.LocalSession: pass one of "
            "those, or backend= (LocalBackend / SageMakerBackend)."
        )
    clients = {"sagemaker": sagemaker_client}
    runtime = getattr(session, "sagemaker_runtime_client", None)
    if runtime is not None:
        clients["sagemaker-runtime"] = runtime

    def factory(service: str) -> Any:
        return clients[service] if service in clients else boto_session.client(service)

    # The SDK keeps a configured default bucket here; otherwise both use sagemaker-<region>-<acct>.
    bucket = getattr(session, "_default_bucket_name_override", None) or getattr(
        session, "_default_bucket", None
    )
    settings = BackendSettings(
        backend=BackendKind.SAGEMAKER,
        region_name=getattr(session, "boto_region_name", None) or boto_session.region_name,
        bucket=bucket if isinstance(bucket, str) and bucket else None,
    )
    return open_backend(settings, aws=AwsClients(client_factory=factory))


def chosen_backend(
    backend: TrainingBackend | None, sagemaker_session: object
) -> TrainingBackend | None:
    """``backend=``, or the backend ``sagemaker_session=`` stands for; never both."""
    if sagemaker_session is None:
        return backend
    if backend is not None:
        raise RLConfigError(
            "Pass sagemaker_session= or backend=, not both: the session stands for a backend."
        )
    return backend_for_session(sagemaker_session)
