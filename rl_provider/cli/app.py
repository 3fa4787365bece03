"""The ``rl-provider`` command line: parser, backend selection, exit codes, error reporting.

Every command is a function ``(args, ctx) -> ExitCode`` in ``jobs.py`` or ``resources.py``.
Errors from ``rl_provider.exceptions`` become one line on stderr and an exit code; a traceback
is shown only with ``--debug``. Heavy packages (boto3, Airflow, matplotlib) are imported only by
the commands and backends that need them.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rl_provider import __version__
from rl_provider.backends.registry import open_backend
from rl_provider.cli.context import Command, Context, ExitCode, option
from rl_provider.exceptions import RLConfigError, RLProviderError
from rl_provider.settings import BackendKind, BackendSettings

if TYPE_CHECKING:
    from rl_provider.backends.base import Backend


def _home_origin(home: str | None) -> str:
    if home:
        return "from --home"
    if os.environ.get("RL_PROVIDER_HOME"):
        return "from RL_PROVIDER_HOME"
    if os.environ.get("AIRFLOW_HOME"):
        return "from $AIRFLOW_HOME/rl_provider"
    return "the default ~/.rl_provider"


def backend_for_options(args: argparse.Namespace) -> Backend:
    """The backend the options name: ``--conn``, else ``--backend`` (local by default)."""
    if args.conn:
        if args.backend or args.home or args.region or args.address:
            raise RLConfigError(
                f"--conn {args.conn} takes the backend, home and region from the Airflow "
                "connection: drop --backend/--home/--region/--address, or drop --conn."
            )
        return _connection_backend(args.conn)
    kind = BackendKind(args.backend or BackendKind.LOCAL)
    if (kind is BackendKind.RAY) != bool(args.address):
        raise RLConfigError(
            "--backend ray needs --address URL (the Ray job server, e.g. http://head:8265), "
            "and --address goes with --backend ray only."
        )
    if kind is BackendKind.RAY:
        # The token from the environment, never the command line (other users see argv).
        return open_backend(
            BackendSettings(
                backend=kind,
                address=args.address,
                token=os.environ.get("RAY_AUTH_TOKEN") or None,
            )
        )
    if kind is BackendKind.SAGEMAKER:
        if args.home:
            raise RLConfigError(
                "--home is the local backend's state directory: drop it with --backend sagemaker."
            )
        try:
            return open_backend(BackendSettings(backend=kind, region_name=args.region))
        except ImportError as err:
            raise RLConfigError(
                f"--backend sagemaker could not load its backend ({err}): "
                "pip install 'airflow-provider-rl[sagemaker]'."
            ) from None
    return _local_backend(args.home, _home_origin(args.home), region=args.region)


def _local_backend(home_option: str | None, origin: str, *, region: str | None) -> Backend:
    """The local backend of an existing home: a CLI never creates one (a read at a typo would
    leave an empty ``state.db`` and report "no jobs")."""
    from rl_provider.backends.local.store import resolve_home

    home = resolve_home(home_option)
    if not (home / "state.db").is_file():
        raise RLConfigError(
            f"No rl_provider home at {home} ({origin}; it has no state.db): "
            "pass --home DIR or set RL_PROVIDER_HOME to the directory your jobs ran in "
            "(default $AIRFLOW_HOME/rl_provider, else ~/.rl_provider)."
        )
    return open_backend(BackendSettings(home=str(home), region_name=region))


def _connection_backend(conn_id: str) -> Backend:
    # Top-level "airflow" only: finding a submodule would import the package.
    missing = _missing_module("airflow", "rl_provider.hooks.rl")
    if missing is not None:
        raise RLConfigError(
            f"--conn {conn_id} needs the Airflow layer (rl_provider.hooks.rl) and Airflow: "
            f"{missing} cannot be imported. Use --backend local|sagemaker|ray instead."
        )
    home = _airflow_home()
    if not home.is_dir() and not os.environ.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"):
        # Checked before Airflow is imported: importing it creates its home.
        raise RLConfigError(
            f"--conn {conn_id}: no Airflow home at {home} (from "
            f"{'AIRFLOW_HOME' if os.environ.get('AIRFLOW_HOME') else 'the default ~/airflow'}): "
            "set AIRFLOW_HOME to your deployment's, or use --home/--backend."
        )
    # Airflow configures its logging on import and may log to stdout (e.g. "Unit test
    # configuration loaded"); stdout carries tables and --json for scripts, so Airflow's lines go
    # to stderr.
    with contextlib.redirect_stdout(sys.stderr):
        from rl_provider.backends.local.store import resolve_home
        from rl_provider.hooks.rl import RLHook

        settings = _connection_settings(conn_id, home)
        if settings is None:
            # What the deployment does without rl_default: the local backend, default home.
            backend = _local_backend(
                None,
                f"no {conn_id} connection in Airflow at {home}, so the local backend, "
                f"{_home_origin(None)}",
                region=None,
            )
            sys.stderr.write(
                f"rl-provider: no {conn_id} connection in Airflow ({home}): the local backend "
                f"at {resolve_home(None)}, as the deployment uses.\n"
            )
            return backend
        if settings.backend is BackendKind.LOCAL:
            origin = (
                f"the home extra of connection {conn_id!r}"
                if settings.home
                else f"connection {conn_id!r} names no home, so {_home_origin(None)}"
            )
            return _local_backend(settings.home, origin, region=settings.region_name)
        try:
            return RLHook(conn_id, settings=settings).backend
        except RLProviderError:
            raise
        except Exception as err:  # Airflow's or the Amazon provider's own errors
            raise RLConfigError(
                f"Could not open the backend of Airflow connection {conn_id!r} "
                f"({type(err).__name__}: {err}): check it with `airflow connections get "
                f"{conn_id}`, or use --backend local|sagemaker|ray."
            ) from None


def _missing_module(*names: str) -> str | None:
    """The first of ``names`` that cannot be imported, found without importing it (importing
    Airflow creates its home)."""
    for name in names:
        try:
            if importlib.util.find_spec(name) is None:
                return name
        except (ImportError, ValueError):
            return name
    return None


def _airflow_home() -> Path:
    return Path(os.environ.get("AIRFLOW_HOME") or "~/airflow").expanduser()


def _connection_settings(conn_id: str, home: Path) -> Any:
    """The connection's settings, looked up the way the deployment's components do; None for
    a missing ``rl_default`` (the deployment then uses the local backend, default home).

    Outside a task, Airflow 3's Task SDK reads only environment and secrets-backend
    connections; Airflow's own ``airflow connections get`` sets the server process context and
    reads through ``airflow.models.Connection.get_connection_from_secrets``, whose search path
    ends with the metadata database. The CLI does the same, after checking that the database
    exists and is readable: the secrets search swallows a database error as "not found", and
    SQLite would create an empty database file at a wrong AIRFLOW_HOME.
    """
    problem = _metastore_problem()
    try:
        # The same class airflow.models raises (the SDK re-exports Airflow's).
        from airflow.sdk.exceptions import AirflowNotFoundException

        if problem is None:
            from airflow.models.connection import Connection

            # What `airflow connections get` sets: the SDK's lookups (e.g. the aws connection
            # the SageMaker backend reads later) then include the metadata database too.
            os.environ["_AIRFLOW_PROCESS_CONTEXT"] = "server"
            connection: Any = Connection.get_connection_from_secrets(conn_id)
        else:
            from airflow.sdk import BaseHook

            connection = BaseHook.get_connection(conn_id)
        extras, password = connection.extra_dejson, connection.password or None
    except AirflowNotFoundException:
        extras = password = None
    except RLProviderError:
        raise
    except Exception as err:  # a secrets backend's own error: no connection, no guess
        raise RLConfigError(
            f"Could not read Airflow connection {conn_id!r} ({type(err).__name__}: "
            f"{_one_line(str(err))}): check AIRFLOW_HOME and `airflow connections get {conn_id}`."
        ) from None
    from rl_provider.hooks.rl import DEFAULT_CONN_ID, BackendSettings

    if extras is not None:
        return BackendSettings.from_extras(conn_id, extras, password=password)
    if problem is not None:
        raise RLConfigError(
            f"Airflow connection {conn_id!r} is not among the environment/secrets-backend "
            f"connections, and {problem}."
        )
    if conn_id != DEFAULT_CONN_ID:
        raise RLConfigError(
            f"Airflow connection {conn_id!r} does not exist (searched the secrets backends and "
            f"the metadata database of {home}): create it (`airflow connections add {conn_id} "
            "--conn-type rl ...`), or check the id and AIRFLOW_HOME."
        )
    return None


def _metastore_problem() -> str | None:
    """Why Airflow's metadata database cannot be read, or None when it can."""
    from airflow.configuration import conf
    from sqlalchemy.engine import make_url

    url = make_url(conf.get("database", "sql_alchemy_conn"))
    shown = url.render_as_string(hide_password=True)
    if url.get_backend_name() == "sqlite" and not Path(url.database or "").is_file():
        return (
            f"Airflow's metadata database {url.database} does not exist: set AIRFLOW_HOME to "
            "your deployment's (or run `airflow db migrate`)"
        )
    try:
        from airflow.models.connection import Connection
        from airflow.utils.session import create_session
        from sqlalchemy import select

        with create_session() as session:
            session.execute(select(Connection.conn_id).limit(1)).all()
    except Exception as err:  # any driver's error: report it, never guess a backend
        first = _one_line(str(err).splitlines()[0] if str(err) else type(err).__name__)
        return (
            f"Airflow's metadata database {shown} could not be read ({first}): check "
            "AIRFLOW_HOME, or run `airflow db migrate`"
        )
    return None


