"""``AsyncSageMakerBackend``: what triggers need, as coroutines on aiobotocore clients.

Nothing runs on the caller's event loop but awaiting. Creating an aiobotocore client is
CPU-bound and synchronous inside its coroutine: botocore parses the service's JSON models once
per session (~0.2 s for SageMaker) and builds a client class with one method per operation on
every client (~0.17 s for SageMaker's 400 operations; both measured with cProfile). On a
triggerer's loop that would stall every other trigger at each poll. So every AWS coroutine runs
on one process-wide event loop of its own, on a daemon thread (``aws_loop()``), and the caller
awaits its future. Log tailing is the generator the blocking backend drives too (``logs.tail``),
so cursors are interchangeable.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Callable, Coroutine, Generator, Hashable
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from dataclasses import dataclass
from typing import Any, TypeVar

from rl_provider.backends.sagemaker import logs as cw
from rl_provider.backends.sagemaker.calls import RetryPolicy, acall, translate
from rl_provider.backends.sagemaker.requests import ENDPOINT, TRAINING_JOB, Resource
from rl_provider.core.enums import TrainingJobStatus
from rl_provider.core.jobs import EndpointDescription, TrainingJobDescription

log = logging.getLogger(__name__)

__all__ = ["AsyncSageMakerBackend", "ClientPool", "aws_loop", "default_async_client_factory"]

AsyncClientFactory = Callable[[str], AbstractAsyncContextManager[Any]]
_T = TypeVar("_T")

_loop_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_loop_pid: int | None = None


def aws_loop() -> asyncio.AbstractEventLoop:
    """The event loop (on a daemon thread) where every aiobotocore coroutine of this process runs.

    Started on first use; started again in a forked child, which inherits the loop object but
    not its thread.
    """
    global _loop, _loop_pid
    with _loop_lock:
        if _loop is None or _loop.is_closed() or _loop_pid != os.getpid():
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="rl-provider-aws", daemon=True).start()
            _loop, _loop_pid = loop, os.getpid()
            _POOL.clear()  # clients of a parent's loop are not this process's
        return _loop


async def _on_aws_loop(coroutine: Coroutine[Any, Any, _T]) -> _T:
    """Run ``coroutine`` on ``aws_loop()`` and await it from the caller's loop.

    Cancelling the caller (a trigger being cancelled) cancels the coroutine too.
    """
    loop = aws_loop()
    if asyncio.get_running_loop() is loop:
        return await coroutine
    return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coroutine, loop))


class _Shared:
    """One open client and how many backends hold it."""

    def __init__(self) -> None:
        self.ready: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.stack = AsyncExitStack()
        self.holders = 0


class ClientPool:
    """Process-wide aiobotocore clients, one per (pool key, service), shared by backends.

    A triggerer runs hundreds of triggers; a client per trigger costs ~0.2 s of CPU to build and
    keeps its own HTTP connection pool (descriptors). Backends built with the same
    ``client_pool_key`` (the hook passes the aws connection, region, verify and botocore
    config: everything the client depends on) share one client per service; the last holder's
    ``aclose()`` closes it. Touched only on ``aws_loop()``, so it needs no thread lock.
    """

    def __init__(self) -> None:
        self._entries: dict[tuple[Hashable, str], _Shared] = {}

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)

    async def acquire(
        self, key: Hashable, service: str, factory: Callable[[], AbstractAsyncContextManager[Any]]
    ) -> Any:
        entry = self._entries.get((key, service))
        if entry is None:
            entry = self._entries[(key, service)] = _Shared()
            try:
                entry.ready.set_result(await entry.stack.enter_async_context(factory()))
            except BaseException as err:
                del self._entries[(key, service)]
                if isinstance(err, asyncio.CancelledError):
                    entry.ready.cancel()
                else:
                    entry.ready.set_exception(err)
                    entry.ready.exception()  # marked retrieved: waiters (if any) re-raise it
                raise
        client = await asyncio.shield(entry.ready)
        entry.holders += 1
        return client

    async def release(self, key: Hashable, service: str) -> None:
        entry = self._entries.get((key, service))
        if entry is None:
            return
        entry.holders -= 1
        if entry.holders <= 0:
            del self._entries[(key, service)]
            await entry.stack.aclose()


_POOL = ClientPool()


def default_async_client_factory(region_name: str | None) -> AsyncClientFactory:
    """aiobotocore clients of one session, with botocore's adaptive retry mode."""
    from aiobotocore.config import AioConfig  # type: ignore[import-untyped]
    from aiobotocore.session import get_session  # type: ignore[import-untyped]

    session = get_session()
    config = AioConfig(retries={"mode": "adaptive", "max_attempts": 10})

    def factory(service: str) -> AbstractAsyncContextManager[Any]:
        context: AbstractAsyncContextManager[Any] = session.create_client(
            service, region_name=region_name, config=config
        )
        return context

    return factory


