"""``RLEstimator``: SageMaker SDK v2's RL estimator, run on a pluggable backend.

Everything up to the request is pure: ``training_request(job_name)`` returns the exact
``CreateTrainingJob`` dict every backend consumes. ``fit()`` packages the code, hands it to the
backend, creates the job and (optionally) follows it to the end.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, ClassVar

from rl_provider.core import hyperparameters as hp
from rl_provider.core import images, toolkits
from rl_provider.core.enums import RLFramework, RLToolkit
from rl_provider.core.inputs import input_data_config, input_mode_override, to_uri
from rl_provider.core.lifecycle import Described, Lines, Outcome, TrainingFollower, follow_to_end
from rl_provider.core.metrics import default_metric_definitions, validate_definitions
from rl_provider.core.naming import (
    base_from_name,
    base_name_from_image,
    name_from_base,
    validate_name,
)
from rl_provider.core.packaging import build_sourcedir
from rl_provider.core.training_options import (
    CODE_CHANNEL_NAME,
    ISOLATED_SUBMIT_DIRECTORY,
    REFUSED_ARGUMENTS,
    TrainingOptions,
)
from rl_provider.exceptions import (
    BackendError,
    ImageNotFoundError,
    RLConfigError,
    RLMissingArgumentError,
)

if TYPE_CHECKING:
    from rl_provider.backends.base import TrainingBackend
    from rl_provider.core.jobs import TrainingJobDescription
    from rl_provider.core.model import RLModel
    from rl_provider.predictor import RLPredictor

log = logging.getLogger(__name__)

DEFAULT_REGION = "us-west-2"
SAGEMAKER_ESTIMATOR_VALUE = "RLEstimator"
# Hyperparameters the estimator sets itself (sagemaker.estimator.Framework + RLEstimator).
RESERVED_HYPERPARAMETERS = (
    "sagemaker_program",
    "sagemaker_submit_directory",
    "sagemaker_container_log_level",
    "sagemaker_job_name",
    "sagemaker_region",
    "sagemaker_s3_output",
    "sagemaker_estimator",
)
# CreateTrainingJob limits on HyperParameters (SageMaker API reference).
_MAX_HYPERPARAMETERS = 100
_MAX_HP_KEY = 256
_MAX_HP_VALUE = 2500


def resolve_region(backend: TrainingBackend | None = None) -> str:
    """The backend's region; else ``AWS_REGION`` / ``AWS_DEFAULT_REGION``; else us-west-2."""
    region = backend.region if backend is not None else None
    if region:
        return region
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or DEFAULT_REGION


def default_backend(instance_type: str) -> TrainingBackend:
    """The local backend for ``local*`` instance types, SageMaker otherwise.

    Through ``rl_provider.backends.registry``, imported when called: the core never depends on
    a backend module at import time.
    """
    if images.is_ray_instance_type(instance_type):
        raise RLConfigError(
            f"instance_type={instance_type!r} trains on a Ray cluster: pass "
            "backend=RayBackend('http://<head>:8265', token=...) "
            "(from rl_provider.backends.ray import RayBackend)."
        )
    from rl_provider.backends.registry import open_backend
    from rl_provider.settings import BackendKind, BackendSettings

    kind = BackendKind.LOCAL if instance_type.startswith("local") else BackendKind.SAGEMAKER
    return open_backend(BackendSettings(backend=kind))


