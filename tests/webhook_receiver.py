"""A webhook receiver on 127.0.0.1 for the tests: a real HTTP server in a thread that is down for
its first requests (answering 503, or closing the connection without a word, in turn), then
accepts and keeps what it was sent."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from russet.runtime import Russet


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    down_for: int = 0  # the first requests fail
    refused: int = 0
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver.lock:
                    fail = receiver.refused < receiver.down_for
                    if fail:
                        receiver.refused += 1
                        closing = receiver.refused % 2 == 0
                    else:
                        receiver.received.append(Received(self.path, dict(self.headers.items()), body))
                if fail and closing:
                    self.close_connection = True
                    self.connection.close()  # no answer at all
                    return
                self.send_response(503 if fail else 204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.shutdown()
        self.server.server_close()


def fast_retries(russet: Russet) -> None:
    """Short backoffs, still longer than `drain`'s pause: a later event is due before the retry of
    an earlier one, which it must wait for."""
    russet.webhooks.retry_seconds = 0.15
    russet.webhooks.max_retry_seconds = 0.3


def drain(russet: Russet, timeout: float = 30.0) -> None:
    """Run the delivery task until no event is pending (as the periodic runner would)."""
    deadline = time.monotonic() + timeout
    while any(e["pending"] for e in russet.webhooks.endpoints()):
        assert time.monotonic() < deadline, "webhooks still pending"
        russet.webhooks.deliver_due()
        time.sleep(0.02)
