"""Weekly CartPole retraining on a Ray cluster: the rl_cartpole_retrain pipeline, with training
submitted to a Ray cluster (KubeRay, Anyscale, self-managed) through its job server.

train on Ray (RLlib env runners sized from the cluster: one per free CPU, spread over its nodes)
-> evaluate the new greedy policy and the endpoint's current one -> deploy only if better ->
create the model -> create or update the endpoint on this machine (the local backend serves what
Ray trained) -> smoke-test it -> summary.

The ``rl_ray`` connection: ``{"backend": "ray", "address": "http://head:8265", "storage":
"file:///shared/rl" or "s3://bucket/rl"}``, the cluster's token as its password (docs/RAY.md).
``tools/ray_cluster_demo.py`` starts a two-node cluster on this machine and runs this DAG.
"""

from __future__ import annotations

# The pipeline shared with rl_cartpole_retrain (Airflow puts the DAGs folder on sys.path).
from cartpole.pipeline import retrain_dag

CONN_ID = "rl_ray"

dag = retrain_dag(
    "rl_ray_retrain",
    conn_id=CONN_ID,
    instance_type="ray",
    description="Weekly PPO retraining on a Ray cluster; promote the policy only if better.",
    doc_md=__doc__,
    hyperparameters={"num_env_runners": "auto", "num_envs_per_env_runner": 1},
)
