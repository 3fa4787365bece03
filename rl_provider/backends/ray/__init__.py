"""The Ray cluster backend: training jobs as Ray jobs through the Jobs REST API (docs/RAY.md)."""

from __future__ import annotations

from rl_provider.backends.ray.backend import AsyncRayBackend, RayBackend

__all__ = ["AsyncRayBackend", "RayBackend"]
