"""Calls to Apple's Apps and Books API v2, every one through the gateway (§f).

Each call carries the location's content token as `Authorization: Bearer` (all but `service/config`)
and waits for its turn under the location's `maxRequestPerSecond` (a limiter per process). The
answer is checked before anything is used: an `errorNumber` in any body is an error even under
HTTP 200 (one of Apple's quirks), a 401 is about the token, and a 429 (9646) that outlasted the
gateway's backoff becomes `Throttled`. Once Russet manages a location (`owner_id`), an answer
naming another MDM in `mdmInfo` stops the call: the location was taken over.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import weakref
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from russet.apple import bounded_json
from russet.apple.connection.client import AppleClient, Reply, rejected_or_failed
from russet.apple.gateway import AppleGateway, Datum
from russet.vpp.errors import (
    AppleError,
    ProtocolError,
    TakenOver,
    Throttled,
    TokenRejected,
)
from russet.vpp.token import ContentToken

DEFAULT_PER_SECOND = 15.0  # Apple's documented maxRequestPerSecond until service config says otherwise
PACE = 0.8  # share of Apple's limit Russet uses, so jitter on the way never bunches requests over it

# Apple's error numbers (§f.11) with what they mean for the admin.
MEANINGS: dict[int, str] = {
    9601: "login required: Apple does not accept the content token",
    9602: "invalid argument",
    9603: "internal error at Apple; try again later",
    9609: "registered user not found",
    9610: "licence not found",
    9619: "licence not associated",
    9621: "the content token expired",
    9625: "the content token was revoked (a newer one was downloaded, or the location was removed)",
    9628: "the device is not eligible for this assignment",
    9634: "the service is no longer available",
    9635: "cannot associate the Apple Account with this user",
    9641: "the Apple Account is already associated with another user",
    9644: "the service is in maintenance mode",
    9646: "too many requests for this organisation",
    9650: "page index out of range",
    9700: "too many assets in one request",
    9701: "too many client user ids in one request",
    9702: "too many serial numbers in one request",
    9703: "duplicate assets",
    9704: "duplicate client user ids",
    9705: "duplicate serial numbers",
    9706: "the asset is not revocable",
    9707: "the asset cannot be assigned to devices",
    9708: "unknown eventId",
    9709: "not enough licences",
    9712: "the notification URL must be a valid https URL",
    9716: "a user with that client user id already exists",
    9717: "invalid email address",
    9722: "invalid Authorization header",
    9723: "MDM name, id and metadata are all required",
    9728: "the notification URL is unreachable",
    9729: "the service is temporarily unavailable",
}
TOKEN_ERRORS = frozenset({9601, 9621, 9625, 9722})


def meaning(number: int | None, message: str | None = None) -> str:
    known = MEANINGS.get(number) if number is not None else None
    return known or message or "no reason given"


class RateLimiter:
    """Spaces requests evenly under a rate; thread-safe and usable from any event loop."""

    def __init__(self, per_second: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_second = per_second
        self._clock = clock
        self._next = 0.0
        self._lock = threading.Lock()

    def reserve(self) -> float:
        """Claim the next slot; returns how long to wait for it."""
        with self._lock:
            now = self._clock()
            slot = max(now, self._next)
            self._next = slot + 1.0 / (self.per_second * PACE)
            return slot - now

    async def wait(self, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        delay = self.reserve()
        if delay > 0:
            await sleep(delay)


# One limiter per location, shared by every client of one gateway (one process).
_limiters: weakref.WeakKeyDictionary[AppleGateway, dict[str, RateLimiter]] = weakref.WeakKeyDictionary()


def limiter_for(gateway: AppleGateway, name: str, per_second: float) -> RateLimiter:
    limiters = _limiters.setdefault(gateway, {})
    limiter = limiters.get(name)
    if limiter is None:
        limiter = limiters[name] = RateLimiter(per_second)
    limiter.per_second = per_second  # Apple's limits are dynamic
    return limiter


class VppClient(AppleClient):
    service = "vpp"
    label = "Apps and Books"

    def __init__(
        self,
        gateway: AppleGateway,
        name: str,
        token: ContentToken,
        base_url: str,
        *,
        owner_id: str | None = None,
        per_second: float = DEFAULT_PER_SECOND,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        on_takeover: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        super().__init__(gateway, name, base_url, sleep=sleep)
        self._token = token
        self.owner_id = owner_id
        self._on_takeover = on_takeover
        self.other_owner: dict[str, Any] | None = None
        self._limiter = limiter_for(gateway, name, per_second)

    async def call(
        self,
        method: str,
        path: str,
        purpose: str,
        *,
        params: dict[str, str] | None = None,
        body: Any = None,
        sent: Sequence[Datum] = (),
        auth: bool = True,
    ) -> Reply:
        """One request, paced and checked; the answer's body is a JSON object without errorNumber."""
        endpoint = f"{method} {path}"
        if self.other_owner is not None:
            raise self._taken_over(None)
        data = [Datum("location token", self._token.bearer), *sent] if auth else list(sent)
        call = self._call(endpoint, purpose, data)
        headers = {"Authorization": f"Bearer {self._token.bearer}"} if auth else {}
        await self._limiter.wait(self._sleep)
        response = await self._send(
            call, method, f"{self._base}/{path}", body=body, params=params, headers=headers
        )
        try:
            parsed = bounded_json.loads(response.content) if response.content else None
        except ValueError:
            parsed = None
            if response.status_code < 400:
                raise ProtocolError(f"Apple's answer to {endpoint} is not valid JSON") from None
        number = _error_number(parsed)
        if number is not None or response.status_code >= 300:
            message = parsed.get("errorMessage") if isinstance(parsed, dict) else None
            if number is not None:
                self.record(Reply(call, response, {}), [Datum("error", number)])
            raise self._error(endpoint, response.status_code, number, message)
        if not isinstance(parsed, dict):
            raise ProtocolError(f"Apple's answer to {endpoint} is not a JSON object")
        owner = parsed.get("mdmInfo")
        # Every answer names the location's library and its MDM: recorded here, once per answer.
        about = [Datum("uId", parsed["uId"])] if isinstance(parsed.get("uId"), str) else []
        if isinstance(owner, dict):
            about.append(Datum("mdmInfo", json.dumps(owner, sort_keys=True)))
        if about:
            self.record(Reply(call, response, {}), about)
        if self.owner_id and isinstance(owner, dict) and owner.get("id") not in (None, self.owner_id):
            self.other_owner = owner
            if self._on_takeover is not None:
                self._on_takeover(owner)
            if "eventId" not in parsed:
                raise self._taken_over(response.status_code)
            # Apple took this request: its event is kept and followed; nothing more is sent.
        return Reply(call, response, parsed)

    def _taken_over(self, http_status: int | None) -> TakenOver:
        who = (self.other_owner or {}).get("name")
        return TakenOver(
            f"Apps and Books location {self.name!r} is now managed by another MDM ({who!r}); Russet "
            f"stopped using it. Run `russet vpp add {self.name} FILE.vpptoken --take-over` to manage it "
            "from Russet again",
            http_status=http_status,
            number=None,
        )

    def _error(self, endpoint: str, status: int, number: int | None, message: str | None) -> AppleError:
        text = f"{self._answered(endpoint, status, number)}: {meaning(number, message)}"
        if status == 401 or number in TOKEN_ERRORS:
            return TokenRejected(
                text + f"; download a new content token and load it with `russet vpp add {self.name} "
                "FILE.vpptoken`",
                http_status=status,
                number=number,
            )
        if status == 429 or number == 9646:
            return Throttled(
                text + "; Russet backed off and retried; try again in a minute",
                http_status=status,
                number=number,
            )
        return rejected_or_failed(status)(text, http_status=status, number=number)

    # -- endpoints ------------------------------------------------------------------------------

    async def service_config(self) -> dict[str, Any]:
        reply = await self.call("GET", "service/config", "read Apple's request limits", auth=False)
        limits = reply.body.get("limits")
        if not isinstance(limits, dict):
            raise ProtocolError("Apple's service config has no limits")
        self.record(reply, [Datum("limits", json.dumps(limits, sort_keys=True))])
        return reply.body

    async def client_config(self) -> dict[str, Any]:
        reply = await self.call("GET", "client/config", "learn which MDM manages the location")
        self._record_config(reply)
        return reply.body

    async def set_client_config(
        self, mdm_info: dict[str, str], notification_url: str | None, secret: str | None, types: list[str]
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"mdmInfo": mdm_info}
        sent = [Datum("mdmInfo", json.dumps(mdm_info, sort_keys=True))]
        if notification_url and secret:
            body.update(
                notificationUrl=notification_url, notificationAuthToken=secret, notificationTypes=types
            )
            sent += [
                Datum("notification URL", notification_url),
                Datum("notification auth token", secret),
                *(Datum("notification types", t) for t in types),
            ]
        reply = await self.call(
            "POST", "client/config", "register Russet as the location's MDM", body=body, sent=sent
        )
        self._record_config(reply)
        return reply.body

    def _record_config(self, reply: Reply) -> None:
        data = []
        for key, field in (
            ("locationName", "location name"),
            ("countryISO2ACode", "countryISO2ACode"),
            ("defaultPlatform", "defaultPlatform"),
            ("websiteURL", "websiteURL"),
        ):
            if isinstance(reply.body.get(key), str):
                data.append(Datum(field, reply.body[key]))
        self.record(reply, data)  # uId and mdmInfo: recorded by `call` for every answer

    async def assets_page(self, page_index: int) -> Reply:
        """One page of the location's assets, unchecked (see `russet.vpp.records.asset_page`)."""
        return await self.call(
            "GET",
            "assets",
            "list the location's apps and books with their licence counts",
            params={"pageIndex": str(page_index)},
            sent=[Datum("pageIndex", page_index)],
        )

    async def manage_assets(
        self, action: str, assets: Sequence[tuple[str, str]], serials: Sequence[str], users: Sequence[str]
    ) -> Reply:
        """`assets/associate` or `assets/disassociate`: returns the reply holding the eventId."""
        body: dict[str, Any] = {"assets": [{"adamId": a, "pricingParam": p} for a, p in assets]}
        sent = [d for a, p in assets for d in (Datum("adamId", a), Datum("pricingParam", p))]
        if serials:
            body["serialNumbers"] = list(serials)
            sent += [Datum("serial number", s, s) for s in serials]
        if users:
            body["clientUserIds"] = list(users)
            sent += [Datum("client user id", u, u) for u in users]
        purpose = (
            "assign app and book licences to devices and people"
            if action == "associate"
            else "take licences back from devices and people"
        )
        return await self._event(await self.call("POST", f"assets/{action}", purpose, body=body, sent=sent))

    async def revoke(self, serials: Sequence[str], users: Sequence[str]) -> Reply:
        body: dict[str, Any] = {}
        sent: list[Datum] = []
        if serials:
            body["serialNumbers"] = list(serials)
            sent += [Datum("serial number", s, s) for s in serials]
        if users:
            body["clientUserIds"] = list(users)
            sent += [Datum("client user id", u, u) for u in users]
        purpose = "take back every licence of devices that left management"
        return await self._event(await self.call("POST", "assets/revoke", purpose, body=body, sent=sent))

    async def manage_users(self, action: str, users: Sequence[dict[str, str]]) -> Reply:
        """`users/create`, `users/update` or `users/retire`."""
        sent: list[Datum] = []
        for user in users:
            cuid = user["clientUserId"]
            sent.append(Datum("client user id", cuid, cuid))
            if "email" in user:
                sent.append(Datum("email", user["email"], cuid))
            if "managedAppleId" in user:
                sent.append(Datum("Managed Apple ID", user["managedAppleId"], cuid))
        purpose = {
            "create": "register people for user-based licences",
            "update": "change a licensed person's email or Managed Apple ID",
            "retire": "retire a person and release their licences",
        }[action]
        reply = await self.call("POST", f"users/{action}", purpose, body={"users": list(users)}, sent=sent)
        return await self._event(reply)

    async def _event(self, reply: Reply) -> Reply:
        event_id = reply.body.get("eventId")
        if not isinstance(event_id, str) or not event_id or len(event_id) > 64:
            raise ProtocolError(f"Apple's answer to {reply.call.endpoint} has no eventId")
        self.record(reply, [Datum("eventId", event_id)])
        return reply

    async def status(self, event_id: str) -> Reply:
        """`status?eventId=`, unchecked (see `russet.vpp.records.status_outcome`)."""
        return await self.call(
            "GET",
            "status",
            "learn how an asynchronous licence or user request ended",
            params={"eventId": event_id},
            sent=[Datum("eventId", event_id)],
        )

    async def users(self, client_user_id: str) -> Reply:
        return await self.call(
            "GET",
            "users",
            "read a person's registration state and invitation",
            params={"clientUserId": client_user_id},
            sent=[Datum("client user id", client_user_id, client_user_id)],
        )


def _error_number(parsed: Any) -> int | None:
    if isinstance(parsed, dict) and "errorNumber" in parsed:
        number = parsed["errorNumber"]
        return number if isinstance(number, int) and not isinstance(number, bool) else -1
    return None
