"""ClickHouse: a real server from chdb-core, and clients for whichever server is configured.

chdb's one-shot ``query()`` runs clickhouse-local; with ``SYSTEM START LISTEN`` it serves
HTTP and native TCP for as long as that query runs. So :func:`serve` runs one long
keep-alive query in a thread and ends it with ``KILL QUERY`` when told to stop. One server
per process and per data directory: :class:`ClickHouseProcess` runs it as a child process.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, overload
from urllib.parse import urlsplit

from hubwatch.errors import ConfigError, NotMigrated, SinkError, network_reason

__all__ = [
    "UNKNOWN_DATABASE",
    "UNKNOWN_TABLE",
    "ClickHouseProcess",
    "as_utc",
    "connect",
    "finalizing_states",
    "migrated",
    "names_missing_schema",
    "ping",
    "query_local",
    "serve",
    "server_error",
    "server_message",
]

# ClickHouse's error codes (src/Common/ErrorCodes.cpp) for what does not exist (yet).
UNKNOWN_TABLE = 60
UNKNOWN_DATABASE = 81

log = logging.getLogger(__name__)

_KEEPALIVE_MARK = "hubwatch-keepalive"
_KEEPALIVE = (
    "SYSTEM START LISTEN HTTP; SYSTEM START LISTEN TCP; "
    f"SELECT sleepEachRow(1), '{_KEEPALIVE_MARK}' FROM system.numbers "
    "SETTINGS max_block_size = 1 FORMAT Null"
)
_CONFIG = """<clickhouse>
  <listen_host>{host}</listen_host>
  <http_port>{http_port}</http_port>
  <tcp_port>{tcp_port}</tcp_port>
