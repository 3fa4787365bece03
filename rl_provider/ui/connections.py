"""The ``rl`` connections the pages can show, and one backend per connection.

The API server is not a task: Airflow's task SDK would see only environment and secrets-backend
connections there, so the connection is read with the server-side model, which also reads the
metadata database (where the UI and REST API store connections).
"""

from __future__ import annotations

import json
import threading
from typing import TYPE_CHECKING

from rl_provider.exceptions import RLConfigError
from rl_provider.hooks.rl import CONN_TYPE, DEFAULT_CONN_ID, BackendSettings, RLHook

if TYPE_CHECKING:
    from rl_provider.backends.base import Backend

__all__ = ["backend_for", "list_connections"]

_lock = threading.Lock()
# (conn_id, settings as JSON) -> backend: building a SageMaker backend costs boto3 sessions, and a
# changed connection gets a new key, so an edit in the Connections page takes effect at once.
_backends: dict[tuple[str, str], Backend] = {}


def list_connections() -> list[str]:
    """``rl_default`` (present or not: the local backend) and every ``rl`` connection, sorted."""
    from airflow.models.connection import Connection
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        stored = session.scalars(
            select(Connection.conn_id).where(Connection.conn_type == CONN_TYPE)
        ).all()
    return [DEFAULT_CONN_ID, *sorted(set(stored) - {DEFAULT_CONN_ID})]


def settings_for(conn_id: str) -> BackendSettings:
    """The connection's backend settings; a connection of another type is refused."""
    from airflow.models.connection import Connection
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        connection = Connection.get_connection_from_secrets(conn_id)
    except AirflowNotFoundException:
        if conn_id == DEFAULT_CONN_ID:
            return BackendSettings(conn_id=conn_id)  # the documented default: local backend
        raise RLConfigError(f"Connection {conn_id!r} does not exist.") from None
    if connection.conn_type != CONN_TYPE:
        raise RLConfigError(
            f"Connection {conn_id!r} is of type {connection.conn_type!r}, not {CONN_TYPE!r}."
        )
    return BackendSettings.from_extras(
        conn_id, connection.extra_dejson, password=connection.password or None
    )


def backend_for(conn_id: str) -> Backend:
    """The backend of an ``rl`` connection, built once per connection definition."""
    settings = settings_for(conn_id)
    key = (conn_id, json.dumps(settings.to_dict(), sort_keys=True))
    with _lock:
        backend = _backends.get(key)
        if backend is None:
            backend = RLHook(conn_id, settings=settings).backend
            # The connection's previous definition will not be asked for again.
            for stale in [k for k in _backends if k[0] == conn_id]:
                del _backends[stale]
            _backends[key] = backend
    return backend
