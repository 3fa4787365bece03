"""Model serving: the SageMaker inference handler contract and the built-in handlers.

- ``handler``: loads a handler module (``model_fn``, ``input_fn``, ``predict_fn``, ``output_fn``
  or ``transform_fn``) the way SageMaker's inference toolkit does, with JSON defaults.
- ``server``: the local model server (``GET /ping``, ``POST /invocations``) on 127.0.0.1.
- ``rllib``: the built-in handler for RLlib (Ray 2.x new API stack) checkpoints; shipped as a
  model's code (``SAGEMAKER_PROGRAM=rllib.py``), so it imports nothing from ``rl_provider``.
- ``torchscript``: the built-in handler for TorchScript policies (the default without a program).

Importing this package imports nothing heavy; torch, ray and numpy load in the server process.
"""

from __future__ import annotations
