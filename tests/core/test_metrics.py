from __future__ import annotations

import pytest

from rl_provider import RLEstimator, RLToolkit
from rl_provider.core.metrics import (
    MetricExtractor,
    default_metric_definitions,
    validate_definitions,
)
from rl_provider.exceptions import RLConfigError

FLOAT = "[-+]?[0-9]*[.]?[0-9]+([eE][-+]?[0-9]+)?"


def test_sdk_defaults():
    assert RLEstimator.default_metric_definitions(RLToolkit.COACH) == [
        {"Name": "reward-training", "Regex": "^Training>.*Total reward=(.*?),"},
        {"Name": "reward-testing", "Regex": "^Testing>.*Total reward=(.*?),"},
    ]
    assert RLEstimator.default_metric_definitions("ray") == [
        {"Name": "episode_reward_mean", "Regex": f"episode_reward_mean: ({FLOAT})"},
        {"Name": "episode_reward_max", "Regex": f"episode_reward_max: ({FLOAT})"},
    ]


def test_ray2_estimator_also_matches_episode_return():
    names = [d["Name"] for d in default_metric_definitions("ray", "2.40.0")]
    assert names == [
        "episode_reward_mean",
        "episode_reward_max",
        "episode_return_mean",
        "episode_return_max",
    ]
    estimator = RLEstimator("t.py", toolkit="ray", toolkit_version="2.40.0", framework="pytorch")
    assert [d["Name"] for d in estimator.metric_definitions] == names


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("episode_reward_mean: 12.5", {"episode_reward_mean": 12.5}),
        (
            "episode_reward_mean: -3e2 episode_reward_max: 7",
            {"episode_reward_mean": -300.0, "episode_reward_max": 7.0},
        ),
        ("episode_return_mean: .5", {"episode_return_mean": 0.5}),
        ("episode_reward_mean: nan", {}),
        ("nothing here", {}),
        ("Training> Name=main_level/agent, Total reward=42.0, Steps=3", {"reward-training": 42.0}),
        ("Testing> Name=main_level/agent, Total reward=-1, Steps=3", {"reward-testing": -1.0}),
    ],
)
def test_extraction(line, expected):
    extractor = MetricExtractor(
        default_metric_definitions("coach") + default_metric_definitions("ray", "2.1")
    )
    assert {m.name: m.value for m in extractor.match(line)} == expected


@pytest.mark.parametrize(
    ("definitions", "message"),
    [
        ([{"Name": "x"}], "exactly the keys 'Name' and 'Regex'"),
        ([{"Name": "x", "Regex": "("}], "bad regex"),
    ],
)
def test_bad_definitions(definitions, message):
    with pytest.raises(RLConfigError, match=message):
        validate_definitions(definitions)
