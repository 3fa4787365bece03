"""The backend contract: methods named after the SageMaker API, taking its keyword arguments.

``backend.create_training_job(**estimator.training_request(name))`` works on every backend, the
way a boto3 client takes the same dict. Descriptions come back as the typed classes of
``rl_provider.core.jobs`` (their ``to_api()`` is SageMaker's response dict).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from rl_provider.core.jobs import (
    EndpointConfigDescription,
    EndpointDescription,
    ModelDescription,
    TrainingJobDescription,
)


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

    def list_training_jobs(
        self,
        *,
        StatusEquals: str | None = None,
        MaxResults: int = 100,
        NameContains: str | None = None,
    ) -> dict[str, Any]:
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

    def list_models(
        self, *, MaxResults: int = 100, NameContains: str | None = None
    ) -> dict[str, Any]:
        """ListModels' response (``Models``), newest first."""
        ...

    def create_endpoint_config(self, **request: Any) -> dict[str, Any]: ...

    def describe_endpoint_config(self, name: str) -> EndpointConfigDescription: ...

    def delete_endpoint_config(self, name: str) -> None: ...

    def create_endpoint(self, **request: Any) -> dict[str, Any]: ...

    def update_endpoint(self, **request: Any) -> dict[str, Any]: ...

    def describe_endpoint(self, name: str) -> EndpointDescription: ...

    def delete_endpoint(self, name: str) -> None: ...

    def list_endpoints(
        self,
        *,
        StatusEquals: str | None = None,
        MaxResults: int = 100,
        NameContains: str | None = None,
    ) -> dict[str, Any]:
        """ListEndpoints' response (``Endpoints``), newest first."""
        ...

    def invoke_endpoint(self, **request: Any) -> dict[str, Any]: ...


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
