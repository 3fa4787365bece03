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
import tempfile
import threading
from collections.abc import Callable, Generator, Mapping
from pathlib import Path
from typing import Any

from rl_provider.backends.sagemaker import logs as cw
from rl_provider.backends.sagemaker.calls import (
    ACCESS_CODES,
    THROTTLING_CODES,
    AWSAccessDeniedError,
    RetryPolicy,
    call,
    error_code,
    translate,
)
from rl_provider.core import hyperparameters as hp
from rl_provider.core.enums import TrainingJobStatus
from rl_provider.core.jobs import (
    EndpointConfigDescription,
    EndpointDescription,
    ModelDescription,
    TrainingJobDescription,
)
from rl_provider.core.lifecycle import require_updatable
from rl_provider.core.metrics import MetricExtractor
from rl_provider.core.naming import validate_name
from rl_provider.core.packaging import repack_model, sha256_file
from rl_provider.exceptions import (
    BackendError,
    EndpointNotFoundError,
    JobNotFoundError,
    ModelInvocationError,
    ModelNotFoundError,
    ResourceExistsError,
    RLConfigError,
)

log = logging.getLogger(__name__)

__all__ = ["SageMakerBackend", "default_client_factory", "split_s3_uri"]

# S3 user metadata key holding the archive's sha256 (x-amz-meta-sha256): the upload cache key.
SHA256_METADATA_KEY = "sha256"
# The image names the core records for Ray 2.x jobs on the local backend (toolkits.py).
_LOCAL_ONLY_IMAGE_PREFIX = "rl-provider/"
_ROLE_FIX = (
    "pass role='arn:aws:iam::<account>:role/<name>' (a role SageMaker can assume, e.g. with "
    "AmazonSageMakerFullAccess) to the estimator or model"
)


def split_s3_uri(uri: str, what: str) -> tuple[str, str]:
    """``s3://bucket/key`` -> ``(bucket, key)``; anything else is an ``RLConfigError``."""
    if not isinstance(uri, str) or not uri.startswith("s3://") or len(uri) <= len("s3://"):
        raise RLConfigError(
            f"{what} {uri!r} is not an s3:// URI: SageMaker reads and writes S3 only; pass "
            "s3://bucket/prefix (file:// URIs are for the local backend)."
        )
    bucket, _, key = uri[len("s3://") :].partition("/")
    return bucket, key


def default_client_factory(region_name: str | None) -> Callable[[str], Any]:
    """Clients of one plain boto3 session, with botocore's adaptive retry mode."""
    import boto3
    from botocore.config import Config

    session = boto3.session.Session(region_name=region_name)
    # Adaptive mode: standard retries plus client-side rate limiting when AWS throttles.
    config = Config(retries={"mode": "adaptive", "max_attempts": 10})

    def factory(service: str) -> Any:
        return session.client(service, config=config)

    return factory


