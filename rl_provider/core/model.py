"""``RLModel``: a trained policy on a backend: its code packaged, CreateModel, deploy.

Which model serves a policy, and the ``CreateModel`` request, are pure
(``rl_provider.core.model_request``); this module adds what needs the backend.
"""

from __future__ import annotations

import logging
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rl_provider.core.jobs import ContainerDefinition, EndpointDescription
from rl_provider.core.lifecycle import Outcome, plan_deploy, production_variant, wait_for_outcome
from rl_provider.core.model_request import (
    BUILTIN_RLLIB_ENTRY_POINT,
    REPACKED_SUBMIT_DIRECTORY,
    RLLIB_HANDLER,
    ModelCode,
    ModelDefinition,
    ModelKind,
    ModelOptions,
    TrainedJob,
    model_arguments,
)
from rl_provider.core.naming import validate_name
from rl_provider.core.packaging import build_sourcedir, safe_extract
from rl_provider.exceptions import (
    BackendError,
    EndpointNotFoundError,
    ModelNotFoundError,
    ResourceExistsError,
    RLConfigError,
)

if TYPE_CHECKING:
    from rl_provider.backends.base import Backend, TrainingBackend
    from rl_provider.core.training_request import TrainingSettings
    from rl_provider.predictor import RLPredictor

__all__ = [
    "BUILTIN_RLLIB_ENTRY_POINT",
    "REPACKED_SUBMIT_DIRECTORY",
    "RLLIB_HANDLER",
    "ModelCode",
    "ModelKind",
    "RLModel",
    "model_for_estimator",
    "model_for_job",
    "wait_for_endpoint",
]

log = logging.getLogger(__name__)


def wait_for_endpoint(
    backend: Backend,
    endpoint_name: str,
    config_name: str | None = None,
    poll: float | None = None,
    timeout: float = 1800.0,
) -> EndpointDescription:
    """Block until the endpoint serves ``config_name`` (or fails); raise on failure.

    ``poll`` defaults to the backend's ``poll_interval`` (SageMaker endpoints take minutes: no
    reason to describe them several times a second). ``timeout`` defaults to 30 minutes, the
    SDK's endpoint waiter. A failed update leaves the endpoint InService on its previous config
    (SageMaker rule): that raises too, with the reason.
    """
    interval = backend.poll_interval if poll is None else poll

    def pause(description: EndpointDescription) -> bool:
        time.sleep(interval)
        return True

    outcome = wait_for_outcome(
        backend,
        endpoint_name,
        endpoint_config_name=config_name,
        deadline=time.time() + timeout,
        pause=pause,
    )
    if outcome is None or outcome.outcome is Outcome.TIMEOUT:
        status = outcome.description.endpoint_status.value if outcome else "changing"
        raise BackendError(
            f"Endpoint {endpoint_name} is still {status} after {timeout:.0f} s: check "
            "its server log, then wait longer or delete it."
        )
    if outcome.outcome is not Outcome.SUCCESS:
        raise BackendError(
            f"Endpoint {endpoint_name} is {outcome.description.endpoint_status.value}: "
            f"{outcome.failure_reason}"
        )
    return outcome.description


def stage_code(code: ModelCode, scratch: Path) -> Path | str:
    """The code as a local ``sourcedir.tar.gz`` or directory, or the URI it already has."""
    if code.is_uri:
        return str(code.source_dir)
    archive = build_sourcedir(
        code.entry_point, code.source_dir, code.dependencies, scratch / "archive"
    )
    if code.requirements is None:
        return archive.path
    unpacked = scratch / "code"
    safe_extract(archive.path, unpacked)
    (unpacked / "requirements.txt").write_text(code.requirements, encoding="utf-8")
    return unpacked


