"""The access log: one line per HTTP request, to the logger `russet.access` (issue #18 item 7).

Each line holds the method, the path (never the query string: enrollment tokens travel there,
and no Authorization value or body is ever read), the status, the response body's bytes, the
time from the request's arrival to its last byte in milliseconds, and who asked when known: the
device (its UDID or EnrollmentID, once the MDM service accepted its identity for that device) or
the API key's name. `RUSSET_ACCESS_LOG` says where the lines go (`off`, `stderr`, or a file
path, reopened when log rotation moves it), `RUSSET_ACCESS_LOG_FORMAT` how (`text`, `json`).

It is plain ASGI middleware, outside everything else in `russet.app`, so device routes (which
bypass FastAPI) are logged like the rest. Routes tell it who asked through `note` on the ASGI
scope; with the log off the middleware is not installed at all and `note` is a dictionary miss.
Its cost on the device hot path is measured by `bench/roundtrips.py` (README, Throughput).
This module imports no web framework: the MDM core's device routes call `note` too.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from logging.handlers import WatchedFileHandler
from typing import Any, TextIO
from urllib.parse import quote

LOGGER = "russet.access"
DEVICE = "device"  # note(scope, DEVICE, udid): the device that made the request
API_KEY = "key"  # note(scope, API_KEY, name): the API key that made the request
FORMATS = ("text", "json")
MAX_PATH = 512  # characters of the path written; a longer one is cut and marked with "..."
REDACTED = "[redacted]"  # written in place of a path segment that is a capability (see AccessLog)
_SLOT = "russet.access"  # the scope key under which a request's notes are kept
_MARK = "_russet_access_handler"  # marks the handler `configure` installed, to replace it later

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def note(scope: Scope, field: str, value: str | Callable[[], str]) -> None:
    """Record who made this request, for its access-log line. `value` may be a function, then
    called only when the access log is on (so the hot path pays nothing for it when off)."""
    slot = scope.get(_SLOT)
    if slot is not None:
        slot[field] = value() if callable(value) else value


def clean(text: str) -> str:
    """`text` safe on one line of the log: percent-escaped beyond printable ASCII and for spaces,
    cut at MAX_PATH (a request path is decoded: %0A would otherwise start a forged line)."""
    if len(text) <= MAX_PATH and text.isascii() and text.isprintable() and " " not in text:
        return text  # the usual case, without copying
    cut = text[:MAX_PATH]
    escaped = quote(cut, safe="/:@!$&'()*+,;=-._~%")
    return escaped + "..." if len(cut) < len(text) else escaped


class _Stderr(logging.StreamHandler):
    """Writes to whatever `sys.stderr` is at the time (a test runner may swap it)."""

    def __init__(self) -> None:
        super().__init__()

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _: TextIO) -> None:
        pass


class _File(WatchedFileHandler):
    """Appends to a file, reopened when log rotation moved or removed it. Checked once a second
    rather than before every line (as WatchedFileHandler does): the stat costs more than the
    line's write, and a second's lines going to the rotated file is what rotation expects."""

    _checked = 0.0

    def emit(self, record: logging.LogRecord) -> None:
        now = time.monotonic()
        if now - self._checked >= 1.0:
            self._checked = now
            self.reopenIfNeeded()
        logging.FileHandler.emit(self, record)


def configure(destination: str, fmt: str = "text") -> logging.Logger | None:
    """Point the `russet.access` logger at `destination` (`off`, `stderr` or a file path); returns
    it, or None when off. Idempotent: the handler a previous call installed is replaced (closed),
    other handlers are left alone. Lines do not propagate to the root logger: the server's log
    and the access log stay apart however logging is otherwise set up."""
    if fmt not in FORMATS:
        raise ValueError(f"access log format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    logger = logging.getLogger(LOGGER)
    for old in [h for h in logger.handlers if getattr(h, _MARK, False)]:
        logger.removeHandler(old)
        old.close()
    if destination == "off":
        return None
    handler: logging.Handler = _Stderr() if destination == "stderr" else _File(destination, encoding="utf-8")
    setattr(handler, _MARK, True)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    return logger


class _Clock:
    """UTC timestamps with milliseconds; the part down to the second is formatted once a second."""

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""

    def now(self) -> str:
        at = time.time()
        second = int(at)
        if second != self._second:
            self._second = second
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return f"{self._prefix}.{int((at - second) * 1000):03d}Z"


class AccessLog:
    """ASGI middleware writing one access-log line per HTTP request, once its answer is sent.

    `capabilities` lists the paths that carry a bearer capability in a segment (a hosted app's
    per-device download token, a declaration data URL's token): pairs of a path prefix and the
    index of that segment in `path.split("/")`. The segment is written as REDACTED, whether or not
    the request reached its route, so a log reader cannot replay the URL."""

    def __init__(
        self,
        app: ASGIApp,
        logger: logging.Logger,
        fmt: str = "text",
        capabilities: Sequence[tuple[str, int]] = (),
    ) -> None:
        self.app = app
        self.logger = logger
        self.json = fmt == "json"
        self._clock = _Clock()
        self._capabilities = tuple(capabilities)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        notes: dict[str, str] = {}
        scope[_SLOT] = notes
        status = 0  # stays 0 if the client went away before an answer began
        size = 0

        async def sending(message: Message) -> None:
            nonlocal status, size
            kind = message["type"]
            if kind == "http.response.body":
                size += len(message.get("body", b""))
            elif kind == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except Exception:
            if status == 0:
                status = 500  # what the server answers for an application that failed
            raise
        finally:
            self._write(scope, status, size, time.perf_counter() - started, notes)

    def _path(self, path: str) -> str:
        """The request path as logged: capability segments redacted, then made safe by `clean`."""
        for prefix, index in self._capabilities:
            if path.startswith(prefix):
                parts = path.split("/")
                if len(parts) > index:
                    parts[index] = REDACTED
                    path = "/".join(parts)
                break
        return clean(path)

    def _write(self, scope: Scope, status: int, size: int, seconds: float, notes: dict[str, str]) -> None:
        ms = round(seconds * 1000, 1)
        method = clean(scope.get("method", "-")[:16])
        path = self._path(scope["path"])
        if self.json:
            line: dict[str, Any] = {
                "time": self._clock.now(),
                "method": method,
                "path": path,
                "status": status,
                "bytes": size,
                "ms": ms,
            }
            line.update(notes)
            self._emit(json.dumps(line))
            return
        who = " ".join(f"{k}={clean(v)}" for k, v in notes.items()) if notes else "-"
        self._emit(f"{self._clock.now()} {method} {path} {status} {size} {ms:.1f}ms {who}")

    def _emit(self, line: str) -> None:
        """`logger.info(line)` without looking up the caller's frame (a quarter of its cost)."""
        logger = self.logger
        if logger.isEnabledFor(logging.INFO):
            logger.handle(logger.makeRecord(logger.name, logging.INFO, __file__, 0, line, (), None))


def access_logged(
    app: ASGIApp, destination: str, fmt: str = "text", capabilities: Sequence[tuple[str, int]] = ()
) -> ASGIApp:
    """`app` wrapped in the access log as configured, or `app` itself when it is off."""
    logger = configure(destination, fmt)
    return app if logger is None else AccessLog(app, logger, fmt, capabilities)
