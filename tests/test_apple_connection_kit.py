"""The Apple-connection kit that ABM and Apps and Books configure (`russet.apple.connection`).

Each feature's service must answer the gateway's refusals with its own error kinds and
messages, and refuse an expired token before Apple is asked (Apple would only answer 401).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Column, MetaData, String, Table, create_engine, insert, select

from russet.abm import service as abm_service
from russet.abm.errors import AbmConflict, AbmUpstreamFailed, TokenExpired
from russet.apple.connection import admin as kit
from russet.apple.connections import ConnectionRefused, Disconnected, destroy_sealed
from russet.apple.gateway import AppleUnavailable
from russet.kernel.errors import Conflict, UpstreamFailed
from russet.vpp import service as vpp_service
from russet.vpp.errors import VppConflict, VppUpstreamFailed

FEATURES = [
    pytest.param(
        abm_service.apple_errors,
        AbmConflict,
        AbmUpstreamFailed,
        "ABM connection 'north' is not connected; load its server token with `russet abm token`",
        id="abm",
    ),
    pytest.param(
        vpp_service.apple_errors,
        VppConflict,
        VppUpstreamFailed,
        "Apps and Books location 'north' is not connected; load its token with `russet vpp add`",
        id="vpp",
    ),
]


@pytest.mark.parametrize(("apple_errors", "conflict", "upstream", "not_connected"), FEATURES)
def test_disconnected_becomes_the_features_conflict(apple_errors, conflict, upstream, not_connected):
    with pytest.raises(conflict) as caught, apple_errors("north"):
        raise Disconnected("gateway: service disconnected")
    assert str(caught.value) == not_connected
    assert isinstance(caught.value, Conflict)
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


@pytest.mark.parametrize(("apple_errors", "conflict", "upstream", "not_connected"), FEATURES)
def test_refusal_keeps_the_registrys_reason(apple_errors, conflict, upstream, not_connected):
    with pytest.raises(conflict, match="^busy with a purge$"), apple_errors("north"):
        raise ConnectionRefused("busy with a purge")


@pytest.mark.parametrize(("apple_errors", "conflict", "upstream", "not_connected"), FEATURES)
def test_unreachable_apple_is_an_upstream_failure(apple_errors, conflict, upstream, not_connected):
    with pytest.raises(upstream) as caught, apple_errors("north"):
        raise AppleUnavailable("connect timeout")
    assert str(caught.value) == "Apple could not be reached: connect timeout"
    assert isinstance(caught.value, UpstreamFailed)


@pytest.mark.parametrize(("apple_errors", "conflict", "upstream", "not_connected"), FEATURES)
def test_other_errors_pass_through(apple_errors, conflict, upstream, not_connected):
    with pytest.raises(KeyError), apple_errors("north"):
        raise KeyError("not the gateway's")


def test_expired_token_is_refused_with_the_features_message():
    past = datetime(2020, 1, 2, tzinfo=UTC)
    with pytest.raises(
        TokenExpired, match=r"^token of 'a\{b\}' expired on 2020-01-02T00:00:00\+00:00; renew$"
    ):
        kit.refuse_expired(past, TokenExpired, "token of 'a{b}' expired on {expiry}; renew")


def test_token_still_valid_is_not_refused():
    kit.refuse_expired(datetime.now(UTC) + timedelta(minutes=1), TokenExpired, "expired on {expiry}")


def test_the_instant_of_expiry_is_refused():
    with pytest.raises(TokenExpired):
        kit.refuse_expired(datetime.now(UTC), TokenExpired, "expired on {expiry}")


def test_iso_and_jsonable():
    at = datetime(2026, 5, 1, 12, tzinfo=UTC)
    assert kit.iso(None) is None
    assert kit.iso(at) == "2026-05-01T12:00:00+00:00"
    assert kit.jsonable({"a": at, "b": 3, "c": None}) == {"a": "2026-05-01T12:00:00+00:00", "b": 3, "c": None}


def test_registry_state_of_a_connection_without_a_row():
    index = {("abm", "x"): {"status": "active", "busy_with": "sync"}}
    assert kit.registry_state(index, "abm", "x", absent="awaiting token") == {
        "status": "active",
        "busy_with": "sync",
    }
    assert kit.registry_state(index, "vpp", "x", absent="disconnected") == {
        "status": "disconnected",
        "busy_with": None,
    }


def test_destroy_sealed_wipes_and_names_only_what_was_there():
    meta = MetaData()
    table = Table(
        "t",
        meta,
        Column("name", String, primary_key=True),
        Column("k", String),
        Column("s", String),
        Column("d", String),
    )
    engine = create_engine("sqlite://")
    meta.create_all(engine)
    with engine.begin() as conn:
        conn.execute(insert(table), [{"name": "a", "k": "key", "s": None, "d": "digest"}])
        kinds = {"k": "private_key", "s": "secret"}
        assert destroy_sealed(conn, table, "a", kinds, also_clear=("d",)) == {"private_key": ["a"]}
        assert conn.execute(select(table.c.k, table.c.s, table.c.d)).one() == (None, None, None)
        assert destroy_sealed(conn, table, "missing", kinds) == {}


def test_cli_columns_spec_keeps_titles_with_spaces():
    from russet.cli.connection import columns

    assert columns("name=NAME, access_token_expiry=TOKEN EXPIRES") == [
        ("name", "NAME"),
        ("access_token_expiry", "TOKEN EXPIRES"),
    ]


def test_cli_listing_warns_per_connection_on_stderr(capsys):
    from russet.cli.connection import listing

    rows = [{"name": "a", "warning": None}, {"name": "b", "warning": "expires in 3 days"}]
    listing(rows, False, [("name", "NAME")], "none")
    out, err = capsys.readouterr()
    assert "a" in out and "b" in out
    assert err == "warning: b: expires in 3 days\n"
