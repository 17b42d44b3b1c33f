"""A small fault-injecting HTTP proxy for the cloud-fault proofs.

It sits in front of one OpenStack endpoint (the lab's Nova) and, per request, either passes
it through or injects a fault chosen by rules consumed in order:

- ``"pass"``: forward and answer what the upstream answered;
- ``"503"`` / ``"500"`` / ``"502"``: answer that status without forwarding (the cloud never
  acted on it);
- ``"500-after"``: forward (the cloud acts on it), then answer 500 (the answer is lost);
- ``"504-delay"``: hold the request ``delay`` seconds without forwarding, then 504 (a
  gateway timeout);
- ``"drop-after"``: forward, wait ``delay`` seconds, then close the connection without any
  answer (a timeout after the cloud acted).

Every request is recorded (time, method, path, action, status) so a test can count the
client's retries and measure the waits between them.  Upstream URLs in answers are rewritten
to the proxy's, so links and ``Location`` headers lead back through it.
"""

from __future__ import annotations

import http.client
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

FAULTS = {"pass", "503", "500", "502", "500-after", "504-delay", "drop-after"}


@dataclass
class Rule:
    """Requests whose method and path match take the next action of ``actions``; once they
    are used up, ``then`` (default: pass)."""

    method: str
    path: str  # a regular expression searched in the path (with the query string)
    actions: list[str] = field(default_factory=list)
    then: str = "pass"

    def __post_init__(self) -> None:
        unknown = {*self.actions, self.then} - FAULTS
        if unknown:
            raise ValueError(f"unknown fault(s): {sorted(unknown)}")

    def matches(self, method: str, path: str) -> bool:
        return method == self.method and re.search(self.path, path) is not None

    def next_action(self) -> str:
        return self.actions.pop(0) if self.actions else self.then


@dataclass(frozen=True)
class Seen:
    at: float
    method: str
    path: str
    action: str
    status: int | None  # None: the connection was dropped


class FaultProxy:
    def __init__(self, upstream: str, *, delay: float = 2.0) -> None:
        parts = urlsplit(upstream)
        assert parts.hostname and parts.port
        self.upstream_host, self.upstream_port = parts.hostname, parts.port
        self.delay = delay
        self.rules: list[Rule] = []
        self.seen: list[Seen] = []
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def _handle(self) -> None:
                proxy.handle(self)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _handle  # noqa: N815

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FaultProxy:
        self._thread.start()
        return self

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # ---- faults -------------------------------------------------------------------------

    def add(self, rule: Rule) -> Rule:
        with self._lock:
            self.rules.append(rule)
        return rule

    def clear(self) -> None:
        with self._lock:
            self.rules.clear()

    def _action(self, method: str, path: str) -> str:
        with self._lock:
            for rule in self.rules:
                if rule.matches(method, path):
                    return rule.next_action()
        return "pass"

    def count(self, method: str, path: str, action: str | None = None) -> int:
        with self._lock:
            return sum(
                1
                for s in self.seen
                if s.method == method and re.search(path, s.path) and (action is None or s.action == action)
            )

    def times(self, method: str, path: str) -> list[float]:
        with self._lock:
            return [s.at for s in self.seen if s.method == method and re.search(path, s.path)]

    # ---- the proxying -------------------------------------------------------------------

    def _record(self, method: str, path: str, action: str, status: int | None) -> None:
        with self._lock:
            self.seen.append(Seen(time.monotonic(), method, path, action, status))

    def _forward(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        conn = http.client.HTTPConnection(self.upstream_host, self.upstream_port, timeout=120)
        try:
            headers = {**headers, "Host": f"{self.upstream_host}:{self.upstream_port}"}
            conn.request(method, path, body=body or None, headers=headers)
            response = conn.getresponse()
            payload = response.read()
            return response.status, response.getheaders(), payload
        finally:
            conn.close()

    def _rewrite(self, text: bytes) -> bytes:
        return text.replace(f"{self.upstream_host}:{self.upstream_port}".encode(), f"127.0.0.1:{self.port}".encode())

    def _reply(self, handler: BaseHTTPRequestHandler, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        handler.send_response(status)
        for name, value in headers:
            if name.lower() in {"content-length", "connection", "transfer-encoding", "date", "server"}:
                continue
            handler.send_header(name, self._rewrite(value.encode()).decode())
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        if handler.command != "HEAD":
            handler.wfile.write(body)

    def _error(self, handler: BaseHTTPRequestHandler, status: int) -> None:
        body = f'{{"computeFault": {{"code": {status}, "message": "injected by the fault proxy"}}}}'.encode()
        self._reply(handler, status, [("Content-Type", "application/json")], body)

    def handle(self, handler: BaseHTTPRequestHandler) -> None:
        method, path = handler.command, handler.path
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        headers = {k: v for k, v in handler.headers.items() if k.lower() not in {"host", "content-length"}}
        action = self._action(method, path)
        if action in {"503", "500", "502"}:
            self._record(method, path, action, int(action))
            self._error(handler, int(action))
            return
        if action == "504-delay":
            time.sleep(self.delay)
            self._record(method, path, action, 504)
            self._error(handler, 504)
            return
        try:
            status, response_headers, payload = self._forward(method, path, headers, body)
        except OSError:
            self._record(method, path, "upstream-unreachable", 502)
            self._error(handler, 502)
            return
        if action == "500-after":
            self._record(method, path, action, 500)
            self._error(handler, 500)
            return
        if action == "drop-after":
            time.sleep(self.delay)
            self._record(method, path, action, None)
            handler.close_connection = True
            handler.connection.close()
            return
        self._record(method, path, action, status)
        self._reply(handler, status, response_headers, self._rewrite(payload))


@contextmanager
def fault_proxy(upstream: str, *, delay: float = 2.0) -> Iterator[FaultProxy]:
    proxy = FaultProxy(upstream, delay=delay).start()
    try:
        yield proxy
    finally:
        proxy.close()
