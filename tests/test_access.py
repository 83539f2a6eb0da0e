"""AccessService: the surfaces' one way to API keys and the console's sign-in failure counts."""

from __future__ import annotations

import pytest

from russet.kernel.errors import Conflict, NotFound
from russet.runtime import Russet
from russet.storage.login_failures import MAX_FAILURES, buckets


def test_a_key_authenticates_until_revoked(russet: Russet) -> None:
    access = russet.access
    key = access.create_key("ci")
    assert access.caller(key) == "ci"
    with pytest.raises(Conflict):
        access.create_key("ci")
    access.revoke_key("ci")
    assert access.caller(key) is None
    with pytest.raises(NotFound, match="no live API key named 'ci'"):
        access.revoke_key("ci")  # revoked already: nothing live by that name
    assert [k.name for k in access.list_keys()] == ["ci"]  # listed, revoked, never the key


def test_sign_in_failures_are_counted_until_a_success(russet: Russet) -> None:
    access = russet.access
    counted = buckets("192.0.2.7", "rus_guessing")
    for _ in range(MAX_FAILURES):
        assert access.sign_in_wait(counted) is None
        access.sign_in_failed(counted)
    assert (access.sign_in_wait(counted) or 0) > 0  # refused before any key is looked up
    access.sign_in_succeeded(counted)
    assert access.sign_in_wait(counted) is None
    assert access.prune_sign_in_failures() == 0  # nothing past its window yet
