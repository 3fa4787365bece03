"""The embedded local backend: SQLite state, detached runners, model servers on 127.0.0.1."""

from __future__ import annotations

from rl_provider.backends.local.backend import AsyncLocalBackend, LocalBackend

__all__ = ["AsyncLocalBackend", "LocalBackend"]
