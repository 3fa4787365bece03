"""The real RLlib entry point (``dags/cartpole/train.py``) run through the local backend.

One short PPO job (two iterations, small batches) is trained once for the module; the tests read
its log, metrics and ``model.tar.gz``, load the checkpoint back and evaluate it greedily.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import tarfile
import time
from pathlib import Path

import pytest

from rl_provider import RLEstimator
from rl_provider.backends.local import LocalBackend
from rl_provider.backends.local.transfer import file_path
from rl_provider.core.enums import SecondaryStatus, TrainingJobStatus

ray = pytest.importorskip("ray", reason="the rllib extra is not installed")

CARTPOLE = Path(__file__).resolve().parents[3] / "dags" / "cartpole"
MODULE_DIR = "learner_group/learner/rl_module/default_policy"
# Two quick iterations: a batch of 400 steps over 4 envs, one epoch of two minibatches.
QUICK = {
    "iterations": 2,
    "train_batch_size": 400,
    "minibatch_size": 200,
    "num_epochs": 1,
    "num_envs_per_env_runner": 4,
    "seed": 7,
}


def load(name: str):
    """Import ``dags/cartpole/<name>.py`` as a module (the folder is an entry-point tree)."""
    spec = importlib.util.spec_from_file_location(f"cartpole_{name}", CARTPOLE / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def estimator(backend: LocalBackend, **hyperparameters) -> RLEstimator:
    return RLEstimator(
        entry_point="train.py",
        source_dir=str(CARTPOLE),
        toolkit="ray",
        toolkit_version=ray.__version__,
        framework="pytorch",
        instance_type="local",
        hyperparameters=hyperparameters,
        backend=backend,
    )


def wait_for(predicate, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError("condition not met in time")


@pytest.fixture(scope="module")
def backend(tmp_path_factory) -> LocalBackend:
    return LocalBackend(tmp_path_factory.mktemp("rllib") / "home", stop_grace_seconds=60.0)


@pytest.fixture(scope="module")
def trained(backend):
    """The description of a completed two-iteration PPO job."""
    estimator(backend, **QUICK).fit(job_name="ppo-quick", logs=False)
    return backend.describe_training_job("ppo-quick")


@pytest.fixture(scope="module")
def model_dir(trained, tmp_path_factory) -> Path:
    target = tmp_path_factory.mktemp("model")
    with tarfile.open(file_path(trained.model_data)) as tar:
        tar.extractall(target, filter="data")
    return target


@pytest.mark.slow
def test_job_completes_and_reports_metrics(backend, trained):
    assert trained.training_job_status is TrainingJobStatus.COMPLETED
    metrics = trained.final_metrics
    assert {"episode_return_mean", "episode_return_max", "episode_reward_mean"} <= set(metrics)
    # The SDK-era name carries the same number as RLlib's.
    assert metrics["episode_reward_mean"] == metrics["episode_return_mean"]
    assert 8.0 <= metrics["episode_return_mean"] <= metrics["episode_return_max"] <= 500.0

    log, _ = backend.read_logs("ppo-quick")
    assert any(line.startswith("Iteration 2: ") for line in log)
    assert any(line.startswith("episode_return_mean: ") for line in log)
    assert any(line.startswith("episode_reward_max: ") for line in log)
    assert not any("nan" in line for line in log if "episode_" in line)
    assert "Saved the checkpoint of iteration 2" in "\n".join(log)
    assert len(backend.metrics("ppo-quick")["episode_return_mean"]) == 2


@pytest.mark.slow
def test_model_tar_holds_the_checkpoint_and_policy_json(trained, model_dir):
    with tarfile.open(file_path(trained.model_data)) as tar:
        names = set(tar.getnames())
    assert "policy.json" in names
    assert "rllib_checkpoint.json" in names
    assert {f"{MODULE_DIR}/module_state.pkl", f"{MODULE_DIR}/metadata.json"} <= names

    policy = json.loads((model_dir / "policy.json").read_text())
    assert policy == {
        "env": "CartPole-v1",
        "module_id": "default_policy",
        "observation_shape": [4],
        "num_actions": 2,
        "iterations": 2,
        "episode_return_mean": pytest.approx(trained.final_metrics["episode_return_mean"]),
    }


@pytest.mark.slow
def test_checkpoint_loads_back_as_an_rl_module(model_dir):
    import torch
    from ray.rllib.core.rl_module.rl_module import RLModule

    module = RLModule.from_checkpoint(str(model_dir / MODULE_DIR))
    observations = torch.tensor([[0.0, 0.1, -0.02, 0.3], [0.01, -0.2, 0.05, -0.4]])
    with torch.no_grad():
        logits = module.forward_inference({"obs": observations})["action_dist_inputs"]
    assert tuple(logits.shape) == (2, 2)
    assert torch.isfinite(logits).all()


@pytest.mark.slow
def test_evaluate_reads_a_directory_a_tarball_and_a_file_uri(trained, model_dir):
    evaluate = load("evaluate").evaluate
    tarball = file_path(trained.model_data)
    from_dir = evaluate(model_dir, episodes=3, seed=1)
    assert from_dir["episodes"] == 3
    assert 8.0 <= from_dir["min"] <= from_dir["mean"] <= from_dir["max"] <= 500.0
    # Greedy actions on seeded episodes: every form of the same model scores the same.
    assert evaluate(tarball, episodes=3, seed=1) == from_dir
    assert evaluate(trained.model_data, episodes=3, seed=1) == from_dir


@pytest.mark.slow
def test_evaluate_scores_the_modules_own_greedy_actions(model_dir):
    """The serving handler evaluate() goes through acts as argmax of the RLModule's logits."""
    import gymnasium as gym
    import torch
    from ray.rllib.core.rl_module.rl_module import RLModule

    module = RLModule.from_checkpoint(str(model_dir / MODULE_DIR))
    env = gym.make("CartPole-v1")
    returns = []
    for episode in range(3):
        observation, _ = env.reset(seed=1 + episode)
        total, done = 0.0, False
        while not done:
            with torch.no_grad():
                logits = module.forward_inference({"obs": torch.tensor(observation)[None]})
            action = int(logits["action_dist_inputs"].argmax(dim=-1)[0])
            observation, reward, terminated, truncated, _ = env.step(action)
            total, done = total + float(reward), terminated or truncated
        returns.append(total)
    result = load("evaluate").evaluate(model_dir, episodes=3, seed=1)
    assert result == {
        "mean": pytest.approx(sum(returns) / 3),
        "min": min(returns),
        "max": max(returns),
        "episodes": 3,
    }


