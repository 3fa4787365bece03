"""The built-in RLlib handler in-process: checkpoint layouts, wire format, greedy actions."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from rl_provider.serving import rllib

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:ray.*")


def build_module(observation_dim: int, action_space):
    from gymnasium import spaces
    from ray.rllib.algorithms.ppo.torch.default_ppo_torch_rl_module import (
        DefaultPPOTorchRLModule,
    )
    from ray.rllib.core.rl_module.default_model_config import DefaultModelConfig

    return DefaultPPOTorchRLModule(
        observation_space=spaces.Box(-1.0, 1.0, (observation_dim,), np.float32),
        action_space=action_space,
        model_config=DefaultModelConfig(fcnet_hiddens=[8]),
    )


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """A bare RLModule checkpoint and an Algorithm-shaped one holding two modules."""
    import torch
    from gymnasium import spaces

    root = tmp_path_factory.mktemp("checkpoints")
    torch.manual_seed(0)
    cartpole = build_module(4, spaces.Discrete(2))
    cartpole.save_to_path(root / "bare")
    # algo.save_to_path() layout: the learner's MultiRLModule holds one directory per module.
    learner = root / "algo" / "learner_group" / "learner" / "rl_module"
    cartpole.save_to_path(learner / "default_policy")
    build_module(4, spaces.Discrete(3)).save_to_path(learner / "other_policy")
    shutil.copy(learner / "default_policy" / "metadata.json", learner / "metadata.json")
    (learner / "module_state.pkl").write_bytes(b"")
    (learner / "class_and_ctor_args.pkl").write_bytes(b"")
    build_module(3, spaces.Box(-1.0, 1.0, (2,), np.float32)).save_to_path(root / "continuous")
    return root


@pytest.fixture(scope="module")
def policy(checkpoints):
    return rllib.model_fn(str(checkpoints / "bare"))


@pytest.mark.parametrize(
    ("layout", "module_id", "expected"),
    [
        ("bare", None, "bare"),
        ("bare", "default_policy", "bare"),  # a bare module answers whatever id is asked
        ("algo", None, "algo/learner_group/learner/rl_module/default_policy"),
        ("algo", "other_policy", "algo/learner_group/learner/rl_module/other_policy"),
    ],
)
def test_finds_the_module_checkpoint(checkpoints, layout, module_id, expected):
    found = rllib.find_module_checkpoint(checkpoints / layout, module_id)
    assert found == checkpoints / expected


def test_module_id_from_policy_json_and_environment(checkpoints, tmp_path, monkeypatch):
    algo = tmp_path / "algo"
    shutil.copytree(checkpoints / "algo", algo)
    (algo / "policy.json").write_text(json.dumps({"module_id": "other_policy"}))
    assert rllib.model_fn(str(algo)).module_id == "other_policy"
    monkeypatch.setenv(rllib.MODULE_ID_ENV, "default_policy")
    assert rllib.model_fn(str(algo)).module_id == "default_policy"
    monkeypatch.setenv(rllib.MODULE_ID_ENV, "missing")
    with pytest.raises(FileNotFoundError, match=r"No RLModule 'missing'.*other_policy"):
        rllib.model_fn(str(algo))


def test_no_checkpoint_says_how_to_save_one(tmp_path):
    (tmp_path / "policy.txt").write_text("weights")
    with pytest.raises(
        FileNotFoundError, match=r"algo.save_to_path\(os.environ\['SM_MODEL_DIR'\]\)"
    ):
        rllib.model_fn(str(tmp_path))


def test_greedy_actions_match_the_module_logits(policy):
    import torch

    observations = np.random.default_rng(0).uniform(-1, 1, (16, 4)).astype(np.float32)
    with torch.inference_mode():
        logits = policy.module.forward_inference({"obs": torch.from_numpy(observations)})
    expected = logits["action_dist_inputs"].argmax(-1).tolist()
    assert rllib.predict_fn(observations, policy) == {"actions": expected}
    assert rllib.predict_fn(observations[3].tolist(), policy) == {"action": expected[3]}
    assert rllib.predict_fn(torch.from_numpy(observations[:2]), policy) == {"actions": expected[:2]}
    assert rllib.predict_fn([], policy) == {"actions": []}
    assert policy.module.training is False


def test_continuous_actions_are_the_distribution_mode(checkpoints):
    continuous = rllib.model_fn(str(checkpoints / "continuous"))
    assert continuous.discrete is False
    first = rllib.predict_fn([[0.1, 0.2, 0.3]] * 2, continuous)["actions"]
    assert len(first) == 2
    assert len(first[0]) == 2
    assert first[0] == first[1] == rllib.predict_fn([0.1, 0.2, 0.3], continuous)["action"]


@pytest.mark.parametrize(
    ("body", "content_type", "shape"),
    [
        (b"[0.0, 0.1, 0.0, -0.1]", "application/json", (4,)),
        (b"[[0.0, 0.1, 0.0, -0.1]]", "application/json; charset=utf-8", (1, 4)),
        (b'{"observation": [1, 2, 3, 4]}', None, (4,)),
        (b'{"observations": [[1, 2, 3, 4], [5, 6, 7, 8]]}', "application/json", (2, 4)),
        (b'{"instances": [[1, 2, 3, 4]]}', "application/json", (1, 4)),
    ],
)
def test_input_fn_accepts(body, content_type, shape):
    array = rllib.input_fn(body, content_type)
    assert array.dtype == np.float32
    assert array.shape == shape


@pytest.mark.parametrize(
    ("body", "content_type", "status", "message"),
    [
        (b"[1, 2", "application/json", 400, "not valid JSON"),
        (b"\xff\xfe", "application/json", 400, "not valid JSON"),
        (b"[[1, 2], [3]]", "application/json", 400, "rectangular"),
        (b'{"obs": [1]}', "application/json", 400, "exactly one of"),
        (b'{"observations": 3}', "application/json", 400, "list of observations"),
        (b"1,2,3,4", "text/csv", 415, "text/csv"),
    ],
)
def test_input_fn_refuses(body, content_type, status, message):
    with pytest.raises(rllib.RequestError, match=message) as caught:
        rllib.input_fn(body, content_type)
    assert caught.value.status_code == status


@pytest.mark.parametrize("data", [[0.0, 0.1, 0.0], [[0.0, 0.1]], [[[0.0, 0.1, 0.0, 0.1]]]])
def test_predict_fn_refuses_a_wrong_observation_shape(policy, data):
    with pytest.raises(rllib.RequestError, match=r"the policy's \[4\]") as caught:
        rllib.predict_fn(data, policy)
    assert caught.value.status_code == 400


@pytest.mark.parametrize(
    ("accept", "ok"),
    [(None, True), ("*/*", True), ("application/json", True), ("text/csv", False)],
)
def test_output_fn(accept, ok):
    if ok:
        assert rllib.output_fn({"action": 1}, accept) == (b'{"action": 1}', "application/json")
    else:
        with pytest.raises(rllib.NotAcceptableError) as caught:
            rllib.output_fn({"action": 1}, accept)
        assert caught.value.status_code == 406


@pytest.mark.slow
def test_runs_as_a_plain_file_without_rl_provider(checkpoints, tmp_path):
    """SageMaker unpacks the model's code and imports SAGEMAKER_PROGRAM by path."""
    shutil.copy(rllib.__file__, tmp_path / "rllib.py")
    script = f"""
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("rllib", {str(tmp_path / "rllib.py")!r})
handler = importlib.util.module_from_spec(spec)
sys.modules["rllib"] = handler
spec.loader.exec_module(handler)
model = handler.model_fn({str(checkpoints / "bare")!r})
data = handler.input_fn(b"[[0.0, 0.1, 0.0, -0.1]]", "application/json")
body, content_type = handler.output_fn(handler.predict_fn(data, model), "application/json")
print(json.dumps({{"body": body.decode(), "loaded": sorted(m for m in sys.modules if m.startswith("rl_provider"))}}))
"""
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, check=True
    )
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["loaded"] == []
    assert json.loads(report["body"])["actions"][0] in (0, 1)


def test_traced_forward_answers_as_the_eager_module(checkpoints, monkeypatch):
    traced = rllib.model_fn(str(checkpoints / "bare"))
    monkeypatch.setenv(rllib.TRACE_ENV, "0")
    eager = rllib.model_fn(str(checkpoints / "bare"))
    assert eager.forward == eager.module._forward_inference
    assert traced.forward != traced.module._forward_inference
    observations = np.random.default_rng(1).uniform(-1, 1, (64, 4)).astype(np.float32)
    assert rllib.predict_fn(observations, traced) == rllib.predict_fn(observations, eager)
