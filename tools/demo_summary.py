"""Print what the last ``rl_cartpole_retrain`` run did, and how to call or delete its endpoint.

``make demo`` runs this after ``airflow dags test``: it reads the run's ``summary`` task XCom from
the Airflow database of ``$AIRFLOW_HOME`` (``.airflow/``), so it needs that environment.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from pathlib import Path
from typing import Any

DAG_ID = "rl_cartpole_retrain"
EXAMPLE_OBSERVATION = "[0.01, 0.02, 0.03, 0.04]"


def last_run() -> tuple[str, str, dict[str, Any] | None]:
    """(run_id, state, summary XCom) of the DAG's latest run."""
    from airflow.models.dagrun import DagRun
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        run = (
            session.query(DagRun)
            .filter(DagRun.dag_id == DAG_ID)
            .order_by(DagRun.run_after.desc())
            .first()
        )
        if run is None:
            raise SystemExit(f"No {DAG_ID} run in {os.environ.get('AIRFLOW_HOME')}: run make demo.")
        row = (
            session.query(XComModel)
            .filter_by(dag_id=DAG_ID, run_id=run.run_id, task_id="summary", key="return_value")
            .one_or_none()
        )
        value = None if row is None else row.value
    if isinstance(value, str):  # stored as JSON text by some XCom backends
        value = json.loads(value)
    return run.run_id, str(run.state), value


def _shown(path: Path) -> str:
    """``path`` relative to the current directory when it is inside it (shorter commands)."""
    return str(path.relative_to(Path.cwd())) if path.is_relative_to(Path.cwd()) else str(path)


def live_endpoint(name: str) -> dict[str, Any] | None:
    """The endpoint as it is now (it may have been updated or deleted since the run)."""
    from rl_provider.backends.local import LocalBackend
    from rl_provider.exceptions import EndpointNotFoundError

    try:
        return LocalBackend().describe_endpoint(name).to_api()
    except EndpointNotFoundError:
        return None


def local_home() -> Path:
    from rl_provider.backends.local.store import resolve_home

    return resolve_home()


def ui_lines(job_name: str) -> list[str]:
    """Where the run's training job is in the Airflow UI, and how to start the UI."""
    from airflow.sdk import conf

    from rl_provider.ui.urls import job_url

    base = conf.get("api", "base_url", fallback="") or (
        f"http://localhost:{conf.get('api', 'port', fallback='8080')}"
    )
    # Absolute paths: the command works from any directory.
    home = Path(os.environ.get("AIRFLOW_HOME", ".airflow")).resolve()
    dags = os.environ.get("AIRFLOW__CORE__DAGS_FOLDER", "dags")
    venv_bin = Path(sys.executable).parent
    return [
        "",
        "See the training job (learning curves, log, transitions) in the Airflow UI:",
        f"  AIRFLOW_HOME={shlex.quote(str(home))} "
        f"RL_PROVIDER_HOME={shlex.quote(str(local_home()))} "
        f"AIRFLOW__CORE__DAGS_FOLDER={shlex.quote(str(Path(dags).resolve()))} "
        f"AIRFLOW__CORE__LOAD_EXAMPLES=False PATH={shlex.quote(str(venv_bin))}:$PATH "
        "airflow standalone",
        f"  then open {job_url(job_name, base_url=base)}",
        f"  (user admin; standalone prints the password, also in "
        f"{home}/simple_auth_manager_passwords.json.generated)",
    ]


def render(run_id: str, state: str, summary: dict[str, Any] | None) -> str:
    text = _render_run(run_id, state, summary)
    if summary is not None and summary.get("training_job"):
        text += "\n" + "\n".join(ui_lines(summary["training_job"]))
    return text


def _render_run(run_id: str, state: str, summary: dict[str, Any] | None) -> str:
    lines = [f"{DAG_ID} run {run_id}: {state}"]
    if summary is None:
        lines.append("  (no summary: the run did not reach its summary task; see the log above)")
        return "\n".join(lines)
    evaluation = summary["evaluation"]
    metrics = ", ".join(f"{k}={v:g}" for k, v in sorted(summary["final_metrics"].items()))
    current = summary.get("current_evaluation")
    name = summary["endpoint_name"]
    lines += [
        f"  training job       {summary['training_job']}",
        f"  final metrics      {metrics or '(none reported)'}",
        f"  greedy evaluation  mean {evaluation['mean']:.1f} over {evaluation['episodes']} "
        f"episodes (min {evaluation['min']:g}, max {evaluation['max']:g})",
        "  endpoint's policy  "
        + ("none before this run" if current is None else f"mean {current:.1f} before this run"),
        f"  deployed           {'yes' if summary['deployed'] else 'no'}: {summary['reason']}",
    ]
    if summary.get("smoke_test_return") is not None:
        lines.append(
            f"  smoke test         greedy episode through the endpoint: "
            f"return {summary['smoke_test_return']:g}"
        )
    endpoint = live_endpoint(name)
    url = None if endpoint is None else endpoint.get("Url")
    if endpoint is None or not url:
        status = "deleted (or never created)" if endpoint is None else endpoint["EndpointStatus"]
        lines.append(f"  endpoint           {name}: {status}")
        if not summary["deployed"]:
            lines.append(
                "No policy is served: run the DAG again with more training, e.g. (in the "
                "environment make demo sets)\n"
                f'  airflow dags test {DAG_ID} -c \'{{"iterations": 40, "seed": 1}}\''
            )
        return "\n".join(lines)
    cli = f".venv/bin/rl-provider --home {shlex.quote(_shown(local_home()))} endpoints"
    lines += [
        f"  endpoint           {name} {endpoint['EndpointStatus']} at {url}",
        "",
        "Call it (SageMaker's POST /invocations; a list of observations gives 'actions'):",
        f"  curl -s {url}/invocations -H 'Content-Type: application/json' "
        f"-d '{EXAMPLE_OBSERVATION}'",
        f"  {cli} invoke {name} --data '{EXAMPLE_OBSERVATION}'",
        "Delete it (stops its model server):",
        f"  {cli} delete {name}",
    ]
    return "\n".join(lines)


def main() -> int:
    run_id, state, summary = last_run()
    print(render(run_id, state, summary))
    return 0 if state == "success" else 1


if __name__ == "__main__":
    sys.exit(main())
