"""``rl-provider jobs list|describe|logs|metrics|stop``."""

from __future__ import annotations

import argparse
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rl_provider.cli.context import NAME, Action, Context, ExitCode, Group, option
from rl_provider.cli.output import (
    as_datetime,
    duration,
    number,
    spinner,
    when,
    write_atomically,
)
from rl_provider.core.enums import TrainingJobStatus
from rl_provider.core.lifecycle import Described, Lines, TrainingFollower, follow_to_end
from rl_provider.exceptions import MetricsNotFoundError

if TYPE_CHECKING:
    from rl_provider.core.jobs import TrainingJobDescription

# SageMaker's ListTrainingJobs returns at most 100 summaries per call.
_MAX_LIMIT = 100
# SDK v2's logs_for_job polls every 10 s: following a job never waits longer than that between
# reads, even on a backend whose describe poll is slower (SageMaker's 30 s).
_MAX_POLL_SECONDS = 10.0


def _status(value: str) -> TrainingJobStatus:
    for member in TrainingJobStatus:
        if value.lower() == member.value.lower():
            return member
    valid = ", ".join(member.value for member in TrainingJobStatus)
    raise argparse.ArgumentTypeError(f"invalid status {value!r}: valid values are {valid}")


def _limit(value: str) -> int:
    try:
        limit = int(value)
    except ValueError:
        limit = 0
    if not 1 <= limit <= _MAX_LIMIT:
        raise argparse.ArgumentTypeError(
            f"invalid limit {value!r}: pass a whole number from 1 to {_MAX_LIMIT} "
            "(SageMaker's ListTrainingJobs maximum)"
        )
    return limit


def jobs_list(args: argparse.Namespace, ctx: Context) -> ExitCode:
    request: dict[str, Any] = {"MaxResults": args.limit}
    if args.status is not None:
        request["StatusEquals"] = args.status.value
    if args.contains:
        request["NameContains"] = args.contains
    response = ctx.backend.list_training_jobs(**request)
    ctx.output.listing(
        "TrainingJobSummaries",
        list(response.get("TrainingJobSummaries", []))[: args.limit],
        ["NAME", "STATUS", "SECONDARY", "CREATED (UTC)", "DURATION"],
        _job_row,
        empty="No training jobs" + (f" with status {args.status.value}." if args.status else "."),
    )
    return ExitCode.OK


def _job_row(item: Mapping[str, Any]) -> list[object]:
    created = as_datetime(item.get("CreationTime"))
    ended = as_datetime(item.get("TrainingEndTime"))
    took = None
    if created is not None:
        took = (ended.timestamp() if ended else time.time()) - created.timestamp()
    return [
        item["TrainingJobName"],
        item.get("TrainingJobStatus", "-"),
        item.get("SecondaryStatus", "-"),
        when(created),
        duration(took),
    ]


def _state_code(description: TrainingJobDescription) -> ExitCode:
    """DESIGN section 3: a Failed or Stopped job fails whatever waited for it."""
    return ExitCode.FAILED if description.is_failure else ExitCode.OK


def _status_text(description: TrainingJobDescription) -> str:
    secondary = description.secondary_status
    status = description.training_job_status.value
    if secondary is None or secondary.value == status:
        return status
    return f"{status} ({secondary.value})"


def jobs_describe(args: argparse.Namespace, ctx: Context) -> ExitCode:
    backend = ctx.backend
    description = backend.describe_training_job(args.name)
    out = ctx.output
    if out.json_mode:
        out.emit_json(description.to_api())
        return _state_code(description)
    resources = description.resource_config
    instance = resources.get("InstanceType")
    output_path = description.output_data_config.get("S3OutputPath")
    output_data = None
    if output_path and description.is_terminal:
        # SageMaker's layout for the output/data archive, next to model.tar.gz.
        output_data = f"{str(output_path).rstrip('/')}/{args.name}/output/output.tar.gz"
    training = description.training_time_in_seconds
    out.fields(
        [
            ("Training job", description.training_job_name),
            ("Status", _status_text(description)),
            ("Failure reason", description.failure_reason),
            (
                "Stopped by",
                "MaxRuntimeInSeconds (artifacts so far were saved)"
                if description.max_runtime_exceeded
                else None,
            ),
            ("Created (UTC)", when(description.creation_time)),
            ("Training time", None if training is None else duration(training)),
            ("Image", description.algorithm_specification.get("TrainingImage")),
            (
                "Instance",
                None if instance is None else f"{instance} x{resources.get('InstanceCount', 1)}",
            ),
            ("Model artifacts", description.model_artifacts),
            ("Output data", output_data),
            ("Logs", backend.log_location(args.name)),
        ]
    )
    transitions = []
    for item in description.secondary_status_transitions:
        end = item.end_time
        took = (end.timestamp() if end else time.time()) - item.start_time.timestamp()
        transitions.append(
            [
                item.status.value,
                when(item.start_time),
                when(end),
                duration(took) + ("" if end else " (so far)"),
                item.status_message or "",
            ]
        )
    out.print("")
    out.table(
        "Transitions",
        ["STATUS", "START (UTC)", "END (UTC)", "DURATION", "MESSAGE"],
        transitions,
        empty="No status transitions recorded.",
    )
    metrics = [
        [item.metric_name, number(item.value), when(item.timestamp)]
        for item in description.final_metric_data_list
    ]
    out.print("")
    out.table(
        "Final metrics",
        ["METRIC", "VALUE", "AT (UTC)"],
        metrics,
        empty="No metrics recorded (no log line matched the job's MetricDefinitions).",
    )
    return _state_code(description)


