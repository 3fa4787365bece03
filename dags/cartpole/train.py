"""Train PPO on CartPole-v1 with Ray RLlib (new API stack, torch) inside the SageMaker contract.

Hyperparameters arrive as ``--key value`` arguments, the way a SageMaker training container
passes them (``SM_HPS`` holds the same values as JSON). The job stops after ``iterations``
training iterations, or earlier once the training ``episode_return_mean`` reaches
``target_return``, or when SageMaker (or the local backend) sends SIGTERM. In every case the full
Algorithm checkpoint is saved at the root of ``SM_MODEL_DIR``, so the RLModule lives under
``learner_group/learner/rl_module/default_policy`` (where the built-in RLlib serving handler looks
for it), next to a ``policy.json`` that tools can read without importing Ray.

Each iteration prints ``episode_return_mean: X`` / ``episode_return_max: X`` and the SDK-era
``episode_reward_mean: X`` / ``episode_reward_max: X``: the lines the default Ray metric
definitions of ``RLEstimator`` match.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

ENV_ID = "CartPole-v1"
MODULE_ID = "default_policy"  # ray.rllib.core.DEFAULT_MODULE_ID
# CartPole-v1's spaces (gymnasium's classic_control/cartpole.py), written to policy.json.
OBSERVATION_SHAPE = [4]
NUM_ACTIONS = 2
POLICY_FILE = "policy.json"


def _optional_float(text: str) -> float | None:
    # The container passes str() of the JSON-decoded value: None arrives as "None".
    if text.strip().lower() in ("", "none", "null"):
        return None
    return float(text)


def _int_list(text: str) -> list[int]:
    value = json.loads(text)
    if not isinstance(value, list) or not all(isinstance(v, int) and v > 0 for v in value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a list of positive ints, e.g. [64, 64]")
    return value


def _runners(text: str) -> int:
    # -1 stands for "auto": sized from the cluster once ray.init() has joined it.
    return -1 if text.strip().lower() == "auto" else int(text)


def parser() -> argparse.ArgumentParser:
    # No abbreviations: a user's own hyperparameter (say --iter) must not pass for one of ours.
    p = argparse.ArgumentParser(
        description="PPO on CartPole-v1 with Ray RLlib, SageMaker training-container style.",
        allow_abbrev=False,
    )
    stop = p.add_argument_group("stopping rule")
    stop.add_argument("--iterations", type=int, default=150, help="most training iterations")
    stop.add_argument(
        "--target_return",
        type=_optional_float,
        default=None,
        help="stop once the training episode_return_mean reaches this (CartPole-v1 caps at 500)",
    )
    ppo = p.add_argument_group("PPO")
    ppo.add_argument("--seed", type=int, default=0)
    ppo.add_argument("--lr", type=float, default=1e-3)
    ppo.add_argument("--gamma", type=float, default=0.99)
    ppo.add_argument(
        "--lambda_", "--lambda", "--gae_lambda", dest="lambda_", type=float, default=0.95
    )
    ppo.add_argument("--clip_param", type=float, default=0.2)
    ppo.add_argument("--entropy_coeff", type=float, default=0.0)
    ppo.add_argument("--vf_loss_coeff", type=float, default=0.5)
    ppo.add_argument("--train_batch_size", type=int, default=2000)
    ppo.add_argument("--minibatch_size", type=int, default=250)
    ppo.add_argument("--num_epochs", type=int, default=8)
    ppo.add_argument("--fcnet_hiddens", type=_int_list, default=[64, 64])
    ppo.add_argument(
        "--num_env_runners",
        type=_runners,
        default=0,
        help="remote env runners; 'auto': one per CPU the cluster has free (a Ray cluster)",
    )
    ppo.add_argument("--num_envs_per_env_runner", type=int, default=8)
    ppo.add_argument(
        "--torch_threads",
        type=int,
        default=1,
        help="intra-op threads of torch (a 64x64 MLP gains nothing from more)",
    )
    p.add_argument(
        "--model_dir",
        default=os.environ.get("SM_MODEL_DIR", "model"),
        help="where the checkpoint goes (default: $SM_MODEL_DIR)",
    )
    return p


def parse_args(argv: list[str]) -> argparse.Namespace:
    args, unknown = parser().parse_known_args(argv)
    if unknown:
        # Users add their own hyperparameters for other steps of a pipeline; they are not ours.
        print(f"Ignoring hyperparameters this entry point does not use: {unknown}", flush=True)
    for name in ("iterations", "train_batch_size", "minibatch_size", "num_epochs", "torch_threads"):
        if getattr(args, name) < 1:
            parser().error(f"--{name} must be >= 1, got {getattr(args, name)}")
    return args


def build_config(args: argparse.Namespace) -> Any:
    from ray.rllib.algorithms.ppo import PPOConfig
    from ray.rllib.core.rl_module.default_model_config import DefaultModelConfig

    return (
        PPOConfig()
        .environment(ENV_ID)
        .framework("torch")
        .env_runners(
            num_env_runners=args.num_env_runners,
            num_envs_per_env_runner=args.num_envs_per_env_runner,
        )
        # One local learner: a remote one costs a process and a copy per update on 2 cores.
        .learners(num_learners=0)
        .training(
            lr=args.lr,
            gamma=args.gamma,
            lambda_=args.lambda_,
            clip_param=args.clip_param,
            entropy_coeff=args.entropy_coeff,
            vf_loss_coeff=args.vf_loss_coeff,
            train_batch_size_per_learner=args.train_batch_size,
            minibatch_size=args.minibatch_size,
            num_epochs=args.num_epochs,
        )
        .rl_module(model_config=DefaultModelConfig(fcnet_hiddens=args.fcnet_hiddens))
        .debugging(seed=args.seed)
    )


def _finite(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def report(iteration: int, result: dict[str, Any]) -> float | None:
    """Print one iteration; returns its training ``episode_return_mean`` (None: no episode)."""
    runners = result.get("env_runners", {})
    mean = _finite(runners.get("episode_return_mean"))
    best = _finite(runners.get("episode_return_max"))
    steps = int(result.get("num_env_steps_sampled_lifetime", 0))
    print(
        f"Iteration {iteration}: {steps} env steps, {result.get('time_this_iter_s', 0.0):.1f} s "
        f"(total {result.get('time_total_s', 0.0):.1f} s)",
        flush=True,
    )
    # No finished episode yet means no value: print nothing rather than nan.
    for name, value in (("mean", mean), ("max", best)):
        if value is not None:
            print(f"episode_return_{name}: {value:.4f}", flush=True)
            print(f"episode_reward_{name}: {value:.4f}", flush=True)
    return mean


def save(algo: Any, model_dir: Path, iterations: int, mean: float | None) -> None:
    model_dir.mkdir(parents=True, exist_ok=True)
    algo.save_to_path(str(model_dir))
    policy = {
        "env": ENV_ID,
        "module_id": MODULE_ID,
        "observation_shape": OBSERVATION_SHAPE,
        "num_actions": NUM_ACTIONS,
        "iterations": iterations,
        "episode_return_mean": mean,
    }
    (model_dir / POLICY_FILE).write_text(json.dumps(policy, indent=2) + "\n")
    print(f"Saved the checkpoint of iteration {iterations} to {model_dir}", flush=True)


def train(args: argparse.Namespace) -> int:
    import ray
    import torch

    started = time.monotonic()
    stop_requested = False

    def on_sigterm(signum: int, frame: object) -> None:
        nonlocal stop_requested
        stop_requested = True
        print("SIGTERM received: saving the work so far after this iteration", flush=True)

    # A local Ray of our own, sized to the container; RAY_ADDRESS (a user's cluster) wins.
    address = os.environ.get("RAY_ADDRESS") or "local"
    ray.init(
        address=address,
        num_cpus=int(os.environ.get("SM_NUM_CPUS", os.cpu_count() or 1))
        if address == "local"
        else None,
        num_gpus=0 if address == "local" else None,
        include_dashboard=False,
        # Env-runner errors belong in the job log, as in a SageMaker container's CloudWatch.
        log_to_driver=True,
    )
    if args.num_env_runners < 0:
        # One env runner per CPU the cluster has free besides this driver's: on a Ray cluster
        # they spread over its nodes.
        args.num_env_runners = max(0, int(ray.available_resources().get("CPU", 0)))
        print(f"Sized {args.num_env_runners} env runners from the cluster", flush=True)
    # After ray.init: Ray installs its own SIGTERM handler in the driver.
    signal.signal(signal.SIGTERM, on_sigterm)
    # Measured on 2 shared cores: torch's default (one thread per core) made each PPO
    # iteration 10-15x slower under load than a single thread (docs/DESIGN.md, entry point).
    torch.set_num_threads(args.torch_threads)
    try:
        algo = build_config(args).build_algo()
        print(f"Built PPO on {ENV_ID} in {time.monotonic() - started:.1f} s", flush=True)
        iteration, mean = 0, None
        while iteration < args.iterations and not stop_requested:
            result = algo.train()
            iteration += 1
            latest = report(iteration, result)
            if latest is None:
                continue  # no episode ended this iteration: keep the last known mean
            mean = latest
            target = args.target_return
            if target is not None and mean >= target:
                print(
                    f"Reached target_return {target:g} "
                    f"(episode_return_mean {mean:.4f}) at iteration {iteration}",
                    flush=True,
                )
                break
        save(algo, Path(args.model_dir), iteration, mean)
        if stop_requested:
            # The checkpoint is saved; leave at once. Where the whole process group got the
            # SIGTERM, Ray's own daemons (GCS, raylet) are going down and a graceful
            # algo.stop()/ray.shutdown() would wait ~10 s on their timeouts (the local backend
            # signals this process only, then kills the group). Ray's daemons and workers die
            # with this process (Ray starts them fate-sharing).
            print(f"Stopped after {time.monotonic() - started:.1f} s", flush=True)
            sys.stderr.flush()
            os._exit(0)
        algo.stop()
    finally:
        ray.shutdown()
    print(f"Done in {time.monotonic() - started:.1f} s", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    return train(parse_args(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    sys.exit(main())
