"""Calls to Apple's device assignment API, every one through the gateway (§e.2–e.7).

A session comes from an OAuth 1.0a HMAC-SHA1 signed `GET /session` (oauthlib computes the
header) and is sent as `X-ADM-Auth-Session` with `X-Server-Protocol-Version` on every call. A 401,
or a 403 whose body is FORBIDDEN, means the session ended: a new one is opened and the call
retried once. `GET /session` is signed afresh for each attempt (Apple refuses a reused nonce), so
the gateway's own retries are off for it. Throttling (429, or a THROTTLED body) is waited out
briefly here; a longer wait becomes `Throttled` with the time Apple named, for the caller to
resume from its saved cursor.

Every field Apple returns is recorded with `gateway.received`; device fields carry the serial
number as their subject.
"""

from __future__ import annotations

import asyncio
import json
import random
import weakref
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from oauthlib import oauth1

from russet.abm.errors import AppleError, AppleFailed, CursorError, ProtocolError, Throttled
from russet.abm.records import (
    DevicePage,
    DeviceResults,
    error_code,
    parse_account,
    parse_device_page,
    parse_device_results,
)
from russet.abm.token import ServerToken
from russet.apple import bounded_json
from russet.apple.connection.client import AppleClient, Reply, decode_json, rejected_or_failed
from russet.apple.gateway import RETRY_STATUSES, AppleGateway, Datum

PROTOCOL_VERSION = "10"  # §e.9: per-device THROTTLED (≥9) and retry_after_seconds (≥10) are handled
JSON_TYPE = "application/json;charset=UTF8"
SESSION_ATTEMPTS = 3
THROTTLE_ATTEMPTS = 3
CURSOR_CODES = frozenset({"INVALID_CURSOR", "EXPIRED_CURSOR", "EXHAUSTED_CURSOR", "CURSOR_REQUIRED"})

# Sessions outlive one client (a CLI command, a sync run) but not the gateway that opened them.
_sessions: weakref.WeakKeyDictionary[AppleGateway, dict[str, str]] = weakref.WeakKeyDictionary()


def forget_session(gateway: AppleGateway, name: str) -> None:
    _sessions.get(gateway, {}).pop(name, None)


