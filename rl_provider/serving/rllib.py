"""Built-in SageMaker inference handler for RLlib checkpoints (Ray 2.x new API stack).

Shipped as a model's code (``SAGEMAKER_PROGRAM=rllib.py``) and loaded as a plain file by the local
model server or a SageMaker PyTorch serving container, so it imports nothing from ``rl_provider``
and only ray, torch and numpy from outside the standard library.

``model_fn(model_dir)`` finds the RLModule checkpoint under ``model_dir``: a whole Algorithm saved
with ``algo.save_to_path(model_dir)`` (the module is under
``learner_group/learner/rl_module/<module_id>``) or a bare ``module.save_to_path(dir)``. The module
id comes from ``RLLIB_MODULE_ID``, else ``policy.json``'s ``module_id``, else the only module
there, else ``default_policy``.

Wire format (JSON in, JSON out):

- ``[0.0, 0.1, 0.0, -0.1]`` or ``{"observation": [...]}``: one observation -> ``{"action": 1}``
- ``[[...], [...]]``, ``{"observations": [[...], ...]}`` or ``{"instances": [[...], ...]}``: a
  batch -> ``{"actions": [1, 0]}``

The action is the greedy one: the mode of the action distribution the module's inference forward
pass returns (argmax of the logits for a discrete action space). Observations go to the module as
they are: RLlib connectors (observation filters, frame stacking) are not applied, so a policy
trained with them needs its own ``inference.py``. Bad requests raise errors carrying a
``status_code`` (the sagemaker-inference-toolkit convention), so the server answers 4xx.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

JSON = "application/json"
POLICY_FILE = "policy.json"
MODULE_ID_ENV = "RLLIB_MODULE_ID"
# "0" serves the module's eager forward pass instead of a traced, frozen TorchScript copy.
TRACE_ENV = "RLLIB_TRACE_POLICY"
DEFAULT_MODULE_ID = "default_policy"
# RLModule.save_to_path() writes these next to each other (ray.rllib.utils.checkpoints).
_CTOR_FILE = "class_and_ctor_args.pkl"
_STATE_PREFIX = "module_state"


class RequestError(ValueError):
    """A request the policy cannot answer; the server replies with ``status_code``."""

    status_code = 400


class UnsupportedMediaTypeError(RequestError):
    status_code = 415


class NotAcceptableError(RequestError):
    status_code = 406


@dataclass(frozen=True, slots=True, kw_only=True)
class Policy:
    """A loaded RLModule and what requests are checked against."""

    module: Any
    module_id: str
    path: Path
    observation_shape: tuple[int, ...]
    discrete: bool
    forward: Any  # the module's inference forward pass: batch dict -> output dict

    def act(self, observations: Any) -> Any:
        """Greedy actions for a float32 batch ``(N, *observation_shape)`` (numpy or torch)."""
        import torch

        batch = torch.as_tensor(observations, dtype=torch.float32)
        with torch.inference_mode():
            logits = self.forward({"obs": batch})["action_dist_inputs"]
            if self.discrete:
                return logits.argmax(dim=-1)
            dist_cls = self.module.get_inference_action_dist_cls()
            return dist_cls.from_logits(logits).to_deterministic().sample()


def find_module_checkpoint(model_dir: str | os.PathLike[str], module_id: str | None = None) -> Path:
    """The directory of the single-agent RLModule checkpoint to serve from ``model_dir``."""
    root = Path(model_dir)
    found = {
        state.parent
        for state in root.rglob(f"{_STATE_PREFIX}*")
        if (state.parent / _CTOR_FILE).is_file()
    }
    # A MultiRLModule checkpoint holds its modules in subdirectories: serve the leaves.
    leaves = sorted(d for d in found if not any(o != d and o.is_relative_to(d) for o in found))
    if not leaves:
        raise FileNotFoundError(
            f"No RLModule checkpoint under {root}: save the Algorithm with "
            "algo.save_to_path(os.environ['SM_MODEL_DIR']) (or an RLModule with "
            "module.save_to_path(...)) in the training script."
        )
    if module_id is None and len({d.name for d in leaves}) > 1:
        module_id = DEFAULT_MODULE_ID
    if module_id is not None and not (len(leaves) == 1 and leaves[0] == root):
        named = [d for d in leaves if d.name == module_id]
        if not named:
            ids = ", ".join(sorted({d.name for d in leaves}))
            raise FileNotFoundError(
                f"No RLModule {module_id!r} under {root} (found: {ids}): set the model's "
                f"{MODULE_ID_ENV} environment variable to one of them."
            )
        leaves = named
    # The learner's copy is the trained one; EnvRunner copies may be inference-only snapshots.
    leaves.sort(key=lambda d: ("learner_group" not in d.parts, len(d.parts), str(d)))
    return leaves[0]


def _module_id(model_dir: Path) -> str | None:
    if os.environ.get(MODULE_ID_ENV):
        return os.environ[MODULE_ID_ENV]
    policy = model_dir / POLICY_FILE
    if policy.is_file():
        module_id = json.loads(policy.read_text()).get("module_id")
        return str(module_id) if module_id else None
    return None


def model_fn(model_dir: str) -> Policy:
    """Load the RLModule (no Ray cluster is started) in evaluation mode."""
    from gymnasium import spaces
    from ray.rllib.core.rl_module.rl_module import RLModule
    from ray.rllib.core.rl_module.torch.torch_rl_module import TorchRLModule

    path = find_module_checkpoint(model_dir, _module_id(Path(model_dir)))
    module = RLModule.from_checkpoint(path)
    observation_space = module.observation_space
    if not isinstance(observation_space, spaces.Box):
        raise TypeError(
            f"The RLModule at {path} observes {observation_space}: the built-in handler serves "
            "Box observations; deploy with your own entry_point (inference.py) for others."
        )
    if module.is_stateful():
        raise TypeError(
            f"The RLModule at {path} is recurrent: its actions depend on a state the built-in "
            "handler does not keep; deploy with your own entry_point (inference.py)."
        )
    forward = module.forward_inference
    if isinstance(module, TorchRLModule):
        # TorchRLModule.forward_inference is eval() + _forward_inference() + train() on every
        # call (ray/rllib/core/rl_module/torch/torch_rl_module.py); the eval() walk over the
        # module tree costs as much as the forward pass itself. Set eval mode once instead.
        module.eval()
        forward = module._forward_inference
        if os.environ.get(TRACE_ENV, "1") != "0":
            forward = _traced(module, observation_space) or forward
    return Policy(
        module=module,
        module_id=path.name,
        path=path,
        observation_shape=tuple(int(n) for n in observation_space.shape),
        discrete=isinstance(module.action_space, spaces.Discrete),
        forward=forward,
    )


def _traced(module: Any, observation_space: Any) -> Any:
    """The module's inference pass as frozen TorchScript, or None if it does not trace exactly.

    Python dispatch through nested ``nn.Module`` calls is most of a small policy's forward
    time; a traced, frozen graph runs the same tensor operations several times faster and
    drops what the greedy action does not use (PPO's value branch). The trace is checked
    against the eager pass on random observations of two batch sizes before it is used.
    """
    import warnings

    import numpy as np
    import torch

    class _Forward(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.module = module

        def forward(self, obs: Any) -> Any:
            return self.module._forward_inference({"obs": obs})["action_dist_inputs"]

    rng = np.random.default_rng(0)
    low = np.nan_to_num(observation_space.low, neginf=-10.0).clip(-10.0, 10.0)
    high = np.nan_to_num(observation_space.high, posinf=10.0).clip(-10.0, 10.0)
    samples = [
        torch.as_tensor(rng.uniform(low, high, (n, *low.shape)), dtype=torch.float32)
        for n in (2, 1, 5)
    ]
    try:
        with warnings.catch_warnings(), torch.no_grad():
            # torch 2.13 deprecates TorchScript; it is still the fastest CPU path here.
            warnings.simplefilter("ignore")
            eager = _Forward().eval()
            traced = torch.jit.trace(eager, samples[0], check_trace=False)  # type: ignore[no-untyped-call]
            traced = torch.jit.optimize_for_inference(torch.jit.freeze(traced))
            with torch.inference_mode():
                for sample in samples:
                    if not torch.allclose(traced(sample), eager(sample), atol=1e-5):
                        return None
    except Exception:  # anything the tracer cannot handle: serve the eager pass
        return None

    def forward(batch: dict[str, Any]) -> dict[str, Any]:
        return {"action_dist_inputs": traced(batch["obs"])}

    return forward


def _media_type(value: str | None) -> str:
    return (value or "").split(";", 1)[0].strip().lower()


def _not_json(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value (RFC 8259 has no NaN or Infinity)")


def input_fn(body: bytes | str, content_type: str | None = JSON) -> Any:
    """JSON observations -> a float32 numpy array (one observation or a batch)."""
    import numpy as np

    media = _media_type(content_type) or JSON
    if media != JSON:
        raise UnsupportedMediaTypeError(
            f"Content type {content_type!r} is not supported: send {JSON}."
        )
    try:
        data = json.loads(body, parse_constant=_not_json)
    except (ValueError, UnicodeDecodeError) as err:
        raise RequestError(f"The body is not valid JSON: {err}.") from None
    except RecursionError:
        raise RequestError("The body is nested too deeply to hold observations.") from None
    if isinstance(data, dict):
        keys = [k for k in ("observation", "observations", "instances") if k in data]
        if len(keys) != 1:
            raise RequestError(
                f"A JSON object needs exactly one of 'observation', 'observations' or "
                f"'instances', got keys {sorted(data)}."
            )
        batched = keys[0] != "observation"
        data = data[keys[0]]
    else:
        batched = False
    try:
        array = np.asarray(data, dtype=np.float32)
    except (ValueError, TypeError, OverflowError):
        raise RequestError(
            "Observations must be numbers in a rectangular list (one observation or a list of "
            "observations of the same shape)."
        ) from None
    # null became NaN here, 1e400 and 1e39 (beyond float32) Infinity: none is an observation.
    if not np.isfinite(array).all():
        raise RequestError(
            "Observations must be finite numbers: null, NaN, Infinity and numbers beyond "
            "float32's range (about 3.4e38) are refused."
        )
    if batched and array.ndim == 0:
        raise RequestError("'observations'/'instances' must be a list of observations.")
    return array


def predict_fn(data: Any, model: Policy) -> dict[str, Any]:
    """Greedy action(s): ``{"action": a}`` for one observation, ``{"actions": [...]}`` a batch."""
    import numpy as np

    observations = np.asarray(data, dtype=np.float32)
    shape = model.observation_shape
    if observations.shape == shape:
        return {"action": model.act(observations[np.newaxis, ...])[0].tolist()}
    if observations.ndim == len(shape) + 1 and observations.shape[1:] == shape:
        return {"actions": model.act(observations).tolist() if len(observations) else []}
    if observations.shape == (0,):
        return {"actions": []}  # an empty batch: nothing to decide
    raise RequestError(
        f"Observation shape {list(observations.shape)} does not match the policy's "
        f"{list(shape)}: send one observation of shape {list(shape)} or a batch of shape "
        f"[N, {', '.join(str(n) for n in shape)}]."
    )


def output_fn(prediction: Any, accept: str | None = JSON) -> tuple[bytes, str]:
    """The prediction as JSON (the only type this handler produces)."""
    media = _media_type(accept)
    if media not in ("", "*/*", "application/*", JSON):
        raise NotAcceptableError(f"Accept {accept!r} cannot be produced: accept {JSON}.")
    # RFC 8259 JSON: a NaN or Infinity in a prediction raises (the server answers 500).
    return json.dumps(prediction, allow_nan=False).encode("utf-8"), JSON
