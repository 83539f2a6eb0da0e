"""Fuzzing what Apple sends back: ABM/ASM and Apps and Books answers, notifications, content tokens.

Garbage from "Apple" must end in the feature's own error (AbmError, VppError), which the API
answers with a 4xx/502 and the CLI with one line, never in an uncaught exception.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from russet.abm.errors import ProtocolError as AbmProtocolError
from russet.abm.records import error_code
from russet.vpp.errors import ProtocolError as VppProtocolError
from russet.vpp.errors import TokenError as VppTokenError
from russet.vpp.token import parse_token
from simulators.vpp import make_token
from tests.fuzz_support import FUZZ, encode, json_answers, mutated
from tests.fuzz_targets import (
    ABM_OPERATIONS,
    ABM_SEEDS,
    NOTIFICATION_SEEDS,
    STATUSES,
    VPP_OPERATIONS,
    VPP_SEEDS,
    abm_target,
    notification_target,
    vpp_target,
    vpp_token_target,
)

_ABM_SEED_OF = {"devices": "devices", "sync": "sync", "account": "account", "profile": "profile"}


@st.composite
def abm_case(draw: st.DrawFn) -> tuple[str, int, bytes]:
    operation = draw(st.sampled_from(ABM_OPERATIONS))
    seed = ABM_SEEDS[_ABM_SEED_OF.get(operation, "assign")]
    status = draw(st.sampled_from(STATUSES))
    if status >= 400:
        seed = ABM_SEEDS["error"]
    return operation, status, draw(json_answers(seed))


@FUZZ
@given(abm_case())
def test_fuzz_abm_answers(case: tuple[str, int, bytes]) -> None:
    abm_target(*case)


@FUZZ
@given(json_answers(ABM_SEEDS["session"]))
def test_fuzz_abm_session_answer(body: bytes) -> None:
    abm_target("account", 200, encode(ABM_SEEDS["account"]), session_body=body)


@FUZZ
@given(st.one_of(json_answers(ABM_SEEDS["error"]), st.text(max_size=200).map(str.encode)))
def test_fuzz_abm_error_code(body: bytes) -> None:
    code = error_code(body.decode("utf-8", "replace"))
    assert code is None or (isinstance(code, str) and len(code) <= 100)


@st.composite
def vpp_case(draw: st.DrawFn) -> tuple[str, int, bytes]:
    operation = draw(st.sampled_from(VPP_OPERATIONS))
    seed_name = {"associate": "event"}.get(operation, operation)
    status = draw(st.sampled_from(STATUSES))
    # Apple also puts an errorNumber in answers under HTTP 200.
    error = status >= 400 or draw(st.integers(0, 9)) == 0
    seed = VPP_SEEDS["error"] if error else VPP_SEEDS[seed_name]
    return operation, status, draw(json_answers(seed))


@FUZZ
@given(vpp_case())
def test_fuzz_vpp_answers(case: tuple[str, int, bytes]) -> None:
    vpp_target(*case)


@FUZZ
@given(st.sampled_from(NOTIFICATION_SEEDS).flatmap(json_answers))
def test_fuzz_vpp_notifications(body: bytes) -> None:
    notification_target(body)


VPP_TOKEN = make_token("Example Org", datetime.now(UTC) + timedelta(days=300)).encode()


def _token_of(fields: object) -> bytes:
    return base64.b64encode(encode(fields))


@FUZZ
@given(
    st.one_of(
        mutated(VPP_TOKEN),
        json_answers(json.loads(base64.b64decode(VPP_TOKEN))).map(base64.b64encode),
        st.binary(max_size=300),
    )
)
def test_fuzz_vpp_content_token(data: bytes) -> None:
    vpp_token_target(data)


# -- regressions: each was an uncaught exception the fuzzers found -----------------------------------

DEEP = b"[" * 100_000 + b"]" * 100_000


@pytest.mark.parametrize("operation", ["account", "devices"])
def test_deeply_nested_abm_answer_is_a_protocol_error(operation: str) -> None:
    with pytest.raises(AbmProtocolError, match="nested"):
        abm_target_strict(operation, 200, DEEP)


def test_deeply_nested_abm_session_answer_is_a_protocol_error() -> None:
    with pytest.raises(AbmProtocolError, match="auth_session_token"):
        abm_target_strict("account", 200, b"{}", session_body=DEEP)


def test_deeply_nested_abm_error_body_still_gives_an_apple_error() -> None:
    assert error_code(DEEP.decode()) is None


def test_deeply_nested_vpp_answer_is_a_protocol_error() -> None:
    with pytest.raises(VppProtocolError, match="not valid JSON"):
        vpp_target_strict("client_config", 200, DEEP)


def test_deeply_nested_notification_is_a_protocol_error() -> None:
    from russet.vpp.records import parse_notification

    with pytest.raises(VppProtocolError, match="nested"):
        parse_notification(DEEP)


def test_deeply_nested_content_token_is_a_token_error() -> None:
    with pytest.raises(VppTokenError, match="corrupt"):
        parse_token(base64.b64encode(b"[" * 5000 + b"]" * 5000))


def test_content_token_expiring_at_the_edge_of_time_is_a_token_error() -> None:
    # "0001-01-01T00:00:00+01:00" is before datetime.min in UTC: astimezone raised OverflowError.
    with pytest.raises(VppTokenError, match="expDate"):
        parse_token(_token_of({"token": "t", "expDate": "0001-01-01T00:00:00+01:00", "orgName": "O"}))


def abm_target_strict(operation: str, status: int, body: bytes, *, session_body: bytes | None = None) -> None:
    """abm_target without swallowing AbmError, to assert which one."""
    import asyncio

    from russet.abm.client import AbmClient
    from tests.fuzz_targets import SERVER_TOKEN, FakeGateway, FakeResponse, _no_sleep

    session = FakeResponse(200, session_body) if session_body is not None else None
    client = AbmClient(
        FakeGateway(FakeResponse(status, body), session),  # type: ignore[arg-type]
        "fuzz",
        SERVER_TOKEN,
        "https://abm.test",
        sleep=_no_sleep,
    )
    if operation == "account":
        asyncio.run(client.account())
    else:
        asyncio.run(client.fetch_devices(None, 10, sync=False))


def vpp_target_strict(operation: str, status: int, body: bytes) -> None:
    import asyncio

    from russet.vpp.client import VppClient
    from tests.fuzz_targets import CONTENT_TOKEN, FakeGateway, FakeResponse, _no_sleep

    client = VppClient(
        FakeGateway(FakeResponse(status, body)),  # type: ignore[arg-type]
        "fuzz",
        CONTENT_TOKEN,
        "https://vpp.test",
        per_second=1e9,
        sleep=_no_sleep,
    )
    asyncio.run(client.client_config())


NUL_ANSWER = b'{"server_name": "MDM\\u0000", "server_uuid": "u", "org_name": "O"}'


def test_nul_in_an_abm_answer_is_a_protocol_error() -> None:
    # PostgreSQL cannot store a NUL in text and SQLite can: refused before it reaches either.
    with pytest.raises(AbmProtocolError, match="NUL"):
        abm_target_strict("account", 200, NUL_ANSWER)


def test_nul_in_an_apps_and_books_answer_is_a_protocol_error() -> None:
    with pytest.raises(VppProtocolError, match="not valid JSON"):
        vpp_target_strict("client_config", 200, NUL_ANSWER)


def test_an_escaped_backslash_before_u0000_is_text_not_a_nul() -> None:
    from russet.apple import bounded_json

    assert bounded_json.loads(b'{"a": "x\\\\u0000"}') == {"a": "x\\u0000"}
