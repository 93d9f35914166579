"""For the alert tests: a real HTTP server that takes alert deliveries (webhook, Slack,
Discord, Alertmanager's webhook_config) and can be taken down and brought back on its port;
fixture-shaped derivatives made now; the rules the end-to-end tests watch with."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from hubwatch.alerts.alert import Alert
from tests.conftest import free_port


class Receiver:
    def __init__(self) -> None:
        self.port = free_port()
        self.received: list[tuple[str, dict[str, str], Any]] = []
        "(path, headers, JSON body) per request, in order."
        self.delay = 0.0
        "Seconds between taking a request (recorded) and answering it: a slow target."
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self.up()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def up(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver._lock:
                    receiver.received.append((self.path, dict(self.headers), json.loads(body)))
                time.sleep(receiver.delay)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def down(self) -> None:
        """Stop listening: deliveries meet a refused connection."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def bodies(self, path: str | None = None) -> list[Any]:
        with self._lock:
            return [b for p, _, b in self.received if path is None or p == path]

    def keys(self) -> list[str]:
        with self._lock:
            return [h.get("Idempotency-Key", "") for _, h, _ in self.received]


BASE = "mistralai/Mistral-Small-24B-Base-2501"
INSTRUCT = "mistralai/Mistral-Small-24B-Instruct-2501"
"Depth 1 in the fixture's tree: the watched base."
ABLITERATED = "huihui-ai/Mistral-Small-24B-Instruct-2501-abliterated"
"Depth 2, under INSTRUCT: a quantization of it is two levels below the watched base."
TEMPLATE = "mlx-community/Mistral-Small-24B-Instruct-2501-abliterated"


def quantization(template: dict[str, Any], repo_id: str, base: str) -> dict[str, Any]:
    """A GGUF quantization of ``base``, created now, as the Hub's API lists it."""
    import copy
    from datetime import UTC, datetime

    from hubwatch.events import format_datetime

    item = copy.deepcopy(template)
    now = format_datetime(datetime.now(UTC))
    tags = [t for t in item["tags"] if not t.startswith("base_model:")]
    tags += ["gguf", f"base_model:{base}", f"base_model:quantized:{base}"]
    item.update(
        id=repo_id,
        author=repo_id.split("/")[0],
        createdAt=now,
        lastModified=now,
        tags=tags,
        baseModels={"relation": "quantized", "models": [{"id": base, "_id": ""}]},
    )
    item["cardData"] = {**(item.get("cardData") or {}), "base_model": base}
    return item


def rules_yaml(url: str, *, group: str = "3s") -> str:
    """The rules of the end-to-end tests: quantizations anywhere below INSTRUCT, one alert
    each; quantizations of BASE itself, grouped."""
    return f"""
targets:
  receiver: {{type: webhook, url: "{url}/hook"}}
rules:
  - name: quants-below-instruct
    match:
      base_model: {INSTRUCT}
      relation: quantized
    targets: [receiver]
  - name: quant-burst-of-base
    match:
      base_model: {BASE}
      descendants: false
      relation: quantized
    group: {group}
    targets: [receiver]
"""


def quantization_alert(alert_id: str, target: str) -> Alert:
    """One alert of a quantization of the instruct model, fired now, for ``target``."""
    return Alert(
        alert_id=alert_id,
        rule="quants",
        model_id="someone/q-GGUF",
        base_model=INSTRUCT,
        relation="quantized",
        link="https://huggingface.co/someone/q-GGUF",
        models=("someone/q-GGUF",),
        count=1,
        fired_at=datetime.now(UTC),
        targets=(target,),
    )