</clickhouse>
"""


def ping(url: str, timeout: float = 1.0) -> bool:
    try:
        with urllib.request.urlopen(url.rstrip("/") + "/ping", timeout=timeout) as response:
            return bool(response.status == 200)
    except (OSError, urllib.error.URLError):
        return False


def _post(url: str, sql: str, timeout: float = 30.0) -> str:
    request = urllib.request.Request(url.rstrip("/") + "/", data=sql.encode(), method="POST")
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return str(response.read().decode())


def serve(
    data_dir: Path,
    *,
    host: str = "127.0.0.1",
    http_port: int = 8123,
    tcp_port: int = 9000,
    ready: threading.Event | None = None,
    stop: threading.Event | None = None,
    parent_pid: int | None = None,
) -> None:
    """Serve ClickHouse from ``data_dir`` until SIGINT/SIGTERM (or ``stop``), then stop cleanly.

    With ``parent_pid``, also stop when that process is gone: a ``hubwatch run`` killed with
    SIGKILL cannot stop its server, and an orphan would hold the ports and the data directory.

    Blocks. Call from a process's main thread (signals), as ``hubwatch clickhouse serve`` does.
    """
    import chdb._chdb as chdb_native  # heavy import; only the server process needs it

    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    # clickhouse-local reads ./config.xml from the working directory.
    (data_dir / "config.xml").write_text(
        _CONFIG.format(host=host, http_port=http_port, tcp_port=tcp_port)
    )
    os.chdir(data_dir)
    url = f"http://{host}:{http_port}"
    if ping(url):
        raise ConfigError(f"something already answers on {url}; pick another --http-port")

    failure: list[str] = []

    def run_server() -> None:
        result = chdb_native.query(_KEEPALIVE, "TabSeparated", path=str(data_dir / "data"))
        error = result.error_message() if result.has_error() else ""
        if error and "cancelled" not in error.lower():
            failure.append(error)

    stop = stop or threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    thread = threading.Thread(target=run_server, name="clickhouse", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not ping(url):
        if not thread.is_alive() or time.monotonic() > deadline:
            raise SinkError(f"ClickHouse did not start on {url}: {' '.join(failure) or 'timeout'}")
        time.sleep(0.05)
    log.info(
        "ClickHouse %s serving %s (tcp %d), data in %s", _version(url), url, tcp_port, data_dir
    )
    if ready is not None:
        ready.set()
    while not stop.wait(0.5):
        if not thread.is_alive():
            raise SinkError(f"ClickHouse server stopped by itself: {' '.join(failure)}")
        if parent_pid is not None and os.getppid() != parent_pid:
            log.warning("the process that started this server (pid %d) is gone", parent_pid)
            break
    _shutdown(url)
    thread.join(30)


def _version(url: str) -> str:
    try:
        return _post(url, "SELECT version()").strip()
    except OSError:
        return "?"


def _shutdown(url: str) -> None:
    # MergeTree inserts are on disk once acknowledged; flush whatever sits in buffers
    # (async inserts, logs) before the keep-alive query, and with it the server, ends.
    for sql in ("SYSTEM FLUSH ASYNC INSERT QUEUE", "SYSTEM FLUSH LOGS"):
        with contextlib.suppress(OSError):
            _post(url, sql)
    with contextlib.suppress(OSError):
        _post(
            url,
            f"KILL QUERY WHERE query LIKE '%{_KEEPALIVE_MARK}%' "
            "AND query NOT LIKE '%KILL QUERY%' SYNC",
        )


class ClickHouseProcess:
    """``hubwatch clickhouse serve`` as a child process, with an explicit start and stop."""

    def __init__(
        self,
        data_dir: Path,
        *,
        http_port: int = 8123,
        tcp_port: int = 9000,
        host: str = "127.0.0.1",
        log_file: Path | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.host = host
        self.http_port = http_port
        self.tcp_port = tcp_port
        self.log_file = log_file or data_dir.parent / "clickhouse.log"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.http_port}"

    def start(self, timeout: float = 60.0) -> None:
        if self._process is not None:
            return
        if ping(self.url):
            raise ConfigError(
                f"something already answers on {self.url}; "
                "stop it or choose another ClickHouse port"
            )
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        command = [
            sys.executable,
            "-m",
            "hubwatch",
            "clickhouse",
            "serve",
            "--data-dir",
            str(self.data_dir),
            "--host",
            self.host,
            "--http-port",
            str(self.http_port),
            "--tcp-port",
            str(self.tcp_port),
            "--parent-pid",
            str(os.getpid()),
        ]
        with self.log_file.open("ab") as out:
            # Own process group: a Ctrl-C in the terminal reaches us, and we stop it in order.
            self._process = subprocess.Popen(
                command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + timeout
        while not ping(self.url):
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise SinkError(f"ClickHouse did not start on {self.url}; see {self.log_file}")
            time.sleep(0.05)

    def stop(self, timeout: float = 30.0) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def __enter__(self) -> ClickHouseProcess:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def connect(url: str, database: str | None = None, **kwargs: Any) -> Any:
    """A clickhouse-connect client for ``url`` (``http://host:port``).

    Every datetime crosses the boundary in UTC, whatever zone the server or this host runs
    in: the session's zone is UTC (bare ``DateTime`` values and ``{at:DateTime}`` parameters
    mean UTC), values come back timezone-aware (``tz_mode="aware"``, not the library's naive
    default), and a naive datetime that reaches an insert is read in its column's zone (all
    ours are ``'UTC'``), never in the host's local zone.
    """
    import clickhouse_connect
    from clickhouse_connect import common
    from clickhouse_connect.driver.exceptions import Error as ClickHouseError
    from clickhouse_connect.driver.exceptions import OperationalError

    common.set_setting("naive_datetime_insert", "server")
    settings = {"session_timezone": "UTC", **kwargs.pop("settings", {})}
    kwargs.setdefault("tz_mode", "aware")
    parts = urlsplit(url)
    try:
        return clickhouse_connect.get_client(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or 8123,
            secure=parts.scheme == "https",
            username=parts.username or "default",
            password=parts.password or "",
            database=database or "",
            # No server-side session: writers on other threads never collide in one.
            autogenerate_session_id=False,
            settings=settings,
            **kwargs,
        )
    except OperationalError as exc:
        raise SinkError(
            f"cannot reach ClickHouse at {url} ({network_reason(exc)}); start it (hubwatch "
            "run, make stack-up, or hubwatch clickhouse serve --data-dir D) or set "
            "HUBWATCH_CLICKHOUSE_URL",
            retriable=True,
        ) from exc
    except ClickHouseError as exc:
        if database and getattr(exc, "code", None) == UNKNOWN_DATABASE:
            # The first thing migrations create: none has run yet.
            raise NotMigrated(database, code=UNKNOWN_DATABASE) from exc
        raise SinkError(f"ClickHouse at {url} refused the connection: {exc}") from exc


def names_missing_schema(exc: BaseException) -> bool:
    """Whether a ClickHouse error is about a table or database that does not exist (by
    its error code, which clickhouse-connect reads from the server's answer)."""
    return getattr(exc, "code", None) in (UNKNOWN_TABLE, UNKNOWN_DATABASE)


def migrated(url: str, database: str) -> bool:
    """Whether every migration this hubwatch has is applied to ``database`` (a newer
    database than this hubwatch counts as migrated)."""
    from clickhouse_connect.driver.exceptions import Error as ClickHouseError

    from hubwatch.migrate import load_migrations

    latest = max(m.version for m in load_migrations())
    client = connect(url)
    try:
        applied = client.query(
            f"SELECT max(version) FROM `{database}`.schema_migrations"
        ).result_rows[0][0]
    except ClickHouseError as exc:
        if names_missing_schema(exc):
            return False
        raise
    finally:
        client.close()
    return int(applied or 0) >= latest


_SERVER_MESSAGE = re.compile(
    r"DB::Exception: (?P<message>.*?)(?: \(version [^)]*\))?(?: \(for url .*)?$"
)
_WHILE_EXECUTING = re.compile(r":? while executing '.*$")


def server_message(exc: BaseException) -> str:
    """The server's own message from a clickhouse-connect error, without the client's
    wrapping (code, version, URL)."""
    text = " ".join(str(exc).split())
    match = _SERVER_MESSAGE.search(text)
    message = match.group("message") if match else text
    # "...: while executing 'FUNCTION throwIf(...)'" is the plan step the query stopped in,
    # not news to the user; the message before it is (a canned query's own throwIf words).
    return _WHILE_EXECUTING.sub("", message)


def server_error(exc: BaseException, url: str, database: str) -> SinkError:
    """A ClickHouse error as hubwatch reports it, for every command and the web view: a
    table or database that does not exist while hubwatch's migrations are not all applied
    (the seconds after ``hubwatch run`` starts its server, or a database never migrated)
    is :class:`NotMigrated`; anything else is the server's own message (a table missing
    from a migrated database is the user's SQL, named as the server names it)."""
    code = getattr(exc, "code", None)
    if names_missing_schema(exc):
        try:
            ready = migrated(url, database)
        except Exception:  # the server went away meanwhile: its own error says enough
            ready = True
        if not ready:
            return NotMigrated(database, code=code)
    return SinkError(f"ClickHouse: {server_message(exc)}", code=code)


def finalizing_states(client: Any, sql: str) -> tuple[str, list[str]]:
    """``sql`` with each column holding aggregate function states (an AggregateFunction
    column, as ``SELECT *`` of engagement_hourly has) finalized per row, so that it prints
    as values, not as the states' binary; and those columns' names. ``sql`` unchanged and
    no names when it has none, or is not a query ClickHouse can describe (SHOW, a FORMAT
    clause, ...)."""
    from clickhouse_connect.driver.exceptions import Error as ClickHouseError

    select = sql.strip().rstrip(";").strip()
    try:
        columns = client.query(f"DESCRIBE ({select})").result_rows
    except ClickHouseError:
        return sql, []
    states = list(dict.fromkeys(n for n, t, *_ in columns if t.startswith("AggregateFunction(")))
    if not states:
        return sql, []
    quoted = ["`" + n.replace("\\", "\\\\").replace("`", "\\`") + "`" for n in states]
    finals = ", ".join(f"finalizeAggregation({q}) AS {q}" for q in quoted)
    return f"SELECT * REPLACE ({finals}) FROM ({select})", states


@overload
def as_utc(value: datetime) -> datetime: ...
@overload
def as_utc(value: None) -> None: ...
def as_utc(value: datetime | None) -> datetime | None:
    """An aware UTC datetime; a naive one is taken as UTC, the zone every column here has
    (state reloaded from ClickHouse must compare with the aware datetimes events carry)."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def query_local(data_dir: Path, sql: str, fmt: str = "PrettyCompactMonoBlock") -> str:
    """Run one query on a data directory no server holds (``hubwatch sql`` after a run)."""
    from chdb import session

    local = session.Session(str(data_dir.resolve() / "data"))
    try:
        # UTC, as connect() has it: bare DateTime values mean the same with or without a server.
        return str(local.query(f"SET session_timezone = 'UTC'; {sql}", fmt))
    except Exception as exc:  # chdb raises its own ChdbError, a plain Exception subclass
        raise SinkError(str(exc).strip()) from exc
    finally:
        local.close()