@dataclass(slots=True)
class _Followed:
    """What this backend saw of one job: when its log reads may be skipped."""

    seen: tuple[Any, ...] = ()  # (status, secondary status, LastModifiedTime) of the last describe
    read_at: tuple[Any, ...] | None = None  # ``seen`` when the logs were last read
    instances: int = 1
    terminal: bool = False
    skipped: int = 0


class AsyncSageMakerBackend:
    """The async twin of ``SageMakerBackend`` for triggers (describe, logs, stop).

    :param log_read_every: a trigger calls ``read_logs`` after every describe; CloudWatch is
        read at most at every ``log_read_every``-th call, and always when the job's describe
        changed (status, secondary status, LastModifiedTime) or ended, so no line is lost and
        the last ones arrive with the end. Each AWS call costs about the same CPU (~2 ms
        against moto, mostly botocore), so reading the logs at every poll tripled a trigger's
        cost per poll over the Amazon provider's SageMakerTrigger (a describe only), and
        GetLogEvents has a per-account rate (25/s) that 1,000 triggers at 30 s would exceed.
        Streams are listed (DescribeLogStreams) only while fewer are known than the job has
        instances, or when the describe changed (a spot restart opens new streams).
    """

    def __init__(
        self,
        *,
        async_client_factory: AsyncClientFactory | None = None,
        region_name: str | None = None,
        retry: RetryPolicy | None = None,
        client_pool_key: Hashable | None = None,
        log_read_every: int = 6,
    ) -> None:
        self.log_read_every = max(1, int(log_read_every))
        self._followed: dict[str, _Followed] = {}
        self._factory = async_client_factory
        self._region_name = region_name
        self.retry = retry or RetryPolicy()
        # One open client per service for the backend's life (a trigger's run): a client per
        # call re-resolved the connection and rebuilt the client at every poll (~57 ms CPU
        # per describe against moto, ~7 ms with the client kept;
        # docs/DESIGN.md "Async clients live as long as the trigger"). With a pool key, that
        # client is the process's shared one for the key (``ClientPool``).
        self._pool_key = client_pool_key
        self._clients: dict[str, Any] = {}
        self._open: AsyncExitStack | None = None
        self._open_lock: asyncio.Lock | None = None

    def __repr__(self) -> str:
        return f"AsyncSageMakerBackend(region_name={self._region_name!r})"

    async def _client(self, service: str) -> Any:
        """The open client for ``service``, entered on first use; on ``aws_loop()`` only."""
        if self._open_lock is None:
            self._open_lock = asyncio.Lock()
        async with self._open_lock:
            if service not in self._clients:
                if self._factory is None:
                    self._factory = default_async_client_factory(self._region_name)
                if self._open is None:
                    self._open = AsyncExitStack()
                factory = self._factory
                if self._pool_key is None:
                    client = await self._open.enter_async_context(factory(service))
                else:
                    key = self._pool_key
                    client = await _POOL.acquire(key, service, lambda: factory(service))
                    self._open.push_async_callback(_POOL.release, key, service)
                self._clients[service] = client
            return self._clients[service]

    async def aclose(self) -> None:
        """Close the clients opened so far (their HTTP sessions; a shared client only when its
        last holder closes); the next call opens new ones."""
        if self._open is None:
            return
        stack, self._open = self._open, None
        self._clients.clear()
        await _on_aws_loop(stack.aclose())

    async def describe_training_job(self, name: str) -> TrainingJobDescription:
        description = TrainingJobDescription.from_api(await self._describe(TRAINING_JOB, name))
        followed = self._followed.setdefault(name, _Followed())
        followed.seen = (
            description.training_job_status,
            description.secondary_status,
            description.last_modified_time,
        )
        followed.instances = int(description.resource_config.get("InstanceCount") or 1)
        followed.terminal = description.is_terminal
        return description

    async def describe_endpoint(self, name: str) -> EndpointDescription:
        return EndpointDescription.from_api(await self._describe(ENDPOINT, name))

    async def _describe(self, kind: Resource, name: str) -> Any:
        """Describe<Kind> of one name, on ``aws_loop()``; a missing one is ``kind.error``."""
        kind.valid_name(name)

        async def describe() -> Any:
            client = await self._client("sagemaker")
            argument: dict[str, Any] = {kind.key: name}
            return await acall(
                client,
                f"describe_{kind.operation}",
                self.retry,
                not_found=lambda m: kind.error(f"Could not find {kind.missing} {name!r} ({m})."),
                **argument,
            )

        return await _on_aws_loop(describe())

    async def stop_training_job(self, name: str) -> None:
        """StopTrainingJob unless the job already ended or is stopping (trigger ``on_kill``)."""
        if (await self.describe_training_job(name)).training_job_status is not (
            TrainingJobStatus.IN_PROGRESS
        ):
            return
        from botocore.exceptions import ClientError

        try:
            await _on_aws_loop(self._stop(name))
        except ClientError as err:
            # It ended between the describe and the stop: SageMaker refuses, nothing to do.
            status = (await self.describe_training_job(name)).training_job_status
            if status is TrainingJobStatus.IN_PROGRESS:
                raise translate(err, "sagemaker") from err
        log.info("Asked SageMaker to stop training job %s", name)

    async def _stop(self, name: str) -> None:
        client = await self._client("sagemaker")
        await acall(client, "stop_training_job", self.retry, raw=True, TrainingJobName=name)

    async def read_logs(self, name: str, cursor: Any = None) -> tuple[list[str], Any]:
        """New lines after ``cursor``; see ``log_read_every`` for when CloudWatch is asked."""
        state = cw.LogCursor.parse(cursor)
        followed = self._followed.get(name)
        discover, pages = True, cw.MAX_PAGES_PER_STREAM
        if followed is not None and not followed.terminal:
            pages = 1  # the job still runs: the next read continues from the cursor
            if followed.seen == followed.read_at:
                followed.skipped += 1
                if followed.skipped < self.log_read_every:
                    return [], state.to_json()
                discover = len(state.tokens) < followed.instances
        tailer = cw.tail(name, state, discover=discover, pages=pages)
        events = await _on_aws_loop(self._drive(tailer))
        if followed is not None:
            followed.read_at, followed.skipped = followed.seen, 0
        return cw.format_lines(name, events), state.to_json()

    async def _drive(
        self, tailer: Generator[cw.Request, dict[str, Any] | None, list[cw.LogEvent]]
    ) -> list[cw.LogEvent]:
        logs, steps = await self._client("logs"), cw.Steps(tailer)
        for operation, kwargs in steps:
            steps.response = await acall(logs, operation, self.retry, absent=cw.ABSENT, **kwargs)
        return steps.events
