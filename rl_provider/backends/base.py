"""The backend contract: methods named after the SageMaker API, taking its keyword arguments.

``backend.create_training_job(**estimator.training_request(name))`` works on every backend, the
way a boto3 client takes the same dict. Descriptions come back as the typed classes of
``rl_provider.core.jobs`` (their ``to_api()`` is SageMaker's response dict).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypedDict, TypeVar, Unpack, runtime_checkable

from rl_provider.core.jobs import (
    EndpointConfigDescription,
    EndpointDescription,
    ModelDescription,
    TrainingJobDescription,
)
from rl_provider.exceptions import RLConfigError

_T = TypeVar("_T")


class ListFilter(TypedDict, total=False):
    """The filters of the List* calls, SageMaker's names (``ListModels`` ignores
    ``StatusEquals``). One signature for every backend: ``list_*(**filters)``."""

    StatusEquals: str | None
    MaxResults: int
    NameContains: str | None


@dataclass(frozen=True)
class ListQuery:
    """A checked ``ListFilter``; backends that list from their own state page with it."""

    status: str | None
    limit: int
    contains: str | None

    @classmethod
    def of(cls, filters: ListFilter) -> ListQuery:
        limit = filters.get("MaxResults", 100)
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            # SageMaker's List* calls take MaxResults between 1 and 100.
            raise RLConfigError(f"MaxResults={limit!r}: pass a positive int.")
        return cls(filters.get("StatusEquals"), limit, filters.get("NameContains"))

    def wants(self, status: str) -> bool:
        return not self.status or status == self.status

    def page(
        self,
        items: Iterable[_T],
        name: Callable[[_T], str],
        summary: Callable[[_T], dict[str, Any] | None],
    ) -> list[dict[str, Any]]:
        """The summaries of the items whose name contains ``contains``, in order, at most
        ``limit``; ``summary`` returns None for an item to leave out (e.g. another status)."""
        summaries: list[dict[str, Any]] = []
        for item in items:
            if self.contains and self.contains not in name(item):
                continue
            entry = summary(item)
            if entry is not None:
                summaries.append(entry)
                if len(summaries) >= self.limit:
                    break
        return summaries


@runtime_checkable
class TrainingBackend(Protocol):
    """What ``RLEstimator.fit()`` and the training operator need."""

    #: Seconds between two polls of a job's state that suit this backend.
    poll_interval: float

    @property
    def region(self) -> str | None: ...

    def default_output_path(self) -> str: ...

    def upload_code(self, archive: Path, uri: str) -> str: ...

    def validate_training_request(self, request: Mapping[str, Any]) -> None:
        """Raise what ``create_training_job`` would refuse, before anything is uploaded."""
        ...

    def create_training_job(self, **request: Any) -> dict[str, Any]: ...

    def describe_training_job(self, name: str) -> TrainingJobDescription: ...

    def stop_training_job(self, name: str) -> None: ...

    def read_logs(self, name: str, cursor: Any = None) -> tuple[list[str], Any]:
        """New complete lines after ``cursor`` and the cursor after them (JSON-safe: triggers
        store it). An unknown job yields no lines: ``JobNotFoundError`` where the backend knows
        without another call, else an empty list (callers describe first anyway)."""
        ...

    def log_location(self, name: str) -> str:
        """Where a person opens the job's logs outside Python: a file path (local), a
        CloudWatch log group and stream prefix (SageMaker). Shown by the CLI."""
        ...

    def metrics(self, name: str) -> dict[str, list[tuple[float, float]]]: ...

    def list_training_jobs(self, **filters: Unpack[ListFilter]) -> dict[str, Any]:
        """ListTrainingJobs' response (``TrainingJobSummaries``), newest first."""
        ...

    def list_tags(self, arn: str) -> list[dict[str, str]]:
        """ListTags of a training job's ARN (``attach()`` recovers the job's tags)."""
        ...


@runtime_checkable
class Backend(TrainingBackend, Protocol):
    """The whole contract: training, models and endpoints."""

    def repack_model(self, model_data: str, code: Path | str, uri: str) -> str:
        """``model_data`` with ``code`` (directory, ``sourcedir.tar.gz`` or its URI) as
        ``code/``, written to ``uri`` (the SDK's model repacking)."""
        ...

    def create_model(self, **request: Any) -> dict[str, Any]: ...

    def describe_model(self, name: str) -> ModelDescription: ...

    def delete_model(self, name: str) -> None: ...

    def list_models(self, **filters: Unpack[ListFilter]) -> dict[str, Any]:
        """ListModels' response (``Models``), newest first."""
        ...

    def create_endpoint_config(self, **request: Any) -> dict[str, Any]: ...

    def describe_endpoint_config(self, name: str) -> EndpointConfigDescription: ...

    def delete_endpoint_config(self, name: str) -> None: ...

    def create_endpoint(self, **request: Any) -> dict[str, Any]: ...

    def update_endpoint(self, **request: Any) -> dict[str, Any]: ...

    def describe_endpoint(self, name: str) -> EndpointDescription: ...

    def delete_endpoint(self, name: str) -> None: ...

    def list_endpoints(self, **filters: Unpack[ListFilter]) -> dict[str, Any]:
        """ListEndpoints' response (``Endpoints``), newest first."""
        ...

    def invoke_endpoint(self, **request: Any) -> dict[str, Any]: ...


@runtime_checkable
class InvokeBackend(Protocol):
    """What ``RLPredictor.predict`` needs: any ``Backend``, or a boto3 ``sagemaker-runtime``
    client (the same ``InvokeEndpoint`` keyword arguments and response)."""

    def invoke_endpoint(self, **request: Any) -> dict[str, Any]: ...


@runtime_checkable
class EndpointBackend(InvokeBackend, Protocol):
    """What ``RLPredictor.delete_endpoint`` needs besides invoking (every ``Backend`` has it)."""

    def describe_endpoint(self, name: str) -> EndpointDescription: ...

    def delete_endpoint(self, name: str) -> None: ...

    def delete_endpoint_config(self, name: str) -> None: ...


@runtime_checkable
class AsyncBackend(Protocol):
    """The async twin used by triggers: never blocks the event loop."""

    async def describe_training_job(self, name: str) -> TrainingJobDescription: ...

    async def read_logs(self, name: str, cursor: Any = None) -> tuple[list[str], Any]: ...

    async def describe_endpoint(self, name: str) -> EndpointDescription: ...

    async def stop_training_job(self, name: str) -> None: ...

    async def aclose(self) -> None:
        """Close the clients the backend keeps open (a trigger calls it when its watch ends)."""


#: The name this protocol had before issue 13 (kept for code written against it).
AsyncTrainingBackend = AsyncBackend