class SageMakerBackend:
    """Training jobs, models and endpoints on SageMaker.

    ``bucket``: where code goes when the estimator has neither ``code_location`` nor an
    ``s3://`` ``output_path``; default ``sagemaker-<region>-<account>``, created when missing
    (SDK v2's ``Session.default_bucket()``).
    """

    def __init__(
        self,
        *,
        client_factory: Callable[[str], Any] | None = None,
        region_name: str | None = None,
        bucket: str | None = None,
        poll_interval: float = 30.0,
        retry: RetryPolicy | None = None,
    ) -> None:
        self._factory = client_factory
        self._region_name = region_name
        self._bucket = bucket
        self.poll_interval = poll_interval
        self.retry = retry or RetryPolicy()
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._account: str | None = None
        self._ensured_buckets: set[str] = set()

    def __repr__(self) -> str:
        return f"SageMakerBackend(region_name={self._region_name!r}, bucket={self._bucket!r})"

    # --------------------------------------------------------------------------- clients
    def client(self, service: str) -> Any:
        """The boto3 client for ``service`` (one per backend; boto3 clients are thread-safe)."""
        from botocore.exceptions import NoRegionError

        with self._lock:
            if service not in self._clients:
                if self._factory is None:
                    self._factory = default_client_factory(self._region_name)
                try:
                    self._clients[service] = self._factory(service)
                except NoRegionError:
                    raise RLConfigError(
                        "No AWS region: pass region_name= (or the rl connection's region_name "
                        "extra), or set AWS_DEFAULT_REGION."
                    ) from None
            return self._clients[service]

    def _call(
        self,
        service: str,
        operation: str,
        *,
        not_found: Callable[[str], BackendError] | None = None,
        exists: str | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """One AWS call through ``calls.call``, without boto3's ``ResponseMetadata``."""
        response: dict[str, Any] = call(
            self.client(service),
            operation,
            self.retry,
            not_found=not_found,
            exists=exists,
            **kwargs,
        )
        response.pop("ResponseMetadata", None)
        return response

    def _missing(
        self, error: type[BackendError], what: str, name: str
    ) -> Callable[[str], BackendError]:
        """``not_found`` for a describe or delete of the named resource (``calls.translate``)."""
        return lambda message: error(
            f"Could not find {what} {name!r} in {self.region} ({message})."
        )

    @property
    def region(self) -> str | None:
        if self._region_name:
            return self._region_name
        region = self.client("sagemaker").meta.region_name
        return str(region) if region else None

    @property
    def account(self) -> str:
        """The AWS account of the credentials (STS GetCallerIdentity, asked once)."""
        if self._account is None:
            self._account = str(self._call("sts", "get_caller_identity")["Account"])
        return self._account

    @property
    def bucket(self) -> str:
        return self._bucket or f"sagemaker-{self.region}-{self.account}"

    def default_output_path(self) -> str:
        return f"s3://{self.bucket}/"

    # ------------------------------------------------------------------------------ code
    def upload_code(self, archive: Path, uri: str) -> str:
        """Put ``archive`` at ``uri`` unless an object with the same sha256 is already there."""
        bucket, key = split_s3_uri(uri, "Code location")
        if not key:
            raise RLConfigError(f"Code location {uri!r} names a bucket but no object key.")
        self.ensure_bucket(bucket)
        digest = sha256_file(archive)
        s3 = self.client("s3")
        from botocore.exceptions import ClientError

        try:
            head = call(s3, "head_object", self.retry, raw=True, Bucket=bucket, Key=key)
        except ClientError as err:
            if error_code(err) not in ("404", "NoSuchKey", "NotFound"):
                raise translate(err, "s3") from err
            head = None
        if head is not None and head.get("Metadata", {}).get(SHA256_METADATA_KEY) == digest:
            log.info("%s already holds this code (sha256 %s): upload skipped", uri, digest[:12])
            return uri
        # One PutObject, bytes in memory: a retry resends the same body (archives are small).
        body = Path(archive).read_bytes()
        self._call(
            "s3",
            "put_object",
            Bucket=bucket,
            Key=key,
            Body=body,
            Metadata={SHA256_METADATA_KEY: digest},
        )
        log.info("Uploaded %s (%d bytes, sha256 %s)", uri, len(body), digest[:12])
        return uri

    def repack_model(self, model_data: str, code: Path | str, uri: str) -> str:
        """``model.tar.gz`` with ``code`` added as ``code/``, uploaded to ``uri``.

        ``code`` is a local directory or ``sourcedir.tar.gz``, or the ``s3://`` URI of one (a
        training job's code). SageMaker's framework inference images load the handler and
        install ``requirements.txt`` from ``/opt/ml/model/code``; ``RLModel`` uses this for
        custom images and Ray policies (SDK v2: ``sagemaker.utils.repack_model``).
        """
        with tempfile.TemporaryDirectory(prefix="rl-provider-repack-") as tmp:
            original = self._download(model_data, Path(tmp) / "original.tar.gz", "model_data")
            if isinstance(code, str):
                code = self._download(code, Path(tmp) / "sourcedir.tar.gz", "Model code")
            repacked = repack_model(original, Path(code), Path(tmp) / "model.tar.gz")
            return self.upload_code(repacked.path, uri)

    def _download(self, uri: str, target: Path, what: str) -> Path:
        bucket, key = split_s3_uri(uri, what)
        body = self._call("s3", "get_object", Bucket=bucket, Key=key)["Body"]
        target.write_bytes(body.read())
        return target

    def ensure_bucket(self, bucket: str) -> None:
        """Create the backend's bucket when it is missing (SDK ``default_bucket()``).

        Other buckets (an estimator's own ``output_path``/``code_location``) must exist: a typo
        there should fail, not create a bucket.
        """
        if bucket in self._ensured_buckets or bucket != self.bucket:
            return
        from botocore.exceptions import ClientError

        s3 = self.client("s3")
        try:
            call(s3, "head_bucket", self.retry, raw=True, Bucket=bucket)
        except ClientError as err:
            code = error_code(err)
            if code in ("403", "AccessDenied"):
                raise AWSAccessDeniedError(
                    f"S3 refused HeadBucket on the default bucket {bucket!r} ({code}): the name "
                    "belongs to another account, or the aws connection lacks s3:ListBucket on "
                    "it. Fix: pass bucket= (the rl connection's bucket extra) with a bucket you "
                    "own, or grant the permission."
                ) from err
            if code not in ("404", "NoSuchBucket", "NotFound"):
                raise translate(err, "s3") from err
            kwargs: dict[str, Any] = {"Bucket": bucket}
            # us-east-1 is S3's default location and refuses an explicit LocationConstraint.
            if self.region and self.region != "us-east-1":
                kwargs["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
            try:
                call(s3, "create_bucket", self.retry, raw=True, **kwargs)
                log.info("Created the default bucket s3://%s", bucket)
            except ClientError as create_err:
                # Another process created it meanwhile (SDK Session._create_s3_bucket_if_...).
                if error_code(create_err) not in ("BucketAlreadyOwnedByYou", "OperationAborted"):
                    raise translate(create_err, "s3") from create_err
        self._ensured_buckets.add(bucket)

    # -------------------------------------------------------------------------- training
    def create_training_job(self, **request: Any) -> dict[str, Any]:
        name = request.get("TrainingJobName", "")
        self.validate_training_request(request)
        output_bucket, _ = split_s3_uri(
            request["OutputDataConfig"]["S3OutputPath"], "OutputDataConfig.S3OutputPath"
        )
        self.ensure_bucket(output_bucket)
        return self._call(
            "sagemaker",
            "create_training_job",
            exists=f"Training job {name!r} exists: attach to it (RLEstimator.attach) or pick "
            "another job_name",
            **request,
        )

    @staticmethod
    def validate_training_request(request: Mapping[str, Any]) -> None:
        """What SageMaker would reject (or fail on after minutes of provisioning), refused now.

        Pure (no AWS call): callers can run it before uploading anything.
        """
        name = validate_name(request.get("TrainingJobName", ""), kind="training job name")
        for key in ("AlgorithmSpecification", "OutputDataConfig", "ResourceConfig"):
            if key not in request:
                raise RLConfigError(
                    f"CreateTrainingJob request for {name} has no {key}: build it with "
                    "RLEstimator.training_request()."
                )
        if not str(request.get("RoleArn", "")).startswith("arn:"):
            raise RLConfigError(
                f"Training job {name} has no execution role (RoleArn={request.get('RoleArn')!r})"
                f": SageMaker runs jobs as a role; {_ROLE_FIX}."
            )
        instance_type = str(request["ResourceConfig"].get("InstanceType", ""))
        if not instance_type.startswith("ml."):
            raise RLConfigError(
                f"Instance type {instance_type!r} is not a SageMaker instance type: use an ml.* "
                "type (e.g. ml.m5.xlarge), or the local backend for local/local_gpu."
            )
        image = str(request["AlgorithmSpecification"].get("TrainingImage", ""))
        if image.startswith(_LOCAL_ONLY_IMAGE_PREFIX):
            raise RLConfigError(
                f"Training image {image!r} exists only on the local backend: no SageMaker RL "
                "image has Ray 2.x; build one and pass image_uri=, or use toolkit_version='1.6.0'."
            )
        split_s3_uri(request["OutputDataConfig"].get("S3OutputPath", ""), "output_path")
        submit = request.get("HyperParameters", {}).get("sagemaker_submit_directory")
        if submit is not None:
            split_s3_uri(str(hp.decode_value(submit)), "Code location (sagemaker_submit_directory)")
        for channel in request.get("InputDataConfig", []):
            source = channel.get("DataSource", {}).get("S3DataSource", {})
            if "S3Uri" in source:
                split_s3_uri(source["S3Uri"], f"Input channel {channel.get('ChannelName')!r}")
        checkpoint = request.get("CheckpointConfig")
        if checkpoint:
            split_s3_uri(checkpoint.get("S3Uri", ""), "checkpoint_s3_uri")

    def describe_training_job(self, name: str) -> TrainingJobDescription:
        validate_name(name, kind="training job name")
        response = self._call(
            "sagemaker",
            "describe_training_job",
            not_found=self._missing(JobNotFoundError, "training job", name),
            TrainingJobName=name,
        )
        return TrainingJobDescription.from_api(response)

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

    def list_training_jobs(
        self,
        StatusEquals: str | None = None,
        MaxResults: int = 100,
        NameContains: str | None = None,
    ) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"SortBy": "CreationTime", "SortOrder": "Descending"}
        if StatusEquals:
            kwargs["StatusEquals"] = StatusEquals
        if NameContains:
            kwargs["NameContains"] = NameContains
        summaries = self._paginate("list_training_jobs", "TrainingJobSummaries", MaxResults, kwargs)
        return {"TrainingJobSummaries": summaries}

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
        from botocore.exceptions import ClientError

        logs = self.client("logs")
        try:
            operation, kwargs = next(tailer)
            while True:
                try:
                    response = call(logs, operation, self.retry, raw=True, **kwargs)
                except ClientError as err:
                    if error_code(err) != "ResourceNotFoundException":
                        raise translate(err, "logs") from err
                    response = None  # the group or stream does not exist (yet)
                operation, kwargs = tailer.send(response)
        except StopIteration as stop:
            events: list[cw.LogEvent] = stop.value
            return events

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
        name = validate_name(request.get("ModelName", ""), kind="model name")
        if not str(request.get("ExecutionRoleArn", "")).startswith("arn:"):
            raise RLConfigError(
                f"Model {name!r} has no execution role (ExecutionRoleArn="
                f"{request.get('ExecutionRoleArn')!r}): SageMaker needs one to pull the image and "
                f"the model artifact; {_ROLE_FIX}."
            )
        container = request.get("PrimaryContainer")
        if not isinstance(container, Mapping) or not container.get("Image"):
            raise RLConfigError(
                f"Model {name!r} needs PrimaryContainer with an Image: build the request with "
                "RLModel.create_model_request()."
            )
        if str(container["Image"]).startswith(_LOCAL_ONLY_IMAGE_PREFIX):
            raise RLConfigError(
                f"Image {container['Image']!r} exists only on the local backend: pass image_uri= "
                "with an ECR image for SageMaker."
            )
        if container.get("ModelDataUrl"):
            split_s3_uri(container["ModelDataUrl"], "ModelDataUrl")
        submit = (container.get("Environment") or {}).get("SAGEMAKER_SUBMIT_DIRECTORY")
        if submit and "://" in submit:
            split_s3_uri(submit, "SAGEMAKER_SUBMIT_DIRECTORY")
        return self._call(
            "sagemaker",
            "create_model",
            exists=f"Model {name!r} exists: pick another model name",
            **request,
        )

    def describe_model(self, name: str) -> ModelDescription:
        validate_name(name, kind="model name")
        response = self._call(
            "sagemaker",
            "describe_model",
            not_found=self._missing(ModelNotFoundError, "model", name),
            ModelName=name,
        )
        return ModelDescription.from_api(response)

    def delete_model(self, name: str) -> None:
        validate_name(name, kind="model name")
        self._call(
            "sagemaker",
            "delete_model",
            not_found=self._missing(ModelNotFoundError, "model", name),
            ModelName=name,
        )

    def list_models(self, MaxResults: int = 100, NameContains: str | None = None) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"SortBy": "CreationTime", "SortOrder": "Descending"}
        if NameContains:
            kwargs["NameContains"] = NameContains
        return {"Models": self._paginate("list_models", "Models", MaxResults, kwargs)}

    # ------------------------------------------------------------------ endpoint configs
    def create_endpoint_config(self, **request: Any) -> dict[str, Any]:
        name = validate_name(request.get("EndpointConfigName", ""), kind="endpoint config name")
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
        return self._call(
            "sagemaker",
            "create_endpoint_config",
            exists=f"Endpoint config {name!r} exists: pick another name",
            **request,
        )

    def describe_endpoint_config(self, name: str) -> EndpointConfigDescription:
        validate_name(name, kind="endpoint config name")
        response = self._call(
            "sagemaker",
            "describe_endpoint_config",
            not_found=self._missing(EndpointNotFoundError, "endpoint configuration", name),
            EndpointConfigName=name,
        )
        return EndpointConfigDescription.from_api(response)

    def delete_endpoint_config(self, name: str) -> None:
        validate_name(name, kind="endpoint config name")
        self._call(
            "sagemaker",
            "delete_endpoint_config",
            not_found=self._missing(EndpointNotFoundError, "endpoint configuration", name),
            EndpointConfigName=name,
        )

    # ------------------------------------------------------------------------ endpoints
    def create_endpoint(self, **request: Any) -> dict[str, Any]:
        """CreateEndpoint; an existing endpoint is an error (update_endpoint replaces it)."""
        name = validate_name(request.get("EndpointName", ""), kind="endpoint name")
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
        validate_name(name, kind="endpoint name")
        response = self._call(
            "sagemaker",
            "describe_endpoint",
            not_found=self._missing(EndpointNotFoundError, "endpoint", name),
            EndpointName=name,
        )
        return EndpointDescription.from_api(response)

    def delete_endpoint(self, name: str) -> None:
        """DeleteEndpoint (SageMaker tears the instances down; the config and model stay)."""
        validate_name(name, kind="endpoint name")
        self._call(
            "sagemaker",
            "delete_endpoint",
            not_found=self._missing(EndpointNotFoundError, "endpoint", name),
            EndpointName=name,
        )

    def list_endpoints(
        self,
        StatusEquals: str | None = None,
        MaxResults: int = 100,
        NameContains: str | None = None,
    ) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"SortBy": "CreationTime", "SortOrder": "Descending"}
        if StatusEquals:
            kwargs["StatusEquals"] = StatusEquals
        if NameContains:
            kwargs["NameContains"] = NameContains
        return {"Endpoints": self._paginate("list_endpoints", "Endpoints", MaxResults, kwargs)}

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