@pytest.mark.parametrize(
    ("model", "error"),
    [
        ("s3://bucket/job/output/model.tar.gz", "reads local models only"),
        ("/nonexistent/model.tar.gz", "neither a model directory nor a model.tar.gz"),
    ],
)
def test_evaluate_refuses_what_it_cannot_read(model, error):
    evaluate = load("evaluate").evaluate
    with pytest.raises((ValueError, FileNotFoundError), match=error):
        evaluate(model)


@pytest.mark.slow
def test_sigterm_saves_the_work_so_far(backend):
    """SageMaker's stop (and MaxRuntime) is SIGTERM: the job still yields a checkpoint."""
    estimator(backend, **{**QUICK, "iterations": 10_000}).fit(job_name="ppo-stop", wait=False)
    wait_for(
        lambda: any(line.startswith("Iteration 1:") for line in backend.read_logs("ppo-stop")[0])
    )
    backend.stop_training_job("ppo-stop")
    wait_for(lambda: backend.describe_training_job("ppo-stop").is_terminal)

    job = backend.describe_training_job("ppo-stop")
    assert (job.training_job_status, job.secondary_status) == (
        TrainingJobStatus.STOPPED,
        SecondaryStatus.STOPPED,
    )
    log = "\n".join(backend.read_logs("ppo-stop")[0])
    assert "SIGTERM received" in log
    assert "SIGKILL" not in log  # saved within the grace period, not killed
    with tarfile.open(file_path(job.model_data)) as tar:
        names = set(tar.getnames())
        policy = json.loads(tar.extractfile("policy.json").read())
    assert f"{MODULE_DIR}/module_state.pkl" in names
    assert 1 <= policy["iterations"] < 10_000


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ([], {"iterations": 150, "target_return": None, "seed": 0}),
        (
            ["--iterations", "3", "--target_return", "475.0", "--seed", "5"],
            {"iterations": 3, "target_return": 475.0, "seed": 5},
        ),
        (["--target_return", "None"], {"target_return": None}),
        (
            ["--lambda", "0.9", "--fcnet_hiddens", "[32, 32]"],
            {"lambda_": 0.9, "fcnet_hiddens": [32, 32]},
        ),
        (["--my_own_knob", "1", "--iterations", "2"], {"iterations": 2}),
    ],
)
def test_hyperparameters_as_sagemaker_passes_them(argv, expected):
    args = load("train").parse_args(argv)
    assert {key: getattr(args, key) for key in expected} == expected


@pytest.mark.parametrize(
    "argv",
    [["--iterations", "0"], ["--iterations", "2.5"], ["--fcnet_hiddens", "[0]"], ["--lr", "fast"]],
)
def test_bad_hyperparameters_exit_with_a_usage_error(argv, capsys):
    with pytest.raises(SystemExit) as info:
        load("train").parse_args(argv)
    assert info.value.code == 2
    assert "error:" in capsys.readouterr().err
