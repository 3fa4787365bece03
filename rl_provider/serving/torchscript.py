"""Built-in handler for TorchScript policies: the default when a model names no program.

SageMaker's PyTorch serving container does the same without a user script: it loads ``model.pt``
as TorchScript. The module maps a float32 batch of observations ``(N, *observation_shape)`` to
one row per observation: logits or Q-values (the greedy action is their argmax) or, if the output
is an integer tensor, the actions themselves.

Same wire format as the RLlib handler (``rl_provider.serving.rllib``): one observation ->
``{"action": a}``, a batch -> ``{"actions": [...]}``. ``policy.json`` next to the file may give
``observation_shape``; without it a 1-D body is one observation and a 2-D body a batch.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rl_provider.serving.rllib import POLICY_FILE, RequestError, input_fn, output_fn

__all__ = ["TorchScriptPolicy", "input_fn", "model_fn", "output_fn", "predict_fn"]

# Looked for in this order; SageMaker's PyTorch container looks for model.pt.
MODEL_FILES = ("model.pt", "model.pth", "policy.pt", "model.ts")
_SUFFIXES = (".pt", ".pth", ".ts")


@dataclass(frozen=True, slots=True, kw_only=True)
class TorchScriptPolicy:
    module: Any
    path: Path
    observation_shape: tuple[int, ...] | None

    def act(self, observations: Any) -> Any:
        import torch

        batch = torch.as_tensor(observations, dtype=torch.float32)
        try:
            with torch.inference_mode():
                output = self.module(batch)
        except RuntimeError as err:
            # Without policy.json the shape is only checked by the module itself: a TorchScript
            # shape mismatch is the caller's input, so it is a 400 rather than a server error.
            raise RequestError(
                f"The policy rejected observations of shape {list(batch.shape)}: {err}"
            ) from None
        if not isinstance(output, torch.Tensor):
            raise TypeError(
                f"The TorchScript module at {self.path} returned {type(output).__name__}, not a "
                "tensor: serve it with your own entry_point (inference.py)."
            )
        if output.is_floating_point():
            return output.argmax(dim=-1)
        return output.reshape(output.shape[0], -1).squeeze(-1)


def find_model_file(model_dir: str | Path) -> Path:
    root = Path(model_dir)
    for name in MODEL_FILES:
        if (root / name).is_file():
            return root / name
    found = sorted(p for p in root.rglob("*") if p.suffix in _SUFFIXES and p.is_file())
    if not found:
        raise FileNotFoundError(
            f"No TorchScript file ({', '.join(MODEL_FILES)}) under {root}: save the policy with "
            "torch.jit.save(torch.jit.script(net), os.path.join(SM_MODEL_DIR, 'model.pt')), or "
            "deploy with an entry_point that has its own model_fn."
        )
    return found[0]


def model_fn(model_dir: str) -> TorchScriptPolicy:
    import torch

    path = find_model_file(model_dir)
    with warnings.catch_warnings():
        # torch 2.13 deprecates TorchScript in favour of torch.export; SageMaker's PyTorch
        # containers still load model.pt as TorchScript, so this handler does too.
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        module = torch.jit.load(str(path), map_location="cpu")  # type: ignore[no-untyped-call]
    module.eval()
    shape = None
    policy = Path(model_dir) / POLICY_FILE
    if policy.is_file():
        declared = json.loads(policy.read_text()).get("observation_shape")
        shape = tuple(int(n) for n in declared) if declared else None
    return TorchScriptPolicy(module=module, path=path, observation_shape=shape)


def predict_fn(data: Any, model: TorchScriptPolicy) -> dict[str, Any]:
    import numpy as np

    observations = np.asarray(data, dtype=np.float32)
    shape = model.observation_shape
    single = observations.ndim == 1 if shape is None else observations.shape == shape
    batch = (
        observations.ndim == 2
        if shape is None
        else (observations.ndim == len(shape) + 1 and observations.shape[1:] == shape)
    )
    if single:
        return {"action": model.act(observations[np.newaxis, ...])[0].tolist()}
    if batch:
        return {"actions": model.act(observations).tolist() if len(observations) else []}
    expected = "[D] or a batch [N, D]" if shape is None else f"{list(shape)} or [N, *that]"
    raise RequestError(
        f"Observation shape {list(observations.shape)} is not one observation or a batch: "
        f"send {expected}."
    )
