"""Extra links on rl_provider tasks: pages a browser opens from the Airflow UI, or none.

The Airflow 3 UI shows a task's "Extra Links" heading whenever its serialized operator declares
any link, and renders a button only for an ``http(s)``/``mailto`` URL (the API route
``.../taskInstances/{task_id}/links`` returns every declared name, ``None`` for an empty URL).
A ``file://`` path or a server's ``127.0.0.1`` URL opens nothing in the user's browser, so a
link is declared only where its backend has a page: ``RLLink.backends``. Which backend a task
uses is its ``rl`` connection's, read when Airflow serializes the DAG
(``RLExtraLinks.operator_extra_links``); a local-backend task declares no link and the UI
shows no heading.

An operator records what the links need (backend, region, resource names) in one XCom per link
with ``persist()``; at the end of the task Airflow calls ``get_link`` on the worker and stores
the URL it returns (Airflow 3's ``XComOperatorLink`` then serves it).

Our own pages (``rl_provider.ui``, an Airflow plugin served at ``/rl`` by the API server) exist
on every backend: ``RLPageLink`` and its three subclasses are offered everywhere and point at
the job, model or endpoint page of the task's connection (``<[api] base_url>/rl/...``, or
root-relative ``/rl/...`` without a base URL: the UI renders a same-origin link and opens it in
the same tab). On SageMaker the console links are declared as well. ``TRAINING_LINKS``,
``MODEL_LINKS`` and ``ENDPOINT_LINKS`` are what the operators declare and ``persist_links``
records.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import quote

from airflow.sdk import BaseOperatorLink

from rl_provider.hooks.rl import DEFAULT_CONN_ID, BackendKind, backend_kind

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator, Context
    from airflow.sdk.types import TaskInstanceKey

__all__ = [
    "ENDPOINT_LINKS",
    "MODEL_LINKS",
    "TRAINING_LINKS",
    "RLEndpointLink",
    "RLEndpointPageLink",
    "RLExtraLinks",
    "RLLink",
    "RLModelLink",
    "RLModelPageLink",
    "RLPageLink",
    "RLTrainingJobLink",
    "RLTrainingJobPageLink",
    "RLTrainingLogLink",
    "console_domain",
    "persist_links",
]

log = logging.getLogger(__name__)


def console_domain(region: str) -> str:
    """The AWS console host for a region's partition (the Amazon provider's ``BaseAwsLink``)."""
    if region.startswith("cn-"):
        return "console.amazonaws.cn"
    if region.startswith("us-gov-"):
        return "console.amazonaws-us-gov.com"
    return "console.aws.amazon.com"


class RLLink(BaseOperatorLink):
    """A link built from what ``persist`` stored under ``key`` for the task instance."""

    key: ClassVar[str]
    name: ClassVar[str]
    #: The backends (``BackendKind`` values) on which ``format`` gives a page a browser opens.
    backends: ClassVar[frozenset[str]] = frozenset({"sagemaker"})

    @classmethod
    def offered_on(cls, backend: str | None) -> bool:
        return backend in cls.backends

    @classmethod
    def persist(cls, context: Context, **values: Any) -> None:
        """Record the values ``format`` needs (``backend``, ``region``, names); nothing for a
        backend without a page (the task does not declare the link there)."""
        if cls.offered_on(values.get("backend")):
            context["ti"].xcom_push(key=cls.key, value=values)

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        from airflow.sdk.execution_time.xcom import XCom  # worker-side only; keeps imports light

        values = XCom.get_value(key=self.key, ti_key=ti_key)
        if not isinstance(values, dict):
            return ""
        return self.format(values)

    def format(self, values: dict[str, Any]) -> str:
        raise NotImplementedError


class RLExtraLinks:
    """Mixin for operators: declare the ``rl_links`` whose backend has a page.

    ``operator_extra_links`` is what Airflow serializes with the task (when the DAG processor
    parses the file, and on the worker when the task ends); it reads the task's ``rl``
    connection then, never in ``__init__``. A connection that cannot be read declares no link.
    """

    rl_links: ClassVar[tuple[type[RLLink], ...]] = ()

    @property
    def operator_extra_links(self) -> Collection[BaseOperatorLink]:
        override: Collection[BaseOperatorLink] | None = getattr(self, "__dict__", {}).get(
            "_rl_links_set"
        )
        if override is not None:
            return override
        # A mapped task's operator is a MappedOperator holding the class and partial kwargs.
        links: tuple[type[RLLink], ...] = getattr(
            getattr(self, "operator_class", type(self)), "rl_links", ()
        )
        if not links:
            return ()
        kwargs = getattr(self, "partial_kwargs", None) or {}
        conn_id = kwargs.get("conn_id") or getattr(self, "conn_id", None)
        backend = _backend_of(conn_id)
        return tuple(link() for link in links if link.offered_on(backend))

    @operator_extra_links.setter
    def operator_extra_links(self, links: Collection[BaseOperatorLink]) -> None:
        # BaseOperator's is a plain attribute: whoever assigns one gets exactly that.
        self.__dict__["_rl_links_set"] = links


def _backend_of(conn_id: str | None) -> str | None:
    try:
        return backend_kind(conn_id or DEFAULT_CONN_ID).value
    except Exception as err:  # any lookup failure: declare no link rather than break parsing
        log.debug("No extra links: the backend of connection %r is unknown (%s)", conn_id, err)
        return None


def _console(values: dict[str, Any], fragment: str) -> str:
    if values.get("backend") != "sagemaker" or not values.get("region"):
        return ""
    region = str(values["region"])
    return f"https://{console_domain(region)}/sagemaker/home?region={region}#/{fragment}"


class RLTrainingJobLink(RLLink):
    """SageMaker console page of the training job; the Ray dashboard's page of the job."""

    name = "RL Training Job"
    key = "rl_training_job_link"
    backends = frozenset({"sagemaker", "ray"})

    def format(self, values: dict[str, Any]) -> str:
        if values.get("backend") == "ray":
            return str(values.get("dashboard_url") or "")
        return _console(values, f"jobs/{quote(str(values.get('job_name', '')))}")


