"""Extra links on rl_provider tasks: the SageMaker console, CloudWatch logs, local log files.

An operator records what the links need (backend, region, resource names, the local log file)
in one XCom per link with ``persist()``; at the end of the task Airflow calls ``get_link`` on the
worker and stores the URL it returns (Airflow 3's ``XComOperatorLink`` then serves it).
A link the backend has no page for is ``""`` (Airflow hides it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import quote

from airflow.sdk import BaseOperatorLink

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator, Context
    from airflow.sdk.types import TaskInstanceKey

__all__ = [
    "RLEndpointLink",
    "RLModelLink",
    "RLTrainingJobLink",
    "RLTrainingLogLink",
    "console_domain",
]


def console_domain(region: str) -> str:
    """The AWS console host for a region's partition (the Amazon provider's ``BaseAwsLink``)."""
    if region.startswith("cn-"):
        return "console.amazonaws.cn"
    if region.startswith("us-gov-"):
        return "console.amazonaws-us-gov.com"
    return "console.aws.amazon.com"


class _RLLink(BaseOperatorLink):
    """A link built from what ``persist`` stored under ``key`` for the task instance."""

    key: ClassVar[str]
    name: ClassVar[str]

    @classmethod
    def persist(cls, context: Context, **values: Any) -> None:
        """Record the values ``format`` needs (``backend``, ``region``, names, ``log_uri``)."""
        context["ti"].xcom_push(key=cls.key, value=values)

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        from airflow.sdk.execution_time.xcom import XCom  # worker-side only; keeps imports light

        values = XCom.get_value(key=self.key, ti_key=ti_key)
        if not isinstance(values, dict):
            return ""
        return self.format(values)

    def format(self, values: dict[str, Any]) -> str:
        raise NotImplementedError


def _console(values: dict[str, Any], fragment: str) -> str:
    if values.get("backend") != "sagemaker" or not values.get("region"):
        return ""
    region = str(values["region"])
    return f"https://{console_domain(region)}/sagemaker/home?region={region}#/{fragment}"


class RLTrainingJobLink(_RLLink):
    """SageMaker console page of the training job; the Ray dashboard's job page; the local job
    directory."""

    name = "RL Training Job"
    key = "rl_training_job_link"

    def format(self, values: dict[str, Any]) -> str:
        if values.get("backend") == "ray":
            return str(values.get("dashboard_url") or "")
        if values.get("backend") == "local":
            return str(values.get("job_dir_uri") or "")
        return _console(values, f"jobs/{quote(str(values.get('job_name', '')))}")


class RLTrainingLogLink(_RLLink):
    """CloudWatch streams ``/aws/sagemaker/TrainingJobs/<job>/*``; locally the log file."""

    name = "RL Training Logs"
    key = "rl_training_log_link"

    def format(self, values: dict[str, Any]) -> str:
        if values.get("backend") == "local":
            return str(values.get("log_uri") or "")
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


class RLModelLink(_RLLink):
    """SageMaker console page of a model (no page for local models)."""

    name = "RL Model"
    key = "rl_model_link"

    def format(self, values: dict[str, Any]) -> str:
        return _console(values, f"models/{quote(str(values.get('model_name', '')))}")


class RLEndpointLink(_RLLink):
    """SageMaker console page of an endpoint; a local endpoint's URL (``/ping``) otherwise."""

    name = "RL Endpoint"
    key = "rl_endpoint_link"

    def format(self, values: dict[str, Any]) -> str:
        if values.get("backend") == "local":
            url = values.get("url")
            return f"{str(url).rstrip('/')}/ping" if url else ""
        return _console(values, f"endpoints/{quote(str(values.get('endpoint_name', '')))}")
