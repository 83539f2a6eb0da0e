"""HTTPS servers on 127.0.0.1 for the simulated Apple services.

`HttpsServer` is the transport every HTTP/1.1 simulator shares (DEP, Apps and Books, this file's
peer): TLS, a thread per request, one callback answering each request. `HttpsPeer` is a scripted
server that records exactly what arrived on the wire: tests of the outbound gateway point it here,
and its answers come from a script (status, headers, body) so Apple's errors can be injected.
"""

from __future__ import annotations

import base64
import ssl
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from simulators.tls import TlsFiles

# (method, request target, lower-cased headers, body) -> (status, body, response headers)
Handle = Callable[[str, str, dict[str, str], bytes], tuple[int, bytes, dict[str, str]]]


class HttpsServer:
    """A TLS HTTP/1.1 server in a daemon thread; `handle` answers every request.

    `content_type` is sent when an answer names none (None: send none).
    """

    def __init__(
        self,
        tls: TlsFiles,
        handle: Handle,
        *,
        port: int = 0,
        content_type: str | None = None,
        client_ca: str | None = None,
    ):
        """`client_ca` (PEM): require a TLS client certificate it issued, and hand `handle` its
        DER, base64, as the pseudo-header `:client-certificate` (no real header has a colon)."""

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k.lower(): v for k, v in self.headers.items()}
                if client_ca is not None:
                    der = self.connection.getpeercert(binary_form=True)  # type: ignore[attr-defined]
                    headers[":client-certificate"] = base64.b64encode(der or b"").decode()
                status, payload, extra = handle(self.command, self.path, headers, body)
                self.send_response(status)
                if content_type is not None and "Content-Type" not in extra:
                    self.send_header("Content-Type", content_type)
                for name, value in extra.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = _serve

            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(tls.cert_file, tls.key_file)
        if client_ca is not None:
            ctx.verify_mode = ssl.CERT_REQUIRED
            ctx.load_verify_locations(cadata=client_ca)
        self._server.socket = ctx.wrap_socket(self._server.socket, server_side=True)
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Answer:
    status: int = 200
    body: bytes = b"{}"
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "application/json"})


class HttpsPeer:
    def __init__(self, tls: TlsFiles) -> None:
        self.received: list[Received] = []
        self.script: deque[Answer] = deque()
        self.default = Answer()
        self._http = HttpsServer(tls, self._answer)
        self.url = f"https://127.0.0.1:{self._http.port}"

    def _answer(
        self, method: str, target: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, bytes, dict[str, str]]:
        self.received.append(Received(method, target, headers, body))
        answer = self.script.popleft() if self.script else self.default
        return answer.status, answer.body, dict(answer.headers)

    def __enter__(self) -> HttpsPeer:
        self._http.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.stop()