def backend_for_session(session: object) -> TrainingBackend:
    """The backend an SDK v2 ``sagemaker_session`` stands for (duck-typed, the SDK is never
    imported): a ``sagemaker.local.LocalSession`` (``local_mode`` true) is the local backend; a
    ``sagemaker.session.Session`` (``boto_session``, ``sagemaker_client``) is SageMaker with that
    session's boto3 clients, region and default bucket.
    """
    from rl_provider.backends.registry import AwsClients, open_backend
    from rl_provider.settings import BackendKind, BackendSettings

    if getattr(session, "local_mode", False):
        return open_backend(BackendSettings(backend=BackendKind.LOCAL))
    boto_session = getattr(session, "boto_session", None)
    sagemaker_client = getattr(session, "sagemaker_client", None)
    if boto_session is None or sagemaker_client is None or not hasattr(session, "default_bucket"):
        raise RLConfigError(
            f"sagemaker_session={session!r} is neither a sagemaker.session.Session (boto_session, "
            "sagemaker_client, default_bucket()) nor a sagemaker.local.LocalSession: pass one of "
            "those, or backend= (LocalBackend / SageMakerBackend)."
        )
    clients = {"sagemaker": sagemaker_client}
    runtime = getattr(session, "sagemaker_runtime_client", None)
    if runtime is not None:
        clients["sagemaker-runtime"] = runtime

    def factory(service: str) -> Any:
        return clients[service] if service in clients else boto_session.client(service)

    # The SDK keeps a configured default bucket here; otherwise both use sagemaker-<region>-<acct>.
    bucket = getattr(session, "_default_bucket_name_override", None) or getattr(
        session, "_default_bucket", None
    )
    settings = BackendSettings(
        backend=BackendKind.SAGEMAKER,
        region_name=getattr(session, "boto_region_name", None) or boto_session.region_name,
        bucket=bucket if isinstance(bucket, str) and bucket else None,
    )
    return open_backend(settings, aws=AwsClients(client_factory=factory))


class TrainingJob:
    """A handle on one training job: describe, follow its logs, wait, stop."""

    def __init__(self, name: str, backend: TrainingBackend) -> None:
        self.name = name
        self.backend = backend

    def __repr__(self) -> str:
        return f"TrainingJob({self.name!r})"

    def describe(self) -> TrainingJobDescription:
        return self.backend.describe_training_job(self.name)

    def stop(self) -> None:
        self.backend.stop_training_job(self.name)

    def wait(
        self,
        logs: bool = True,
        poll: float | None = None,
        render: Callable[[str], None] | None = None,
    ) -> TrainingJobDescription:
        """Block until the job ends; render its logs and status changes as the SDK prints them.

        ``render`` receives each line (default: standard output, as the SDK). Unlike the SDK
        (which accepts ``Stopped``), a ``Failed`` or ``Stopped`` job raises ``JobFailedError``:
        a stopped job did not produce the model that was asked for.
        """
        interval = poll if poll is not None else self.backend.poll_interval
        out = render or _to_stdout

        def report(step: Described | Lines) -> None:
            if isinstance(step, Lines):
                for line in step.lines:
                    out(line)
                return
            for transition in step.transitions:
                message = f" - {transition.status_message}" if transition.status_message else ""
                out(f"{transition.start_time:%Y-%m-%d %H:%M:%S} {transition.status}{message}")

        ended = follow_to_end(
            TrainingFollower(self.name, logs=logs),
            self.backend,
            sleep=lambda: time.sleep(interval),
            report=report,
        )
        if ended.outcome is not Outcome.SUCCESS:
            raise ended.error()
        return ended.description


def _to_stdout(line: str) -> None:
    """The SDK's rendering of a followed job: each line on standard output."""
    sys.stdout.write(line + "\n")


