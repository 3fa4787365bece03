"""Who may see and act: Airflow's auth manager decides, through its own FastAPI dependencies.

- Viewing (every page and GET route): an authenticated user with read access to DAGs
  (``is_authorized_dag(GET)``: the Viewer role and up).
- Acting (Stop a training job, invoke an endpoint): edit access to task instances
  (``is_authorized_dag(PUT, TASK_INSTANCE)``): the permission that marks a task failed, which
  is what stopping its training job amounts to (the User role and up).

The check is on DAGs in general (no ``dag_id``): a job is not tied to one DAG, and Airflow's own
``requires_access_dag`` would take a ``dag_id`` from the query string, letting a caller pick the
DAG it is checked against.

Airflow's ``get_user`` takes the JWT from the ``Authorization: Bearer`` header or the ``_token``
cookie that the Airflow login sets (httpOnly, SameSite=Lax); without either, 401. A state-changing
request authenticated by the cookie alone must also come from this origin (``same_origin``):
its ``Origin`` header must be the server's own, and its body JSON (a cross-site HTML form can
send neither), so another site cannot make a logged-in browser stop a job.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from airflow.api_fastapi.app import get_auth_manager
from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails
from airflow.api_fastapi.core_api.security import GetUserDep
from fastapi import Depends, HTTPException, Request, status

if TYPE_CHECKING:
    from airflow.api_fastapi.auth.managers.base_auth_manager import ResourceMethod

__all__ = ["can_act", "can_read", "same_origin"]


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def allowed_origins(request: Request) -> set[str]:
    """This server's origin as the browser saw it, and ``[api] base_url``'s when set."""
    from airflow.configuration import conf

    origins = {_origin(str(request.base_url))}
    base_url = conf.get("api", "base_url", fallback=None)
    if base_url and "://" in base_url:
        origins.add(_origin(base_url))
    return origins


def same_origin(request: Request) -> None:
    """CSRF guard for POST routes (see the module docstring)."""
    content_type = request.headers.get("content-type", "")
    if content_type.split(";")[0].strip().lower() != "application/json":
        raise HTTPException(
            status.HTTP_415_UNSUPPORTED_MEDIA_TYPE, "Send the request body as application/json."
        )
    if request.headers.get("authorization", "").lower().startswith("bearer "):
        return  # an explicit token: a browser never attaches one on its own
    origin = request.headers.get("origin")
    if origin is None or origin.lower() not in allowed_origins(request):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            "Cross-origin request refused: send it from the Airflow UI's origin or with an "
            "Authorization: Bearer token.",
        )


def _requires(
    method: ResourceMethod, entity: DagAccessEntity | None
) -> Callable[[GetUserDep], None]:
    def check(user: GetUserDep) -> None:
        allowed = get_auth_manager().is_authorized_dag(
            method=method, access_entity=entity, details=DagDetails(id=None), user=user
        )
        if not allowed:
            raise HTTPException(status.HTTP_403_FORBIDDEN, "Forbidden")

    return check


can_read = Depends(_requires("GET", None))
can_act = Depends(_requires("PUT", DagAccessEntity.TASK_INSTANCE))
