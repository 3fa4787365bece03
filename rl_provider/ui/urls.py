"""URLs of the pages, for extra links and the demo: light (no FastAPI), so workers import it.

The pages live under ``/rl`` of Airflow's API server. With ``[api] base_url`` set, a URL is
absolute (``<base_url>/rl/...``); without it, it is root-relative (``/rl/...``), which the
Airflow UI renders as a same-origin link (its extra-link buttons accept URLs that resolve to
its own origin, and open them in the same tab).
"""

from __future__ import annotations

from urllib.parse import quote, urlencode

__all__ = ["URL_PREFIX", "job_url", "page_url", "ui_base"]

#: Where the plugin mounts its app in the API server.
URL_PREFIX = "/rl"


def ui_base(base_url: str | None = None) -> str:
    """``<base_url>/rl``, or ``/rl`` when Airflow's ``[api] base_url`` is not set."""
    if base_url is None:
        from airflow.sdk import conf  # the same settings on a worker and in the API server

        base_url = conf.get("api", "base_url", fallback="") or ""
    return base_url.rstrip("/") + URL_PREFIX


def page_url(kind: str, name: str, conn_id: str, base_url: str | None = None) -> str:
    """The page of resource ``name`` (``kind``: ``jobs``, ``models`` or ``endpoints``)."""
    query = urlencode({"conn": conn_id})
    return f"{ui_base(base_url)}/{kind}/{quote(name, safe='')}?{query}"


def job_url(name: str, conn_id: str = "rl_default", base_url: str | None = None) -> str:
    return page_url("jobs", name, conn_id, base_url)
