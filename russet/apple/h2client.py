"""A lean asyncio HTTP/2 client for APNs: many small POSTs over a few long-lived TLS connections.

General HTTP/2 libraries cost hundreds of microseconds per request in Python; APNs needs only a
sliver of the protocol, so this client does that sliver directly (RFC 9113, RFC 7541):

* TLS through asyncio with ALPN ``h2`` (the context comes from the gateway, which sets trust and
  the client identity); connection preface, SETTINGS, and requests only once the server's
  SETTINGS arrived, so its MAX_CONCURRENT_STREAMS is respected from the first stream on.
* Requests are HEADERS + DATA(END_STREAM). The header block is precomputed per `HeaderTemplate`
  with literal-without-indexing encodings (no dynamic table on our side, hence no encoder
  state), so a request only adds its ``:path`` literal and its body.
* Responses: HEADERS/CONTINUATION decoded with hpack's Decoder (a fast path handles blocks that
  cannot touch the dynamic table), DATA with connection- and stream-level WINDOW_UPDATEs,
  SETTINGS and PING acknowledged, WINDOW_UPDATE honoured for what we send, RST_STREAM and
  GOAWAY: unanswered requests are sent again on another connection (a push is idempotent).

Only `russet.apple` may open connections to Apple; the gateway hands these clients out.
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
import struct
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import hpack

log = logging.getLogger("russet.apple.h2")

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = (
    range(10)
)
END_STREAM = ACK = 0x1
END_HEADERS = 0x4
PADDED = 0x8
PRIORITY_FLAG = 0x20
REFUSED_STREAM = 0x7
MAX_STREAM_ID = 2**31 - 1

_FRAME = struct.Struct(">HBBBI")  # length (high 16 bits, low 8 bits), type, flags, stream id
_U32 = struct.Struct(">I")
OUR_FRAME_SIZE = 16384  # we never raise SETTINGS_MAX_FRAME_SIZE
OUR_STREAM_WINDOW = 1 << 20
OUR_CONNECTION_WINDOW = 1 << 24
MAX_RESPONSE_BODY = 1 << 16  # APNs answers carry a short JSON reason at most
DEFAULT_MAX_STREAMS = 100


def frame(kind: int, flags: int, stream_id: int, payload: bytes = b"") -> bytes:
    n = len(payload)
    return _FRAME.pack(n >> 8, n & 0xFF, kind, flags, stream_id) + payload


# -- HPACK, encoding side: literals without indexing only ------------------------------------------

_STATIC_NAMES = {
    name: index
    for index, (name, _) in reversed(list(enumerate(hpack.table.HeaderTable.STATIC_TABLE, start=1)))
}
_STATIC_FIELDS = {field: index for index, field in enumerate(hpack.table.HeaderTable.STATIC_TABLE, start=1)}


def _integer(value: int, prefix_bits: int, flags: int = 0) -> bytes:
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([flags | value])
    out = bytearray([flags | limit])
    value -= limit
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _string(value: bytes) -> bytes:
    return _integer(len(value), 7) + value  # never Huffman: cheaper to make, a few bytes longer


def encode_field(name: bytes, value: bytes) -> bytes:
    """One header field: fully indexed when the static table has it, else a literal without
    indexing (by static name index when there is one), so no dynamic-table state is ever made."""
    index = _STATIC_FIELDS.get((name, value))
    if index is not None:
        return _integer(index, 7, 0x80)
    name_index = _STATIC_NAMES.get(name)
    if name_index is not None:
        return _integer(name_index, 4) + _string(value)
    return b"\x00" + _string(name) + _string(value)


_PATH_INDEX = _STATIC_NAMES[b":path"]


def encode_path(path: bytes) -> bytes:
    if len(path) < 0x7F:
        return bytes((_PATH_INDEX, len(path))) + path
    return _integer(_PATH_INDEX, 4) + _string(path)


class HeaderTemplate:
    """The constant part of a request's header block; only ``:path`` is added per request."""

    __slots__ = ("prefix", "suffix")

    def __init__(self, authority: str, headers: Sequence[tuple[str, str]], method: str = "POST") -> None:
        self.prefix = (
            encode_field(b":method", method.encode())
            + encode_field(b":scheme", b"https")
            + encode_field(b":authority", authority.encode())
        )
        self.suffix = b"".join(encode_field(k.lower().encode(), v.encode()) for k, v in headers)


