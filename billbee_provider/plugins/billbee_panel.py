"""The provider's Airflow plugin: the "Billbee request" tab and the connection-test fix.

Registered twice, and loaded once:

- ``get_provider_info()["plugins"]``, the providers' way. Airflow 3.3 loads provider
  plugins only with ``[core] lazy_discover_providers = False``
  (``airflow/plugins_manager.py``);
- the ``airflow.plugins`` entry point, which Airflow always loads. It names
  :data:`ENTRY_POINT_PLUGIN`, which is this class when providers are discovered lazily
  (the default) and ``None`` otherwise, so that the plugin is never registered twice
  (a second registration would be listed as a plugin import error).

The FastAPI app is built on the first request (:class:`LazyApp`), so processes that load
plugins without serving the API (workers, the DAG processor) never import FastAPI for it.
"""

from __future__ import annotations

import importlib
from typing import Any

from airflow.plugins_manager import AirflowPlugin

from billbee_provider.ui.connection_test import ConnectionTestPortFix, Receive, Scope, Send

#: Where the panel's FastAPI app is mounted on the API server.
URL_PREFIX = "/billbee"
#: The tab's route under the task instance page (``.../tasks/<task>/plugin/billbee-request``).
URL_ROUTE = "billbee-request"
#: What the UI fills in: ``{DAG_ID}``, ``{RUN_ID}`` and ``{TASK_ID}`` URL-encoded, ``{MAP_INDEX}``
#: as it is (and left as the literal text on a task that is not mapped).
PANEL_HREF = (
    f"{URL_PREFIX}/panel?dag_id={{DAG_ID}}&run_id={{RUN_ID}}&task_id={{TASK_ID}}&map_index={{MAP_INDEX}}"
)


class LazyApp:
    """An ASGI app that imports and builds the real one on its first call.

    :param target: ``module:function`` returning the ASGI app.
    """

    def __init__(self, target: str) -> None:
        self.target = target
        self._app: Any = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._app is None:
            module, _, name = self.target.partition(":")
            self._app = getattr(importlib.import_module(module), name)()
        await self._app(scope, receive, send)


class BillbeePanelPlugin(AirflowPlugin):
    """The "Billbee request" tab of every task instance, and its API under ``/billbee``."""

    name = "billbee"
    fastapi_apps = [  # noqa: RUF012  (AirflowPlugin declares these as plain lists)
        {
            "app": LazyApp("billbee_provider.ui.app:create_app"),
            "url_prefix": URL_PREFIX,
            "name": "Billbee panel",
        }
    ]
    fastapi_root_middlewares = [  # noqa: RUF012  (AirflowPlugin declares these as plain lists)
        {"middleware": ConnectionTestPortFix, "args": [], "kwargs": {}, "name": "Billbee connection test"}
    ]
    external_views = [  # noqa: RUF012  (AirflowPlugin declares these as plain lists)
        {
            "name": "Billbee request",
            "href": PANEL_HREF,
            "destination": "task_instance",
            "url_route": URL_ROUTE,
        }
    ]


def _providers_discovered_lazily() -> bool:
    from airflow.configuration import conf

    return conf.getboolean("core", "lazy_discover_providers", fallback=True)


#: What the ``airflow.plugins`` entry point loads (see the module docstring).
ENTRY_POINT_PLUGIN: type[AirflowPlugin] | None = (
    BillbeePanelPlugin if _providers_discovered_lazily() else None
)
