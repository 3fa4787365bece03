"""What every command gets: its exit codes and ``Context`` (output + backend), and how a
command module describes its commands to the parser (``Group``, ``Action``, ``option``).

Apart from ``app.py`` (parser, backend selection, error reporting) so the command modules
(``jobs.py``, ``resources.py``) import it without importing the app that imports them.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING, Any

from rl_provider.cli.output import Output

if TYPE_CHECKING:
    from rl_provider.backends.base import Backend

__all__ = ["NAME", "Action", "Command", "Context", "ExitCode", "Group", "Option", "option"]


class ExitCode(IntEnum):
    """What a script can branch on (docs/CLI.md has the table per command)."""

    OK = 0
    #: The job ended Failed or Stopped (``describe``, ``logs --follow``), a stop did not end in
    #: Stopped, the endpoint cannot serve, the model answered an error, or the backend failed.
    FAILED = 1
    #: Bad arguments or setup: unknown option, bad JSON, a missing home, a missing extra.
    USAGE = 2
    #: No job, model or endpoint of that name (or no metrics to plot).
    NOT_FOUND = 3
    #: Ctrl-C (128 + SIGINT, the shell convention).
    INTERRUPTED = 130


Command = Callable[[argparse.Namespace, "Context"], ExitCode]


class Context:
    """One run's output and its backend, opened on first use (after the input is validated)."""

    def __init__(
        self, args: argparse.Namespace, opener: Callable[[argparse.Namespace], Backend]
    ) -> None:
        self.args = args
        self._opener = opener
        self.output = Output(json_mode=bool(args.json))
        self._backend: Backend | None = None

    @property
    def backend(self) -> Backend:
        if self._backend is None:
            self._backend = self._opener(self.args)
        return self._backend


@dataclass(frozen=True, slots=True)
class Option:
    """One ``add_argument(*flags, **keywords)`` of a command."""

    flags: tuple[str, ...]
    keywords: Mapping[str, Any]


def option(*flags: str, **keywords: Any) -> Option:
    return Option(flags, keywords)


#: The resource name every describe/delete/... command takes.
NAME = option("name", metavar="NAME")


@dataclass(frozen=True, slots=True)
class Action:
    """``rl-provider <group> <name>``: what it runs, its help (also its description), its
    options."""

    name: str
    command: Command
    help: str
    options: tuple[Option, ...] = ()


@dataclass(frozen=True, slots=True)
class Group:
    """``rl-provider <name> ...``: a resource's commands; ``metavar`` lists them in usage."""

    name: str
    help: str
    description: str
    metavar: str
    actions: tuple[Action, ...]
