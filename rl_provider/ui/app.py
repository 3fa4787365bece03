"""The FastAPI app Airflow's API server mounts under ``/rl``: HTML pages and their JSON API.

Every route, the static script included, depends on ``access.can_read`` (an authenticated Airflow
user who may read DAGs); Stop and invoke also on ``access.can_act`` and ``access.same_origin``.
The OpenAPI schema and docs pages are off: nothing here answers without a token.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import FastAPI, Query, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from rl_provider.exceptions import (
    EndpointNotFoundError,
    JobNotFoundError,
    ModelInvocationError,
    ModelNotFoundError,
    RLConfigError,
    RLProviderError,
)
from rl_provider.hooks.rl import DEFAULT_CONN_ID
from rl_provider.ui import access, data, render
from rl_provider.ui.connections import backend_for, list_connections

if TYPE_CHECKING:
    from rl_provider.backends.base import Backend
    from rl_provider.core.jobs import TrainingJobDescription

__all__ = ["create_app"]

Conn = Annotated[str, Query(max_length=250)]
_STATIC = {"rl.js": "text/javascript", "rl.css": "text/css"}
# The pages run no inline script and load nothing from elsewhere (no CDN: no internet needed).
_SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'self'; form-action 'self'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def _status_code(err: RLProviderError) -> int:
    if isinstance(err, JobNotFoundError | ModelNotFoundError | EndpointNotFoundError):
        return 404
    if isinstance(err, RLConfigError):
        return 400
    if isinstance(err, ModelInvocationError):
        return 424  # the model answered with an error: not this server's failure
    return 502  # the backend (SageMaker, the local store) failed


def _json_arg(raw: str | None, what: str) -> Any:
    if raw is None or raw == "":
        return None
    try:
        return json.loads(raw)
    except ValueError:
        raise RLConfigError(f"{what} must be JSON, got {raw[:100]!r}.") from None


def create_app() -> FastAPI:
    """The plugin's app (``docs``/``openapi`` off, every route behind ``can_read``)."""
    app = FastAPI(
        title="rl_provider pages",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        dependencies=[access.can_read],
    )

    @app.exception_handler(RLProviderError)
    async def provider_error(request: Request, err: RLProviderError) -> Response:
        code = _status_code(err)
        if _is_api(request):
            return JSONResponse({"detail": str(err)}, status_code=code)
        return HTMLResponse(render.error_page(_context(request), code, str(err)), code)

    @app.exception_handler(HTTPException)
    async def login_first(request: Request, err: HTTPException) -> Response:
        """A page opened without a session goes to Airflow's login, then comes back."""
        if err.status_code == 401 and request.method == "GET" and not _is_api(request):
            from airflow.api_fastapi.app import get_auth_manager

            login = get_auth_manager().get_url_login(next_url=str(request.url))
            return RedirectResponse(login, status_code=303)
        return await http_exception_handler(request, err)

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Any) -> Response:
        response: Response = await call_next(request)
        response.headers.update(_SECURITY_HEADERS)
        return response

    # ------------------------------------------------------------------------------ pages
    @app.get("/", include_in_schema=False)
    def home(request: Request) -> RedirectResponse:
        return RedirectResponse(f"{request.scope.get('root_path', '')}/jobs", status_code=303)

    @app.get("/jobs", response_class=HTMLResponse)
    def jobs_page(
        request: Request, conn: Conn = DEFAULT_CONN_ID, status: str | None = None
    ) -> Response:
        wanted = data.parse_status(status)
        rows = data.job_rows(backend_for(conn), wanted)
        return HTMLResponse(render.jobs_page(_context(request, conn), rows, wanted))

    app.get("/jobs/{name}", response_class=HTMLResponse)(_one_page(data.job_page, render.job_page))
    for kind in _KINDS:
        app.get(f"/{kind.path}", response_class=HTMLResponse)(_list_page(kind))
        app.get(f"/{kind.path}/{{name}}", response_class=HTMLResponse)(
            _one_page(kind.one, kind.render_one)
        )

    @app.get("/static/{filename}", include_in_schema=False)
    def static(filename: str) -> Response:
        media_type = _STATIC.get(filename)
        if media_type is None:
            return Response("Not found", status_code=404, media_type="text/plain")
        text = resources.files("rl_provider.ui").joinpath("static", filename).read_text("utf-8")
        return Response(text, media_type=media_type)

    # -------------------------------------------------------------------------------- API
    @app.get("/api/connections")
    def api_connections() -> dict[str, Any]:
        return {"connections": list_connections()}

    @app.get("/api/jobs")
    def api_jobs(
        conn: Conn = DEFAULT_CONN_ID,
        status: str | None = None,
        limit: Annotated[int, Query(ge=1, le=data.MAX_JOBS)] = data.MAX_JOBS,
    ) -> dict[str, Any]:
        rows = data.job_rows(backend_for(conn), data.parse_status(status), limit)
        return {"jobs": rows}

    app.get("/api/jobs/{name}")(_one_api(data.job_page))

    @app.get("/api/jobs/{name}/metrics")
    def api_metrics(
        name: str, conn: Conn = DEFAULT_CONN_ID, cursor: str | None = None
    ) -> dict[str, Any]:
        backend, job, after = _status_first(conn, name, cursor)
        series, after = data.metric_points(backend, job, after)
        return {"series": series, "cursor": json.dumps(after), **_state(job)}

    @app.get("/api/jobs/{name}/logs")
    def api_logs(
        name: str, conn: Conn = DEFAULT_CONN_ID, cursor: str | None = None
    ) -> dict[str, Any]:
        backend, job, after = _status_first(conn, name, cursor)
        lines, after, skipped = data.log_tail(backend, name, after)
        return {"lines": lines, "cursor": json.dumps(after), "skipped": skipped, **_state(job)}

    @app.post("/api/jobs/{name}/stop", dependencies=[access.can_act])
    def api_stop(request: Request, name: str, conn: Conn = DEFAULT_CONN_ID) -> dict[str, Any]:
        access.same_origin(request)
        backend = backend_for(conn)
        backend.stop_training_job(name)
        return _state(backend.describe_training_job(name))

    for kind in _KINDS:
        app.get(f"/api/{kind.path}")(_list_api(kind))
        app.get(f"/api/{kind.path}/{{name}}")(_one_api(kind.one))

    @app.post("/api/endpoints/{name}/invoke", dependencies=[access.can_act])
    async def api_invoke(request: Request, name: str, conn: Conn = DEFAULT_CONN_ID) -> Response:
        access.same_origin(request)
        body = await request.body()
        try:
            json.loads(body)
        except ValueError as err:
            raise RLConfigError(f"The request body is not JSON: {err}.") from None
        answer = await run_in_threadpool(_invoke, conn, name, body)
        return JSONResponse(answer)

    return app