# The backend and output options: (flags, keywords); "default" is the top-level parser's.
_OPTIONS = (
    option(
        "--backend",
        choices=[kind.value for kind in BackendKind],
        default=None,
        help="where the jobs live (default: local)",
    ),
    option(
        "--home",
        metavar="DIR",
        default=None,
        help="local backend state directory (default: RL_PROVIDER_HOME, "
        "$AIRFLOW_HOME/rl_provider, ~/.rl_provider)",
    ),
    option("--region", default=None, help="AWS region (sagemaker backend)"),
    option(
        "--address",
        metavar="URL",
        default=None,
        help="the Ray job server (ray backend), e.g. http://head:8265; token: RAY_AUTH_TOKEN",
    ),
    option(
        "--conn",
        metavar="CONN_ID",
        default=None,
        help="take the backend from this Airflow `rl` connection",
    ),
    option(
        "--json",
        action="store_true",
        default=False,
        help="print JSON (SageMaker key names, ISO-8601 times) for scripts",
    ),
    option(
        "--debug",
        action="store_true",
        default=False,
        help="show the traceback of an unexpected error",
    ),
)


def _options_parent(*, with_defaults: bool) -> argparse.ArgumentParser:
    """Backend and output options, accepted before or after the command.

    The top-level parser holds the defaults; the subcommand copies use SUPPRESS so an option
    given after the command overrides the top-level value without resetting it when absent.
    """
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("backend and output")
    for item in _OPTIONS:
        keywords = dict(item.keywords)
        if not with_defaults:
            keywords["default"] = argparse.SUPPRESS
        group.add_argument(*item.flags, **keywords)
    return parent