def _poll_seconds(backend: Any) -> float:
    return min(max(float(backend.poll_interval), 0.1), _MAX_POLL_SECONDS)


def _watch(ctx: Context, name: str, *, logs: bool, verb: str) -> TrainingJobDescription:
    """Drive the core's follower until the job ends (printing new log lines when ``logs``);
    spinner on stderr."""
    interval = _poll_seconds(ctx.backend)
    began = time.monotonic()
    with ctx.output.progress(f"{verb} {name}") as live:
        last: list[TrainingJobDescription] = []

        def report(step: Described | Lines) -> None:
            if isinstance(step, Lines):
                for line in step.lines:
                    ctx.output.line(line)
            else:
                last[:] = [step.description]

        def sleep() -> None:
            waited = duration(time.monotonic() - began)
            live.update(spinner(f"{verb} {name}: {_status_text(last[0])} (waited {waited})"))
            time.sleep(interval)

        ended = follow_to_end(
            TrainingFollower(name, logs=logs), ctx.backend, sleep=sleep, report=report
        )
    return ended.description


def _end_note(ctx: Context, description: TrainingJobDescription) -> None:
    reason = f": {description.failure_reason}" if description.failure_reason else ""
    ctx.output.note(
        f"Training job {description.training_job_name} ended {_status_text(description)}{reason}"
    )


def jobs_logs(args: argparse.Namespace, ctx: Context) -> ExitCode:
    backend = ctx.backend
    if not args.follow:
        backend.describe_training_job(args.name)  # an unknown name is "not found", not empty
        cursor: Any = None
        while True:  # a backend may hand out a long log in batches (CloudWatch pages)
            lines, cursor = backend.read_logs(args.name, cursor)
            if not lines:
                return ExitCode.OK
            for line in lines:
                ctx.output.line(line)
    description = _watch(ctx, args.name, logs=True, verb="Following")
    _end_note(ctx, description)
    return _state_code(description)


def jobs_stop(args: argparse.Namespace, ctx: Context) -> ExitCode:
    backend = ctx.backend
    out = ctx.output
    description: TrainingJobDescription = backend.describe_training_job(args.name)
    status = description.training_job_status
    if description.is_terminal:
        out.note(
            f"Training job {args.name} already ended {_status_text(description)}; nothing to stop."
        )
        if out.json_mode:
            out.emit_json(description.to_api())
        return ExitCode.OK if status is TrainingJobStatus.STOPPED else ExitCode.FAILED
    if status is not TrainingJobStatus.STOPPING:
        backend.stop_training_job(args.name)
    if not args.wait:
        out.note(
            f"Stop requested for training job {args.name}; follow it with "
            f"`rl-provider jobs stop {args.name} --wait`."
        )
        if out.json_mode:
            out.emit_json(backend.describe_training_job(args.name).to_api())
        return ExitCode.OK
    description = _watch(ctx, args.name, logs=False, verb="Stopping")
    _end_note(ctx, description)
    if out.json_mode:
        out.emit_json(description.to_api())
    # The question `stop --wait` answers is "is it stopped?": a job that completed or failed
    # before the stop landed exits 1 so a runbook can tell (docs/CLI.md).
    if description.training_job_status is TrainingJobStatus.STOPPED:
        return ExitCode.OK
    return ExitCode.FAILED


