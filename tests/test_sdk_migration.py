"""An SDK v2 notebook's estimator block, unchanged, on both backends (issue 12 "done when").

The block below is what a ``sagemaker.rl.RLEstimator`` notebook says (``sagemaker_session=``,
``framework_version=None``, ``TrainingInput`` channels, a handler beside the training script);
only its imports change. With a ``LocalSession`` it trains a real tiny entry point, deploys it
with the handler and answers a prediction over HTTP; with a ``Session`` on SageMaker (a moto
server) it sends the CreateTrainingJob request SDK v2.257.7 sent for the same block.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

from rl_provider import RLEstimator
from rl_provider.core.enums import RLFramework, RLToolkit
from rl_provider.core.inputs import TrainingInput
from tests.backends.sagemaker.conftest import (  # noqa: F401 - fixtures
    FAKE_CREDENTIALS,
    REGION,
    ROLE,
    moto_url,
    unique,
)
from tests.core.golden import cases

TRAIN = """
import json, os, pathlib, sys

# Script mode: hyperparameters as --key value, channels and the model dir from SM_* variables.
args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
rows = (pathlib.Path(os.environ["SM_CHANNEL_TRAIN"]) / "rows.json").read_text()
weights = [sum(column) for column in zip(*json.loads(rows))]
model_dir = pathlib.Path(os.environ["SM_MODEL_DIR"])
(model_dir / "weights.json").write_text(json.dumps({"weights": weights, "args": args}))
print("episode_reward_mean: 1.0")
"""

INFERENCE = """
import json, pathlib

def model_fn(model_dir):
    return json.loads((pathlib.Path(model_dir) / "weights.json").read_text())

def predict_fn(data, model):
    return {"score": sum(w * x for w, x in zip(model["weights"], data)), "args": model["args"]}
"""


def notebook(session: Any, source_dir: str, output_path: str | None, inputs: dict[str, str]):
    """The notebook's cells (SDK v2 spelling), returning the estimator after fit()."""
    estimator = RLEstimator(
        entry_point="train.py",
        source_dir=source_dir,
        toolkit=RLToolkit.RAY,
        toolkit_version=RLEstimator.RAY_LATEST_VERSION,
        framework=RLFramework.TENSORFLOW,
        framework_version=None,
        role=ROLE,
        instance_type=session.instance_type,
        instance_count=1,
        output_path=output_path,
        base_job_name="rl-notebook",
        hyperparameters={"iterations": 1, "env": "CartPole-v1"},
        sagemaker_session=session,
    )
    estimator.fit(
        {
            "train": TrainingInput(inputs["train"]),
            "eval": TrainingInput(inputs["eval"], content_type="application/json"),
        },
        job_name=session.job_name,
        logs=False,
    )
    return estimator


class LocalSession:
    """What the notebook's ``sagemaker.local.LocalSession()`` looks like (duck type)."""

    local_mode = True
    instance_type = "local"
    job_name = "rl-notebook-local"


class Session:
    """What the notebook's ``sagemaker.session.Session()`` looks like (duck type)."""

    instance_type = "ml.c5.xlarge"

    def __init__(self, boto_session: Any, job_name: str) -> None:
        self.boto_session = boto_session
        self.boto_region_name = boto_session.region_name
        self.sagemaker_client = boto_session.client("sagemaker")
        self.job_name = job_name

    def default_bucket(self) -> str:
        raise AssertionError("the notebook passes output_path; no default bucket is needed")


@pytest.fixture
def code(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    src.mkdir()
    (src / "train.py").write_text(textwrap.dedent(TRAIN))
    (src / "inference.py").write_text(textwrap.dedent(INFERENCE))
    return src


@pytest.mark.slow
def test_the_notebook_trains_deploys_and_predicts_on_the_local_backend(code, tmp_path, monkeypatch):
    monkeypatch.setenv("RL_PROVIDER_HOME", str(tmp_path / "home"))
    data = tmp_path / "data"
    (data / "train").mkdir(parents=True)
    (data / "eval").mkdir()
    (data / "train" / "rows.json").write_text(json.dumps([[1, 2], [3, 4]]))
    (data / "eval" / "rows.json").write_text("[]")
    monkeypatch.chdir(tmp_path)
    estimator = notebook(
        LocalSession(),
        "src",
        None,
        {"train": (data / "train").as_uri(), "eval": (data / "eval").as_uri()},
    )
    assert estimator.latest_training_job is not None
    assert estimator.latest_training_job.describe().training_job_status.value == "Completed"

    # The handler sits beside the training script: create_model finds it in source_dir.
    predictor = estimator.deploy(
        initial_instance_count=1, instance_type="local", entry_point="inference.py"
    )
    try:
        answer = predictor.predict([1.0, 0.5])
        assert answer == {
            "score": 4 * 1.0 + 6 * 0.5,
            "args": {"--iterations": "1", "--env": "CartPole-v1"},
        }
        model = estimator.backend.describe_model(  # type: ignore[union-attr]
            estimator.backend.describe_endpoint_config(  # type: ignore[union-attr]
                estimator.backend.describe_endpoint(predictor.endpoint_name).endpoint_config_name  # type: ignore[union-attr]
            )
            .production_variants[0]
            .model_name
        )
        environment = model.primary_container.environment
        assert environment["SAGEMAKER_SUBMIT_DIRECTORY"] == "/opt/ml/model/code"
        assert environment["SAGEMAKER_PROGRAM"] == "inference.py"
    finally:
        predictor.delete_endpoint()

    # After attach() (another process, an Airflow task) the handler is found in the training
    # job's own sourcedir.tar.gz: the local source tree is not needed any more.
    monkeypatch.chdir(tmp_path / "data")
    attached = RLEstimator.attach(LocalSession.job_name, sagemaker_session=LocalSession())
    again = attached.deploy(1, "local", entry_point="inference.py", endpoint_name="rl-attached")
    try:
        assert again.predict([1.0, 0.5])["score"] == 7.0
    finally:
        again.delete_endpoint()


def test_the_notebook_sends_the_sdks_request_on_sagemaker(
    code,
    moto_url,  # noqa: F811
    unique,  # noqa: F811
    monkeypatch,
):
    import boto3

    expected = cases("requests")["notebook"]["request"]
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_url)  # every client of the session goes to moto
    boto_session = boto3.session.Session(region_name=REGION, **FAKE_CREDENTIALS)
    boto_session.client("s3").create_bucket(
        Bucket="bucket", CreateBucketConfiguration={"LocationConstraint": REGION}
    )
    job_name = unique("rl-golden-job")
    calls: list[dict[str, Any]] = []
    boto_session.events.register(
        "provide-client-params.sagemaker.CreateTrainingJob",
        lambda params, **_: calls.append(dict(params)),
    )
    monkeypatch.chdir(code.parent)
    estimator = notebook(
        Session(boto_session, job_name),
        "src",
        "s3://bucket/out",
        {"train": "s3://bucket/data/train", "eval": "s3://bucket/data/eval"},
    )
    sent = json.loads(json.dumps(calls[-1]).replace(job_name, "rl-golden-job"))
    for key in sorted(set(expected) | set(sent)):
        assert sent.get(key) == expected.get(key), key
    # The code went where the request says, through the session's own S3 client.
    head = boto_session.client("s3").head_object(
        Bucket="bucket", Key=f"{job_name}/source/sourcedir.tar.gz"
    )
    assert head["ContentLength"] > 0
    assert estimator.latest_training_job is not None
