from __future__ import annotations

import datetime as dt

import pytest

from rl_provider import RLEstimator
from rl_provider.core import hyperparameters as hp
from rl_provider.exceptions import RLConfigError


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        (0.001, "0.001"),
        ("str", '"str"'),
        (True, "true"),
        ({"a": 1}, '{"a": 1}'),
        (None, "null"),
        (10, "10"),
        ([1, "x"], '[1, "x"]'),
    ],
)
def test_values_are_json_encoded(value, encoded):
    assert hp.encode({"k": value}) == {"k": encoded}
    assert hp.decode({"k": encoded}) == {"k": value}


def test_keys_become_strings():
    assert hp.encode({1: 2}) == {"1": "2"}


def test_raw_strings_decode_as_themselves():
    assert hp.decode_value("not json") == "not json"


def test_unencodable_value_is_a_clear_config_error():
    with pytest.raises(RLConfigError, match=r"'when'.*datetime.*JSON cannot encode"):
        hp.encode({"when": dt.datetime(2026, 1, 1)})


def test_estimator_hyperparameters_add_the_seven_sagemaker_keys():
    estimator = RLEstimator(
        "train.py",
        toolkit="coach",
        toolkit_version="0.11.0",
        framework="mxnet",
        output_path="s3://bucket/rl",
        hyperparameters={"lr": 0.001, "s": "str", "b": True, "d": {"a": 1}, "n": None},
    )
    assert estimator.hyperparameters("job-1", "eu-west-1") == {
        "lr": "0.001",
        "s": '"str"',
        "b": "true",
        "d": '{"a": 1}',
        "n": "null",
        "sagemaker_program": '"train.py"',
        "sagemaker_submit_directory": '"s3://bucket/job-1/source/sourcedir.tar.gz"',
        "sagemaker_container_log_level": "20",
        "sagemaker_job_name": '"job-1"',
        "sagemaker_region": '"eu-west-1"',
        "sagemaker_s3_output": '"s3://bucket/rl"',
        "sagemaker_estimator": '"RLEstimator"',
    }


def test_estimator_rejects_reserved_and_oversized_hyperparameters():
    kwargs = {"toolkit": "ray", "toolkit_version": "1.6.0", "framework": "pytorch"}
    with pytest.raises(RLConfigError, match="sagemaker_program"):
        RLEstimator("t.py", hyperparameters={"sagemaker_program": "x"}, **kwargs).hyperparameters()
    with pytest.raises(RLConfigError, match="2500"):
        RLEstimator("t.py", hyperparameters={"big": "x" * 3000}, **kwargs).hyperparameters()
    with pytest.raises(RLConfigError, match="JSON cannot encode"):
        RLEstimator("t.py", hyperparameters={"obj": object()}, **kwargs).hyperparameters()