# -- HPACK, decoding side ------------------------------------------------------------------------

_STATIC = [(b"", b"")] + [(n, v) for n, v in hpack.table.HeaderTable.STATIC_TABLE]


def _fast_decode(block: bytes) -> list[tuple[bytes, bytes]] | None:
    """Decode a block made only of static-table references and plain (non-Huffman) literals
    without indexing; None for anything else, which then goes to hpack's Decoder. Such blocks
    leave the dynamic table untouched, so skipping the Decoder keeps it in step."""
    out = []
    i, n = 0, len(block)
    while i < n:
        byte = block[i]
        if byte & 0x80:
            index = byte & 0x7F
            if index == 0 or index == 0x7F or index >= len(_STATIC):
                return None
            out.append(_STATIC[index])
            i += 1
            continue
        if byte & 0xE0:  # incremental indexing, table size update: touches decoder state
            return None
        index = byte & 0x0F
        i += 1
        if index == 0x0F:
            if i >= n or block[i] & 0x80:
                return None
            index = 0x0F + block[i]
            i += 1
        if index:
            if index >= len(_STATIC):
                return None
            name = _STATIC[index][0]
        else:
            if i >= n or block[i] & 0x80 or block[i] == 0x7F:
                return None
            length = block[i]
            name = block[i + 1 : i + 1 + length]
            i += 1 + length
        if i >= n or block[i] & 0x80 or block[i] == 0x7F:
            return None
        length = block[i]
        end = i + 1 + length
        if end > n:
            return None
        out.append((name, block[i + 1 : end]))
        i = end
    return out


# -- requests and errors -------------------------------------------------------------------------


class H2Error(Exception):
    """A request got no HTTP answer (connection failed, reset, closed by GOAWAY...)."""


class ConnectFailed(H2Error):
    pass


class Request:
    """One request and, once done, its answer (``status``, ``headers``, ``body``) or ``error``."""

    __slots__ = (
        "template",
        "path",
        "body",
        "status",
        "headers",
        "data",
        "error",
        "attempts",
        "batch",
        "done",
    )

    def __init__(self, template: HeaderTemplate, path: bytes, body: bytes) -> None:
        self.template = template
        self.path = path
        self.body = body
        self.status = 0
        self.headers: dict[bytes, bytes] = {}
        self.data: bytearray | None = None
        self.error: Exception | None = None
        self.attempts = 0
        self.batch: _Batch | None = None
        self.done = False

    def json(self) -> Any:
        if not self.data:
            return None
        try:
            return json.loads(self.data)
        except ValueError:
            return None


class _Batch:
    __slots__ = ("remaining", "future")

    def __init__(self, count: int, future: asyncio.Future[None]) -> None:
        self.remaining = count
        self.future = future


# -- one connection --------------------------------------------------------------------------------


