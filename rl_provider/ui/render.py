"""HTML of the pages. Every value from a backend or a user goes through ``_h`` (escaped).

The pages are plain server-rendered HTML; ``static/rl.js`` adds what changes while one is open
(the log tail, the learning curves, live status, Stop, invoke). The script reads its settings
from ``data-*`` attributes, never from inline script (the Content-Security-Policy forbids it).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any
from urllib.parse import quote, urlencode

from rl_provider.core.enums import TrainingJobStatus

__all__ = [
    "Context",
    "endpoint_page",
    "endpoints_page",
    "error_page",
    "job_page",
    "jobs_page",
    "model_page",
    "models_page",
]


@dataclass(frozen=True, slots=True)
class Context:
    """Where the app is mounted (``/rl``), the chosen connection, and the ones to pick from."""

    root: str
    conn: str
    conns: Sequence[str]

    def url(self, path: str, **params: str | None) -> str:
        """A URL of this app, with ``conn`` and the non-empty ``params`` in the query."""
        query = urlencode({"conn": self.conn, **{k: v for k, v in params.items() if v}})
        return f"{self.root}{path}?{query}"


def _h(value: object) -> str:
    return escape("" if value is None else str(value), quote=True)


def _q(name: str) -> str:
    return quote(name, safe="")


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m {secs:02d}s"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{seconds:.1f}s" if seconds < 10 else f"{secs}s"


def _time(iso: str | None) -> str:
    """ISO-8601 UTC, shown without microseconds; the script shows it in the user's zone."""
    if not iso:
        return ""
    short = iso.split(".")[0].replace("T", " ")
    return f'<time datetime="{_h(iso)}">{_h(short)} UTC</time>'


def _badge(status: str | None) -> str:
    return f'<span class="badge s-{_h(status)}">{_h(status)}</span>' if status else ""


def _number(value: float) -> str:
    return f"{value:.6g}"


