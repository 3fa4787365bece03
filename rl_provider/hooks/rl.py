"""``RLHook``: turns an Airflow ``rl`` connection into a backend (local or SageMaker).

Connection extras (all optional):

- ``backend``: ``local`` (default) or ``sagemaker``.
- ``home``: the local backend's state directory (default: ``RL_PROVIDER_HOME``,
  ``$AIRFLOW_HOME/rl_provider``, ``~/.rl_provider``).
- ``aws_conn_id``, ``region_name``, ``verify``, ``botocore_config``: how the SageMaker backend
  builds its clients, through the Amazon provider's ``AwsBaseHook`` (same names as its triggers).
- ``bucket``: the SageMaker backend's default bucket for code and output.
- ``address``, ``runtime_env``, ``storage`` (backend ``ray``): the Ray job server's URL
  (``http://head:8265``), a runtime_env merged into every job's, and the default output path
  (file:// shared by the nodes, or s3://). The cluster's token is the connection's password.

A missing ``rl_default`` connection means the local backend with the default home, so the
example DAGs run on a fresh machine; a missing connection of any other id is an error (a typo
must not silently train somewhere else).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook

from rl_provider.exceptions import RLConfigError
from rl_provider.settings import DEFAULT_CONN_ID, BackendKind, BackendSettings

if TYPE_CHECKING:
    from rl_provider.backends.base import AsyncBackend, Backend
    from rl_provider.backends.registry import AwsClients

__all__ = ["DEFAULT_CONN_ID", "BackendKind", "BackendSettings", "RLHook", "backend_kind"]

CONN_TYPE = "rl"


class RLHook(BaseHook):
    """The ``rl`` connection: ``backend`` for operators and sensors, ``async_backend`` for triggers.

    :param conn_id: the ``rl`` connection to read (``rl_default`` may be absent: local backend).
    :param settings: already resolved settings (a trigger passes what the operator resolved, so
        the triggerer never looks the connection up from its event loop).
    """

    conn_name_attr = "conn_id"
    default_conn_name = DEFAULT_CONN_ID
    conn_type = CONN_TYPE
    hook_name = "Reinforcement Learning (rl_provider)"

    def __init__(
        self, conn_id: str = DEFAULT_CONN_ID, *, settings: BackendSettings | None = None
    ) -> None:
        super().__init__()
        self.conn_id = conn_id
        self._settings = settings

    def __repr__(self) -> str:
        return f"RLHook(conn_id={self.conn_id!r})"

    @cached_property
    def settings(self) -> BackendSettings:
        """The connection's settings; ``rl_default`` missing -> the local backend defaults."""
        if self._settings is not None:
            return self._settings
        settings = _read_settings(self.conn_id)
        if settings is None:
            self.log.info("No %s connection: using the local backend.", DEFAULT_CONN_ID)
            return BackendSettings(conn_id=self.conn_id)
        return settings

    @cached_property
    def backend(self) -> Backend:
        """The synchronous backend (built once per hook)."""
        return self._build()[0]

    @cached_property
    def async_backend(self) -> AsyncBackend:
        """The async backend triggers poll with (never blocks the event loop)."""
        return self._build()[1]

    def _build(self) -> tuple[Backend, AsyncBackend]:
        built: tuple[Backend, AsyncBackend] | None = self.__dict__.get("_built")
        if built is None:
            from rl_provider.backends.registry import open_async_backend, open_backend

            settings = self.settings
            aws = _aws_clients(settings) if settings.backend is BackendKind.SAGEMAKER else None
            backend = open_backend(settings, aws=aws)
            built = (backend, open_async_backend(settings, backend, aws=aws))
            self.__dict__["_built"] = built
        return built

    def get_conn(self) -> Backend:
        return self.backend

    def test_connection(self) -> tuple[bool, str]:
        """Build the backend (what the UI's Test button calls)."""
        try:
            backend = self.backend
        except Exception as err:  # the UI shows any failure as text
            return False, str(err)
        return True, f"{self.settings.backend.value} backend ready: {backend!r}"


def _read_settings(conn_id: str) -> BackendSettings | None:
    """The connection's settings; None for a missing ``rl_default`` (the local defaults)."""
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        connection = RLHook.get_connection(conn_id)
    except AirflowNotFoundException:
        if conn_id != DEFAULT_CONN_ID:
            raise RLConfigError(
                f"Airflow connection {conn_id!r} does not exist: create it (type "
                f"{CONN_TYPE!r}) or use conn_id={DEFAULT_CONN_ID!r}, which may be absent "
                "(the local backend)."
            ) from None
        return None
    return BackendSettings.from_extras(
        conn_id, connection.extra_dejson, password=connection.password or None
    )


def backend_kind(conn_id: str) -> BackendKind:
    """Which backend connection ``conn_id`` names (quietly: Airflow asks at every DAG parse,
    for the extra links a task declares)."""
    settings = _read_settings(conn_id)
    return BackendKind.LOCAL if settings is None else settings.backend


def _aws_clients(settings: BackendSettings) -> AwsClients:
    """SageMaker clients built from the Amazon provider's ``AwsBaseHook`` (its connection).

    The sync factory returns a boto3 client; the async one returns the provider's aiobotocore
    client as an async context manager, resolving the connection off the event loop
    (``AwsBaseHook.get_async_conn``).
    """
    from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

    from rl_provider.backends.registry import AwsClients

    def aws_hook(service: str | None = None) -> AwsBaseHook:
        return AwsBaseHook(
            aws_conn_id=settings.aws_conn_id,
            region_name=settings.region_name,
            verify=settings.verify,
            client_type=service,
            config=dict(settings.botocore_config) if settings.botocore_config else None,
        )

    def client_factory(service: str) -> Any:
        return aws_hook(service).get_client_type(region_name=settings.region_name)

    @contextlib.asynccontextmanager
    async def async_client_factory(service: str) -> AsyncIterator[Any]:
        # AwsBaseHook.get_async_conn is untyped in the Amazon provider.
        async with await aws_hook(service).get_async_conn() as client:  # type: ignore[no-untyped-call]
            yield client

    # Every trigger of the triggerer with the same AWS settings shares one client per service.
    pool_key = (
        settings.aws_conn_id,
        settings.region_name,
        repr(settings.verify),
        json.dumps(settings.botocore_config, sort_keys=True, default=str),
    )
    return AwsClients(
        client_factory=client_factory,
        async_client_factory=async_client_factory,
        client_pool_key=pool_key,
    )
