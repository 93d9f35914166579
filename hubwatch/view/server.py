"""The built-in web view: every dashboard's panels on one local page, drawn by plotly.js
(served from the installed ``plotly`` package: nothing is fetched from the internet), each
panel polling its JSON every few seconds.

Routes: ``/`` the page; ``/static/…`` its script, style and plotly.js; ``/api/dashboards``
the panel definitions the page lays out; ``/api/panels/{id}?range=now-7d&var-NAME=VALUE``
one panel's rows; ``/api/variables/{dashboard}/{name}`` a variable's options (the family
explorer's model picker).
"""

from __future__ import annotations

import errno
import importlib.util
import logging
import socket
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

from hubwatch._server import LocalServer
from hubwatch.errors import ConfigError, NotMigrated
from hubwatch.panels import DASHBOARDS, Panel
from hubwatch.view.data import ALL_TIME, STARTING, PanelSource

__all__ = ["REFRESH_SECONDS", "ViewServer", "check_view_port", "plotly_js", "start_view"]

log = logging.getLogger(__name__)

STATIC = Path(__file__).with_name("static")
REFRESH_SECONDS = 5.0
RANGES = ("now-15m", "now-1h", "now-6h", "now-24h", "now-7d", "now-30d", "now-90d", ALL_TIME)


def plotly_js() -> Path:
    """plotly.js as the ``plotly`` Python package ships it."""
    spec = importlib.util.find_spec("plotly")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the plotly package is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "package_data" / "plotly.min.js"


def _panel_json(panel: Panel) -> dict[str, Any]:
    return {
        "id": panel.id,
        "title": panel.title,
        "description": panel.description,
        "visualisation": panel.visualisation,
        "datasource": panel.datasource,
        "x": panel.x,
        "y": list(panel.y),
        "series": panel.series,
        "unit": panel.unit,
        "counts": panel.counts,
        "variables": list(panel.variables),
        "width": panel.width,
        "height": panel.height,
    }


def _layout(source: PanelSource) -> dict[str, Any]:
    return {
        "refresh_seconds": REFRESH_SECONDS,
        "ranges": list(RANGES),
        "default_range": source.default_range,
        "prometheus": source.prometheus_url is not None,
        "dashboards": [
            {
                "uid": d.uid,
                "title": d.title,
                "description": d.description,
                "time_from": d.time_from,
                "variables": [
                    {"name": v.name, "label": v.label, "description": v.description}
                    for v in d.variables
                ],
                "panels": [_panel_json(p) for p in d.panels],
            }
            for d in DASHBOARDS
        ],
    }


def _json(body: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


class ViewServer(LocalServer):
    def __init__(self, source: PanelSource, *, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host=host, port=port)
        self.source = source
        self._panels = {p.id: p for d in DASHBOARDS for p in d.panels}

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/", self._index)
        app.router.add_get("/static/plotly.min.js", self._plotly)
        app.router.add_static("/static/", STATIC)
        app.router.add_get("/api/dashboards", self._dashboards)
        app.router.add_get("/api/panels/{id}", self._panel)
        app.router.add_get("/api/variables/{dashboard}/{name}", self._variable)
        return app

    async def stop(self) -> None:
        await super().stop()
        await self.source.close()

    async def _index(self, _: web.Request) -> web.FileResponse:
        return web.FileResponse(STATIC / "index.html")

    async def _plotly(self, _: web.Request) -> web.FileResponse:
        return web.FileResponse(plotly_js(), headers={"Cache-Control": "max-age=86400"})

    async def _dashboards(self, _: web.Request) -> web.Response:
        return _json(_layout(self.source))

    async def _panel(self, request: web.Request) -> web.Response:
        panel = self._panels.get(request.match_info["id"])
        if panel is None:
            return _json({"error": f"no panel {request.match_info['id']!r}"}, 404)
        variables = {
            key.removeprefix("var-"): value
            for key, value in request.query.items()
            if key.startswith("var-")
        }
        data = await self.source.panel(panel, request.query.get("range") or None, variables)
        return _json(data.to_json())

    async def _variable(self, request: web.Request) -> web.Response:
        uid, name = request.match_info["dashboard"], request.match_info["name"]
        dashboard = next((d for d in DASHBOARDS if d.uid == uid), None)
        if dashboard is None or name not in {v.name for v in dashboard.variables}:
            return _json({"error": f"no variable {name!r} in {uid!r}"}, 404)
        try:
            options = await self.source.options(dashboard, name)
        except NotMigrated as exc:  # the first seconds of run: the panels say so too
            starting = {"state": "starting", "message": STARTING, "detail": str(exc)}
            return _json({"options": [], **starting})
        except Exception as exc:  # said on the page, like a panel's error
            return _json({"options": [], "error": " ".join(str(exc).split())[:400]})
        return _json({"options": options})


def _taken(port: int) -> ConfigError:
    return ConfigError(
        f"port {port} is taken (another process listens there): pick another with "
        "HUBWATCH_VIEW_PORT (or serve's --port); 0 turns the view off"
    )


def check_view_port(port: int, host: str = "127.0.0.1") -> None:
    """A :class:`ConfigError` at once if ``port`` is taken: checked before a command starts
    what comes before its view (ClickHouse, the migrations), not seconds later. A port
    taken in between is still found by :func:`start_view`."""
    if port == 0:
        return
    with socket.socket() as probe:
        # As aiohttp binds: a port left in TIME_WAIT is free, one listened on is not.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
            raise _taken(port) from exc


async def start_view(source: PanelSource, port: int, *, fallback: bool = True) -> ViewServer | None:
    """The view on ``port`` (0: off). A taken port falls back to a free one, said in one
    line, when ``fallback`` (the default port: another hubwatch may hold it); a port the
    user asked for is theirs to choose, so a taken one is a :class:`ConfigError`."""
    if port == 0:
        return None
    server = ViewServer(source, port=port)
    try:
        await server.start()
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise
        await server.stop()
        if not fallback:
            raise _taken(port) from exc
        server = ViewServer(source, port=0)
        await server.start()
        log.warning(
            "port %d (the default) is taken; the web view is on %d instead", port, server.port
        )
    return server
