"""``RayBackend``: SageMaker's training API on an existing Ray cluster, over the Ray Jobs REST API.

``create_training_job(**request)`` submits a Ray job whose ``submission_id`` is the
TrainingJobName; its entrypoint is the launcher (``launcher.py``), which travels with the job in
its ``runtime_env`` ``working_dir`` together with the stdlib-only modules it reuses, so the cluster
needs nothing of ours installed (``submission.py`` builds what is sent). Plain HTTP through httpx
(no ``import ray`` here): one client per backend, and in the async twin one ``httpx.AsyncClient``
per event loop shared by every trigger.

Serving is the local backend's: a model trained on Ray deploys on this machine (its
``model.tar.gz`` is at a file:// or s3:// location the machine reads), so the model and endpoint
methods delegate to ``serving`` (a ``LocalBackend`` unless given). docs/RAY.md.
"""

from __future__ import annotations

import asyncio
import functools
import weakref
from collections.abc import AsyncGenerator, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, Unpack

import httpx

from rl_provider.backends.base import Backend, ListFilter, ListQuery
from rl_provider.backends.local import transfer
from rl_provider.backends.ray.state import ARN, REQUEST_KEY
from rl_provider.backends.ray.submission import Submission
from rl_provider.backends.ray.tracking import JobTracker, http_error
from rl_provider.core.jobs import EndpointDescription, TrainingJobDescription
from rl_provider.exceptions import BackendError, ResourceExistsError, RLConfigError

if TYPE_CHECKING:
    from rl_provider.backends.local import LocalBackend

# SageMaker gives a stopped job's processes 120 s between SIGTERM and SIGKILL.
DEFAULT_STOP_GRACE_SECONDS = 120.0
# Time Ray leaves the launcher after the grace to package and upload the artifacts.
DEFAULT_UPLOAD_SECONDS = 120.0
_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
_R = TypeVar("_R")


def _served(method: Callable[..., _R]) -> Callable[..., _R]:
    """``method`` of the ``Backend`` protocol, called on the backend's ``serving`` (same name,
    signature and docstring: the protocol's, so the two cannot drift apart)."""
    name = method.__name__

    @functools.wraps(method)
    def forward(self: Any, /, *args: Any, **kwargs: Any) -> _R:
        result: _R = getattr(self.serving, name)(*args, **kwargs)
        return result

    return forward


