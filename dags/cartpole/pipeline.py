"""The task logic both CartPole DAGs share (``rl_cartpole_retrain``, ``rl_sagemaker_retrain``).

A plain module that defines no DAG, so each DAG file imports it (Airflow puts the DAGs folder on
``sys.path``) without Airflow registering one DAG twice. Parsing it imports no Ray, torch or
gymnasium: the evaluation loads them when a task runs.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import logging
from pathlib import Path
from typing import Any

from airflow.sdk import task

log = logging.getLogger(__name__)

CODE_DIR = Path(__file__).resolve().parent
ENV_ID = "CartPole-v1"
# Both policies are evaluated on the same episodes (seeds 0..episodes-1): a fair comparison.
EVAL_SEED = 0


def ray_version() -> str:
    """The installed Ray (read from package metadata: importing Ray here would slow parsing)."""
    try:
        return importlib.metadata.version("ray")
    except importlib.metadata.PackageNotFoundError:
        # A scheduler without the rllib extra still parses the DAG; the version only names the
        # training image, and the worker that trains needs Ray anyway.
        return "2.60.0"


def ray_logs_through_logging() -> None:
    """Send Ray's log records through Python logging instead of Ray's own stderr handler.

    Airflow logs a task's stderr at error level, so Ray's warnings (RLlib's deprecation notes
    when a module is loaded) read as errors in the task log; through logging they keep their
    level (warning).
    """
    import ray  # noqa: F401  # importing Ray installs its handler on the "ray" logger

    ray_logger = logging.getLogger("ray")
    for handler in list(ray_logger.handlers):
        ray_logger.removeHandler(handler)
    ray_logger.propagate = True


def evaluate_model(model_data: str, episodes: int) -> dict[str, Any]:
    """Greedy evaluation with ``evaluate.py`` (imported here, not at parse time)."""
    ray_logs_through_logging()
    spec = importlib.util.spec_from_file_location("cartpole_evaluate", CODE_DIR / "evaluate.py")
    if spec is None or spec.loader is None:
        raise FileNotFoundError(f"{CODE_DIR / 'evaluate.py'} is missing")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    result: dict[str, Any] = module.evaluate(model_data, episodes=episodes, seed=EVAL_SEED)
    log.info(
        "Greedy return of %s over %s episodes: mean %.1f (min %.1f, max %.1f)",
        model_data,
        episodes,
        result["mean"],
        result["min"],
        result["max"],
    )
    return {"model_data": model_data, **result}


def served_model(backend: Any, endpoint_name: str) -> dict[str, Any]:
    """What the endpoint serves now (``model_data`` is None without an endpoint or if Failed).

    Follows endpoint -> endpoint config -> model -> ``ModelDataUrl``, on any backend.
    """
    from rl_provider.exceptions import EndpointNotFoundError

    try:
        endpoint = backend.describe_endpoint(endpoint_name)
    except EndpointNotFoundError:
        log.info(
            "Endpoint %s does not exist yet: any policy above the threshold wins.", endpoint_name
        )
        # A dict, not None: a None return value stores no XCom and downstream pulls log errors.
        return {"endpoint_status": None, "model_name": None, "model_data": None}
    status = endpoint.endpoint_status.value
    if endpoint.is_failure:
        log.warning("Endpoint %s is %s: it serves nothing.", endpoint_name, status)
        return {"endpoint_status": status, "model_name": None, "model_data": None}
    config = backend.describe_endpoint_config(endpoint.endpoint_config_name)
    model_name = config.production_variants[0].model_name
    model_data = backend.describe_model(model_name).primary_container.model_data_url
    if model_data is None:
        raise ValueError(f"Model {model_name} behind endpoint {endpoint_name} has no ModelDataUrl.")
    return {"endpoint_status": status, "model_name": model_name, "model_data": model_data}


def decide(
    new: dict[str, Any], current: dict[str, Any] | None, threshold: float
) -> tuple[bool, str]:
    """Deploy only if the new policy reaches the threshold AND beats the endpoint's policy."""
    if new["mean"] < threshold:
        return False, f"new mean {new['mean']:.1f} is below the threshold {threshold:g}"
    if current is None or current.get("mean") is None:  # nothing (working) served yet
        return True, f"new mean {new['mean']:.1f} >= {threshold:g}; nothing served yet"
    if new["mean"] > current["mean"]:
        return True, f"new mean {new['mean']:.1f} beats current {current['mean']:.1f}"
    return False, f"new mean {new['mean']:.1f} does not beat current {current['mean']:.1f}"


@task.short_circuit(ignore_downstream_trigger_rules=False)
def should_deploy(
    new: dict[str, Any], current: dict[str, Any] | None, params: dict[str, Any], ti: Any
) -> bool:
    """The promotion gate: skip model creation and deployment unless ``decide`` says so."""
    deploy, reason = decide(new, current, float(params["threshold"]))
    log.info("%s: %s", "Deploying" if deploy else "Keeping the current endpoint", reason)
    ti.xcom_push(key="decision", value={"deploy": deploy, "reason": reason})
    return deploy
