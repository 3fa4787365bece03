"""SDK arguments we refuse, and where: before anything is created, naming the argument."""

from __future__ import annotations

import pytest

from rl_provider import RLEstimator
from rl_provider.core.training_options import REFUSED_ARGUMENTS, SAGEMAKER_ONLY_BEHAVIOUR
from rl_provider.exceptions import RLConfigError
from tests.fakes import InMemoryBackend

BASE = {"toolkit": "ray", "toolkit_version": "1.6.0", "framework": "tensorflow"}
SAGEMAKER_ONLY = {
    "enable_network_isolation": True,
    "container_entry_point": ["python", "x.py"],
    "container_arguments": ["--a"],
    "disable_output_compression": True,
}


def test_the_table_covers_every_local_refusal():
    assert set(SAGEMAKER_ONLY) == set(SAGEMAKER_ONLY_BEHAVIOUR)


@pytest.mark.parametrize("argument", sorted(SAGEMAKER_ONLY))
def test_local_backend_refuses_what_it_cannot_honour_before_creating_anything(
    argument, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "train.py").write_text("print(1)\n")
    backend = InMemoryBackend(store=tmp_path)
    estimator = RLEstimator(
        "train.py", **BASE, instance_type="local", backend=backend,
        **{argument: SAGEMAKER_ONLY[argument]},
    )  # fmt: skip
    with pytest.raises(RLConfigError, match=argument):
        estimator.fit(job_name="job-1", logs=False)
    assert backend.requests == {}
    assert backend.uploads == {}
    # The same estimator on SageMaker sends it.
    estimator.instance_type = "ml.c5.xlarge"
    assert estimator.training_request("job-1", region="us-west-2")


@pytest.mark.parametrize("argument", sorted(REFUSED_ARGUMENTS))
def test_unsupported_sdk_arguments_are_refused_at_construction(argument):
    with pytest.raises(RLConfigError, match=argument):
        RLEstimator("train.py", **BASE, **{argument: [{"x": 1}]})


def test_debugger_rules_are_refused_and_an_empty_list_is_nothing():
    with pytest.raises(RLConfigError, match="rules"):
        RLEstimator("train.py", **BASE, rules=[object()], output_path="s3://b/o").training_request(
            "j", region="us-west-2"
        )
    request = RLEstimator(
        "train.py", **BASE, rules=[], output_path="s3://b/o", instance_type="ml.c5.xlarge"
    ).training_request("j", region="us-west-2")
    assert "DebugRuleConfigurations" not in request


def test_local_requests_carry_no_debugger_or_profiler_section():
    request = RLEstimator("train.py", **BASE, output_path="file:///tmp/o").training_request(
        "j", region="us-west-2"
    )
    assert "DebugHookConfig" not in request
    assert "ProfilerConfig" not in request


@pytest.mark.parametrize(
    ("region", "expected"),
    [
        ("us-west-2", {"S3OutputPath": "s3://b/o", "DisableProfiler": False}),
        ("eu-central-2", {"DisableProfiler": True}),  # no Profiler there (SDK list)
    ],
)
def test_profiler_default_follows_the_region(region, expected):
    estimator = RLEstimator(
        "train.py", **BASE, output_path="s3://b/o", instance_type="ml.c5.xlarge"
    )
    estimator.image_uri = "1.dkr.ecr.x/mine:1"  # any region: no RL image lookup
    assert estimator.training_request("j", region=region)["ProfilerConfig"] == expected


def test_a_debugger_hook_in_a_region_without_debugger_is_refused():
    estimator = RLEstimator(
        "train.py",
        image_uri="1.dkr.ecr.x/mine:1",
        output_path="s3://b/o",
        instance_type="ml.c5.xlarge",
        debugger_hook_config={"S3OutputPath": "s3://b/d"},
    )
    with pytest.raises(RLConfigError, match="debugger_hook_config=False"):
        estimator.training_request("j", region="eu-central-2")
    assert "DebugHookConfig" not in RLEstimator(
        "train.py", image_uri="1.dkr.ecr.x/mine:1", output_path="s3://b/o",
        instance_type="ml.c5.xlarge",
    ).training_request("j", region="eu-central-2")  # fmt: skip


def test_a_session_that_is_no_sdk_session_is_refused():
    with pytest.raises(RLConfigError, match=r"neither a sagemaker\.session\.Session"):
        RLEstimator("train.py", **BASE, sagemaker_session=object())


def test_session_and_backend_together_are_refused(tmp_path):
    class LocalSession:
        local_mode = True

    with pytest.raises(RLConfigError, match="not both"):
        RLEstimator("train.py", **BASE, sagemaker_session=LocalSession(), backend=InMemoryBackend())