class RayBackend:
    """Train on a Ray cluster through its job server (``address``: e.g. ``http://head:8265``).

    ``token``: the cluster's auth token (``RAY_AUTH_MODE=token``), sent as a bearer token;
    ``headers``: more HTTP headers (a proxy's); ``runtime_env``: merged into every job's (not
    ``working_dir``, which carries the launcher); ``storage``: the default output path (file://
    on a filesystem every node and this machine share, or s3://); ``serving``: the backend models
    and endpoints go to (the local one by default).
    """

    poll_interval = 2.0

    def __init__(
        self,
        address: str,
        *,
        token: str | None = None,
        headers: Mapping[str, str] | None = None,
        runtime_env: Mapping[str, Any] | None = None,
        storage: str | None = None,
        stop_grace_seconds: float = DEFAULT_STOP_GRACE_SECONDS,
        upload_seconds: float = DEFAULT_UPLOAD_SECONDS,
        serving: LocalBackend | None = None,
        region: str | None = None,
    ) -> None:
        self._jobs = JobTracker(address, token, headers)
        self._submission = Submission(
            runtime_env=dict(runtime_env or {}),
            stop_grace=stop_grace_seconds,
            upload_seconds=upload_seconds,
        )
        self.address = self._jobs.address
        self.storage = storage.rstrip("/") if storage else None
        self._serving = serving
        self._region = region
        self._client: httpx.Client | None = None

    def __repr__(self) -> str:
        return f"RayBackend({self.address!r})"

    @property
    def http(self) -> httpx.Client:
        if self._client is None:
            self._client = httpx.Client(
                base_url=self.address, headers=self._jobs.headers, timeout=_TIMEOUT
            )
        return self._client

    def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return self.http.request(method, path, **kwargs)
        except httpx.HTTPError as err:
            raise BackendError(
                f"The Ray job server at {self.address} did not answer: {err}"
            ) from err

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    @property
    def serving(self) -> LocalBackend:
        if self._serving is None:
            from rl_provider.backends.local import LocalBackend

            self._serving = LocalBackend()
        return self._serving

    @property
    def region(self) -> str | None:
        return self._region

    def dashboard_url(self, name: str) -> str:
        """The job's page in the Ray dashboard (the train task's extra link)."""
        return f"{self.address}/#/jobs/{name}"

    def default_output_path(self) -> str:
        if self.storage is None:
            raise RLConfigError(
                "The Ray backend has no default output path: pass output_path= (file:// on a "
                "filesystem the cluster's nodes share, or s3://) or RayBackend(storage=...)."
            )
        return self.storage

    def upload_code(self, archive: Path, uri: str) -> str:
        if not uri.startswith(("file://", "s3://")):
            raise RLConfigError(
                f"Code location {uri!r}: the Ray cluster reads file:// (shared) or s3:// only."
            )
        try:
            transfer.publish(archive, uri)
        except OSError as err:
            raise BackendError(f"Could not upload the code to {uri}: {err}") from err
        return uri

    # ------------------------------------------------------------------------- training
    def validate_training_request(self, request: Mapping[str, Any]) -> None:
        """Bad input, then a taken name: refused before anything is uploaded or submitted."""
        name = self._submission.validate(request)
        if self._call("GET", f"/api/jobs/{name}").status_code != 404:
            raise ResourceExistsError(
                f"Training job {name!r} already exists on the Ray cluster: training job names "
                "must be unique (SageMaker rule); pick another name or attach to it."
            )

    def create_training_job(self, **request: Any) -> dict[str, Any]:
        self.validate_training_request(request)
        name = str(request["TrainingJobName"])
        package, data = self._submission.package(request)
        path = f"/api/packages/gcs/{package}"
        if self._call("GET", path).status_code != 200:
            uploaded = self._call("PUT", path, content=data)
            if uploaded.status_code != 200:
                raise http_error(uploaded, f"Uploading the launcher of training job {name!r}")
        submitted = self._call("POST", "/api/jobs/", json=self._submission.body(request, package))
        if submitted.status_code != 200:
            # Two submitters raced for the name: the loser's job exists under it now.
            if self._call("GET", f"/api/jobs/{name}").status_code == 200:
                raise ResourceExistsError(
                    f"Training job {name!r} already exists on the Ray cluster."
                )
            raise http_error(submitted, f"Submitting training job {name!r}")
        return {"TrainingJobArn": ARN.format(name)}

    def _info(self, name: str) -> dict[str, Any]:
        return self._jobs.info(name, self._call("GET", f"/api/jobs/{name}"))

    def _log(self, name: str) -> str | None:
        return self._jobs.log(name, self._call("GET", f"/api/jobs/{name}/logs"))

    def describe_training_job(self, name: str) -> TrainingJobDescription:
        info = self._info(name)
        text = self._log(name) if self._jobs.wants_log(name) else None
        return self._jobs.describe(name, info, text)

    def stop_training_job(self, name: str) -> None:
        """Ray sends SIGTERM to the launcher and the entry point; the launcher gives the entry
        point the grace period, packages the artifacts and reports Stopped."""
        if self.describe_training_job(name).is_terminal:
            return  # SageMaker ignores a stop of a job that ended
        self._jobs.stopping.add(name)
        stopped = self._call("POST", f"/api/jobs/{name}/stop")
        if stopped.status_code != 200:
            raise http_error(stopped, f"Stopping training job {name!r}")

    def read_logs(self, name: str, cursor: Any = None) -> tuple[list[str], Any]:
        """The entry point's complete lines after ``cursor`` (a character offset)."""
        text = self._jobs.recent(name)
        if text is None:
            text = self._log(name)
        return self._jobs.lines(name, text, cursor)

    def log_location(self, name: str) -> str:
        """The job's page in the Ray dashboard, which shows its log."""
        return self.dashboard_url(name)

    def metrics(self, name: str) -> dict[str, list[tuple[float, float]]]:
        return self._jobs.metrics(name, self._log(name))

    def list_training_jobs(self, **filters: Unpack[ListFilter]) -> dict[str, Any]:
        query = ListQuery.of(filters)
        listed = self._call("GET", "/api/jobs/")
        if listed.status_code != 200:
            raise http_error(listed, "Listing training jobs")
        ours = sorted(
            (
                job
                for job in listed.json()
                if REQUEST_KEY in (job.get("metadata") or {}) and job.get("submission_id")
            ),
            key=lambda job: -(job.get("start_time") or 0),
        )
        names = [str(job["submission_id"]) for job in ours]

        def summary(name: str) -> dict[str, Any] | None:
            description = self.describe_training_job(name)
            if not query.wants(description.training_job_status.value):
                return None
            return {
                "TrainingJobName": name,
                "TrainingJobArn": ARN.format(name),
                "TrainingJobStatus": description.training_job_status.value,
                "SecondaryStatus": str(description.secondary_status),
                "CreationTime": description.creation_time,
                "TrainingEndTime": description.training_end_time,
                "LastModifiedTime": description.last_modified_time,
            }

        return {"TrainingJobSummaries": query.page(names, str, summary)}

    def list_tags(self, arn: str) -> list[dict[str, str]]:
        name = arn.rsplit("/", 1)[-1]
        return [dict(tag) for tag in self._info(name)["_request"].get("Tags", [])]

    # ------------------------------------------- models and endpoints: the serving backend's
    # Each is the Backend protocol's method, forwarded to ``serving`` (docs/RAY.md, "Serving").
    repack_model = _served(Backend.repack_model)
    create_model = _served(Backend.create_model)
    describe_model = _served(Backend.describe_model)
    delete_model = _served(Backend.delete_model)
    list_models = _served(Backend.list_models)
    create_endpoint_config = _served(Backend.create_endpoint_config)
    describe_endpoint_config = _served(Backend.describe_endpoint_config)
    delete_endpoint_config = _served(Backend.delete_endpoint_config)
    create_endpoint = _served(Backend.create_endpoint)
    update_endpoint = _served(Backend.update_endpoint)
    describe_endpoint = _served(Backend.describe_endpoint)
    delete_endpoint = _served(Backend.delete_endpoint)
    list_endpoints = _served(Backend.list_endpoints)
    invoke_endpoint = _served(Backend.invoke_endpoint)


