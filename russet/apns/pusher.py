"""The pusher: wakes devices through APNs so they fetch their queued commands (protocol doc §d).

Every push goes through the gateway: `gateway.check(call)` before anything is sent (a
disconnected APNs connection sends nothing) and one ledger row per field per attempt (Token and
PushMagic about the device, the topic; APNs' apns-id or reason back). The HTTP/2 connections
are the gateway's lean client (`russet.apple.h2client`), presenting the push certificate.

When to push: a request row is written with every enqueue (coalesced per device), on demand
(`push_devices`), and by a periodic sweep for devices with pending commands that have not
connected since their last push (5 minutes, doubling to 12 hours). APNs' answers:

* 200: delivered to APNs.
* 410, 400 BadDeviceToken/DeviceTokenNotForTopic: the token is dead; no push until the device's
  next TokenUpdate.
* 403 (or TopicDisallowed): the certificate is refused: pushing stops (a setting, so every
  worker and the API see it, logged as an error) until another certificate is imported.
* 429, 5xx, no answer: retried with exponential backoff and jitter; other devices go on.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from russet import bulkgc
from russet.apns.certificate import ApnsCertificateError, PushIdentity, push_identity, push_status
from russet.apns.ports import PushStores
from russet.apns.state import CLEAR_DEAD, SET_DEAD, STOP_SETTING, OpenPush, Outcome, PushStateStore, Target
from russet.apple.connections import Disconnected
from russet.apple.gateway import AppleGateway, Attempt, Call, Datum
from russet.apple.h2client import H2Client, HeaderTemplate, Request
from russet.storage.db import utcnow

log = logging.getLogger("russet.apns")

SERVICE = "apns"
CONNECTION = "default"
ENDPOINT = "POST /3/device/{token}"
PURPOSE = "wake the device so it contacts Russet for its queued MDM commands"
CERTIFICATE_REASONS = frozenset(
    {"BadCertificate", "BadCertificateEnvironment", "Forbidden", "TopicDisallowed", "BadTopic"}
)
DEAD_REASONS = frozenset({"Unregistered", "ExpiredToken", "BadDeviceToken", "DeviceTokenNotForTopic"})
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_SAFE_MAGIC = re.compile(r"[A-Za-z0-9._-]+")
# Sent with every push, about the device: their values differ per push (the topic is common).
_PER_PUSH_FIELDS = ("Token", "PushMagic")
_PER_PUSH_DATA = tuple(Datum(name, None) for name in _PER_PUSH_FIELDS)
# Every push body is this with PushMagic filled in (below): the shape the gateway checks.
_BODY_SHAPE = b'{"mdm":""}'
_NOT_ENROLLED = "the enrollment is not active (checked out or re-enrolling)"
_NO_TOKEN = "no push token yet (TokenUpdate)"
_DEAD = "APNs said the token is dead; waiting for a TokenUpdate"
PRODUCTION_URL = "https://api.push.apple.com"
# Told of each batch's outcomes (delivered, token_dead, retrying, failed, stopped, no_token, ...),
# as they are decided; metrics count pushes by result this way. Must be cheap and not raise.
OutcomeObserver = Callable[[Sequence[Outcome]], None]
SANDBOX_URL = "https://api.sandbox.push.apple.com"


@dataclass(frozen=True)
class PushPolicy:
    priority: int = 10
    expiration_seconds: int = 86400  # apns-expiration: APNs keeps the push this long for an offline device
    batch: int = 5000  # requests claimed at once
    poll_seconds: float = 1.0  # how often other processes' requests are looked for
    sweep_seconds: float = 60.0
    sweep_base: float = 300.0  # re-push unanswered devices after 5 min, doubling...
    sweep_cap: float = 12 * 3600.0  # ...up to 12 h
    retry_base: float = 5.0  # 429/5xx/no answer: first retry after 5-10 s, doubling...
    retry_cap: float = 900.0  # ...up to 15-30 min
    max_retries: int = 8  # then the sweep takes over
    lease: float = 300.0  # a claimed request comes back through the sweep after this if never answered
    connections: int = 2
    timeout: float = 30.0


@dataclass(frozen=True)
class Readiness:
    identity: PushIdentity | None
    fingerprint: str | None
    problem: str | None  # no_certificate | stopped | disconnected
    detail: str | None = None


class Pusher:
    def __init__(
        self,
        storage: PushStores,
        open_push: OpenPush,
        gateway: AppleGateway,
        url: str = PRODUCTION_URL,
        policy: PushPolicy | None = None,
    ) -> None:
        self.storage = storage
        self.gateway = gateway
        self.url = url.rstrip("/")
        self.policy = policy or PushPolicy()
        self.state = PushStateStore(storage.engine, open_push)
        self._identity: PushIdentity | None = None
        self._fingerprint: str | None = None
        self._template: tuple[int, str, HeaderTemplate] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self.pushed = 0  # pushes sent by this process (for benchmarks and logs)
        self.stops = 0  # times APNs refused the certificate, seen by this process
        self._observers: list[OutcomeObserver] = []

    def observe(self, observer: OutcomeObserver) -> None:
        """Tell `observer` of every push outcome from now on."""
        self._observers.append(observer)

    def _decided(self, outcomes: Sequence[Outcome]) -> None:
        for observer in self._observers:
            observer(outcomes)

    # -- readiness: certificate, stop flag, connection -------------------------------------------

    def readiness(self) -> Readiness:
        """Whether pushes may go out now (blocking: reads the database)."""
        if not self.gateway.connections.is_active(SERVICE, CONNECTION):
            return Readiness(None, None, "disconnected", "the APNs connection is disconnected")
        fingerprint = self.state.certificate_fingerprint()
        if fingerprint is None:
            self._identity = self._fingerprint = None
            return Readiness(None, None, "no_certificate", "no APNs push certificate is installed")
        if fingerprint != self._fingerprint:
            try:
                self._identity = push_identity(self.storage)
            except ApnsCertificateError as exc:
                return Readiness(None, fingerprint, "no_certificate", str(exc))
            self._fingerprint = fingerprint
        stopped = self.stopped()
        if stopped is not None and stopped.get("fingerprint") == fingerprint:
            return Readiness(
                self._identity,
                fingerprint,
                "stopped",
                f"APNs refused the push certificate ({stopped.get('status')} {stopped.get('reason')}); "
                "import a valid one with `russet apns import`",
            )
        return Readiness(self._identity, fingerprint, None)

    def stopped(self) -> dict[str, Any] | None:
        raw = self.storage.settings.get(STOP_SETTING)
        if not raw:
            return None
        try:
            value = json.loads(raw)
        except ValueError:
            return None
        return value if isinstance(value, dict) else None

    def _stop(self, fingerprint: str | None, status: int | None, reason: str | None) -> None:
        log.error(
            "APNs refused the push certificate (%s %s): pushing is stopped until a valid certificate "
            "is imported (`russet apns import`)",
            status,
            reason,
        )
        self.storage.settings.set(
            STOP_SETTING,
            json.dumps(
                {"fingerprint": fingerprint, "status": status, "reason": reason, "at": utcnow().isoformat()}
            ),
        )

    # -- sending ---------------------------------------------------------------------------------

    def _client(self, identity: PushIdentity) -> H2Client:
        probe = Call(SERVICE, CONNECTION, ENDPOINT, PURPOSE)
        return self.gateway.http2_client(
            probe,
            self.url,
            (identity.certificate, identity.key),
            connections=self.policy.connections,
            timeout=self.policy.timeout,
        )

    def _headers(self, call: Call, client: H2Client, topic: str) -> HeaderTemplate:
        """The push's header block, made (and checked by the gateway) once a second per topic."""
        second = int(time.time())
        cached = self._template
        if cached is not None and cached[0] == second and cached[1] == topic:
            return cached[2]
        template = self.gateway.push_template(
            call,
            client,
            [
                ("apns-push-type", "mdm"),
                ("apns-topic", topic),
                ("apns-priority", str(self.policy.priority)),
                ("apns-expiration", str(second + self.policy.expiration_seconds)),
                ("content-type", "application/json"),
            ],
            _BODY_SHAPE,
        )
        self._template = (second, topic, template)
        return template

    def _sweep_delay(self, count: int) -> timedelta:
        return timedelta(seconds=min(self.policy.sweep_cap, self.policy.sweep_base * 2 ** min(count, 30)))

    def _retry_delay(self, attempt: int) -> timedelta:
        step = min(self.policy.retry_cap, self.policy.retry_base * 2 ** min(attempt - 1, 30))
        return timedelta(seconds=step + random.uniform(0, step))  # exponential, plus jitter

    async def _push(self, targets: Sequence[Target], ready: Readiness) -> list[Outcome]:
        """Push `targets` (already claimed) and store every outcome; returns them."""
        now, outcomes = await self._send(targets, ready)
        await asyncio.to_thread(self.state.write, outcomes, now)
        return outcomes

    async def _send(self, targets: Sequence[Target], ready: Readiness) -> tuple[datetime, list[Outcome]]:
        """`_send_batch`, its outcomes told to the observers."""
        now, outcomes = await self._send_batch(targets, ready)
        if self._observers:
            self._decided(outcomes)
        return now, outcomes

    async def _send_batch(
        self, targets: Sequence[Target], ready: Readiness
    ) -> tuple[datetime, list[Outcome]]:
        """Push `targets` (already claimed) and record them in the ledger; returns the outcomes
        for the caller to store.

        A batch is one shape of call (same endpoint, fields and topic), so the gateway checks it
        once before anything is sent and records it in columns: per push only the values differ.
        """
        now = utcnow()
        outcomes: list[Outcome] = []
        skip = outcomes.append

        if ready.problem is not None or ready.identity is None:
            problem, detail = ready.problem or "no_certificate", ready.detail
            again = ready.problem != "disconnected"  # kept requested, except for a deliberate disconnect
            return now, [Outcome(t.enrollment_id, problem, detail, request=again) for t in targets]

        identity = ready.identity
        topic = identity.topic
        call = Call(SERVICE, CONNECTION, ENDPOINT, PURPOSE, (Datum("topic", topic),))
        try:
            self.gateway.check(replace(call, sent=(*_PER_PUSH_DATA, *call.sent)))
        except Disconnected as exc:
            return now, [Outcome(t.enrollment_id, "disconnected", str(exc)) for t in targets]
        client = self._client(identity)
        template = self._headers(call, client, topic)
        sending: list[tuple[Target, Request]] = []
        for target in targets:
            token, magic = target.token, target.magic
            if not target.enabled:
                skip(Outcome(target.enrollment_id, "not_enrolled", _NOT_ENROLLED))
            elif not token or not magic:
                skip(Outcome(target.enrollment_id, "no_token", _NO_TOKEN))
            elif target.token_dead:
                skip(Outcome(target.enrollment_id, "token_dead", _DEAD))
            else:
                body = (
                    b'{"mdm":"' + magic.encode() + b'"}'
                    if _SAFE_MAGIC.fullmatch(magic)
                    else json.dumps({"mdm": magic}, separators=(",", ":")).encode()
                )
                sending.append((target, Request(template, b"/3/device/" + token.encode(), body)))

        if sending:
            await client.send([r for _, r in sending])
            self.pushed += len(sending)

        ledger: list[Attempt] = []
        record = ledger.append
        add = outcomes.append
        stop: tuple[int | None, str | None] | None = None
        max_retries = self.policy.max_retries
        sweeps: dict[int, datetime] = {}
        for target, req in sending:
            status: int | None = req.status or None
            apns_id_raw = req.headers.get(b"apns-id")
            apns_id = apns_id_raw.decode("latin-1")[:100] if apns_id_raw else None
            reason: str | None = None
            device = target.device_id
            values = (target.token, target.magic)
            if req.error is not None:
                reason = str(req.error)[:200]
                record((device, values, status, apns_id, ()))
            elif status == 200:
                record((device, values, status, apns_id, (("apns-id", apns_id),) if apns_id else ()))
                count = target.sweep_count
                next_sweep = sweeps.get(count)
                if next_sweep is None:
                    next_sweep = sweeps[count] = now + self._sweep_delay(count)
                eid = target.enrollment_id
                add(Outcome(eid, "delivered", None, True, 200, apns_id, 0, None, CLEAR_DEAD, next_sweep))
                continue
            else:
                answer = req.json()
                reason = answer.get("reason") if isinstance(answer, dict) else None
                reason = str(reason)[:200] if reason is not None else None
                record((device, values, status, apns_id, (("reason", reason),) if reason else ()))
            eid = target.enrollment_id
            if status == 410 or reason in DEAD_REASONS:
                add(Outcome(eid, "token_dead", reason, True, status, apns_id, dead=SET_DEAD))
            elif status == 403 or reason in CERTIFICATE_REASONS:
                add(Outcome(eid, "stopped", reason, True, status, apns_id, target.attempts, request=True))
                stop = (status, reason)
            elif status is None or status in RETRY_STATUSES:
                attempts = target.attempts + 1
                if attempts > max_retries:
                    sweep = now + self._sweep_delay(target.sweep_count)
                    add(Outcome(eid, "failed", reason, True, status, apns_id, next_sweep=sweep))
                else:
                    retry = now + self._retry_delay(attempts)
                    add(
                        Outcome(eid, "retrying", reason, True, status, apns_id, attempts, retry, request=True)
                    )
            else:
                sweep = now + self._sweep_delay(target.sweep_count)
                add(Outcome(eid, "failed", reason, True, status, apns_id, next_sweep=sweep))
        if ledger:
            self.gateway.record_alike(call, _PER_PUSH_FIELDS, ledger)
        if stop is not None:
            self.stops += 1
            await asyncio.to_thread(self._stop, ready.fingerprint, *stop)
        return now, outcomes

    # -- on demand -----------------------------------------------------------------------------

    async def push_devices(self, enrollment_ids: Sequence[str]) -> list[dict[str, Any]]:
        """Push these enrollments now (ignoring backoff); returns each one's outcome."""
        ids = list(dict.fromkeys(enrollment_ids))
        targets = await asyncio.to_thread(self.state.targets, ids)
        ready = await asyncio.to_thread(self.readiness)
        outcomes = await self._push(targets, ready)
        results = {
            o.enrollment_id: {
                "device": o.enrollment_id,
                "outcome": o.outcome,
                "pushed": o.pushed,
                "status": o.status,
                "reason": o.reason,
                "apns_id": o.apns_id,
                "retry_at": _iso(o.retry_at),
            }
            for o in outcomes
        }
        return [
            results.get(i)
            or {"device": i, "outcome": "unknown_device", "pushed": False, "status": None, "reason": None}
            for i in ids
        ]

    # -- the background loop --------------------------------------------------------------------

    def wake(self) -> None:
        """Look for requests now (thread-safe; a no-op when no loop runs in this process)."""
        loop, event = self._loop, self._wake
        if loop is not None and event is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(event.set)

    async def drain(self) -> int:
        """Claim one batch of due requests and push it; returns how many were claimed."""
        ready = await asyncio.to_thread(self.readiness)
        if ready.problem is not None:
            return 0  # requests stay until pushing is possible again
        now = utcnow()
        targets = await asyncio.to_thread(
            self.state.claim, self.policy.batch, now, timedelta(seconds=self.policy.lease)
        )
        if targets:
            await self._push(targets, ready)
        return len(targets)

    async def drain_all(self) -> int:
        """Drain every due request: the next batch is claimed while the current one is in flight,
        and a batch's outcomes are stored while the next one is pushed (batches are disjoint)."""
        ready = await asyncio.to_thread(self.readiness)
        if ready.problem is not None:
            return 0
        lease = timedelta(seconds=self.policy.lease)

        def claim() -> list[Target]:
            return self.state.claim(self.policy.batch, utcnow(), lease)

        with bulkgc.relaxed():  # a backlog allocates a lot; see russet.bulkgc
            total = 0
            writing: asyncio.Future[None] | None = None
            upcoming = asyncio.ensure_future(asyncio.to_thread(claim))
            try:
                while targets := await upcoming:
                    total += len(targets)
                    upcoming = asyncio.ensure_future(asyncio.to_thread(claim))
                    stops = self.stops
                    now, outcomes = await self._send(targets, ready)
                    if writing is not None:
                        await writing  # one batch's outcomes at a time, in order
                    writing = asyncio.ensure_future(asyncio.to_thread(self.state.write, outcomes, now))
                    if self.stops != stops:  # APNs refused the certificate: hand the prefetched batch back
                        held = await upcoming
                        if held:
                            await self._push(
                                held, replace(ready, problem="stopped", detail="APNs refused the certificate")
                            )
                        break
            finally:
                if writing is not None:
                    await writing
        return total

    async def sweep(self, now: datetime | None = None) -> int:
        count = await asyncio.to_thread(self.state.sweep, now or utcnow())
        if count:
            log.info("sweep: re-pushing %d devices with pending commands that have not connected", count)
        return count

    def _idle_wait(self) -> float:
        due = self.state.next_retry()
        if due is None:
            return self.policy.poll_seconds
        return max(0.01, min(self.policy.poll_seconds, (due - utcnow()).total_seconds()))

    async def run(self, *, sweep: bool = True) -> None:
        """Drain requests promptly and sweep periodically, until cancelled.

        `sweep=False` leaves the sweep to someone else: the server runs it as a periodic task
        once across all its processes (`Russet.tasks()`), while every process drains (claims
        are per request row, so two processes never push the same one).
        """
        self._loop = asyncio.get_running_loop()
        self._wake = wake = asyncio.Event()
        last_sweep = 0.0
        while True:
            wake.clear()
            busy = False
            wait = self.policy.poll_seconds
            try:
                busy = await self.drain_all() > 0
                if sweep and time.monotonic() - last_sweep >= self.policy.sweep_seconds:
                    last_sweep = time.monotonic()
                    busy = await self.sweep() > 0 or busy
                if not busy:
                    wait = await asyncio.to_thread(self._idle_wait)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("APNs push loop failed; trying again")
                busy = False
            if busy:
                continue
            # Not asyncio.wait_for: on Python 3.11 it swallows a cancellation that arrives as the
            # wait ends (a wake-up and a shutdown together), and this loop would never stop.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await wake.wait()

    # -- status --------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        ready = self.readiness()
        stopped = self.stopped()
        return {
            "url": self.url,
            "connection": "disconnected" if ready.problem == "disconnected" else "active",
            "pushing": ready.problem is None,
            "problem": ready.problem,
            "detail": ready.detail,
            "stopped": ready.problem == "stopped",
            "stopped_because": stopped if ready.problem == "stopped" else None,
            "certificate": push_status(self.storage),
            **self.state.counts(),
        }


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()