class _Connection(asyncio.Protocol):
    def __init__(self, client: H2Client) -> None:
        self.client = client
        self.loop = asyncio.get_running_loop()
        self.transport: Any = None
        self.ready: asyncio.Future[None] = self.loop.create_future()
        self.buffer = bytearray()
        self.decoder = hpack.Decoder()
        self.decoder.max_allowed_table_size = 65536
        self.out: list[bytes] = []
        self.streams: dict[int, Request] = {}
        self.queue: deque[Request] = deque()
        self.next_id = 1
        self.max_streams = DEFAULT_MAX_STREAMS
        self.peer_initial_window = 65535
        self.send_window = 65535
        self.stream_credit: dict[int, int] = {}
        self.blocked: deque[tuple[int, bytes]] = deque()  # DATA waiting for the peer's window
        self.received_unacked = 0
        self.stream_received: dict[int, int] = {}
        self.block_stream = 0
        self.block = bytearray()
        self.block_ends_stream = False
        self.goaway_last: int | None = None
        self.goaway_reason: str | None = None
        self.closed = False

    # -- state ------------------------------------------------------------------------------

    @property
    def usable(self) -> bool:
        return not self.closed and self.goaway_last is None and self.next_id < MAX_STREAM_ID - 2

    def load(self) -> int:
        return len(self.streams) + len(self.queue)

    # -- lifecycle ----------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        ssl_object = transport.get_extra_info("ssl_object")
        protocol = ssl_object.selected_alpn_protocol() if ssl_object is not None else None
        if protocol != "h2":
            self.ready.set_exception(ConnectFailed(f"the server did not agree to HTTP/2 (ALPN {protocol!r})"))
            transport.close()
            return
        settings = struct.pack(">HIHIHI", 0x2, 0, 0x4, OUR_STREAM_WINDOW, 0x3, 1000)  # no push; windows
        transport.write(  # type: ignore[attr-defined]
            PREFACE
            + frame(SETTINGS, 0, 0, settings)
            + frame(WINDOW_UPDATE, 0, 0, _U32.pack(OUR_CONNECTION_WINDOW - 65535))
        )

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.ready.done():
            self.ready.set_exception(ConnectFailed(f"connection closed during setup: {exc or 'EOF'}"))
        self.client._lost(self)
        reason = self.goaway_reason or (str(exc) if exc else "connection closed")
        failed = list(self.streams.values())
        self.streams.clear()
        queued = list(self.queue)
        self.queue.clear()
        for req in failed:
            self.client._retry(req, H2Error(f"no answer before the connection closed ({reason})"), True)
        for req in queued:
            self.client._retry(req, H2Error(f"not sent: connection closed ({reason})"), False)

    def close(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.close()

    def _fatal(self, message: str, code: int = 0x1) -> None:
        """A protocol error: say so with GOAWAY and drop the connection (its requests are retried)."""
        log.warning("HTTP/2 protocol error from %s: %s", self.client.authority, message)
        if self.transport is not None and not self.closed:
            self.transport.write(frame(GOAWAY, 0, 0, _U32.pack(0) + _U32.pack(code) + message.encode()[:200]))
            self.transport.close()
        self.closed = True

    # -- sending ------------------------------------------------------------------------------

    def submit(self, req: Request) -> None:
        if len(self.streams) < self.max_streams and not self.queue:
            self._start(req)
        else:
            self.queue.append(req)

    def _start(self, req: Request) -> None:
        sid = self.next_id
        self.next_id += 2
        self.streams[sid] = req
        template = req.template
        block = template.prefix + encode_path(req.path) + template.suffix
        n = len(block)
        body = req.body
        if not body:
            self.out.append(_FRAME.pack(n >> 8, n & 0xFF, HEADERS, END_HEADERS | END_STREAM, sid) + block)
            return
        self.out.append(_FRAME.pack(n >> 8, n & 0xFF, HEADERS, END_HEADERS, sid) + block)
        size = len(body)
        if not self.blocked and size <= self.send_window and size <= self.peer_initial_window:
            self.send_window -= size
            self.out.append(_FRAME.pack(size >> 8, size & 0xFF, DATA, END_STREAM, sid) + body)
        else:
            self.blocked.append((sid, body))

    def _pump(self) -> None:
        """Send what flow control and the stream limit now allow, then write everything at once."""
        blocked = self.blocked
        while blocked:
            sid, body = blocked[0]
            if sid not in self.streams:
                blocked.popleft()
                continue
            size = len(body)
            if size > self.send_window or size > self.peer_initial_window + self.stream_credit.get(sid, 0):
                break
            blocked.popleft()
            self.stream_credit.pop(sid, None)
            self.send_window -= size
            self.out.append(_FRAME.pack(size >> 8, size & 0xFF, DATA, END_STREAM, sid) + body)
        queue = self.queue
        while queue and len(self.streams) < self.max_streams and self.usable:
            self._start(queue.popleft())
        self.flush()

    def flush(self) -> None:
        if self.out and not self.closed:
            self.transport.write(b"".join(self.out))
        self.out.clear()

    # -- receiving ----------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self.closed:
            return
        buffer = self.buffer
        buffer += data
        offset, end = 0, len(buffer)
        while end - offset >= 9:
            high, low, kind, flags, sid = _FRAME.unpack_from(buffer, offset)
            length = (high << 8) | low
            if length > OUR_FRAME_SIZE:
                self._fatal("frame larger than our SETTINGS_MAX_FRAME_SIZE", 0x6)
                return
            if end - offset - 9 < length:
                break
            payload = bytes(buffer[offset + 9 : offset + 9 + length])
            offset += 9 + length
            self._frame(kind, flags, sid & 0x7FFFFFFF, payload)
            if self.closed:
                return
        del buffer[:offset]
        if self.received_unacked >= OUR_CONNECTION_WINDOW // 2:
            self.out.append(frame(WINDOW_UPDATE, 0, 0, _U32.pack(self.received_unacked)))
            self.received_unacked = 0
        self._pump()
        if self.goaway_last is not None and not self.streams:
            self.transport.close()

    def _frame(self, kind: int, flags: int, sid: int, payload: bytes) -> None:
        if self.block_stream and kind != CONTINUATION:
            self._fatal("header block interrupted before its CONTINUATION")
            return
        if kind == HEADERS:
            if flags & PADDED:
                if not payload or payload[0] >= len(payload):
                    self._fatal("bad padding")
                    return
                payload = payload[1 : len(payload) - payload[0]]
            if flags & PRIORITY_FLAG:
                payload = payload[5:]
            if not flags & END_HEADERS:
                self.block_stream, self.block_ends_stream = sid, bool(flags & END_STREAM)
                self.block[:] = payload
                return
            self._headers(sid, payload, bool(flags & END_STREAM))
        elif kind == DATA:
            self._data(flags, sid, payload)
        elif kind == CONTINUATION:
            if sid != self.block_stream or not sid:
                self._fatal("unexpected CONTINUATION")
                return
            self.block += payload
            if len(self.block) > 1 << 20:
                self._fatal("header block too large")
                return
            if flags & END_HEADERS:
                block = bytes(self.block)
                self.block.clear()
                self.block_stream = 0
                self._headers(sid, block, self.block_ends_stream)
        elif kind == SETTINGS:
            if not flags & ACK:
                self._settings(payload)
        elif kind == WINDOW_UPDATE:
            if len(payload) != 4:
                self._fatal("WINDOW_UPDATE payload must be 4 bytes", 0x6)
                return
            increment = _U32.unpack(payload)[0] & 0x7FFFFFFF
            if sid == 0:
                self.send_window += increment
            elif sid in self.streams:
                self.stream_credit[sid] = self.stream_credit.get(sid, 0) + increment
        elif kind == PING:
            if not flags & ACK and len(payload) == 8:
                self.out.append(frame(PING, ACK, 0, payload))
        elif kind == RST_STREAM:
            req = self.streams.pop(sid, None)
            self.stream_credit.pop(sid, None)
            self.stream_received.pop(sid, None)
            if req is not None:
                code = _U32.unpack(payload[:4])[0] if len(payload) >= 4 else 0
                self.client._retry(
                    req, H2Error(f"stream reset by the server (error {code})"), code != REFUSED_STREAM
                )
        elif kind == GOAWAY:
            self._goaway(payload)
        elif kind == PUSH_PROMISE:
            self._fatal("PUSH_PROMISE after SETTINGS_ENABLE_PUSH=0")
        # PRIORITY and unknown frame types are ignored (RFC 9113 §5.5).

    def _settings(self, payload: bytes) -> None:
        if len(payload) % 6:
            self._fatal("SETTINGS payload not a multiple of 6", 0x6)
            return
        for offset in range(0, len(payload), 6):
            code, value = struct.unpack_from(">HI", payload, offset)
            if code == 0x3:
                self.max_streams = min(value, 10000)
            elif code == 0x4:
                if value > MAX_STREAM_ID:
                    self._fatal("INITIAL_WINDOW_SIZE above 2^31-1", 0x3)
                    return
                self.peer_initial_window = value
        self.out.append(frame(SETTINGS, ACK, 0))
        if not self.ready.done():
            self.ready.set_result(None)

    def _headers(self, sid: int, block: bytes, ends_stream: bool) -> None:
        headers: Any = _fast_decode(block)
        if headers is None:
            try:  # always decoded, even for a stream we gave up, to keep the table in step
                headers = self.decoder.decode(block, raw=True)
            except hpack.HPACKError as exc:
                self._fatal(f"cannot decode a header block: {exc}", 0x9)
                return
        req = self.streams.get(sid)
        if req is None:
            return
        if not req.status:
            for name, value in headers:
                if name == b":status":
                    req.status = int(value) if value.isdigit() else 0
                else:
                    req.headers[name] = value
            if 100 <= req.status < 200:  # informational: the real answer follows
                req.status = 0
                req.headers.clear()
        if ends_stream:
            self._end(sid, req)

    def _data(self, flags: int, sid: int, payload: bytes) -> None:
        size = len(payload)
        self.received_unacked += size
        if flags & PADDED:
            if not payload or payload[0] >= len(payload):
                self._fatal("bad padding")
                return
            payload = payload[1 : len(payload) - payload[0]]
        req = self.streams.get(sid)
        if req is None:
            return
        if req.data is None:
            req.data = bytearray(payload)
        elif len(req.data) < MAX_RESPONSE_BODY:
            req.data += payload
        if flags & END_STREAM:
            self.stream_received.pop(sid, None)
            self._end(sid, req)
            return
        got = self.stream_received.get(sid, 0) + size
        if got >= OUR_STREAM_WINDOW // 2:
            self.out.append(frame(WINDOW_UPDATE, 0, sid, _U32.pack(got)))
            got = 0
        self.stream_received[sid] = got

    def _end(self, sid: int, req: Request) -> None:
        del self.streams[sid]
        self.stream_credit.pop(sid, None)
        if not req.status:
            self.client._retry(req, H2Error("the stream ended without a status"), True)
            return
        self.client._finish(req)

    def _goaway(self, payload: bytes) -> None:
        if len(payload) < 8:
            self._fatal("GOAWAY payload too short", 0x6)
            return
        last = _U32.unpack_from(payload, 0)[0] & 0x7FFFFFFF
        code = _U32.unpack_from(payload, 4)[0]
        debug = payload[8:]
        try:
            reason = json.loads(debug).get("reason") if debug else None
        except (ValueError, AttributeError):
            reason = None
        self.goaway_last = last
        self.goaway_reason = reason or (debug[:100].decode("latin-1") if debug else f"error {code}")
        self.client.last_goaway = self.goaway_reason
        log.info("%s sent GOAWAY (%s); reconnecting", self.client.authority, self.goaway_reason)
        # Streams above `last` were not processed: send them again elsewhere, as if never sent.
        for sid in [s for s in self.streams if s > last]:
            self.client._retry(self.streams.pop(sid), H2Error(f"GOAWAY: {self.goaway_reason}"), False)
        queued = list(self.queue)
        self.queue.clear()
        for req in queued:
            self.client._retry(req, H2Error(f"GOAWAY: {self.goaway_reason}"), False)


# -- the pool ------------------------------------------------------------------------------------


class H2Client:
    """A few HTTP/2 connections to one origin; `send` runs a batch of requests across them."""

    def __init__(
        self,
        host: str,
        port: int,
        ssl_context: ssl.SSLContext,
        *,
        connections: int = 2,
        connect_timeout: float = 10.0,
        timeout: float = 30.0,
        max_attempts: int = 3,
    ) -> None:
        self.host, self.port = host, port
        self.authority = host if port == 443 else f"{host}:{port}"
        self._ssl = ssl_context
        self._size = max(1, connections)
        self._connect_timeout = connect_timeout
        self._timeout = timeout
        self._max_attempts = max_attempts
        self._connections: list[_Connection] = []
        self._connecting: asyncio.Task[None] | None = None
        self._orphans: list[Request] = []  # to send again once a connection is up
        self._loop: asyncio.AbstractEventLoop | None = None
        self.connections_made = 0
        self.last_goaway: str | None = None
        self.on_connect: Callable[[], None] | None = None

    def template(self, headers: Sequence[tuple[str, str]]) -> HeaderTemplate:
        return HeaderTemplate(self.authority, headers)

    # -- connections ----------------------------------------------------------------------------

    async def _open_one(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancellation that
            # arrives as the awaited step completes, and a cancelled shutdown would then hang.
            async with asyncio.timeout(self._connect_timeout):
                _, conn = await loop.create_connection(
                    lambda: _Connection(self), self.host, self.port, ssl=self._ssl, server_hostname=self.host
                )
            async with asyncio.timeout(self._connect_timeout):
                await conn.ready
        except (OSError, ssl.SSLError, TimeoutError) as exc:
            raise ConnectFailed(f"cannot connect to {self.authority}: {type(exc).__name__}: {exc}") from exc
        self.connections_made += 1
        self._connections.append(conn)

    async def _ensure(self) -> None:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # connections belong to the loop that made them
            self.close()
            self._loop = loop
        live = [c for c in self._connections if c.usable]
        missing = self._size - len(live)
        if missing <= 0:
            return
        results = await asyncio.gather(*(self._open_one() for _ in range(missing)), return_exceptions=True)
        if not any(c.usable for c in self._connections):
            error = next((r for r in results if isinstance(r, BaseException)), None)
            raise error if error is not None else ConnectFailed(f"no usable connection to {self.authority}")

    def _lost(self, conn: _Connection) -> None:
        if conn in self._connections:
            self._connections.remove(conn)

    # -- completion and retries (called by connections) ------------------------------------------

    def _finish(self, req: Request) -> None:
        if req.done:
            return
        req.done = True
        batch = req.batch
        if batch is not None:
            batch.remaining -= 1
            if not batch.remaining and not batch.future.done():
                batch.future.set_result(None)

    def _retry(self, req: Request, error: Exception, counts: bool) -> None:
        if req.done:
            return
        if counts:
            req.attempts += 1
        req.status, req.data = 0, None
        req.headers = {}
        if req.attempts >= self._max_attempts:
            req.error = error
            self._finish(req)
            return
        self._orphans.append(req)
        loop = asyncio.get_running_loop()
        loop.call_soon(self._resend)

    def _resend(self) -> None:
        if not self._orphans:
            return
        orphans, self._orphans = self._orphans, []
        conns = [c for c in self._connections if c.usable]
        if not conns:
            asyncio.ensure_future(self._reconnect_and_send(orphans))
            return
        self._dispatch(orphans, conns)

    async def _reconnect_and_send(self, reqs: list[Request]) -> None:
        try:
            await self._ensure()
        except H2Error as exc:
            for req in reqs:
                self._fail(req, exc)
            return
        self._dispatch(reqs, [c for c in self._connections if c.usable])

    def _fail(self, req: Request, error: Exception) -> None:
        req.error = error
        self._finish(req)

    @staticmethod
    def _dispatch(reqs: list[Request], conns: list[_Connection]) -> None:
        if len(conns) == 1:
            conn = conns[0]
            for req in reqs:
                conn.submit(req)
            conn._pump()
            return
        conns.sort(key=_Connection.load)
        n = len(conns)
        for i, req in enumerate(reqs):
            conns[i % n].submit(req)
        for conn in conns:
            conn._pump()

    # -- the API --------------------------------------------------------------------------------

    async def send(self, reqs: list[Request]) -> None:
        """Send every request and wait for all answers (or errors); never raises for one request."""
        if not reqs:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        batch = _Batch(len(reqs), future)
        for req in reqs:
            req.batch = batch
        try:
            await self._ensure()
        except H2Error as exc:
            for req in reqs:
                self._fail(req, exc)
            return
        self._dispatch(reqs, [c for c in self._connections if c.usable])
        try:
            async with asyncio.timeout(self._timeout):  # not wait_for (see _open_one)
                await asyncio.shield(future)
        except TimeoutError:
            error = H2Error(f"no answer within {self._timeout:g} s")
            for req in reqs:
                if not req.done:
                    self._fail(req, error)
            for conn in list(self._connections):  # a server that stopped answering: start afresh
                if conn.streams:
                    conn.close()

    def close(self) -> None:
        try:
            current: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            current = None
        for conn in list(self._connections):
            if conn.loop is current:
                conn.close()
            elif not conn.loop.is_closed():  # transports are not thread-safe: close on their loop
                conn.loop.call_soon_threadsafe(conn.close)
        self._connections.clear()

    async def aclose(self) -> None:
        self.close()
        await asyncio.sleep(0)