@dataclass(kw_only=True)
class RLModel(ModelDefinition):
    """A deployable model. ``prepare_container_def()`` is pure; ``deploy()`` uses the backend."""

    backend: Any = None

    # ------------------------------------------------------------------------------ deploy
    def upload_code(self) -> None:
        """Package new inference code (if any) and hand it to the backend.

        A repacked model gets ``model.tar.gz`` = the training artifact + the code under
        ``code/`` (SDK v2's repacking for framework models), on every backend.
        """
        if self.repack_from is not None and self.code is not None:
            with tempfile.TemporaryDirectory(prefix="rl-provider-model-") as tmp:
                staged = stage_code(self.code, Path(tmp))
                self._require_backend().repack_model(self.repack_from, staged, self.model_data)
            return
        if self.code is None or self.code_uri is None:
            return
        # build_sourcedir() validates the code arguments before it writes anything.
        with tempfile.TemporaryDirectory(prefix="rl-provider-model-") as tmp:
            archive = build_sourcedir(
                self.code.entry_point, self.code.source_dir, self.code.dependencies, Path(tmp)
            )
            self._require_backend().upload_code(archive.path, self.code_uri)

    def create(self, instance_type: str | None = None) -> None:
        """CreateModel on the backend; an existing model with the same definition is reused."""
        backend = self._require_backend()
        request = self.create_model_request(instance_type)
        try:
            existing = backend.describe_model(self.name)
        except ModelNotFoundError:
            self.upload_code()
            backend.create_model(**request)
            return
        if (
            existing.primary_container.to_api()
            != ContainerDefinition.from_api(request["PrimaryContainer"]).to_api()
        ):
            raise ResourceExistsError(
                f"Model {self.name!r} exists with a different container; pick another name."
            )

    def deploy(
        self,
        initial_instance_count: int,
        instance_type: str,
        endpoint_name: str | None = None,
        update_endpoint: bool = False,
        wait: bool = True,
    ) -> RLPredictor:
        """Create (or, with ``update_endpoint``, update blue/green) an endpoint for this model.

        Everything is checked before anything is created: an existing endpoint without
        ``update_endpoint=True`` is refused before the model and endpoint config exist.
        """
        from rl_provider.predictor import RLPredictor

        backend = self._require_backend()
        if (
            isinstance(initial_instance_count, bool)
            or not isinstance(initial_instance_count, int)
            or initial_instance_count < 1
        ):
            raise RLConfigError(
                f"initial_instance_count={initial_instance_count!r}: pass a positive int "
                "(the local backend serves with one server whatever the count)."
            )
        endpoint_name = validate_name(endpoint_name or self.name, kind="endpoint name")
        try:
            current: EndpointDescription | None = backend.describe_endpoint(endpoint_name)
        except EndpointNotFoundError:
            current = None
        if current is not None and not update_endpoint:
            raise ResourceExistsError(
                f"Endpoint {endpoint_name!r} exists: pass update_endpoint=True to replace its "
                "model blue/green, or choose another endpoint_name."
            )
        # Planned (the InService rule checked) before the model exists: nothing left behind.
        plan = plan_deploy(endpoint_name, current)
        self.create(instance_type)
        plan.start(backend, [production_variant(self.name, initial_instance_count, instance_type)])
        config_name = plan.config_name
        if wait:
            wait_for_endpoint(backend, endpoint_name, config_name)
        return RLPredictor(endpoint_name, backend)

    def _require_backend(self) -> Backend:
        if self.backend is None:
            raise RLConfigError(
                "This model has no backend: create it from an estimator with a backend, or set "
                "model.backend."
            )
        backend: Backend = self.backend
        return backend


def model_for_job(
    settings: TrainingSettings,
    job: TrainedJob,
    options: ModelOptions,
    backend: TrainingBackend | None,
) -> RLModel:
    """``RLEstimator.create_model()``'s model (``model_request.model_arguments``) on ``backend``."""
    return RLModel(**model_arguments(settings, job, options), backend=backend)


def model_for_estimator(estimator: Any, **arguments: Any) -> RLModel:
    """The name this had before the split: ``estimator.create_model(**arguments)``."""
    model: RLModel = estimator.create_model(**arguments)
    return model