def _add(
    parent: Any, common: argparse.ArgumentParser, name: str, help_text: str, description: str
) -> argparse.ArgumentParser:
    sub: argparse.ArgumentParser = parent.add_parser(
        name, parents=[common], help=help_text, description=description
    )
    return sub


def build_parser() -> argparse.ArgumentParser:
    from rl_provider.cli import jobs, resources

    common = _options_parent(with_defaults=False)
    parser = argparse.ArgumentParser(
        prog="rl-provider",
        description="Runbook CLI for rl_provider training jobs, models and endpoints.",
        parents=[_options_parent(with_defaults=True)],
        epilog="Exit codes: 0 ok, 1 job failed/stopped (or operation failed), 2 usage error, "
        "3 not found. See docs/CLI.md.",
    )
    parser.add_argument("--version", action="version", version=f"rl-provider {__version__}")
    groups = parser.add_subparsers(dest="group", metavar="{jobs,models,endpoints}")
    groups.required = True
    for group in (*jobs.GROUPS, *resources.GROUPS):
        actions = _add(groups, common, group.name, group.help, group.description).add_subparsers(
            dest="action", metavar=group.metavar
        )
        actions.required = True
        for action in group.actions:
            sub = _add(actions, common, action.name, action.help, action.help)
            sub.set_defaults(command=action.command)
            for item in action.options:
                sub.add_argument(*item.flags, **item.keywords)
    return parser


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _exit_code(err: RLProviderError) -> ExitCode:
    if isinstance(err, LookupError):
        return ExitCode.NOT_FOUND
    if isinstance(err, RLConfigError):
        return ExitCode.USAGE
    return ExitCode.FAILED


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; return its exit code (the console script exits with it)."""
    parser = build_parser()
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    ctx = Context(args, backend_for_options)
    command: Command = args.command
    try:
        return int(command(args, ctx))
    except RLProviderError as err:
        if args.debug:
            traceback.print_exc()
        ctx.output.note(f"rl-provider: error: {_one_line(str(err))}")
        return int(_exit_code(err))
    except KeyboardInterrupt:
        ctx.output.note("rl-provider: interrupted.")
        return int(ExitCode.INTERRUPTED)
    except BrokenPipeError:
        # The reader went away (`| head`): not an error. Point stdout at devnull so the
        # interpreter's final flush does not raise again (Python docs, "Note on SIGPIPE").
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return int(ExitCode.OK)
    except Exception as err:  # the CLI's promise: one line, never a traceback (unless --debug)
        if args.debug:
            traceback.print_exc()
        ctx.output.note(
            f"rl-provider: error: {type(err).__name__}: {_one_line(str(err))} "
            "(rerun with --debug for the traceback)"
        )
        return int(ExitCode.FAILED)