class RLTrainingLogLink(RLLink):
    """CloudWatch streams ``/aws/sagemaker/TrainingJobs/<job>/*``."""

    name = "RL Training Logs"
    key = "rl_training_log_link"

    def format(self, values: dict[str, Any]) -> str:
        if values.get("backend") != "sagemaker" or not values.get("region"):
            return ""
        region = str(values["region"])
        # The console's own escaping of the log group and stream-prefix filter ($25 = %).
        group = "$252Faws$252Fsagemaker$252FTrainingJobs"
        stream_filter = f"$3FlogStreamNameFilter$3D{quote(str(values.get('job_name', '')))}"
        return (
            f"https://{console_domain(region)}/cloudwatch/home?region={region}"
            f"#logsV2:log-groups/log-group/{group}{stream_filter}"
        )


class RLModelLink(RLLink):
    """SageMaker console page of a model."""

    name = "RL Model"
    key = "rl_model_link"

    def format(self, values: dict[str, Any]) -> str:
        return _console(values, f"models/{quote(str(values.get('model_name', '')))}")


class RLEndpointLink(RLLink):
    """SageMaker console page of an endpoint. (A local endpoint's 127.0.0.1 URL is no page for
    a browser that is not on the server: not offered.)"""

    name = "RL Endpoint"
    key = "rl_endpoint_link"

    def format(self, values: dict[str, Any]) -> str:
        return _console(values, f"endpoints/{quote(str(values.get('endpoint_name', '')))}")


class RLPageLink(RLLink):
    """A page of ``rl_provider.ui`` in the Airflow UI: offered on every backend."""

    backends = frozenset(kind.value for kind in BackendKind)
    #: The pages' kind (``jobs``, ``models``, ``endpoints``) and the value naming the resource.
    page: ClassVar[str]
    name_key: ClassVar[str]

    def format(self, values: dict[str, Any]) -> str:
        from rl_provider.ui.urls import page_url

        name = values.get(self.name_key)
        if not name:
            return ""
        return page_url(self.page, str(name), str(values.get("conn_id") or DEFAULT_CONN_ID))


class RLTrainingJobPageLink(RLPageLink):
    """The training job's page: learning curves, live log, transitions, Stop."""

    name = "RL Training Job Page"
    key = "rl_training_job_page_link"
    page = "jobs"
    name_key = "job_name"


class RLModelPageLink(RLPageLink):
    """The model's page, with the training job that produced it."""

    name = "RL Model Page"
    key = "rl_model_page_link"
    page = "models"
    name_key = "model_name"


class RLEndpointPageLink(RLPageLink):
    """The endpoint's page: status, config, model, training job, invoke box."""

    name = "RL Endpoint Page"
    key = "rl_endpoint_page_link"
    page = "endpoints"
    name_key = "endpoint_name"


TRAINING_LINKS: tuple[type[RLLink], ...] = (
    RLTrainingJobPageLink,
    RLTrainingJobLink,
    RLTrainingLogLink,
)
MODEL_LINKS: tuple[type[RLLink], ...] = (RLModelPageLink, RLModelLink)
ENDPOINT_LINKS: tuple[type[RLLink], ...] = (RLEndpointPageLink, RLEndpointLink)


def persist_links(links: tuple[type[RLLink], ...], context: Context, **values: Any) -> None:
    """Record ``values`` for each of ``links`` (each keeps only what its backend offers)."""
    for link in links:
        link.persist(context, **values)