def _start_of(description: TrainingJobDescription) -> float:
    """Time zero of the learning curve: when training started, else when the job was created."""
    start = description.training_start_time or description.creation_time
    return start.timestamp()


def jobs_metrics(args: argparse.Namespace, ctx: Context) -> ExitCode:
    from rl_provider.cli import plot

    if args.plot is not None:
        plot.check_target(args.plot)  # bad file name or missing matplotlib: before any call
    backend = ctx.backend
    description = backend.describe_training_job(args.name)
    series: dict[str, list[tuple[float, float]]] = backend.metrics(args.name)
    start = _start_of(description)
    out = ctx.output
    figure = None
    if args.plot is not None:
        if not any(series.values()):
            raise MetricsNotFoundError(
                f"Training job {args.name} has no metric data to plot yet (status "
                f"{_status_text(description)}): its log lines have not matched the "
                "MetricDefinitions; check them with `rl-provider jobs logs "
                f"{args.name}`."
            )
        title = f"{args.name} ({_status_text(description)})"
        target: Path = args.plot
        figure = plot.LearningCurve.build(series, start=start, title=title)
        write_atomically(target, figure.save)
    if out.json_mode:
        payload: dict[str, Any] = {
            "TrainingJobName": args.name,
            "TrainingJobStatus": description.training_job_status.value,
            "StartTime": as_datetime(start),
            "Metrics": {
                metric: [
                    {"Seconds": ts - start, "Value": value, "Timestamp": as_datetime(ts)}
                    for ts, value in points
                ]
                for metric, points in sorted(series.items())
            },
        }
        if figure is not None:
            payload["Plot"] = {"File": str(args.plot.resolve()), **figure.summary()}
        out.emit_json(payload)
        return ExitCode.OK
    rows = []
    for metric, points in sorted(series.items()):
        if not points:
            continue
        values = [value for _, value in points]
        rows.append(
            [
                metric,
                len(points),
                number(values[0]),
                number(values[-1]),
                number(min(values)),
                number(max(values)),
                duration(points[-1][0] - start),
            ]
        )
    out.table(
        None,
        ["METRIC", "POINTS", "FIRST", "LAST", "MIN", "MAX", "LAST AT (S SINCE START)"],
        rows,
        empty=f"No metrics recorded for {args.name} (no log line matched its MetricDefinitions).",
    )
    if figure is not None:
        labels = ", ".join(line.label for line in figure.lines)
        out.note(
            f"Wrote {args.plot}: {len(figure.lines)} line(s) ({labels}), "
            f"{figure.width_px}x{figure.height_px} px, x = {figure.x_label}."
        )
    return ExitCode.OK


GROUPS = (
    Group(
        "jobs",
        "training jobs",
        "Training jobs.",
        "{list,describe,logs,metrics,stop}",
        (
            Action(
                "list",
                jobs_list,
                "List training jobs, newest first.",
                (
                    option("--status", type=_status, help="only jobs in this TrainingJobStatus"),
                    option(
                        "--limit", type=_limit, default=20, help="at most this many (default 20)"
                    ),
                    option("--contains", metavar="TEXT", help="only names containing TEXT"),
                ),
            ),
            Action(
                "describe",
                jobs_describe,
                "Status, transitions with durations, failure reason, final metrics, artifacts. "
                "Exits 1 when the job ended Failed or Stopped.",
                (NAME,),
            ),
            Action(
                "logs",
                jobs_logs,
                "Print the job's log lines (stdout/stderr).",
                (
                    NAME,
                    option(
                        "-f",
                        "--follow",
                        action="store_true",
                        help="keep printing until the job ends; exit 1 if it ended Failed or "
                        "Stopped",
                    ),
                ),
            ),
            Action(
                "metrics",
                jobs_metrics,
                "Metric time series; --plot draws the learning curve of every metric.",
                (
                    NAME,
                    option(
                        "--plot",
                        metavar="FILE",
                        type=Path,
                        help="write the learning curve (.png, .svg or .pdf; needs the 'plot' "
                        "extra)",
                    ),
                ),
            ),
            Action(
                "stop",
                jobs_stop,
                "Stop a running job (SIGTERM, grace period, SIGKILL; artifacts so far are kept).",
                (
                    NAME,
                    option(
                        "--wait",
                        action="store_true",
                        help="return once the job has ended; exit 0 only if it ended Stopped",
                    ),
                ),
            ),
        ),
    ),
)
