"""``RLCreateModelOperator``: a trained job's policy as a model (SageMaker ``CreateModel``).

The work lives in the core: ``RLEstimator.attach(job).create_model(...)`` picks the serving stack
(for Ray, the built-in RLlib handler) and ``RLModel.create()`` reuses a model of the same name
and definition. This operator renders, validates, and maps errors onto Airflow's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowFailException

from rl_provider.core.enums import TrainingJobStatus
from rl_provider.exceptions import (
    JobNotFoundError,
    ModelNotFoundError,
    ResourceExistsError,
    RLConfigError,
)
from rl_provider.links import MODEL_LINKS, RLExtraLinks, persist_links
from rl_provider.operators.base import RLBaseOperator

if TYPE_CHECKING:
    from airflow.sdk import Context

    from rl_provider.backends.base import Backend


class RLCreateModelOperator(RLExtraLinks, RLBaseOperator):
    """Create a model from a completed training job's artifact.

    :param training_job_name: the completed training job whose ``model.tar.gz`` is served.
    :param model_name: default: the training job's name (one model per job, the same name on a
        rerun, so a retried task finds the model it created).
    :param role: execution role ARN (SageMaker); default: the training job's role.
    :param entry_point: inference code (``model_fn``/``input_fn``/``predict_fn``/``output_fn``);
        default: the toolkit's handler (the built-in RLlib handler for Ray).
    :param source_dir: directory packaged with ``entry_point``.
    :param image_uri: serving image; default: the framework's inference image.
    :param instance_type: the instance type the model will be served on, which picks the CPU or
        GPU image; default: the training job's instance type.
    :param conn_id: the ``rl`` connection (``rl_default`` may be absent: local backend).

    Returns ``{"Model": <DescribeModel response, JSON-safe>}`` and pushes ``model_name``.
    An existing model of the same name is reused when its definition (image, environment,
    artifact) is the same, and fails the task when it differs.
    """

    template_fields: Sequence[str] = (
        "training_job_name",
        "model_name",
        "role",
        "entry_point",
        "source_dir",
        "image_uri",
        "instance_type",
    )
    rl_links = MODEL_LINKS
    ui_color = "#d7ecff"

    def __init__(
        self,
        *,
        training_job_name: str,
        model_name: str | None = None,
        role: str | None = None,
        entry_point: str | None = None,
        source_dir: str | None = None,
        image_uri: str | None = None,
        instance_type: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)  # conn_id: RLBaseOperator's
        self.training_job_name = training_job_name
        self.model_name = model_name
        self.role = role
        self.entry_point = entry_point
        self.source_dir = source_dir
        self.image_uri = image_uri
        self.instance_type = instance_type

    def execute(self, context: Context) -> dict[str, Any]:
        from rl_provider.core.estimator import RLEstimator

        hook = self.hook
        backend = self.connected_backend()
        try:
            estimator = RLEstimator.attach(self.training_job_name, backend=backend)
        except JobNotFoundError as err:
            raise AirflowFailException(
                f"{err} Pass the name of an existing training job (RLTrainOperator pushes it "
                "as the XCom 'job_name')."
            ) from err
        except RLConfigError as err:
            raise AirflowFailException(str(err)) from err
        description = backend.describe_training_job(self.training_job_name)
        if description.training_job_status is not TrainingJobStatus.COMPLETED:
            reason = f" ({description.failure_reason})" if description.failure_reason else ""
            raise AirflowFailException(
                f"Training job {self.training_job_name} is "
                f"{description.training_job_status.value}{reason}: a model needs a Completed "
                "job's artifact. Wait for the job (RLTrainOperator with wait_for_completion=True, "
                "or RLTrainingJobSensor) or pass another job."
            )
        name = self.model_name or self.training_job_name
        existed = _model_exists(backend, name)
        try:
            model = estimator.create_model(
                role=self.role,
                entry_point=self.entry_point,
                source_dir=self.source_dir,
                name=name,
                image_uri=self.image_uri,
            )
            model.create(self.instance_type or estimator.instance_type)
        except ResourceExistsError as err:
            raise AirflowFailException(
                f"Model {name!r} exists with a different definition than the one asked for "
                f"({err}). Pass another model_name, or delete the existing model first."
            ) from err
        except RLConfigError as err:
            raise AirflowFailException(str(err)) from err
        result = backend.describe_model(name)
        self.log.info(
            "%s model %s: %s from training job %s.",
            "Reused the existing" if existed else "Created",
            name,
            result.primary_container.model_data_url,
            self.training_job_name,
        )
        context["ti"].xcom_push(key="model_name", value=name)
        persist_links(
            MODEL_LINKS,
            context,
            backend=hook.settings.backend.value,
            region=hook.settings.region_name or backend.region,
            model_name=name,
            conn_id=hook.conn_id,
        )
        return {"Model": result.to_api()}


def _model_exists(backend: Backend, name: str) -> bool:
    try:
        backend.describe_model(name)
    except ModelNotFoundError:
        return False
    return True
