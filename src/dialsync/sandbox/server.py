"""A small threaded HTTP/1.1 server with routing, TLS, latency and fault hooks.

Both sandboxes build on it. Stdlib only, so the demo needs nothing installed beyond dialsync.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import ssl
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names
    body: bytes
    params: dict[str, str] = field(default_factory=dict)  # from the route pattern

    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8")) if self.body else None

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default

    def form(self) -> dict[str, str]:
        parsed = parse_qs(self.body.decode("utf-8"), keep_blank_values=True)
        return {k: v[0] for k, v in parsed.items()}


@dataclass
class Response:
    status: int = 200
    body: Any = None  # JSON-able, or bytes
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False  # close the connection without answering (the work may be done)


Handler = Callable[[Request], Response]
# Sees every request before the routes: answers it itself, or passes it on (``call_next``) and
# may look at or replace the answer. Tests use it for faults, delays and captures.
Interceptor = Callable[[Request, Handler], Response]


@dataclass
class LoggedRequest:
    at: float
    method: str
    path: str
    status: int


@dataclass
class Exchange:
    """One request and its answer, kept when ``SandboxServer.record`` is on (spec checks)."""

    request: Request
    response: Response


class Interception:
    """One installed interceptor: ``remove()`` it, or use it as a context manager."""

    def __init__(self, server: SandboxServer, interceptor: Interceptor) -> None:
        self.server = server
        self.interceptor = interceptor

    def remove(self) -> None:
        with self.server.lock:
            if self.interceptor in self.server.interceptors:
                self.server.interceptors.remove(self.interceptor)

    def __enter__(self) -> Interception:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()


class SandboxServer:
    """Routes requests to handlers; ``before_request`` may answer first (faults), and
    interceptors (``intercept``) wrap the whole of it."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        tls: ssl.SSLContext | None = None,
        latency: float = 0.0,
    ) -> None:
        self.host = host
        self.port = port
        self.tls = tls
        self.latency = latency
        self.routes: list[tuple[str, re.Pattern[str], Handler]] = []
        self.before_request: Callable[[Request], Response | None] | None = None
        self.interceptors: list[Interceptor] = []  # the last installed sees a request first
        self.log: list[LoggedRequest] = []
        # Off by default: a benchmark's hundred thousand bodies would stay in memory.
        self.record = False
        self.exchanges: list[Exchange] = []
        self.lock = threading.RLock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- routing -------------------------------------------------------------------------
    def add_route(self, method: str, pattern: str, handler: Handler) -> None:
        self.routes.append((method, re.compile(f"^{pattern}$"), handler))

    def intercept(self, interceptor: Interceptor) -> Interception:
        """Install ``interceptor`` around the server's own dispatch (and around those installed
        before it), until the returned Interception is removed or its ``with`` block ends."""
        with self.lock:
            self.interceptors.append(interceptor)
        return Interception(self, interceptor)

    def handle(self, request: Request) -> Response:
        """What the HTTP handler calls: the interceptors, then ``dispatch``."""
        with self.lock:
            chain = list(self.interceptors)

        def call(depth: int, req: Request) -> Response:
            if depth < 0:
                return self.dispatch(req)
            return chain[depth](req, lambda inner: call(depth - 1, inner))

        return call(len(chain) - 1, request)

    def dispatch(self, request: Request) -> Response:
        if self.before_request is not None:
            early = self.before_request(request)
            if early is not None:
                return early
        allowed = False
        for method, pattern, handler in self.routes:
            match = pattern.match(request.path)
            if not match:
                continue
            allowed = True
            if method == request.method:
                request.params = match.groupdict()
                return handler(request)
        if allowed:
            return Response(405, {"code": "METHOD_NOT_ALLOWED", "message": "method not allowed"})
        return Response(404, {"code": "NOT_FOUND", "message": f"no route for {request.path}"})

    # -- lifecycle -----------------------------------------------------------------------
    @property
    def scheme(self) -> str:
        return "https" if self.tls is not None else "http"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"

    def start(self) -> SandboxServer:
        server = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in two writes; without TCP_NODELAY the body waits ~40 ms
            # for the client's delayed ACK, which would cap a connection at ~23 requests/s.
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                return

            def _handle(self) -> None:
                split = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                request = Request(
                    method=self.command,
                    path=split.path,
                    query=parse_qs(split.query, keep_blank_values=True),
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=body,
                )
                if server.latency:
                    time.sleep(server.latency)
                try:
                    response = server.handle(request)
                except Exception as exc:  # a sandbox bug must show as a 500, not hang
                    response = Response(500, {"code": "SANDBOX_ERROR", "message": repr(exc)})
                with server.lock:
                    server.log.append(
                        LoggedRequest(time.time(), request.method, request.path, response.status)
                    )
                    if server.record:
                        server.exchanges.append(Exchange(request, response))
                if response.drop:
                    self.close_connection = True
                    with contextlib.suppress(OSError):
                        self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if isinstance(response.body, bytes):
                    payload = response.body
                    ctype = "application/octet-stream"
                elif response.body is None:
                    payload = b""
                    ctype = "application/json"
                else:
                    payload = json.dumps(response.body).encode("utf-8")
                    ctype = "application/json;charset=UTF-8"
                self.send_response(response.status)
                headers = {"Content-Type": ctype, **response.headers}
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if payload and self.command != "HEAD":
                    self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

        class _Server(ThreadingHTTPServer):
            daemon_threads = True
            allow_reuse_address = True
            request_queue_size = 128

            def handle_error(self, request: Any, client_address: Any) -> None:
                # A client that gave up (a timeout, a dropped connection test) is not an error.
                exc = sys.exc_info()[1]
                if isinstance(exc, ConnectionError | ssl.SSLError | TimeoutError):
                    return
                super().handle_error(request, client_address)

            def get_request(self) -> tuple[socket.socket, Any]:
                sock, addr = super().get_request()
                if server.tls is not None:
                    # handshake in the handler thread: a slow client never blocks accept()
                    sock = server.tls.wrap_socket(
                        sock, server_side=True, do_handshake_on_connect=False
                    )
                return sock, addr

        httpd = _Server((self.host, self.port), _Handler)
        self.port = httpd.server_address[1]
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def requests(self, method: str | None = None, path_contains: str = "") -> list[LoggedRequest]:
        with self.lock:
            return [
                r
                for r in self.log
                if (method is None or r.method == method) and path_contains in r.path
            ]