def _layout(ctx: Context, title: str, section: str, body: str) -> str:
    nav = "".join(
        f'<a href="{_h(ctx.url(path))}"{" class=active" if key == section else ""}>{label}</a>'
        for key, path, label in (
            ("jobs", "/jobs", "Training jobs"),
            ("models", "/models", "Models"),
            ("endpoints", "/endpoints", "Endpoints"),
        )
    )
    options = "".join(
        f'<option value="{_h(c)}"{" selected" if c == ctx.conn else ""}>{_h(c)}</option>'
        for c in ctx.conns
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_h(title)} · RL</title>
<link rel="stylesheet" href="{_h(ctx.root)}/static/rl.css">
<script src="{_h(ctx.root)}/static/rl.js" defer></script>
</head><body data-root="{_h(ctx.root)}" data-conn="{_h(ctx.conn)}">
<header><nav>{nav}</nav>
<form class="conn" method="get" action=""><label>Connection
<select name="conn" class="autosubmit">{options}</select></label></form></header>
<main><h1>{_h(title)}</h1>
{body}
</main></body></html>
"""


def _table(headers: Iterable[str], rows: Iterable[str], empty: str, css: str = "") -> str:
    head = "".join(f"<th>{_h(h)}</th>" for h in headers)
    body = "".join(rows)
    if not body:
        return f'<p class="empty">{_h(empty)}</p>'
    return f'<table class="{css}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _kv_table(headers: tuple[str, str], pairs: Iterable[tuple[Any, Any]], empty: str) -> str:
    """A two-column table of names and their values (the value as code)."""
    rows = (f"<tr><td>{_h(k)}</td><td><code>{_h(v)}</code></td></tr>" for k, v in pairs)
    return _table(headers, rows, empty, "kv")


def _dl(items: Mapping[str, Any]) -> str:
    rows = "".join(f"<dt>{_h(key)}</dt><dd>{value}</dd>" for key, value in items.items() if value)
    return f"<dl>{rows}</dl>"


def error_page(ctx: Context, code: int, message: str) -> str:
    body = f'<p class="error" role="alert">{_h(message)}</p>'
    return _layout(ctx, f"Error {code}", "", body)


# ------------------------------------------------------------------------- training jobs
def jobs_page(
    ctx: Context, rows: Sequence[Mapping[str, Any]], status: TrainingJobStatus | None
) -> str:
    wanted = None if status is None else status.value
    choices = "".join(
        f'<option value="{_h(s.value)}"{" selected" if s.value == wanted else ""}>'
        f"{_h(s.value)}</option>"
        for s in TrainingJobStatus
    )
    filter_form = (
        f'<form class="filter" method="get" action="">'
        f'<input type="hidden" name="conn" value="{_h(ctx.conn)}">'
        f'<label>Status <select name="status" class="autosubmit">'
        f'<option value="">any</option>{choices}</select></label>'
        f' <span class="count">{len(rows)} job{"s" if len(rows) != 1 else ""}</span></form>'
    )
    table_rows = []
    for row in rows:
        metrics = " ".join(
            f'<span class="metric">{_h(k)}={_h(_number(v))}</span>'
            for k, v in row["metrics"].items()
        )
        table_rows.append(
            f'<tr data-status="{_h(row["status"])}">'
            f'<td><a href="{_h(ctx.url("/jobs/" + _q(row["name"])))}">{_h(row["name"])}</a></td>'
            f"<td>{_badge(row['status'])}</td><td>{_h(row['secondary_status'])}</td>"
            f"<td>{_time(row['created'])}</td><td>{_h(_duration(row['duration_s']))}</td>"
            f"<td>{metrics}</td></tr>"
        )
    table = _table(
        ("Name", "Status", "Secondary status", "Created", "Duration", "Last metric values"),
        table_rows,
        "No training jobs" + (f" with status {wanted}." if wanted else "."),
        "jobs",
    )
    return _layout(ctx, "Training jobs", "jobs", filter_form + table)


def job_page(ctx: Context, job: Mapping[str, Any]) -> str:
    name = job["name"]
    api = f"{ctx.root}/api/jobs/{_q(name)}"
    summary = _dl(
        {
            "Status": f'<span id="status">{_badge(job["status"])}</span>',
            "Secondary status": f'<span id="secondary">{_h(job["secondary_status"])}</span>',
            "Created": _time(job["created"]),
            "Training started": _time(job["started"]),
            "Ended": f'<span id="ended">{_time(job["ended"])}</span>',
            "Duration": f'<span id="duration">{_h(_duration(job["duration_s"]))}</span>',
            "Image": _h(job["image"]),
            "Instance type": _h(job["instance"]),
        }
    )
    stop = (
        ""
        if job["terminal"]
        else '<button id="stop" type="button" class="danger">Stop training job</button>'
    )
    failure = (
        f'<section><h2>Failure reason</h2><pre class="failure" id="failure">'
        f"{_h(job['failure_reason'])}</pre></section>"
        if job["failure_reason"]
        else '<section hidden id="failure-section"><h2>Failure reason</h2>'
        '<pre class="failure" id="failure"></pre></section>'
    )
    transitions = _table(
        ("Status", "Started", "Ended", "Duration", "Message"),
        (
            f"<tr><td>{_h(t['status'])}</td><td>{_time(t['start'])}</td>"
            f"<td>{_time(t['end']) if t['end'] else 'running'}</td>"
            f"<td>{_h(_duration(t['duration_s']))}</td><td>{_h(t['message'])}</td></tr>"
            for t in job["transitions"]
        ),
        "No transitions yet.",
        "transitions",
    )
    hyperparameters = _kv_table(
        ("Name", "Value"), sorted(job["hyperparameters"].items()), "No hyperparameters."
    )
    artifacts = _kv_table(("Artifact", "URI"), job["artifacts"].items(), "No artifacts yet.")
    body = f"""<div id="job" data-api="{_h(api)}" data-terminal="{str(job["terminal"]).lower()}">
