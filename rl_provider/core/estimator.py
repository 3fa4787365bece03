"""``RLEstimator``: SageMaker SDK v2's RL estimator, run on a pluggable backend.

The estimator holds the state and the backend; the request is pure: ``training_request(job_name)``
returns the exact ``CreateTrainingJob`` dict every backend consumes, built by
``rl_provider.core.training_request`` (and read back by ``rl_provider.core.job_arguments`` for
``attach()``). ``fit()`` packages the code, hands it to the backend, creates the job and
(optionally) follows it to the end (``rl_provider.core.training_job``).
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from rl_provider.core import training_request as requests
from rl_provider.core.enums import RLFramework, RLToolkit
from rl_provider.core.job_arguments import choose_image, estimator_arguments
from rl_provider.core.metrics import default_metric_definitions
from rl_provider.core.model_request import ModelOptions, TrainedJob
from rl_provider.core.naming import (
    base_from_name,
    base_name_from_image,
    name_from_base,
    validate_name,
)
from rl_provider.core.packaging import build_sourcedir
from rl_provider.core.session import (
    DEFAULT_REGION,
    backend_for_session,
    chosen_backend,
    default_backend,
    resolve_region,
)
from rl_provider.core.training_job import TrainingJob
from rl_provider.core.training_options import REFUSED_ARGUMENTS, TrainingOptions
from rl_provider.core.training_request import RESERVED_HYPERPARAMETERS, SAGEMAKER_ESTIMATOR_VALUE
from rl_provider.exceptions import RLConfigError

if TYPE_CHECKING:
    from rl_provider.backends.base import TrainingBackend
    from rl_provider.core.model import RLModel
    from rl_provider.predictor import RLPredictor

# Also the names that lived here before the request, the session and TrainingJob moved out.
__all__ = [
    "DEFAULT_REGION",
    "RESERVED_HYPERPARAMETERS",
    "SAGEMAKER_ESTIMATOR_VALUE",
    "RLEstimator",
    "TrainingJob",
    "backend_for_session",
    "default_backend",
    "resolve_region",
]

log = logging.getLogger(__name__)


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
        model_uri: str | None = None,
        model_channel_name: str = "model",
        volume_kms_key: str | None = None,
        output_kms_key: str | None = None,
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
        backend = chosen_backend(backend, sagemaker_session)
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
        chosen = choose_image(
            toolkit=toolkit,
            toolkit_version=toolkit_version,
            framework=framework,
            image_uri=image_uri,
            image_name=image_name,
            metric_definitions=metric_definitions,
        )
        self.toolkit = chosen.toolkit
        self.toolkit_version = chosen.toolkit_version
        self.framework = chosen.framework
        self.image_uri = chosen.image_uri
        self.framework_version = chosen.framework_version
        self.metric_definitions = chosen.metric_definitions
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
        return requests.training_image(self, region or self.region)

    def hyperparameters(
        self, job_name: str | None = None, region: str | None = None
    ) -> dict[str, str]:
        """User values JSON-encoded plus the ``sagemaker_*`` keys the container reads.

        The keys that depend on the job (``sagemaker_job_name``, ``sagemaker_submit_directory``)
        are present once a job name is known: passed in, or the latest job's.
        """
        return requests.hyperparameters(
            self,
            self._hyperparameters,
            job_name=job_name or self._current_job_name,
            region=region or self.region,
            output_path=self._output_path_or_none(),
        )

    def code_uri(self, job_name: str) -> str | None:
        """Where the job's ``sourcedir.tar.gz`` lives (SDK layout ``<root>/<job>/source/``)."""
        return requests.code_uri(self, job_name, self._output_path_or_none())

    def training_request(
        self, job_name: str, inputs: object = None, region: str | None = None
    ) -> dict[str, Any]:
        """The exact ``CreateTrainingJob`` request for ``job_name``: pure, nothing is created."""
        return requests.training_request(
            self,
            self._hyperparameters,
            job_name=job_name,
            inputs=inputs,
            region=region or self.region,
            output_path=self._output_path_or_none(),
        )

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
        backend = chosen_backend(backend, sagemaker_session) or default_backend("local")
        description = backend.describe_training_job(job_name)
        estimator = cls(**estimator_arguments(description, model_channel_name), backend=backend)
        estimator.base_job_name = base_from_name(job_name)
        if description.training_job_arn:
            estimator.tags = backend.list_tags(description.training_job_arn)
        estimator._current_job_name = job_name
        estimator.latest_training_job = TrainingJob(job_name, backend)
        return estimator

    @property
    def model_data(self) -> str | None:
        """The model artifact of the latest job (computed from the output path while it runs)."""
        job = self.latest_training_job
        return None if job is None else job.model_artifacts(self._output_path_or_none)

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
        """A deployable model of the latest job's artifact (``rl_provider.core.model_request``
        chooses it; ``rl_provider.core.model`` deploys it)."""
        from rl_provider.core.model import model_for_job

        job = self.latest_training_job
        if job is None:
            raise RLConfigError(
                "This estimator has no training job yet: call fit() or "
                "RLEstimator.attach(job_name) before create_model()."
            )
        options = ModelOptions(
            name=name if name is not None else name_from_base(self._name_base()),
            role=role,
            entry_point=entry_point,
            source_dir=source_dir,
            dependencies=dependencies,
            image_uri=image_uri,
            environment=environment,
            vpc_config_override=vpc_config_override,
        )
        output_path = self._output_path_or_none()
        trained = TrainedJob(
            job_name=job.name,
            model_data=self.model_data,
            output_path=output_path,
            region=self.region,
            repack_root=self._repack_root(output_path),
        )
        return model_for_job(self, trained, options, self.backend)

    def deploy(
        self,
        initial_instance_count: int,
        instance_type: str,
        *,
        wait: bool = True,
        endpoint_name: str | None = None,
        update_endpoint: bool = False,
        **model_kwargs: Any,
    ) -> RLPredictor:
        """``create_model(**model_kwargs).deploy(...)``: serve the latest job's policy."""
        # Keywords after instance_type: the SDK's third positional argument is a serializer.
        return self.create_model(**model_kwargs).deploy(
            initial_instance_count,
            instance_type,
            endpoint_name=endpoint_name,
            update_endpoint=update_endpoint,
            wait=wait,
        )

    # ---------------------------------------------------------------------------------- helpers
    def _backend(self) -> TrainingBackend:
        if self.backend is None:
            self.backend = default_backend(self.instance_type)
        return self.backend

    def _output_path_or_none(self) -> str | None:
        if self.output_path:
            return self.output_path
        if self.backend is not None:
            return self.backend.default_output_path()
        return None

    def _repack_root(self, output_path: str | None) -> str | None:
        """SDK: a repacked model goes under ``code_location`` or the session's default bucket."""
        if self.code_location:
            return self.code_location
        if self.backend is not None:
            return self.backend.default_output_path()
        return requests.code_root(None, output_path)

    def _name_base(self) -> str:
        return self.base_job_name or base_name_from_image(self.training_image_uri())

    def _new_job_name(self) -> str:
        return validate_name(name_from_base(self._name_base()), kind="training job name")