@dataclass(frozen=True, slots=True)
class _Kind:
    """Models or endpoints: a list page and a page per name, each with its JSON twin under
    ``/api`` (training jobs have these too, plus a status filter, logs, metrics and Stop)."""

    path: str
    rows: Callable[[Backend], list[dict[str, Any]]]
    one: Callable[[Backend, str], dict[str, Any]]
    render_rows: Callable[[render.Context, Sequence[Mapping[str, Any]]], str]
    render_one: Callable[[render.Context, Mapping[str, Any]], str]


_KINDS = (
    _Kind("models", data.model_rows, data.model_page, render.models_page, render.model_page),
    _Kind(
        "endpoints",
        data.endpoint_rows,
        data.endpoint_page,
        render.endpoints_page,
        render.endpoint_page,
    ),
)


# The routes the table above makes: FastAPI reads the parameters from these signatures.
def _list_page(kind: _Kind) -> Callable[..., Response]:
    def page(request: Request, conn: Conn = DEFAULT_CONN_ID) -> Response:
        return HTMLResponse(kind.render_rows(_context(request, conn), kind.rows(backend_for(conn))))

    return page


def _one_page(
    one: Callable[[Backend, str], dict[str, Any]],
    render_one: Callable[[render.Context, Mapping[str, Any]], str],
) -> Callable[..., Response]:
    def page(request: Request, name: str, conn: Conn = DEFAULT_CONN_ID) -> Response:
        return HTMLResponse(render_one(_context(request, conn), one(backend_for(conn), name)))

    return page


def _list_api(kind: _Kind) -> Callable[..., dict[str, Any]]:
    def api(conn: Conn = DEFAULT_CONN_ID) -> dict[str, Any]:
        return {kind.path: kind.rows(backend_for(conn))}

    return api


def _one_api(one: Callable[[Backend, str], dict[str, Any]]) -> Callable[..., dict[str, Any]]:
    def api(name: str, conn: Conn = DEFAULT_CONN_ID) -> dict[str, Any]:
        return one(backend_for(conn), name)

    return api


def _invoke(conn: str, name: str, body: bytes) -> dict[str, Any]:
    response = backend_for(conn).invoke_endpoint(
        EndpointName=name, Body=body, ContentType="application/json", Accept="application/json"
    )
    payload = response["Body"].read()
    return {
        "content_type": response.get("ContentType", ""),
        "body": payload.decode("utf-8", errors="replace"),
    }


def _status_first(
    conn: str, name: str, cursor: str | None
) -> tuple[Backend, TrainingJobDescription, Any]:
    """The backend, the job and the parsed cursor of a read of new points or lines: the status
    is asked first, so what is read after it includes everything up to a terminal state."""
    backend = backend_for(conn)
    return backend, backend.describe_training_job(name), _json_arg(cursor, "cursor")


def _state(job: Any) -> dict[str, Any]:
    return {
        "status": job.training_job_status.value,
        "secondary_status": None if job.secondary_status is None else job.secondary_status.value,
        "failure_reason": job.failure_reason,
        "terminal": job.is_terminal,
    }


def _is_api(request: Request) -> bool:
    return request.url.path.startswith(f"{request.scope.get('root_path', '')}/api/")


def _context(request: Request, conn: str = DEFAULT_CONN_ID) -> render.Context:
    try:
        conns = list_connections()
    except SQLAlchemyError:  # an error page must render even when the database is the problem
        conns = [DEFAULT_CONN_ID]
    if conn not in conns:
        conns.append(conn)
    return render.Context(root=request.scope.get("root_path", ""), conn=conn, conns=conns)