class AbmClient(AppleClient):
    service = "abm"
    label = "ABM"
    json_type = JSON_TYPE

    def __init__(
        self,
        gateway: AppleGateway,
        name: str,
        token: ServerToken,
        base_url: str,
        *,
        throttle_wait: float = 60.0,
        backoff: float = 5.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        super().__init__(gateway, name, base_url, sleep=sleep)
        self._token = token
        self._throttle_wait = throttle_wait  # longest wait done inside a call; beyond it, Throttled
        self._backoff = backoff  # first wait when Apple throttles without saying how long

    # -- session --------------------------------------------------------------------------------

    @property
    def _session(self) -> str | None:
        return _sessions.get(self._gateway, {}).get(self.name)

    @_session.setter
    def _session(self, value: str | None) -> None:
        sessions = _sessions.setdefault(self._gateway, {})
        if value is None:
            sessions.pop(self.name, None)
        else:
            sessions[self.name] = value

    async def open_session(self) -> str:
        t = self._token
        call = self._call(
            "GET /session",
            "open a session with the server token",
            [Datum("server token", t.consumer_key), Datum("server token", t.access_token)],
        )
        url = f"{self._base}/session"
        for attempt in range(1, SESSION_ATTEMPTS + 1):
            signer = oauth1.Client(
                t.consumer_key,
                client_secret=t.consumer_secret,
                resource_owner_key=t.access_token,
                resource_owner_secret=t.access_secret,
                signature_method=oauth1.SIGNATURE_HMAC_SHA1,
                realm="ADM",
            )
            _, signed, _ = signer.sign(url, http_method="GET")
            headers = {**signed, "X-Server-Protocol-Version": PROTOCOL_VERSION}
            response = await self._send(call, "GET", url, headers=headers, retry=False)
            if response.status_code in RETRY_STATUSES and attempt < SESSION_ATTEMPTS:
                await self._sleep(self._wait(response, attempt))
                continue
            break
        if response.status_code != 200:
            raise self._session_error(response.status_code, response.text)
        try:
            session = bounded_json.loads(response.content)["auth_session_token"]
        except (ValueError, KeyError, TypeError):
            raise ProtocolError("Apple's answer to GET /session has no auth_session_token") from None
        if not isinstance(session, str) or not session:
            raise ProtocolError("Apple's answer to GET /session has no auth_session_token")
        self.record(Reply(call, response), [Datum("session", session)])
        self._session = session
        return session

    # -- one call -------------------------------------------------------------------------------

    async def call(
        self,
        method: str,
        path: str,
        purpose: str,
        *,
        body: Any = None,
        sent: Sequence[Datum] = (),
        decode: bool = True,
    ) -> Reply:
        """Send one request with the session; renew it once if Apple ended it; wait out throttling."""
        endpoint = f"{method} {path.split('?')[0]}"
        renewed = False
        throttled = 0
        while True:
            session = self._session or await self.open_session()
            call = self._call(endpoint, purpose, [Datum("session", session), *sent])
            headers = {"X-ADM-Auth-Session": session, "X-Server-Protocol-Version": PROTOCOL_VERSION}
            response = await self._send(call, method, f"{self._base}{path}", body=body, headers=headers)
            fresh = response.headers.get("x-adm-auth-session")
            if fresh and fresh != session:  # Apple may hand out a new session on any answer
                self._session = fresh
                self.record(Reply(call, response), [Datum("session", fresh)])
            status = response.status_code
            code = error_code(response.text) if status >= 400 else None
            if (status == 401 or (status == 403 and code == "FORBIDDEN")) and not renewed:
                self._session = None
                renewed = True
                continue
            if status == 429 or code == "THROTTLED":
                wait = self._wait(response, throttled + 1)
                if throttled < THROTTLE_ATTEMPTS and wait <= self._throttle_wait:
                    throttled += 1
                    await self._sleep(wait)
                    continue
                raise Throttled(
                    f"Apple is throttling {endpoint} for {self.name!r}; it may be retried after {wait:.0f} s",
                    http_status=status,
                    code=code,
                    retry_at=datetime.now(UTC) + timedelta(seconds=wait),
                )
            if status >= 400:
                raise self._error(endpoint, status, code, renewed)
            return Reply(call, response, decode_json(response.content, endpoint) if decode else None)

    def _wait(self, response: Any, attempt: int) -> float:
        told = response.headers.get("retry-after", "").strip()
        if told.isdigit():
            return float(told)
        base = self._backoff * 2 ** (attempt - 1)
        return base + random.uniform(0, base / 2)

    def _session_error(self, status: int, text: str) -> AppleError:
        code = error_code(text)
        if status == 401:
            why = (
                "Apple refused the server token (expired, revoked or replaced in ABM/ASM); download a new "
                f"token and load it with `russet abm token {self.name} FILE.p7m`"
            )
        elif status == 403 and code == "T_C_NOT_SIGNED":
            why = "the organisation must accept Apple's new terms and conditions in ABM/ASM first"
        elif status == 403:
            why = "the server token lacks permission for this"
        else:
            why = "Apple could not open a session"
        message = f"{self._answered('GET /session', status, code or None)}: {why}"
        return AppleFailed(message, http_status=status, code=code)

    def _error(self, endpoint: str, status: int, code: str | None, renewed: bool) -> AppleError:
        message = self._answered(endpoint, status, code or None)
        if code in CURSOR_CODES:
            return CursorError(message, http_status=status, code=code)
        if status == 401 or (status == 403 and code == "FORBIDDEN"):
            message += " even with a new session" if renewed else ""
        elif code == "T_C_NOT_SIGNED":
            message += ": the organisation must accept Apple's new terms and conditions in ABM/ASM"
        elif code == "ACCESS_DENIED":
            message += ": the server token lacks permission for this"
        elif status == 404:
            message += ": not found"
        return rejected_or_failed(status)(message, http_status=status, code=code)

    # -- endpoints ------------------------------------------------------------------------------

    async def account(self) -> dict[str, Any]:
        reply = await self.call("GET", "/account", "identify the MDM server and its organisation")
        account, data = parse_account(reply.body)
        self.record(reply, data)
        return account

    async def fetch_devices(self, cursor: str | None, limit: int, *, sync: bool) -> Reply:
        """One page of the full listing (`sync=False`) or of the changes since `cursor`, decoded
        but not yet checked: `device_page` checks and records it (CPU work, for a worker thread)."""
        path = "/devices/sync" if sync else "/server/devices"
        body: dict[str, Any] = {"limit": limit}
        sent = [Datum("limit", limit)]
        if cursor:
            body["cursor"] = cursor
            sent.append(Datum("cursor", cursor))
        purpose = (
            "learn which devices were added to, changed in or removed from this MDM server"
            if sync
            else "list the devices assigned to this MDM server"
        )
        return await self.call("POST", path, purpose, body=body, sent=sent)

    def device_page(self, reply: Reply, *, sync: bool) -> DevicePage:
        page = parse_device_page(reply.body, endpoint=reply.call.endpoint, sync=sync)
        self.record(reply, page.data)
        return page

    async def define_profile(self, profile: dict[str, Any]) -> str:
        sent = [
            Datum(name, value if isinstance(value, str) else json.dumps(value))
            for name, value in profile.items()
        ]
        reply = await self.call(
            "POST", "/profile", "define an enrollment profile for devices", body=profile, sent=sent
        )
        results = parse_device_results(reply.body, "POST /profile", [])
        self.record(reply, results.data)
        if not results.profile_uuid:
            raise ProtocolError("Apple's answer to POST /profile has no profile_uuid")
        return results.profile_uuid

    async def assign_profile(self, profile_uuid: str, serials: list[str]) -> DeviceResults:
        sent = [Datum("profile_uuid", profile_uuid), *(Datum("devices", s, s) for s in serials)]
        reply = await self.call(
            "POST",
            "/profile/devices",
            "assign an enrollment profile to devices",
            body={"profile_uuid": profile_uuid, "devices": serials},
            sent=sent,
        )
        results = parse_device_results(reply.body, "POST /profile/devices", serials)
        self.record(reply, results.data)
        return results

    async def remove_profile(self, serials: list[str]) -> DeviceResults:
        reply = await self.call(
            "DELETE",
            "/profile/devices",
            "remove the enrollment profile from devices",
            body={"devices": serials},
            sent=[Datum("devices", s, s) for s in serials],
        )
        results = parse_device_results(reply.body, "DELETE /profile/devices", serials)
        self.record(reply, results.data)
        return results