<div class="actions">{stop} <span id="action-result" role="status"></span></div>
{summary}
{failure}
<section><h2>Learning curves</h2>
<div id="curves" class="curves" data-metrics="{_h(json.dumps(job["metric_definitions"]))}">
<p class="empty" id="curves-empty">No metric values yet.</p></div></section>
<section><h2>Log <small id="log-state"></small></h2>
<pre id="log" class="log" aria-live="polite"></pre></section>
<section><h2>Status transitions</h2><div id="transitions">{transitions}</div></section>
<section><h2>Hyperparameters</h2>{hyperparameters}</section>
<section><h2>Artifacts</h2><div id="artifacts">{artifacts}</div></section>
</div>"""
    return _layout(ctx, f"Training job {name}", "jobs", body)


# --------------------------------------------------------------------------------- models
def models_page(ctx: Context, rows: Sequence[Mapping[str, Any]]) -> str:
    table = _table(
        ("Name", "Created"),
        (
            f'<tr><td><a href="{_h(ctx.url("/models/" + _q(r["name"])))}">{_h(r["name"])}</a>'
            f"</td><td>{_time(r['created'])}</td></tr>"
            for r in rows
        ),
        "No models.",
    )
    return _layout(ctx, "Models", "models", table)


def _job_link(ctx: Context, job: str | None) -> str:
    if not job:
        return "unknown (not a training job's model.tar.gz)"
    return f'<a href="{_h(ctx.url("/jobs/" + _q(job)))}">{_h(job)}</a>'


def model_page(ctx: Context, model: Mapping[str, Any]) -> str:
    summary = _dl(
        {
            "Training job": _job_link(ctx, model["training_job"]),
            "Created": _time(model["created"]),
            "Image": f"<code>{_h(model['image'])}</code>",
            "Model data": f"<code>{_h(model['model_data_url'])}</code>",
        }
    )
    environment = _kv_table(
        ("Variable", "Value"), sorted(model["environment"].items()), "No environment."
    )
    body = f"{summary}<section><h2>Container environment</h2>{environment}</section>"
    return _layout(ctx, f"Model {model['name']}", "models", body)


# ------------------------------------------------------------------------------ endpoints
def endpoints_page(ctx: Context, rows: Sequence[Mapping[str, Any]]) -> str:
    table = _table(
        ("Name", "Status", "Created", "Last modified"),
        (
            f'<tr><td><a href="{_h(ctx.url("/endpoints/" + _q(r["name"])))}">{_h(r["name"])}'
            f"</a></td><td>{_badge(r['status'])}</td><td>{_time(r['created'])}</td>"
            f"<td>{_time(r['modified'])}</td></tr>"
            for r in rows
        ),
        "No endpoints.",
    )
    return _layout(ctx, "Endpoints", "endpoints", table)


def endpoint_page(ctx: Context, endpoint: Mapping[str, Any]) -> str:
    name = endpoint["name"]
    api = f"{ctx.root}/api/endpoints/{_q(name)}"
    summary = _dl(
        {
            "Status": _badge(endpoint["status"]),
            "Failure reason": _h(endpoint["failure_reason"]),
            "Endpoint config": f"<code>{_h(endpoint['config'])}</code>",
            "Created": _time(endpoint["created"]),
            "Last modified": _time(endpoint["modified"]),
        }
    )
    variants = _table(
        ("Variant", "Model", "Training job", "Instance type", "Count", "Weight"),
        (
            f"<tr><td>{_h(v['variant'])}</td>"
            f'<td><a href="{_h(ctx.url("/models/" + _q(v["model"])))}">{_h(v["model"])}</a></td>'
            f"<td>{_job_link(ctx, v['training_job'])}</td><td>{_h(v['instance_type'])}</td>"
            f"<td>{_h(v['instance_count'])}</td><td>{_h(v['weight'])}</td></tr>"
            for v in endpoint["variants"]
        ),
        "The endpoint config is gone.",
    )
    invoke = f"""<section id="invoke" data-api="{_h(api)}"><h2>Invoke</h2>
<p>Sends the JSON below to the endpoint (InvokeEndpoint, application/json) and shows the
answer.</p>
<textarea id="invoke-body" rows="6" spellcheck="false">{{"observation": [0.0, 0.1, 0.0, -0.1]}}
</textarea>
<div class="actions"><button id="invoke-send" type="button">Invoke</button>
<span id="invoke-state" role="status"></span></div>
<pre id="invoke-answer" class="log"></pre></section>"""
    body = f"{summary}<section><h2>Current config</h2>{variants}</section>{invoke}"
    return _layout(ctx, f"Endpoint {name}", "endpoints", body)
