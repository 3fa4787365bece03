"""``SageMakerBackend``: the ``Backend`` contract on AWS SageMaker through boto3.

Requests are the ones the core builds (``training_request()``, ``create_model_request()``) and
are sent as they are, after the checks that would otherwise fail on AWS minutes later (a local
instance type, a ``file://`` URI, no role). Clients come from ``client_factory(service)``: inside
Airflow the hook passes one built on the Amazon provider's ``AwsBaseHook`` (connection,
region, verify, botocore config); outside Airflow a plain boto3 session is used.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Generator, Mapping
from typing import Any, Unpack

from rl_provider.backends.base import ListFilter, ListQuery
from rl_provider.backends.sagemaker import logs as cw
from rl_provider.backends.sagemaker.calls import (
    ACCESS_CODES,
    THROTTLING_CODES,
    call,
    error_code,
    translate,
)
from rl_provider.backends.sagemaker.clients import default_client_factory
from rl_provider.backends.sagemaker.requests import (
    ENDPOINT,
    ENDPOINT_CONFIG,
    LOCAL_ONLY_IMAGE_PREFIX,
    MODEL,
    ROLE_FIX,
    TRAINING_JOB,
    Resource,
    split_s3_uri,
    validate_training_request,
)
from rl_provider.backends.sagemaker.s3 import SageMakerS3
from rl_provider.core.enums import TrainingJobStatus
from rl_provider.core.jobs import (
    EndpointConfigDescription,
    EndpointDescription,
    ModelDescription,
    TrainingJobDescription,
)
from rl_provider.core.lifecycle import require_updatable
from rl_provider.core.metrics import MetricExtractor
from rl_provider.exceptions import (
    EndpointNotFoundError,
    ModelInvocationError,
    ResourceExistsError,
    RLConfigError,
)

log = logging.getLogger(__name__)

__all__ = ["SageMakerBackend", "default_client_factory", "split_s3_uri"]


class SageMakerBackend(SageMakerS3):
    """Training jobs, models and endpoints on SageMaker.

    ``bucket``: where code goes when the estimator has neither ``code_location`` nor an
    ``s3://`` ``output_path``; default ``sagemaker-<region>-<account>``, created when missing
    (SDK v2's ``Session.default_bucket()``).
    """

    validate_training_request = staticmethod(validate_training_request)

    # One helper per verb for the four resources (training job, model, endpoint config,
    # endpoint): SageMaker names their operations and arguments alike.
    def _create(self, kind: Resource, name: str, fix: str, request: Any) -> dict[str, Any]:
        """Create<Kind>; one that exists already is a ``ResourceExistsError`` saying ``fix``."""
        exists = f"{kind.noun.capitalize()} {name!r} exists: {fix}"
        return self._call("sagemaker", f"create_{kind.operation}", exists=exists, **request)

    def _by_name(self, verb: str, kind: Resource, name: str) -> dict[str, Any]:
        """Describe<Kind> or Delete<Kind> of one name; a missing one is ``kind.error``."""
        kind.valid_name(name)
        return self._call(
            "sagemaker",
            f"{verb}_{kind.operation}",
            not_found=self._missing(kind.error, kind.missing, name),
            **{kind.key: name},
        )

    # -------------------------------------------------------------------------- training
    def create_training_job(self, **request: Any) -> dict[str, Any]:
        name = request.get("TrainingJobName", "")
        self.validate_training_request(request)
        output_bucket, _ = split_s3_uri(
            request["OutputDataConfig"]["S3OutputPath"], "OutputDataConfig.S3OutputPath"
        )
        self.ensure_bucket(output_bucket)
        fix = "attach to it (RLEstimator.attach) or pick another job_name"
        return self._create(TRAINING_JOB, name, fix, request)

    def describe_training_job(self, name: str) -> TrainingJobDescription:
        return TrainingJobDescription.from_api(self._by_name("describe", TRAINING_JOB, name))

    def list_tags(self, arn: str) -> list[dict[str, str]]:
        """ListTags of a resource (``RLEstimator.attach()`` recovers a job's tags, as the SDK)."""
        response = self._call("sagemaker", "list_tags", ResourceArn=arn)
        return [{"Key": t["Key"], "Value": t["Value"]} for t in response.get("Tags", [])]

    def stop_training_job(self, name: str) -> None:
        """StopTrainingJob; a job that already ended or is stopping is left alone (as locally)."""
        if self.describe_training_job(name).training_job_status is not (
            TrainingJobStatus.IN_PROGRESS
        ):
            return
        from botocore.exceptions import ClientError

        try:
            call(
                self.client("sagemaker"),
                "stop_training_job",
                self.retry,
                raw=True,
                TrainingJobName=name,
            )
        except ClientError as err:
            # It ended between the describe and the stop: SageMaker refuses, nothing to do.
            if self.describe_training_job(name).training_job_status is (
                TrainingJobStatus.IN_PROGRESS
            ):
                raise translate(err, "sagemaker") from err
        log.info("Asked SageMaker to stop training job %s", name)

    def list_training_jobs(self, **filters: Unpack[ListFilter]) -> dict[str, Any]:
        return self._list("list_training_jobs", "TrainingJobSummaries", filters)

    def _list(self, operation: str, key: str, filters: ListFilter) -> dict[str, Any]:
        """A List* call, newest first, with the filters that are set (one rule for all three)."""
        query = ListQuery.of(filters)
        kwargs: dict[str, Any] = {"SortBy": "CreationTime", "SortOrder": "Descending"}
        if query.status and operation != "list_models":
            kwargs["StatusEquals"] = query.status
        if query.contains:
            kwargs["NameContains"] = query.contains
        return {key: self._paginate(operation, key, query.limit, kwargs)}

    def _paginate(
        self, operation: str, key: str, limit: int, kwargs: dict[str, Any]
    ) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        token: str | None = None
        while len(items) < limit:
            page_kwargs = dict(kwargs, MaxResults=min(100, limit - len(items)))
            if token:
                page_kwargs["NextToken"] = token
            page = self._call("sagemaker", operation, **page_kwargs)
            items.extend(page.get(key, []))
            token = page.get("NextToken")
            if not token:
                break
        return items[:limit]

    def read_logs(self, name: str, cursor: Any = None) -> tuple[list[str], Any]:
        """New lines of every instance's stream, interleaved by time; the cursor is JSON."""
        state = cw.LogCursor.parse(cursor)
        events = self._drive(cw.tail(name, state))
        return cw.format_lines(name, events), state.to_json()

    def log_location(self, name: str) -> str:
        """The CloudWatch log group and stream prefix of the job's instances."""
        return f"CloudWatch {cw.LOG_GROUP} {name}/*"

    def _drive(
        self, tailer: Generator[cw.Request, dict[str, Any] | None, list[cw.LogEvent]]
    ) -> list[cw.LogEvent]:
        logs, steps = self.client("logs"), cw.Steps(tailer)
        for operation, kwargs in steps:
            steps.response = call(logs, operation, self.retry, absent=cw.ABSENT, **kwargs)
        return steps.events

    def metrics(self, name: str) -> dict[str, list[tuple[float, float]]]:
        """Metric series matched in the job's logs with its MetricDefinitions, as SageMaker does.

        Timestamps are seconds since the epoch (the log events' own), as on the local backend.
        """
        definitions = self.describe_training_job(name).algorithm_specification.get(
            "MetricDefinitions", []
        )
        extractor = MetricExtractor(definitions)
        series: dict[str, list[tuple[float, float]]] = {}
        state = cw.LogCursor()
        while True:
            events = self._drive(cw.tail(name, state))
            if not events:
                return series
            for event in events:
                for line in event.message.splitlines():
                    for match in extractor.match(line):
                        series.setdefault(match.name, []).append(
                            (event.timestamp / 1000.0, match.value)
                        )

    # --------------------------------------------------------------------------- models
    def create_model(self, **request: Any) -> dict[str, Any]:
        name = MODEL.valid_name(request.get("ModelName", ""))
        if not str(request.get("ExecutionRoleArn", "")).startswith("arn:"):
            raise RLConfigError(
                f"Model {name!r} has no execution role (ExecutionRoleArn="
                f"{request.get('ExecutionRoleArn')!r}): SageMaker needs one to pull the image and "
                f"the model artifact; {ROLE_FIX}."
            )
        container = request.get("PrimaryContainer")
        if not isinstance(container, Mapping) or not container.get("Image"):
            raise RLConfigError(
                f"Model {name!r} needs PrimaryContainer with an Image: build the request with "
                "RLModel.create_model_request()."
            )
        if str(container["Image"]).startswith(LOCAL_ONLY_IMAGE_PREFIX):
            raise RLConfigError(
                f"Image {container['Image']!r} exists only on the local backend: pass image_uri= "
                "with an ECR image for SageMaker."
            )
        if container.get("ModelDataUrl"):
            split_s3_uri(container["ModelDataUrl"], "ModelDataUrl")
        submit = (container.get("Environment") or {}).get("SAGEMAKER_SUBMIT_DIRECTORY")
        if submit and "://" in submit:
            split_s3_uri(submit, "SAGEMAKER_SUBMIT_DIRECTORY")
        return self._create(MODEL, name, "pick another model name", request)

    def list_models(self, **filters: Unpack[ListFilter]) -> dict[str, Any]:
        return self._list("list_models", "Models", filters)

    def describe_model(self, name: str) -> ModelDescription:
        return ModelDescription.from_api(self._by_name("describe", MODEL, name))

    def delete_model(self, name: str) -> None:
        self._by_name("delete", MODEL, name)

    # ------------------------------------------------------------------ endpoint configs
    def create_endpoint_config(self, **request: Any) -> dict[str, Any]:
        name = ENDPOINT_CONFIG.valid_name(request.get("EndpointConfigName", ""))
        variants = request.get("ProductionVariants") or []
        if not variants:
            raise RLConfigError(f"Endpoint config {name!r} has no ProductionVariants.")
        for variant in variants:
            instance_type = str(variant.get("InstanceType", ""))
            if not instance_type.startswith("ml."):
                raise RLConfigError(
                    f"Endpoint config {name!r}: instance type {instance_type!r} is not a "
                    "SageMaker hosting type: use an ml.* type (e.g. ml.m5.large)."
                )
        return self._create(ENDPOINT_CONFIG, name, "pick another name", request)

    def describe_endpoint_config(self, name: str) -> EndpointConfigDescription:
        response = self._by_name("describe", ENDPOINT_CONFIG, name)
        return EndpointConfigDescription.from_api(response)

    def delete_endpoint_config(self, name: str) -> None:
        self._by_name("delete", ENDPOINT_CONFIG, name)

    # ------------------------------------------------------------------------ endpoints
    def create_endpoint(self, **request: Any) -> dict[str, Any]:
        """CreateEndpoint; an existing endpoint is an error (update_endpoint replaces it)."""
        name = ENDPOINT.valid_name(request.get("EndpointName", ""))
        try:
            self.describe_endpoint(name)
        except EndpointNotFoundError:
            pass
        else:
            raise ResourceExistsError(
                f"Cannot create already existing endpoint {name!r}: update it "
                "(update_endpoint / deploy(update_endpoint=True)) or delete it first."
            )
        return self._call("sagemaker", "create_endpoint", **request)

    def update_endpoint(self, **request: Any) -> dict[str, Any]:
        """UpdateEndpoint: SageMaker shifts traffic blue/green and rolls back on failure."""
        name = request.get("EndpointName", "")
        require_updatable(name, self.describe_endpoint(name).endpoint_status)
        return self._call("sagemaker", "update_endpoint", **request)

    def describe_endpoint(self, name: str) -> EndpointDescription:
        return EndpointDescription.from_api(self._by_name("describe", ENDPOINT, name))

    def delete_endpoint(self, name: str) -> None:
        """DeleteEndpoint (SageMaker tears the instances down; the config and model stay)."""
        self._by_name("delete", ENDPOINT, name)

    def list_endpoints(self, **filters: Unpack[ListFilter]) -> dict[str, Any]:
        return self._list("list_endpoints", "Endpoints", filters)

    def invoke_endpoint(self, **request: Any) -> dict[str, Any]:
        """InvokeEndpoint through ``sagemaker-runtime``; the body comes back read, in a BytesIO."""
        name = str(request.get("EndpointName", ""))
        if isinstance(request.get("Body"), str):
            request = {**request, "Body": request["Body"].encode("utf-8")}
        from botocore.exceptions import ClientError

        try:
            response = call(
                self.client("sagemaker-runtime"), "invoke_endpoint", self.retry, raw=True, **request
            )
        except ClientError as err:
            code = error_code(err)
            if code in ACCESS_CODES or code in THROTTLING_CODES:
                raise translate(err, "sagemaker-runtime") from err  # not the model's answer
            # ModelError carries the container's own status and message (InvokeEndpoint API).
            status = err.response.get("OriginalStatusCode") or err.response.get(
                "ResponseMetadata", {}
            ).get("HTTPStatusCode", 500)
            message = err.response.get("OriginalMessage") or err.response.get("Error", {}).get(
                "Message", ""
            )
            raise ModelInvocationError(name, int(status), f"{code}: {message}") from err
        body = response["Body"].read()
        return {
            "Body": io.BytesIO(body),
            "ContentType": response.get("ContentType", ""),
            "InvokedProductionVariant": response.get("InvokedProductionVariant", ""),
        }