class RLEstimator:
    """Train a custom RL entry point with a toolkit (Ray RLlib, Coach) and deploy the policy.

    Accepts every keyword argument of SDK v2.257.7's ``sagemaker.rl.RLEstimator`` (its own,
    ``Framework``'s and ``EstimatorBase``'s; ``image_name`` as an alias of ``image_uri``): each is
    sent as the SDK sends it (``rl_provider.core.training_options``) or refused with an
    ``RLConfigError`` naming it. ``sagemaker_session`` picks the backend (``backend_for_session``).
    Toolkit and framework may be enums or their strings.
    """

    # sagemaker.rl.RLEstimator's class constants (SDK v2.257.7).
    COACH_LATEST_VERSION_TF: ClassVar[str] = "0.11.1"
    COACH_LATEST_VERSION_MXNET: ClassVar[str] = "0.11.0"
    RAY_LATEST_VERSION: ClassVar[str] = "1.6.0"

    # Airflow renders these as nested template fields when the estimator is an operator argument
    # (the Amazon provider templates its whole config dict; image and instance type included).
    template_fields: ClassVar[Sequence[str]] = (
        "entry_point",
        "source_dir",
        "_hyperparameters",
        "image_uri",
        "instance_type",
        "output_path",
        "code_location",
        "base_job_name",
        "role",
        "environment",
        "tags",
        "checkpoint_s3_uri",
    )

    def __init__(
        self,
        entry_point: str,
        toolkit: RLToolkit | str | None = None,
        toolkit_version: str | None = None,
        framework: RLFramework | str | None = None,
        source_dir: str | None = None,
        hyperparameters: Mapping[str, Any] | None = None,
        image_uri: str | None = None,
        metric_definitions: Sequence[Mapping[str, str]] | None = None,
        *,
        image_name: str | None = None,
        role: str | None = None,
        instance_count: int = 1,
        instance_type: str = "local",
        output_path: str | None = None,
        dependencies: Sequence[str] | None = None,
        base_job_name: str | None = None,
        code_location: str | None = None,
        volume_size: int = 30,
        max_run: int = 24 * 60 * 60,
        max_wait: int | None = None,
        use_spot_instances: bool = False,
        checkpoint_s3_uri: str | None = None,
        checkpoint_local_path: str | None = None,
        subnets: Sequence[str] | None = None,
        security_group_ids: Sequence[str] | None = None,
        environment: Mapping[str, str] | None = None,
        tags: Sequence[Mapping[str, str]] | Mapping[str, str] | None = None,
        container_log_level: int = logging.INFO,
        input_mode: str = "File",
        backend: TrainingBackend | None = None,
        sagemaker_session: object = None,
        framework_version: str | None = None,
        py_version: str | None = None,
        keep_alive_period_in_seconds: int | None = None,
        volume_kms_key: str | None = None,
        output_kms_key: str | None = None,
        model_uri: str | None = None,
        model_channel_name: str = "model",
        encrypt_inter_container_traffic: bool | None = None,
        rules: Sequence[Any] | None = None,
        debugger_hook_config: Any = None,
        tensorboard_output_config: Any = None,
        enable_sagemaker_metrics: bool | None = None,
        enable_network_isolation: bool | None = None,
        profiler_config: Any = None,
        disable_profiler: bool | None = None,
        max_retry_attempts: int | None = None,
        git_config: Mapping[str, str] | None = None,
        instance_groups: Sequence[Any] | None = None,
        training_repository_access_mode: str | None = None,
        training_repository_credentials_provider_arn: str | None = None,
        enable_infra_check: bool | None = None,
        container_entry_point: Sequence[str] | None = None,
        container_arguments: Sequence[str] | None = None,
        disable_output_compression: bool = False,
        enable_remote_debug: bool | None = None,
        enable_session_tag_chaining: bool | None = None,
        training_plan: str | None = None,
        instance_placement_config: Any = None,
    ) -> None:
        # framework_version and py_version: SDK v2 takes and ignores them for RLEstimator (the
        # framework version comes from the toolkit table); so do we.
        del framework_version, py_version
        refused = {
            "git_config": git_config,
            "instance_groups": instance_groups,
            "instance_placement_config": instance_placement_config,
        }
        for argument, value in refused.items():
            if value:
                raise RLConfigError(f"{argument} is not supported: {REFUSED_ARGUMENTS[argument]}.")
        if sagemaker_session is not None:
            if backend is not None:
                raise RLConfigError(
                    "Pass sagemaker_session= or backend=, not both: the session stands for a "
                    "backend."
                )
            backend = backend_for_session(sagemaker_session)
        self.sagemaker_options = TrainingOptions(
            keep_alive_period_in_seconds=keep_alive_period_in_seconds,
            volume_kms_key=volume_kms_key,
            output_kms_key=output_kms_key,
            model_uri=model_uri,
            model_channel_name=model_channel_name,
            encrypt_inter_container_traffic=encrypt_inter_container_traffic,
            rules=rules,
            debugger_hook_config=debugger_hook_config,
            tensorboard_output_config=tensorboard_output_config,
            enable_sagemaker_metrics=enable_sagemaker_metrics,
            enable_network_isolation=enable_network_isolation,
            profiler_config=profiler_config,
            disable_profiler=disable_profiler,
            max_retry_attempts=max_retry_attempts,
            training_repository_access_mode=training_repository_access_mode,
            training_repository_credentials_provider_arn=training_repository_credentials_provider_arn,
            enable_infra_check=enable_infra_check,
            container_entry_point=container_entry_point,
            container_arguments=container_arguments,
            disable_output_compression=disable_output_compression,
            enable_remote_debug=enable_remote_debug,
            enable_session_tag_chaining=enable_session_tag_chaining,
            training_plan=training_plan,
        )
        if image_name is not None and image_uri is not None and image_name != image_uri:
            raise RLConfigError(
                f"image_name={image_name!r} and image_uri={image_uri!r} disagree: image_name is "
                "the SDK's old name for image_uri; pass only image_uri."
            )
        image_uri = image_uri or image_name
        # Validation order (SDK): bad enum value -> missing arguments -> unsupported combination.
        self.toolkit = RLToolkit.coerce(toolkit, argument="toolkit") if toolkit else None
        self.framework = RLFramework.coerce(framework, argument="framework") if framework else None
        self.toolkit_version = str(toolkit_version) if toolkit_version else None
        self.image_uri = image_uri
        self.framework_version: str | None = None
        if image_uri:
            given = [
                name
                for name, value in (
                    ("toolkit", toolkit),
                    ("toolkit_version", toolkit_version),
                    ("framework", framework),
                )
                if value
            ]
            if given:
                log.warning(
                    "Parameter `image_uri` is specified, `%s` are going to be ignored when "
                    "choosing the image.",
                    "`, `".join(given),
                )
        else:
            missing = [
                name
                for name, value in (
                    ("toolkit", self.toolkit),
                    ("toolkit_version", self.toolkit_version),
                    ("framework", self.framework),
                )
                if not value
            ]
            if missing:
                raise RLMissingArgumentError(
                    "Please provide `{}` or `image_uri` parameter.".format("`, `".join(missing))
                )
            toolkit, version, fw = self._identity()
            toolkits.check_supported(toolkit, version, fw)
            self.framework_version = toolkits.framework_version(toolkit, version, fw)
        if metric_definitions:
            self.metric_definitions = validate_definitions(metric_definitions)
        elif self.toolkit and not image_uri:
            self.metric_definitions = default_metric_definitions(self.toolkit, self.toolkit_version)
        else:
            self.metric_definitions = []

        self.entry_point = entry_point
        self.source_dir = source_dir
        self.dependencies = list(dependencies or [])
        self._hyperparameters: dict[str, Any] = dict(hyperparameters or {})
        self.role = role
        self.instance_count = instance_count
        self.instance_type = instance_type
        self.output_path = output_path
        self.base_job_name = base_job_name
        self.code_location = code_location
        self.volume_size = volume_size
        self.max_run = max_run
        self.max_wait = max_wait
        self.use_spot_instances = use_spot_instances
        self.checkpoint_s3_uri = checkpoint_s3_uri
        self.checkpoint_local_path = checkpoint_local_path
        self.subnets = list(subnets) if subnets else None
        self.security_group_ids = list(security_group_ids) if security_group_ids else None
        self.environment = dict(environment or {})
        self.tags = tags
        self.container_log_level = container_log_level
        self.input_mode = input_mode
        self.backend = backend
        self._current_job_name: str | None = None
        self.latest_training_job: TrainingJob | None = None

    def __repr__(self) -> str:
        kind = self.image_uri or f"{self.toolkit}-{self.toolkit_version}-{self.framework}"
        return f"RLEstimator({self.entry_point!r}, {kind}, instance_type={self.instance_type!r})"

    # ----------------------------------------------------------------------------- the SDK API
    @classmethod
    def default_metric_definitions(cls, toolkit: RLToolkit | str) -> list[dict[str, str]]:
        """The SDK's default metric definitions for ``toolkit``."""
        return default_metric_definitions(toolkit)

    @property
    def region(self) -> str:
        return resolve_region(self.backend)

    def training_image_uri(self, region: str | None = None) -> str:
        """``image_uri`` if given, else the SageMaker RL image for toolkit/framework/instance."""
        if self.image_uri:
            return self.image_uri
        toolkit, version, framework = self._identity()
        region = region or self.region
        if toolkits.is_ray2(toolkit, version):
            processor = images.processor_for(self.instance_type)
            if not images.is_sagemaker_instance_type(self.instance_type):
                return toolkits.local_image_name(toolkit, version, framework, processor)
            raise ImageNotFoundError(
                f"No SageMaker image exists for Ray {version} (SageMaker's RL images stop at "
                f"Ray 1.6.0) on instance type {self.instance_type!r}: build one with Ray "
                f"{version} and pass image_uri=, or train on the local backend "
                "(instance_type='local')."
            )
        return images.retrieve(
            f"{toolkit.value}-{framework.value}", region, version, self.instance_type
        )

    def hyperparameters(
        self, job_name: str | None = None, region: str | None = None
    ) -> dict[str, str]:
        """User values JSON-encoded plus the ``sagemaker_*`` keys the container reads.

        The keys that depend on the job (``sagemaker_job_name``, ``sagemaker_submit_directory``)
        are present once a job name is known: passed in, or the latest job's.
        """
        user = hp.encode(self._hyperparameters)
        reserved = sorted(set(user) & set(RESERVED_HYPERPARAMETERS))
        if reserved:
            raise RLConfigError(
                f"Hyperparameters {reserved} are set by the estimator itself; rename them."
            )
        job_name = job_name or self._current_job_name
        region = region or self.region
        extra: dict[str, Any] = {
            "sagemaker_program": self._program_name(),
            "sagemaker_container_log_level": self.container_log_level,
            "sagemaker_region": region,
            "sagemaker_estimator": SAGEMAKER_ESTIMATOR_VALUE,
        }
        output_path = self._output_path_or_none()
        if output_path is not None:
            extra["sagemaker_s3_output"] = output_path
        if job_name is not None:
            extra["sagemaker_job_name"] = job_name
            submit = self.code_uri(job_name)
            if submit is not None:
                # With network isolation the code arrives as the "code" channel (SDK rule).
                isolated = self.sagemaker_options.enable_network_isolation
                extra["sagemaker_submit_directory"] = (
                    ISOLATED_SUBMIT_DIRECTORY if isolated else submit
                )
        encoded = {**user, **hp.encode(extra)}
        self._check_hyperparameter_limits(encoded)
        return encoded

    def code_uri(self, job_name: str) -> str | None:
        """Where the job's ``sourcedir.tar.gz`` lives (SDK layout ``<root>/<job>/source/``)."""
        if self.source_dir and "://" in self.source_dir:  # a prebuilt archive, used as it is
            return self.source_dir
        root = self._code_root()
        if root is None:
            return None
        return f"{root}/{job_name}/source/sourcedir.tar.gz"

    def training_request(
        self, job_name: str, inputs: object = None, region: str | None = None
    ) -> dict[str, Any]:
        """The exact ``CreateTrainingJob`` request for ``job_name``: pure, nothing is created."""
        validate_name(job_name, kind="training job name")
        region = region or self.region
        output_path = self._require_output_path()
        self._validate_resources()
        local = not images.is_sagemaker_instance_type(self.instance_type)
        self.sagemaker_options.check(local=local)
        algorithm: dict[str, Any] = {
            "TrainingImage": self.training_image_uri(region),
            # A single TrainingInput's input_mode is the job's (SDK rule).
            "TrainingInputMode": input_mode_override(inputs) or self.input_mode,
        }
        if self.metric_definitions:
            algorithm["MetricDefinitions"] = [dict(d) for d in self.metric_definitions]
        request: dict[str, Any] = {
            "TrainingJobName": job_name,
            "AlgorithmSpecification": algorithm,
            "HyperParameters": self.hyperparameters(job_name, region),
            "OutputDataConfig": {"S3OutputPath": output_path},
            "ResourceConfig": {
                "InstanceType": self.instance_type,
                "InstanceCount": self.instance_count,
                "VolumeSizeInGB": self.volume_size,
            },
            "StoppingCondition": {"MaxRuntimeInSeconds": self.max_run},
        }
        if self.max_wait is not None:
            request["StoppingCondition"]["MaxWaitTimeInSeconds"] = self.max_wait
        if self.role:
            request["RoleArn"] = self.role
        channels = input_data_config(inputs)
        model_channel = self.sagemaker_options.model_channel(to_uri)
        if model_channel is not None:
            channels.append(model_channel)
        code = self.code_uri(job_name)
        if self.sagemaker_options.enable_network_isolation and code is not None:
            channels.append(
                {
                    "ChannelName": CODE_CHANNEL_NAME,
                    "DataSource": {
                        "S3DataSource": {
                            "S3DataType": "S3Prefix",
                            "S3Uri": code,
                            "S3DataDistributionType": "FullyReplicated",
                        }
                    },
                }
            )
        if channels:
            request["InputDataConfig"] = channels
        if self.subnets and self.security_group_ids:
            request["VpcConfig"] = {
                "Subnets": list(self.subnets),
                "SecurityGroupIds": list(self.security_group_ids),
            }
        if self.checkpoint_s3_uri:
            checkpoint = {"S3Uri": self.checkpoint_s3_uri}
            if self.checkpoint_local_path:
                checkpoint["LocalPath"] = self.checkpoint_local_path
            request["CheckpointConfig"] = checkpoint
        if self.environment:
            request["Environment"] = {str(k): str(v) for k, v in self.environment.items()}
        tags = self._tag_list()
        if tags:
            request["Tags"] = tags
        if self.use_spot_instances:
            request["EnableManagedSpotTraining"] = True
        self.sagemaker_options.apply(request, output_path=output_path, region=region, local=local)
        return request

    def fit(
        self,
        inputs: object = None,
        wait: bool = True,
        logs: bool = True,
        job_name: str | None = None,
    ) -> None:
        """Start a training job (validated and packaged first) and, with ``wait``, follow it."""
        backend = self._backend()
        job_name = job_name or self._new_job_name()
        request = self.training_request(job_name, inputs)
        backend.validate_training_request(request)  # refused before anything is uploaded
        self.upload_source(job_name)
        backend.create_training_job(**request)
        self._current_job_name = job_name
        self.latest_training_job = TrainingJob(job_name, backend)
        if wait:
            self.latest_training_job.wait(logs=logs)

    def upload_source(self, job_name: str) -> str | None:
        """Package the code (deterministic ``sourcedir.tar.gz``) and hand it to the backend."""
        uri = self.code_uri(job_name)
        if uri is None or uri == self.source_dir:  # an s3:// source_dir is used as it is
            return uri
        with tempfile.TemporaryDirectory(prefix="rl-provider-src-") as tmp:
            archive = build_sourcedir(
                self.entry_point, self.source_dir, self.dependencies, Path(tmp)
            )
            return self._backend().upload_code(archive.path, uri)

    @classmethod
    def attach(
        cls,
        job_name: str,
        backend: TrainingBackend | None = None,
        sagemaker_session: object = None,
        model_channel_name: str = "model",
    ) -> RLEstimator:
        """An estimator for an existing job, rebuilt from its description (does not wait).

        As the SDK: ``base_job_name`` is recovered from the job name (``neo-2017-...`` ->
        ``neo``) and ``tags`` from ListTags; ``sagemaker_session`` picks the backend.
        """
        if sagemaker_session is not None:
            if backend is not None:
                raise RLConfigError("Pass sagemaker_session= or backend=, not both.")
            backend = backend_for_session(sagemaker_session)
        if backend is None:
            backend = default_backend("local")
        description = backend.describe_training_job(job_name)
        estimator = cls._from_description(description, backend, model_channel_name)
        estimator.base_job_name = base_from_name(job_name)
        if description.training_job_arn:
            estimator.tags = backend.list_tags(description.training_job_arn)
        estimator._current_job_name = job_name
        estimator.latest_training_job = TrainingJob(job_name, backend)
        return estimator

    @property
    def model_data(self) -> str | None:
        """The model artifact of the latest job (computed from the output path while it runs)."""
        if self.latest_training_job is None:
            return None
        try:
            artifacts = self.latest_training_job.describe().model_artifacts
        except BackendError:  # the backend may not know it (yet): fall back to the known layout
            log.debug("describe failed for %s", self.latest_training_job.name, exc_info=True)
            artifacts = None
        if artifacts:
            return artifacts
        output = self._output_path_or_none()
        if output is None:
            return None
        return f"{output.rstrip('/')}/{self.latest_training_job.name}/output/model.tar.gz"

    def create_model(
        self,
        role: str | None = None,
        entry_point: str | None = None,
        source_dir: str | None = None,
        dependencies: Sequence[str] | None = None,
        name: str | None = None,
        image_uri: str | None = None,
        environment: Mapping[str, str] | None = None,
        vpc_config_override: Mapping[str, Sequence[str]] | None = None,
    ) -> RLModel:
        """A deployable model of the latest job's artifact (see ``rl_provider.core.model``)."""
        from rl_provider.core.model import model_for_estimator

        return model_for_estimator(
            self,
            role=role,
            entry_point=entry_point,
            source_dir=source_dir,
            dependencies=dependencies,
            name=name,
            image_uri=image_uri,
            environment=environment,
            vpc_config_override=vpc_config_override,
        )

    def deploy(
        self,
        initial_instance_count: int,
        instance_type: str,
        endpoint_name: str | None = None,
        update_endpoint: bool = False,
        wait: bool = True,
        **model_kwargs: Any,
    ) -> RLPredictor:
        """``create_model(**model_kwargs).deploy(...)``: serve the latest job's policy."""
        return self.create_model(**model_kwargs).deploy(
            initial_instance_count,
            instance_type,
            endpoint_name=endpoint_name,
            update_endpoint=update_endpoint,
            wait=wait,
        )

    # ---------------------------------------------------------------------------------- helpers
    def _identity(self) -> tuple[RLToolkit, str, RLFramework]:
        """Toolkit, version and framework of an estimator built without ``image_uri``."""
        if self.toolkit is None or self.toolkit_version is None or self.framework is None:
            raise RLMissingArgumentError(
                "Please provide `toolkit`, `toolkit_version`, `framework` or `image_uri` parameter."
            )
        return self.toolkit, self.toolkit_version, self.framework

    def _backend(self) -> TrainingBackend:
        if self.backend is None:
            self.backend = default_backend(self.instance_type)
        return self.backend

    def _program_name(self) -> str:
        if self.source_dir:
            return PurePosixPath(self.entry_point).as_posix()
        return os.path.basename(self.entry_point)

    def _output_path_or_none(self) -> str | None:
        if self.output_path:
            return self.output_path
        if self.backend is not None:
            return self.backend.default_output_path()
        return None

    def _require_output_path(self) -> str:
        output = self._output_path_or_none()
        if output is None:
            raise RLConfigError(
                "output_path is not set and there is no backend to take a default from: pass "
                "output_path='s3://bucket/prefix' (or 'file:///dir'), or backend=."
            )
        if not output.startswith(("s3://", "file://")):
            raise RLConfigError(f"output_path {output!r} must be an s3:// or file:// URI.")
        return output

    def _code_root(self) -> str | None:
        """``code_location``, else the output path's bucket (SDK rule), else its directory."""
        if self.code_location:
            return self.code_location.rstrip("/")
        output = self._output_path_or_none()
        if output is None:
            return None
        if output.startswith("s3://"):
            return "s3://" + output[len("s3://") :].split("/", 1)[0]
        return output.rstrip("/")

    def _new_job_name(self) -> str:
        base = self.base_job_name or base_name_from_image(self.training_image_uri())
        return validate_name(name_from_base(base), kind="training job name")

    def _tag_list(self) -> list[dict[str, str]]:
        if not self.tags:
            return []
        if isinstance(self.tags, Mapping):
            return [{"Key": str(k), "Value": str(v)} for k, v in self.tags.items()]
        return [{"Key": str(t["Key"]), "Value": str(t["Value"])} for t in self.tags]

    def _validate_resources(self) -> None:
        if not isinstance(self.instance_count, int) or self.instance_count < 1:
            raise RLConfigError(
                f"instance_count must be a positive int, got {self.instance_count!r}."
            )
        images.processor_for(self.instance_type)  # raises for a malformed instance type
        if self.instance_type.startswith("local") and self.instance_count != 1:
            raise RLConfigError(
                f"instance_count={self.instance_count} with instance_type={self.instance_type!r}: "
                "the local backend runs one instance; use instance_count=1."
            )
        if self.use_spot_instances and (self.max_wait is None or self.max_wait < self.max_run):
            raise RLConfigError(
                f"use_spot_instances needs max_wait >= max_run (max_wait={self.max_wait}, "
                f"max_run={self.max_run}): SageMaker rejects spot jobs otherwise."
            )
        if bool(self.subnets) != bool(self.security_group_ids):
            raise RLConfigError(
                "subnets and security_group_ids go together (VpcConfig needs both): "
                "pass both or neither."
            )

    @staticmethod
    def _check_hyperparameter_limits(encoded: Mapping[str, str]) -> None:
        if len(encoded) > _MAX_HYPERPARAMETERS:
            raise RLConfigError(
                f"{len(encoded)} hyperparameters: SageMaker accepts at most {_MAX_HYPERPARAMETERS}."
            )
        for key, value in encoded.items():
            if len(key) > _MAX_HP_KEY or len(value) > _MAX_HP_VALUE:
                raise RLConfigError(
                    f"Hyperparameter {key[:40]!r} is too long: SageMaker allows keys of "
                    f"{_MAX_HP_KEY} and encoded values of {_MAX_HP_VALUE} characters; pass large "
                    "values as an input channel instead."
                )

    @classmethod
    def _from_description(
        cls,
        description: TrainingJobDescription,
        backend: TrainingBackend,
        model_channel_name: str = "model",
    ) -> RLEstimator:
        hps = dict(description.hyper_parameters)
        program = hp.decode_value(hps.pop("sagemaker_program", '""'))
        submit = hp.decode_value(hps.pop("sagemaker_submit_directory", "null"))
        log_level = hp.decode_value(hps.pop("sagemaker_container_log_level", "20"))
        for key in RESERVED_HYPERPARAMETERS:
            hps.pop(key, None)
        image = str(description.algorithm_specification.get("TrainingImage", ""))
        parsed = toolkits.parse_image(image)
        identity: dict[str, Any]
        if parsed is None and toolkits.is_framework_image(image):
            # SDK: an image of another SageMaker framework is not an RL job.
            raise RLConfigError(
                f"Training job: {description.training_job_name} didn't use image for requested "
                f"framework: {image!r} is a SageMaker framework image, not an RL one. Attach "
                "with that framework's estimator, or rebuild this one with image_uri=."
            )
        if parsed is None:
            identity = {"image_uri": image}
        else:
            if not toolkits.is_supported(parsed.toolkit, parsed.toolkit_version, parsed.framework):
                raise RLConfigError(
                    f"Training job {description.training_job_name} didn't use an image for the "
                    f"requested framework: {image!r} is {parsed.toolkit.value} "
                    f"{parsed.toolkit_version} with {parsed.framework.value}, which no RL image "
                    "has."
                )
            identity = {
                "toolkit": parsed.toolkit,
                "toolkit_version": parsed.toolkit_version,
                "framework": parsed.framework,
            }
        resources = description.resource_config
        stopping = description.stopping_condition
        vpc = description.vpc_config or {}
        checkpoint = description.checkpoint_config or {}
        retry = description.extra.get("RetryStrategy") or {}
        channel_uris = {
            channel.get("ChannelName"): channel["DataSource"]["S3DataSource"]["S3Uri"]
            for channel in description.input_data_config
            if "S3DataSource" in channel.get("DataSource", {})
        }
        if submit == ISOLATED_SUBMIT_DIRECTORY:  # network isolation: the code came as a channel
            submit = channel_uris.get(CODE_CHANNEL_NAME, submit)
        # SDK: the pre-trained model channel is recovered by its name (attach's argument).
        model_uri = channel_uris.get(model_channel_name)
        estimator = cls(
            entry_point=str(program),
            source_dir=submit if isinstance(submit, str) else None,
            hyperparameters=hp.decode(hps),
            metric_definitions=description.algorithm_specification.get("MetricDefinitions"),
            role=description.role_arn,
            instance_count=int(resources.get("InstanceCount", 1)),
            instance_type=str(resources.get("InstanceType", "local")),
            volume_size=int(resources.get("VolumeSizeInGB", 30)),
            max_run=int(stopping.get("MaxRuntimeInSeconds", 86400)),
            max_wait=stopping.get("MaxWaitTimeInSeconds"),
            output_path=description.output_data_config.get("S3OutputPath"),
            use_spot_instances=description.enable_managed_spot_training,
            checkpoint_s3_uri=checkpoint.get("S3Uri"),
            checkpoint_local_path=checkpoint.get("LocalPath"),
            subnets=vpc.get("Subnets"),
            security_group_ids=vpc.get("SecurityGroupIds"),
            environment=description.environment,
            container_log_level=int(log_level) if isinstance(log_level, int) else logging.INFO,
            input_mode=str(description.algorithm_specification.get("TrainingInputMode", "File")),
            backend=backend,
            # As the SDK: KmsKeyId as described ("" included); VolumeKmsKeyId is not recovered.
            output_kms_key=description.output_data_config.get("KmsKeyId"),
            keep_alive_period_in_seconds=resources.get("KeepAlivePeriodInSeconds"),
            encrypt_inter_container_traffic=description.extra.get(
                "EnableInterContainerTrafficEncryption"
            ),
            enable_network_isolation=description.extra.get("EnableNetworkIsolation"),
            max_retry_attempts=retry.get("MaximumRetryAttempts"),
            model_uri=model_uri,
            model_channel_name=model_channel_name,
            **identity,
        )
        return estimator
