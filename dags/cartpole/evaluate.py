"""Greedy evaluation of a policy trained by ``train.py`` on CartPole-v1 episodes.

``evaluate(model_dir, episodes=20, seed=0)`` takes the model directory (the extracted
``model.tar.gz``), the ``model.tar.gz`` itself, or a ``file://`` URI of either, and returns the
mean, min and max episode return of the greedy (argmax) policy, loaded and queried through the
built-in serving handler (``rl_provider.serving.rllib``). ``python evaluate.py MODEL`` prints the
same as JSON.
"""

from __future__ import annotations

import json
import sys
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

ENV_ID = "CartPole-v1"


def _local_path(model: str | Path) -> Path:
    text = str(model)
    if text.startswith("file://"):
        return Path(unquote(urlparse(text).path)).absolute()
    if "://" in text:
        raise ValueError(
            f"evaluate() reads local models only, got {text!r}: pass a directory, a "
            "model.tar.gz path or a file:// URI (download s3:// artifacts first)."
        )
    return Path(text).absolute()


@contextmanager
def model_directory(model: str | Path) -> Iterator[Path]:
    """The model directory of ``model``, extracting a ``model.tar.gz`` into a temp dir."""
    path = _local_path(model)
    if path.is_dir():
        yield path
        return
    if not path.is_file() or not tarfile.is_tarfile(path):
        raise FileNotFoundError(
            f"{str(model)!r} is neither a model directory nor a model.tar.gz: pass the "
            "training job's ModelArtifacts.S3ModelArtifacts or its extracted directory."
        )
    with tempfile.TemporaryDirectory(prefix="rl-eval-") as tmp, tarfile.open(path) as tar:
        tar.extractall(tmp, filter="data")
        yield Path(tmp)


def evaluate(model_dir: str | Path, episodes: int = 20, seed: int = 0) -> dict[str, Any]:
    """Mean/min/max return of the greedy policy over ``episodes`` seeded CartPole-v1 episodes."""
    import gymnasium as gym

    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    from rl_provider.serving import rllib

    # The built-in serving handler's own load and greedy action: what is measured here is
    # exactly what an endpoint deployed from this model answers.
    with model_directory(model_dir) as directory:
        policy = rllib.model_fn(str(directory))
    env = gym.make(ENV_ID)
    returns: list[float] = []
    try:
        for episode in range(episodes):
            observation, _ = env.reset(seed=seed + episode)
            total, done = 0.0, False
            while not done:
                action = rllib.predict_fn(observation, policy)["action"]
                observation, reward, terminated, truncated, _ = env.step(action)
                total += float(reward)
                done = terminated or truncated
            returns.append(total)
    finally:
        env.close()
    return {
        "mean": sum(returns) / len(returns),
        "min": min(returns),
        "max": max(returns),
        "episodes": len(returns),
    }


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args:
        print("usage: evaluate.py MODEL_DIR|model.tar.gz [EPISODES] [SEED]", file=sys.stderr)
        return 2
    episodes = int(args[1]) if len(args) > 1 else 20
    seed = int(args[2]) if len(args) > 2 else 0
    print(json.dumps(evaluate(args[0], episodes=episodes, seed=seed)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
