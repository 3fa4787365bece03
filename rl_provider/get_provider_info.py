"""Target of the ``apache_airflow_provider`` entry point: what Airflow shows about us.

Keys follow Airflow 3.3's ``provider_info.schema.json``. The connection form is declarative
(``conn-fields`` + ``ui-field-behaviour``): Airflow 3.2 deprecated the hook methods
``get_connection_form_widgets`` / ``get_ui_field_behaviour``, and reading it from here needs no
hook import.
"""

from __future__ import annotations

from typing import Any

from rl_provider import __version__

_INTEGRATION = "Reinforcement Learning (rl_provider)"


def _modules(*names: str) -> list[dict[str, Any]]:
    """One section (hooks, operators, ...): our integration's modules."""
    return [{"integration-name": _INTEGRATION, "python-modules": list(names)}]


def _field(label: str, description: str, **schema: Any) -> dict[str, Any]:
    """A connection form field stored in the connection's extras; nullable unless it has a
    ``type`` of its own."""
    return {
        "label": label,
        "description": description,
        "schema": {"type": ["string", "null"], **schema},
    }


def get_provider_info() -> dict[str, Any]:
    return {
        "package-name": "airflow-provider-rl",
        "name": "Reinforcement Learning (rl_provider)",
        "description": "Train, evaluate and deploy RL policies on a schedule "
        "(RLEstimator on a local or SageMaker backend).",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": _INTEGRATION,
                "external-doc-url": "https://docs.ray.io/en/latest/rllib/index.html",
                "tags": ["ml"],
            }
        ],
        "hooks": _modules("rl_provider.hooks.rl"),
        "operators": _modules(
            "rl_provider.operators.train",
            "rl_provider.operators.model",
            "rl_provider.operators.deploy",
        ),
        "sensors": _modules("rl_provider.sensors.training_job", "rl_provider.sensors.endpoint"),
        "triggers": _modules("rl_provider.triggers.training_job", "rl_provider.triggers.endpoint"),
        "extra-links": [
            "rl_provider.links.RLTrainingJobPageLink",
            "rl_provider.links.RLModelPageLink",
            "rl_provider.links.RLEndpointPageLink",
            "rl_provider.links.RLTrainingJobLink",
            "rl_provider.links.RLTrainingLogLink",
            "rl_provider.links.RLModelLink",
            "rl_provider.links.RLEndpointLink",
        ],
        "connection-types": [
            {
                "connection-type": "rl",
                "hook-class-name": "rl_provider.hooks.rl.RLHook",
                "hook-name": "Reinforcement Learning (rl_provider)",
                "conn-fields": {
                    # A real default, no null choice: the form showed "null" in the dropdown
                    # and saved "backend": null.
                    "backend": _field(
                        "Backend",
                        "Where jobs run: 'local' (this machine, no AWS), 'sagemaker' or 'ray' "
                        "(a Ray cluster's job server).",
                        type="string",
                        enum=["local", "sagemaker", "ray"],
                        default="local",
                    ),
                    "home": _field(
                        "Local home",
                        "Local backend state directory (default: RL_PROVIDER_HOME, else "
                        "$AIRFLOW_HOME/rl_provider).",
                    ),
                    "aws_conn_id": _field(
                        "AWS connection id",
                        "SageMaker backend: the 'aws' connection for credentials.",
                        default="aws_default",
                    ),
                    "region_name": _field(
                        "Region",
                        "SageMaker backend: AWS region (default: the AWS connection's).",
                    ),
                    "bucket": _field(
                        "S3 bucket", "SageMaker backend: default bucket for code and output."
                    ),
                    "address": _field(
                        "Ray address",
                        "Ray backend: the job server's URL, e.g. http://head:8265 (the "
                        "cluster's token goes in Password).",
                    ),
                    "runtime_env": _field(
                        "Ray runtime_env",
                        "Ray backend: a runtime_env (JSON object) merged into every job's, e.g. "
                        '{"pip": ["gymnasium"]}.',
                        type=["object", "null"],
                    ),
                    "storage": _field(
                        "Ray storage",
                        "Ray backend: default output path, file:// on a filesystem every node "
                        "shares, or s3://.",
                    ),
                },
                "ui-field-behaviour": {
                    "hidden-fields": ["host", "schema", "login", "port"],
                    "relabeling": {"password": "Ray token"},
                    "placeholders": {
                        "extra": '{"backend": "sagemaker", "aws_conn_id": "aws_default", '
                        '"region_name": "us-west-2", "bucket": "my-rl-bucket"}',
                    },
                },
            }
        ],
    }
