"""The task logic the CartPole DAGs share (``rl_cartpole_retrain``, ``rl_ray_retrain``,
``rl_sagemaker_retrain``). Tasks open the backend of the run's ``conn_id`` param.

A plain module that defines no DAG, so each DAG file imports it (Airflow puts the DAGs folder on
``sys.path``) without Airflow registering one DAG twice. Parsing it imports no Ray, torch or
gymnasium: the evaluation loads them when a task runs.
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import importlib.util
import logging
from pathlib import Path
from typing import Any

from airflow.sdk import DAG, Param, TriggerRule, task

log = logging.getLogger(__name__)

CODE_DIR = Path(__file__).resolve().parent
ENV_ID = "CartPole-v1"
# PPO knobs for CartPole on 2 CPU cores (train.py's defaults are generic). The policy and value
# function share layers, so the value loss is scaled down as in RLlib's tuned CartPole PPO
# example (vf_loss_coeff=0.01); 4000-step batches keep the greedy policy stable from one
# iteration to the next. Measured with seed 0: greedy mean >= 492 at every measured iteration
# from 10 to 18, and the training mean passes 490 at iteration 14 (docs/PERFORMANCE.md).
PPO = {"train_batch_size": 4000, "minibatch_size": 500, "vf_loss_coeff": 0.01, "lr": 0.001}
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


@task
def evaluate_new_policy(training: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """Evaluate the policy the training job just produced."""
    job = training["Training"]
    return {
        "training_job": job["TrainingJobName"],
        **evaluate_model(job["ModelArtifacts"]["S3ModelArtifacts"], int(params["episodes"])),
    }


@task
def evaluate_current_policy(params: dict[str, Any]) -> dict[str, Any]:
    """Evaluate the model the endpoint serves now (``mean`` None: nothing served yet)."""
    from rl_provider.hooks.rl import RLHook

    served = served_model(RLHook(params["conn_id"]).backend, params["endpoint_name"])
    if served["model_data"] is None:
        return {**served, "mean": None}
    return {**served, **evaluate_model(served["model_data"], int(params["episodes"]))}


@task
def smoke_test(deployment: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """Real requests: a batch and a single observation, then one greedy episode."""
    import gymnasium as gym

    from rl_provider.hooks.rl import RLHook
    from rl_provider.predictor import RLPredictor

    name = deployment["Endpoint"]["EndpointName"]
    predictor = RLPredictor(name, RLHook(params["conn_id"]).backend)
    env = gym.make(ENV_ID)
    observations = [env.reset(seed=seed)[0].tolist() for seed in range(4)]
    actions = predictor.predict(observations).get("actions")
    if not isinstance(actions, list) or len(actions) != len(observations):
        raise ValueError(f"Endpoint {name} answered a batch of 4 with {actions!r}.")
    invalid = [a for a in actions if not isinstance(a, int) or not env.action_space.contains(a)]
    if invalid:
        raise ValueError(f"Endpoint {name} answered invalid actions {invalid} for {ENV_ID}.")
    single = predictor.predict(observations[0]).get("action")
    if single != actions[0]:
        raise ValueError(
            f"Endpoint {name} is not greedy: {single!r} for one observation, {actions[0]!r} for "
            "the same one in a batch."
        )
    observation, _ = env.reset(seed=EVAL_SEED)
    episode_return, done = 0.0, False
    while not done:
        action = predictor.predict(observation.tolist())["action"]
        observation, reward, terminated, truncated, _ = env.step(action)
        episode_return += float(reward)
        done = terminated or truncated
    env.close()
    log.info("Greedy episode through endpoint %s: return %.1f", name, episode_return)
    return {"endpoint_name": name, "batch_actions": actions, "episode_return": episode_return}


@task(trigger_rule=TriggerRule.NONE_FAILED)
def summary(
    training: dict[str, Any],
    new: dict[str, Any],
    current: dict[str, Any] | None,
    params: dict[str, Any],
    ti: Any,
) -> dict[str, Any]:
    """What happened this week, printed and returned (``tools/demo_summary.py`` reads it)."""
    from rl_provider.exceptions import EndpointNotFoundError
    from rl_provider.hooks.rl import RLHook

    decision = ti.xcom_pull(task_ids="should_deploy", key="decision") or {}
    smoke = ti.xcom_pull(task_ids="smoke_test")
    name = params["endpoint_name"]
    try:
        endpoint = RLHook(params["conn_id"]).backend.describe_endpoint(name).to_api()
    except EndpointNotFoundError:
        endpoint = {}
    job = training["Training"]
    result = {
        "training_job": job["TrainingJobName"],
        "final_metrics": {m["MetricName"]: m["Value"] for m in job.get("FinalMetricDataList", [])},
        "evaluation": {k: new[k] for k in ("mean", "min", "max", "episodes")},
        "current_evaluation": None if current is None else current.get("mean"),
        "deployed": bool(decision.get("deploy")) and smoke is not None,
        "reason": decision.get("reason"),
        "endpoint_name": name,
        "endpoint_status": endpoint.get("EndpointStatus"),
        "endpoint_config": endpoint.get("EndpointConfigName"),
        "endpoint_url": endpoint.get("Url"),
        "smoke_test_return": None if smoke is None else smoke["episode_return"],
    }
    for key, value in result.items():
        print(f"{key}: {value}")
    return result


def retrain_dag(
    dag_id: str,
    *,
    conn_id: str,
    instance_type: str,
    description: str,
    doc_md: str | None,
    hyperparameters: dict[str, Any] | None = None,
) -> DAG:
    """The CartPole pipeline: train -> evaluate new and current -> promote if better -> model
    -> deploy locally (blue/green) -> smoke test -> summary, training on ``conn_id``'s backend
    with ``instance_type`` (``local``, or ``ray`` for a Ray cluster)."""
    from rl_provider import RLEstimator
    from rl_provider.operators.deploy import RLDeployOperator
    from rl_provider.operators.model import RLCreateModelOperator
    from rl_provider.operators.train import RLTrainOperator, model_asset

    with DAG(
        dag_id=dag_id,
        description=description,
        schedule="@weekly",
        start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        catchup=False,
        max_active_runs=1,  # two runs must not update the same endpoint at once
        tags=["rl_provider", "example"],
        # Params render as numbers in the hyperparameters, not as strings.
        render_template_as_native_obj=True,
        params={
            "iterations": Param(
                25, type="integer", minimum=1, description="PPO iterations at most"
            ),
            "target_return": Param(
                490.0,
                type=["null", "number"],
                description="stop training once its (stochastic) mean return reaches this",
            ),
            "seed": Param(0, type="integer", minimum=0, description="training seed"),
            "threshold": Param(
                475.0, type="number", description="greedy mean return the new policy must reach"
            ),
            "episodes": Param(20, type="integer", minimum=1, description="evaluation episodes"),
            "endpoint_name": Param(
                "cartpole-ppo",
                type="string",
                pattern=r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$",
                description="the endpoint to create or update",
            ),
            # The tasks above open the backend of this connection (the operators' too).
            "conn_id": Param(conn_id, type="string", const=conn_id, description="rl connection"),
        },
        doc_md=doc_md,
    ) as dag:
        train = RLTrainOperator(
            task_id="train",
            estimator=RLEstimator(
                entry_point="train.py",
                source_dir=str(CODE_DIR),
                toolkit="ray",
                toolkit_version=ray_version(),
                framework="pytorch",
                instance_type=instance_type,
                base_job_name="cartpole-ppo",
                hyperparameters={
                    "iterations": "{{ params.iterations }}",
                    "target_return": "{{ params.target_return }}",
                    "seed": "{{ params.seed }}",
                    **PPO,
                    **(hyperparameters or {}),
                },
            ),
            conn_id=conn_id,
            check_interval=5,
            outlets=[model_asset("cartpole-ppo")],
        )
        new = evaluate_new_policy(train.output)
        current = evaluate_current_policy()
        gate = should_deploy(new, current)
        create_model = RLCreateModelOperator(
            task_id="create_model", training_job_name=train.output["job_name"], conn_id=conn_id
        )
        deploy = RLDeployOperator(
            task_id="deploy",
            model_name=create_model.output["model_name"],
            endpoint_name="{{ params.endpoint_name }}",
            instance_type="local",
            conn_id=conn_id,
            check_interval=2,
        )
        smoke = smoke_test(deploy.output)
        gate >> create_model
        smoke >> summary(train.output, new, current)
    return dag
