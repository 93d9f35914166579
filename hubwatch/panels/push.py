"""``hubwatch grafana push``: provision a folder, the two data sources and the six
dashboards on an existing Grafana through its HTTP API (grafana-client), idempotently.

Each object is read first and written only when it differs: a second push with nothing
changed writes nothing. A dashboard is saved with ``overwrite`` (ours is the definition;
an edit made in Grafana is replaced, as file provisioning would) into hubwatch's folder.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from hubwatch.errors import ConfigError, HubwatchError, network_reason
from hubwatch.panels.dashboards import DASHBOARDS
from hubwatch.panels.grafana import (
    CLICKHOUSE_PLUGIN,
    CLICKHOUSE_UID,
    PROMETHEUS_PLUGIN,
    PROMETHEUS_UID,
    dashboard_json,
)

__all__ = ["FOLDER_UID", "GrafanaPushError", "PushResult", "push"]

FOLDER_UID = "hubwatch"
FOLDER_TITLE = "hubwatch"
# Fields Grafana adds or bumps on save; not ours to compare.
_SERVER_FIELDS = ("id", "version")


class GrafanaPushError(HubwatchError):
    """Grafana refused or could not be reached."""


@dataclass
class PushResult:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"{len(self.created)} created, {len(self.updated)} updated, "
            f"{len(self.unchanged)} unchanged"
        )


def clickhouse_datasource(url: str, database: str) -> dict[str, Any]:
    """The grafana-clickhouse-datasource (v4) settings for a ClickHouse HTTP URL."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"not a ClickHouse HTTP URL: {url}")
    secure = parts.scheme == "https"
    json_data: dict[str, Any] = {
        "host": parts.hostname,
        "port": parts.port or (8443 if secure else 8123),
        "protocol": "http",
        "secure": secure,
        "username": parts.username or "default",
        "defaultDatabase": database,
    }
    datasource: dict[str, Any] = {
        "uid": CLICKHOUSE_UID,
        "name": "hubwatch ClickHouse",
        "type": CLICKHOUSE_PLUGIN,
        "access": "proxy",
        "jsonData": json_data,
    }
    if parts.password:
        datasource["secureJsonData"] = {"password": parts.password}
    return datasource


def prometheus_datasource(url: str) -> dict[str, Any]:
    return {
        "uid": PROMETHEUS_UID,
        "name": "hubwatch Prometheus",
        "type": PROMETHEUS_PLUGIN,
        "access": "proxy",
        "url": url,
        "jsonData": {"httpMethod": "POST"},
    }


def push(
    url: str,
    token: str,
    *,
    clickhouse_url: str,
    database: str,
    prometheus_url: str,
    timeout: float = 30.0,
) -> PushResult:
    from grafana_client import GrafanaApi
    from grafana_client.client import GrafanaClientError, GrafanaException

    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"--url: {url!r} is not an http(s) URL like http://127.0.0.1:3000")
    api = GrafanaApi.from_url(url, credential=token, timeout=timeout)
    result = PushResult()

    def absent(read: Callable[[], Any]) -> Any:
        """What ``read`` returns, or None on 404."""
        try:
            return read()
        except GrafanaClientError as error:
            if error.status_code == 404:
                return None
            raise

    try:
        _folder(api, absent, result)
        for datasource in (
            clickhouse_datasource(clickhouse_url, database),
            prometheus_datasource(prometheus_url),
        ):
            _datasource(api, absent, datasource, result)
        for definition in DASHBOARDS:
            _dashboard(api, absent, dashboard_json(definition), result)
    except GrafanaException as error:
        raise GrafanaPushError(f"Grafana at {url}: {_message(error)}") from error
    except OSError as error:  # refused, DNS, unreachable (niquests' errors are OSErrors)
        raise GrafanaPushError(
            f"Grafana at {url} does not answer ({network_reason(error)})"
        ) from error
    return result


def _message(error: Any) -> str:
    response = getattr(error, "response", None)
    detail = response.get("message") if isinstance(response, dict) else None
    status = getattr(error, "status_code", 0)
    text = detail or getattr(error, "message", "") or str(error)
    if "<html" in text.lower():  # an error page: not Grafana's API, whatever listens there
        text = "answered with an HTML page, not Grafana's HTTP API (is --url Grafana?)"
    return f"{status} {text}".strip() if status else text


def _folder(api: Any, absent: Callable[..., Any], result: PushResult) -> None:
    name = f"folder {FOLDER_UID}"
    folder = absent(lambda: api.folder.get_folder(FOLDER_UID))
    if folder is None:
        api.folder.create_folder(FOLDER_TITLE, uid=FOLDER_UID)
        result.created.append(name)
    elif folder.get("title") != FOLDER_TITLE:
        api.folder.update_folder(FOLDER_UID, title=FOLDER_TITLE, overwrite=True)
        result.updated.append(name)
    else:
        result.unchanged.append(name)


def _datasource(
    api: Any, absent: Callable[..., Any], wanted: dict[str, Any], result: PushResult
) -> None:
    uid = wanted["uid"]
    name = f"datasource {uid}"
    current = absent(lambda: api.datasource.get_datasource_by_uid(uid))
    if current is None:
        api.datasource.create_datasource(wanted)
        result.created.append(name)
        return
    # Grafana never returns secrets: compare what it shows, and send a password only when
    # something else changed (it is kept otherwise).
    shown = {k: v for k, v in wanted.items() if k != "secureJsonData"}
    same = all(current.get(k) == v for k, v in shown.items() if k != "jsonData") and all(
        (current.get("jsonData") or {}).get(k) == v for k, v in wanted["jsonData"].items()
    )
    if same:
        result.unchanged.append(name)
        return
    api.datasource.update_datasource_by_uid(uid, wanted)
    result.updated.append(name)


def _dashboard(
    api: Any, absent: Callable[..., Any], wanted: dict[str, Any], result: PushResult
) -> None:
    uid = wanted["uid"]
    name = f"dashboard {uid}"
    current = absent(lambda: api.dashboard.get_dashboard(uid))
    if current is not None:
        stored = {k: v for k, v in current.get("dashboard", {}).items() if k not in _SERVER_FIELDS}
        folder = current.get("meta", {}).get("folderUid")
        if stored == wanted and folder == FOLDER_UID:
            result.unchanged.append(name)
            return
    api.dashboard.update_dashboard(
        {
            "dashboard": {**wanted, "id": None},
            "folderUid": FOLDER_UID,
            "overwrite": True,
            "message": "hubwatch grafana push",
        }
    )
    (result.created if current is None else result.updated).append(name)
