"""``RLProviderPlugin``: the pages under ``/rl`` of Airflow's API server, in the UI's navigation.

Registered with the ``airflow.plugins`` entry point (pyproject.toml): Airflow loads it in every
component, always, whereas a provider's ``plugins`` list is read only when providers are
discovered eagerly (``[core] lazy_discover_providers = False``). So this module stays light:
the FastAPI app is built on the first request that reaches it, in the API server only.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from airflow.plugins_manager import AirflowPlugin

from rl_provider.ui.urls import URL_PREFIX

__all__ = ["RLProviderPlugin"]

_Scope = MutableMapping[str, Any]
_Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
_Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class _LazyApp:
    """An ASGI app that builds ``rl_provider.ui.app.create_app()`` when first called."""

    def __init__(self) -> None:
        self._app: Callable[[_Scope, _Receive, _Send], Awaitable[None]] | None = None
        self._lock = threading.Lock()

    async def __call__(self, scope: _Scope, receive: _Receive, send: _Send) -> None:
        if self._app is None:
            with self._lock:
                if self._app is None:
                    from rl_provider.ui.app import create_app

                    self._app = create_app()
        await self._app(scope, receive, send)


class RLProviderPlugin(AirflowPlugin):
    """Training jobs, models and endpoints of the ``rl`` connections, inside the Airflow UI."""

    name = "rl_provider"
    fastapi_apps = [{"app": _LazyApp(), "url_prefix": URL_PREFIX, "name": "rl_provider pages"}]
    # Shown in the UI's navigation ("Browse"); the UI frames the page (href) at /plugin/<route>.
    external_views = [
        {
            "name": "RL training jobs",
            "href": f"{URL_PREFIX}/jobs",
            "url_route": "rl-jobs",
            "destination": "nav",
            "category": "browse",
        },
        {
            "name": "RL models",
            "href": f"{URL_PREFIX}/models",
            "url_route": "rl-models",
            "destination": "nav",
            "category": "browse",
        },
        {
            "name": "RL endpoints",
            "href": f"{URL_PREFIX}/endpoints",
            "url_route": "rl-endpoints",
            "destination": "nav",
            "category": "browse",
        },
    ]
