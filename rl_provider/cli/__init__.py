"""``rl-provider``: the runbook CLI over the same backends the operators use.

``rl-provider jobs|models|endpoints ...`` answers "what is running, why did it fail, is the new
policy better, stop it" from a terminal. ``docs/CLI.md`` maps ops questions to commands; exit
codes are in :class:`rl_provider.cli.app.ExitCode`.
"""

from __future__ import annotations

from rl_provider.cli.app import main
from rl_provider.cli.context import ExitCode

__all__ = ["ExitCode", "main"]