_ClientKey = tuple[str, tuple[tuple[str, str], ...]]


@dataclass
class _Shared:
    client: httpx.AsyncClient
    users: int = 0


@dataclass
class _LoopClients:
    """One event loop's shared clients, and the parked generator that closes them."""

    clients: dict[_ClientKey, _Shared] = field(default_factory=dict)
    closer: AsyncGenerator[None, None] | None = None

    async def park(self) -> None:
        """Close the clients still open when the loop ends: ``asyncio.run`` (the triggerer's
        too) closes every live async generator (``loop.shutdown_asyncgens``) while its loop
        still runs."""

        async def closer() -> AsyncGenerator[None, None]:
            try:
                yield
            finally:
                # The generator refers to the loop (its finalizer hook): let both go.
                self.closer = None
                shared, self.clients = list(self.clients.values()), {}
                for entry in shared:
                    await entry.client.aclose()

        self.closer = closer()
        await self.closer.__anext__()


class AsyncRayBackend:
    """The triggers' twin: the same calls on one ``httpx.AsyncClient`` per event loop and
    address, shared by every trigger of the process (O(1) descriptors per trigger) and closed
    by the ``aclose()`` of its last user, or when the loop ends (``_LoopClients.park``)."""

    _loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopClients] = (
        weakref.WeakKeyDictionary()
    )

    def __init__(
        self,
        address: str,
        *,
        token: str | None = None,
        headers: Mapping[str, str] | None = None,
        serving: LocalBackend | None = None,
    ) -> None:
        self._jobs = JobTracker(address, token, headers)
        self.address = self._jobs.address
        self._serving = serving
        self._key: _ClientKey = (self.address, tuple(sorted(self._jobs.headers.items())))
        self._held: asyncio.AbstractEventLoop | None = None  # the loop whose client it uses

    async def _client(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        ours = self._loops.get(loop)
        if ours is None:
            ours = self._loops[loop] = _LoopClients()
            await ours.park()
        shared = ours.clients.get(self._key)
        if shared is None:
            shared = ours.clients[self._key] = _Shared(self._new_client())
        elif shared.client.is_closed:
            shared.client = self._new_client()
        if self._held is not loop:
            self._release()
            shared.users += 1
            self._held = loop
        return shared.client

    def _new_client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.address, headers=self._jobs.headers, timeout=_TIMEOUT
        )

    def _release(self) -> httpx.AsyncClient | None:
        """Stop using the shared client; return it when this was its last user."""
        loop, self._held = self._held, None
        ours = self._loops.get(loop) if loop is not None else None
        shared = ours.clients.get(self._key) if ours is not None else None
        if ours is None or shared is None:
            return None
        shared.users -= 1
        if shared.users > 0:
            return None
        del ours.clients[self._key]
        return shared.client

    async def _call(self, method: str, path: str) -> httpx.Response:
        try:
            return await (await self._client()).request(method, path)
        except httpx.HTTPError as err:
            raise BackendError(
                f"The Ray job server at {self.address} did not answer: {err}"
            ) from err

    async def _info(self, name: str) -> dict[str, Any]:
        return self._jobs.info(name, await self._call("GET", f"/api/jobs/{name}"))

    async def _log(self, name: str) -> str | None:
        return self._jobs.log(name, await self._call("GET", f"/api/jobs/{name}/logs"))

    async def describe_training_job(self, name: str) -> TrainingJobDescription:
        info = await self._info(name)
        text = await self._log(name) if self._jobs.wants_log(name) else None
        return self._jobs.describe(name, info, text)

    async def read_logs(self, name: str, cursor: Any = None) -> tuple[list[str], Any]:
        text = self._jobs.recent(name)
        if text is None:
            text = await self._log(name)
        return self._jobs.lines(name, text, cursor)

    async def stop_training_job(self, name: str) -> None:
        if (await self.describe_training_job(name)).is_terminal:
            return
        self._jobs.stopping.add(name)
        stopped = await self._call("POST", f"/api/jobs/{name}/stop")
        if stopped.status_code != 200:
            raise http_error(stopped, f"Stopping training job {name!r}")

    async def describe_endpoint(self, name: str) -> EndpointDescription:
        from rl_provider.backends.local import AsyncLocalBackend, LocalBackend

        serving = self._serving if self._serving is not None else LocalBackend()
        return await AsyncLocalBackend(serving).describe_endpoint(name)

    async def aclose(self) -> None:
        """Close the shared client if no other trigger of this loop uses it."""
        client = self._release()
        if client is not None:
            await client.aclose()
