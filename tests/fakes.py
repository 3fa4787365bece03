"""A test double of the backend *contract* (like httpx's MockTransport): an in-memory backend.

It implements ``rl_provider.backends.base.TrainingBackend`` so estimator code paths run for real;
it never stands in for one of our backends' internals.
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Unpack

from rl_provider.backends.base import ListFilter, ListQuery
from rl_provider.core.jobs import TrainingJobDescription
from rl_provider.exceptions import JobNotFoundError


class InMemoryBackend:
    poll_interval = 0.0

    def __init__(self, region: str | None = "us-west-2", store: Path | None = None) -> None:
        self._region = region
        self.store = store
        self.requests: dict[str, dict[str, Any]] = {}
        self.uploads: dict[str, Path] = {}
        self.jobs: dict[str, TrainingJobDescription] = {}

    @property
    def region(self) -> str | None:
        return self._region

    def default_output_path(self) -> str:
        return "s3://default-bucket/"

    def upload_code(self, archive: Path, uri: str) -> str:
        assert self.store is not None
        copy = self.store / f"upload-{len(self.uploads)}.tar.gz"
        shutil.copyfile(archive, copy)
        self.uploads[uri] = copy
        return uri

    def validate_training_request(self, request: Mapping[str, Any]) -> None:
        """Accepts every request: this fake records what it is sent."""

    def add_job(self, api: dict[str, Any]) -> TrainingJobDescription:
        now = dt.datetime(2026, 11, 25, tzinfo=dt.UTC)
        data = {"CreationTime": now, **api}
        description = TrainingJobDescription.from_api(data)
        self.jobs[description.training_job_name] = description
        return description

    def create_training_job(self, **request: Any) -> dict[str, Any]:
        name = request["TrainingJobName"]
        self.requests[name] = request
        output = request["OutputDataConfig"]["S3OutputPath"].rstrip("/")
        self.add_job(
            {
                **request,
                "TrainingJobArn": f"arn:aws:sagemaker:us-west-2:000000000000:training-job/{name}",
                "TrainingJobStatus": "Completed",
                "SecondaryStatus": "Completed",
                "ModelArtifacts": {"S3ModelArtifacts": f"{output}/{name}/output/model.tar.gz"},
            }
        )
        return {"TrainingJobArn": f"arn:aws:sagemaker:us-west-2:000000000000:training-job/{name}"}

    def describe_training_job(self, name: str) -> TrainingJobDescription:
        try:
            return self.jobs[name]
        except KeyError:
            raise JobNotFoundError(name) from None

    def stop_training_job(self, name: str) -> None:
        self.describe_training_job(name)

    def read_logs(self, name: str, cursor: Any = None) -> tuple[list[str], Any]:
        self.describe_training_job(name)
        return [], cursor

    def log_location(self, name: str) -> str:
        self.describe_training_job(name)
        return f"memory://{name}"

    def metrics(self, name: str) -> dict[str, list[tuple[float, float]]]:
        return {}

    def list_training_jobs(self, **filters: Unpack[ListFilter]) -> dict[str, Any]:
        query = ListQuery.of(filters)
        jobs = sorted(self.jobs.values(), key=lambda job: job.creation_time, reverse=True)

        def summary(job: TrainingJobDescription) -> dict[str, Any] | None:
            if not query.wants(job.training_job_status.value):
                return None
            return {
                "TrainingJobName": job.training_job_name,
                "TrainingJobStatus": job.training_job_status.value,
                "CreationTime": job.creation_time,
            }

        return {
            "TrainingJobSummaries": query.page(jobs, lambda job: job.training_job_name, summary)
        }

    def list_tags(self, arn: str) -> list[dict[str, str]]:
        name = arn.rsplit("/", 1)[-1]
        self.describe_training_job(name)
        return [dict(tag) for tag in self.requests.get(name, {}).get("Tags", [])]
