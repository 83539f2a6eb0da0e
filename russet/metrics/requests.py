"""Requests counted and timed by route template, method and status.

Labels must stay few whatever clients send: the route is the matched route's *template*
(`/api/v1/devices/{device}`, never the device's id or a token in a path), a request no route
matched is counted under UNMATCHED, and methods other than HTTP's usual ones under `other`.
The router records the matched route on the ASGI scope (`scope["route"]`, Starlette and FastAPI
alike), so it is read once the answer is sent, and costs the device path one dictionary lookup
per request for the cached label children.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from prometheus_client import Counter, Histogram

UNMATCHED = "unmatched"  # the route label of every request no route matched (404s of any path)
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def route_template(scope: Scope) -> str:
    """The template of the route that answered (UNMATCHED when none did)."""
    path = getattr(scope.get("route"), "path", None)
    return path if isinstance(path, str) and path else UNMATCHED


class RequestMetrics:
    """ASGI middleware: `requests` counts (route, method, status), `latency` observes seconds from
    arrival to the end of the application's answer by (route, method)."""

    def __init__(self, app: ASGIApp, requests: Counter, latency: Histogram) -> None:
        self.app = app
        self._requests = requests
        self._latency = latency
        # prometheus_client's labels() validates and locks on each call; its children are kept.
        self._counted: dict[tuple[str, str, int], Any] = {}
        self._timed: dict[tuple[str, str], Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 0  # stays 0 if the client went away before an answer began

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except Exception:
            if status == 0:
                status = 500  # what the server answers for an application that failed
            raise
        finally:
            self._observe(scope, status, time.perf_counter() - started)

    def _observe(self, scope: Scope, status: int, seconds: float) -> None:
        route = route_template(scope)
        method = scope.get("method", "")
        if method not in METHODS:
            method = "other"
        key = (route, method, status)
        counted = self._counted.get(key)
        if counted is None:
            counted = self._counted[key] = self._requests.labels(route, method, str(status))
        counted.inc()
        timed = self._timed.get((route, method))
        if timed is None:
            timed = self._timed[(route, method)] = self._latency.labels(route, method)
        timed.observe(seconds)
