"""Weekly CartPole retraining: train PPO with Ray RLlib, evaluate, promote if better, smoke-test.

train -> evaluate the new greedy policy (20 episodes) and the endpoint's current one -> deploy
only if the new policy reaches ``threshold`` AND beats the current one -> create the model ->
create or update the endpoint (blue/green) -> smoke-test it with real requests -> summary.

Everything runs on the local backend (no AWS, no Docker): training in a detached runner, the
endpoint as a model server on 127.0.0.1. Parsing this file imports no Ray, torch or gymnasium:
the tasks import them when they run.
"""

from __future__ import annotations

# The pipeline shared with rl_ray_retrain (Airflow puts the DAGs folder on sys.path).
from cartpole.pipeline import retrain_dag

CONN_ID = "rl_default"

dag = retrain_dag(
    "rl_cartpole_retrain",
    conn_id=CONN_ID,
    instance_type="local",
    description="Weekly PPO retraining on CartPole-v1; promote the policy only if it is better.",
    doc_md=__doc__,
)
