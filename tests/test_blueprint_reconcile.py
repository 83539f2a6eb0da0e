"""The reconciler's pure decision (`russet.blueprints.reconcile`): every rule, no storage."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from russet.blueprints.ports import DeviceReport
from russet.blueprints.reconcile import (
    CONFLICT,
    DRIFTED,
    FAILED,
    IN_SYNC,
    INSTALL,
    PENDING,
    PROFILE,
    PROFILE_LIST,
    REMOVE,
    SETTING,
    SETTINGS,
    Desired,
    Merged,
    Policy,
    Record,
    combo_digest,
    expand,
    may_skip,
    merge,
    plan_device,
    settled_token,
    unknown_variables,
)

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
EARLIER = NOW - timedelta(hours=2)
POLICY = Policy(max_in_flight=5)


def profile(ident: str, bp: int = 1, version: int = 1, uuid: str | None = None) -> Desired:
    return Desired(
        PROFILE,
        ident,
        bp,
        ref=f"ref-{ident}",
        version=version,
        payload_uuid=uuid or f"uuid-{ident}-{version}",
        content_hash=f"h-{ident}-{version}",
    )


def installed(d: Desired, *, acked: datetime = EARLIER, bp: int | None = None) -> Record:
    return Record(
        PROFILE,
        d.ident,
        bp or d.blueprint_id,
        IN_SYNC,
        INSTALL,
        True,
        ref=d.ref,
        version=d.version,
        payload_uuid=d.payload_uuid,
        content_hash=d.content_hash,
        acked_at=acked,
        queued_at=acked,
    )


def report(
    profiles: dict[str, str], at: datetime | None = NOW, in_flight: int = 0, **kw: object
) -> DeviceReport:
    return DeviceReport(profiles=profiles, profiles_at=at, in_flight=in_flight, **kw)  # type: ignore[arg-type]


def plan(
    desired: list[Desired],
    records: list[Record] = (),
    rep: DeviceReport | None = None,  # type: ignore[assignment]
    policy: Policy = POLICY,
    **kw: bool,
):  # type: ignore[no-untyped-def]
    return plan_device("dev1", merge(desired), {r.key: r for r in records}, rep, policy, NOW, **kw)


def states(p) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {s.ident: s.state for s in p.states}


def test_missing_profiles_are_installed_and_pending() -> None:
    a, b = profile("com.example.a"), profile("com.example.b")
    p = plan([a, b], rep=report({}))
    assert [(x.action, x.ident, x.reason) for x in p.actions] == [
        (INSTALL, "com.example.a", "missing"),
        (INSTALL, "com.example.b", "missing"),
    ]
    assert states(p) == {"com.example.a": PENDING, "com.example.b": PENDING}
    assert not p.forget and not p.deferred


def test_in_sync_verified_by_a_later_profile_list_changes_nothing() -> None:
    a = profile("com.example.a")
    p = plan([a], [installed(a)], report({a.ident: a.payload_uuid}))  # type: ignore[dict-item]
    assert p.actions == [] and states(p) == {a.ident: IN_SYNC}
    assert "verified" in p.states[0].detail


def test_profile_removed_on_the_device_is_drift_and_reinstalled() -> None:
    a = profile("com.example.a")
    p = plan([a], [installed(a)], report({}))
    assert [(x.action, x.reason) for x in p.actions] == [(INSTALL, "drifted")]
    assert p.actions[0].installed  # still ours: a failed reinstall must not lose ownership
    assert states(p) == {a.ident: PENDING}


def test_profile_with_another_uuid_on_the_device_is_drift() -> None:
    a = profile("com.example.a")
    p = plan([a], [installed(a)], report({a.ident: "someone-else"}))
    assert [(x.action, x.reason) for x in p.actions] == [(INSTALL, "drifted")]


def test_a_profile_list_older_than_the_install_is_not_drift() -> None:
    a = profile("com.example.a")
    p = plan([a], [installed(a)], report({}, at=EARLIER - timedelta(minutes=1)))
    assert all(x.action != INSTALL for x in p.actions)
    assert states(p) == {a.ident: IN_SYNC}
    # ... but it is not verified: a ProfileList re-check is asked
    assert [x.action for x in p.actions] == [PROFILE_LIST]


def test_drift_that_cannot_be_queued_is_shown_drifted() -> None:
    a = profile("com.example.a")
    p = plan([a], [installed(a)], report({}, in_flight=5))
    assert p.actions == [] and p.deferred == 1
    assert states(p) == {a.ident: DRIFTED}


def test_new_version_replaces_the_installed_one() -> None:
    old, new = profile("com.example.a", version=1), profile("com.example.a", version=2)
    p = plan([new], [installed(old)], report({old.ident: old.payload_uuid}))  # type: ignore[dict-item]
    assert [(x.action, x.version, x.reason) for x in p.actions] == [(INSTALL, 2, "new version")]


def test_leaving_scope_removes_only_what_the_reconciler_installed() -> None:
    a = profile("com.example.a")
    failed_install = Record(PROFILE, "com.example.b", 1, FAILED, INSTALL, False, ref="ref-b", version=1)
    p = plan(
        [],
        [installed(a), failed_install],
        report({a.ident: a.payload_uuid, "com.example.b": "x", "com.foreign": "y"}),
    )  # type: ignore[dict-item]
    assert [(x.action, x.ident, x.reason) for x in p.actions] == [(REMOVE, "com.example.a", "left scope")]
    assert p.forget == [(PROFILE, "com.example.b")]  # never installed by us: forgotten, not removed


def test_foreign_profiles_are_never_touched() -> None:
    a = profile("com.example.a")
    rep = report({a.ident: a.payload_uuid, "com.foreign.vpn": "u1", "com.foreign.wifi": "u2"})  # type: ignore[dict-item]
    for desired in ([a], []):
        p = plan(desired, [installed(a)], rep)
        assert all(x.ident not in ("com.foreign.vpn", "com.foreign.wifi") for x in p.actions)
        assert all(s.ident not in ("com.foreign.vpn", "com.foreign.wifi") for s in p.states)
    # with no records at all, nothing is removed whatever the device holds
    assert plan([], [], rep).actions == []


def test_a_profile_already_gone_is_forgotten_not_removed() -> None:
    a = profile("com.example.a")
    p = plan([], [installed(a)], report({}))
    assert p.actions == [] and p.forget == [(PROFILE, a.ident)]


def test_conflict_between_two_blueprints_is_reported_and_neither_applied() -> None:
    one, two = profile("com.example.a", bp=1, version=1), profile("com.example.a", bp=2, version=3)
    merged = merge([one, two])
    assert merged.conflicts == {(PROFILE, "com.example.a"): (1, 2)}
    p = plan([one, two], [installed(one)], report({}))
    assert p.actions == [] and p.forget == []  # neither installed, nor the installed one removed
    assert states(p) == {"com.example.a": CONFLICT}
    assert p.states[0].blueprint_ids == (1, 2)


def test_two_blueprints_wanting_the_same_thing_agree() -> None:
    one, two = profile("com.example.a", bp=3), profile("com.example.a", bp=2)
    merged = merge([one, two])
    assert not merged.conflicts and merged.items[(PROFILE, "com.example.a")].blueprint_id == 2


def test_setting_conflict_when_values_differ() -> None:
    a = Desired(SETTING, "TimeZone", 1, value="Europe/Paris")
    b = Desired(SETTING, "TimeZone", 2, value="Europe/Berlin")
    p = plan([a, b], rep=report({}))
    assert p.actions == [] and states(p) == {"TimeZone": CONFLICT}


def test_in_flight_bound_counts_everyone_s_commands() -> None:
    desired = [profile(f"com.example.{n}") for n in range(8)]
    p = plan(desired, rep=report({}, in_flight=0))
    assert len(p.actions) == 5 and p.deferred == 3
    assert sum(1 for s in p.states if s.state == PENDING) == 8
    p = plan(desired, rep=report({}, in_flight=3))
    assert len(p.actions) == 2 and p.deferred == 6
    p = plan(desired, rep=report({}, in_flight=9))
    assert p.actions == [] and p.deferred == 8


def test_in_flight_bound_counts_the_reconciler_s_own_pending_commands() -> None:
    desired = [profile(f"com.example.{n}") for n in range(8)]
    pending = [
        Record(
            PROFILE,
            d.ident,
            1,
            PENDING,
            INSTALL,
            False,
            ref=d.ref,
            version=1,
            payload_uuid=d.payload_uuid,
            content_hash=d.content_hash,
            command_uuid=f"c{n}",
            queued_at=NOW - timedelta(minutes=1),
        )
        for n, d in enumerate(desired[:4])
    ]
    p = plan(desired, pending, report({}, in_flight=0))  # the core's count lags: ours still counts
    assert len(p.actions) == 1 and p.deferred == 3
    assert states(p)[desired[0].ident] == PENDING
    p = plan(desired, pending, report({}), recheck_pending=True)  # an unanswered ProfileList counts too
    assert p.actions == [] and p.deferred == 4


def test_removals_go_first_when_the_bound_bites() -> None:
    gone = [profile(f"com.old.{n}") for n in range(3)]
    new = [profile(f"com.new.{n}") for n in range(3)]
    p = plan(new, [installed(g) for g in gone], report({g.ident: g.payload_uuid for g in gone}, in_flight=1))  # type: ignore[misc]
    assert [x.action for x in p.actions] == [REMOVE, REMOVE, REMOVE, INSTALL]


def test_a_pending_command_is_waited_for_then_retried_after_the_timeout() -> None:
    a = profile("com.example.a")
    rec = Record(
        PROFILE,
        a.ident,
        1,
        PENDING,
        INSTALL,
        False,
        ref=a.ref,
        version=1,
        payload_uuid=a.payload_uuid,
        content_hash=a.content_hash,
        command_uuid="c1",
        queued_at=NOW - timedelta(hours=1),
    )
    p = plan([a], [rec], report({}))
    assert p.actions == [] and states(p) == {a.ident: PENDING}
    stale = rec._replace(queued_at=NOW - timedelta(days=4))
    p = plan([a], [stale], report({}))
    assert [(x.action, x.reason) for x in p.actions] == [(INSTALL, "no answer")]


def test_failed_items_stay_failed_until_asked_or_changed() -> None:
    a = profile("com.example.a")
    failed = Record(
        PROFILE,
        a.ident,
        1,
        FAILED,
        INSTALL,
        False,
        ref=a.ref,
        version=1,
        payload_uuid=a.payload_uuid,
        content_hash=a.content_hash,
        error='{"error_chain":[{"ErrorCode":4001}]}',
    )
    p = plan([a], [failed], report({}))
    assert p.actions == [] and states(p) == {a.ident: FAILED}
    assert p.states[0].error and "4001" in p.states[0].error
    p = plan([a], [failed], report({}), policy=Policy(retry_failed=True))
    assert [(x.action, x.reason) for x in p.actions] == [(INSTALL, "retry")]
    newer = profile("com.example.a", version=2)
    assert [x.action for x in plan([newer], [failed], report({})).actions] == [INSTALL]


def test_a_failed_removal_is_not_repeated_on_every_pass() -> None:
    a = profile("com.example.a")
    failed = Record(
        PROFILE,
        a.ident,
        1,
        FAILED,
        REMOVE,
        True,
        ref=a.ref,
        version=1,
        payload_uuid=a.payload_uuid,
        acked_at=EARLIER,
    )
    p = plan([], [failed], report({a.ident: a.payload_uuid}))  # type: ignore[dict-item]
    assert p.actions == [] and states(p) == {a.ident: FAILED}


def test_settings_are_applied_once_and_reapplied_when_changed() -> None:
    tz = Desired(SETTING, "TimeZone", 1, value="Europe/Paris")
    p = plan([tz], rep=report({}))
    assert [(x.action, x.value) for x in p.actions] == [(SETTINGS, "Europe/Paris")]
    applied = Record(SETTING, "TimeZone", 1, IN_SYNC, SETTINGS, False, value="Europe/Paris", acked_at=EARLIER)
    assert plan([tz], [applied], report({})).actions == []
    other = Desired(SETTING, "TimeZone", 1, value="Asia/Tokyo")
    assert [(x.action, x.reason) for x in plan([other], [applied], report({})).actions] == [
        (SETTINGS, "changed")
    ]
    # leaving scope: a setting cannot be unset; its record is forgotten
    p = plan([], [applied], report({}))
    assert p.actions == [] and p.forget == [(SETTING, "TimeZone")]


def test_device_name_pattern_is_expanded_per_device_and_drift_reapplied() -> None:
    name = Desired(SETTING, "DeviceName", 1, value="Mac-$SERIAL")
    rep = report({}, serial_number="C02XYZ", device_name="Alex's Mac", facts_at=NOW)
    p = plan([name], rep=rep)
    assert [(x.action, x.value) for x in p.actions] == [(SETTINGS, "Mac-C02XYZ")]
    applied = Record(SETTING, "DeviceName", 1, IN_SYNC, SETTINGS, False, value="Mac-C02XYZ", acked_at=EARLIER)
    p = plan([name], [applied], rep)
    assert [(x.action, x.reason) for x in p.actions] == [(SETTINGS, "drifted")]
    ok = report({}, serial_number="C02XYZ", device_name="Mac-C02XYZ", facts_at=NOW)
    assert plan([name], [applied], ok).actions == []
    # the serial is not known yet: nothing is queued
    p = plan([name], rep=report({}))
    assert p.actions == [] and states(p) == {"DeviceName": PENDING}


def test_expand_and_variables() -> None:
    rep = DeviceReport(serial_number="S1", model="MacBookPro18,1")
    assert expand("$MODEL-$SERIAL-$UDID", "U1", rep) == "MacBookPro18,1-S1-U1"
    assert expand("fixed", "U1", None) == "fixed"
    assert expand("$SERIAL", "U1", None) is None
    assert unknown_variables("$SERIAL $USERNAME $UDID") == ["$USERNAME"]


def test_profile_list_recheck_when_stale_and_never_when_nothing_is_ours() -> None:
    a = profile("com.example.a")
    stale = report({a.ident: a.payload_uuid}, at=NOW - timedelta(days=2))  # type: ignore[dict-item]
    p = plan([a], [installed(a, acked=NOW - timedelta(days=3))], stale)
    assert [x.action for x in p.actions] == [PROFILE_LIST]
    assert plan([a], [installed(a, acked=NOW - timedelta(days=3))], stale, recheck_pending=True).actions == []
    assert plan([], [], report({}, at=None)).actions == []


def test_ownership_moves_to_the_blueprint_now_wanting_the_same_profile() -> None:
    a1 = profile("com.example.a", bp=1)
    a2 = Desired(
        PROFILE,
        a1.ident,
        2,
        ref=a1.ref,
        version=1,
        payload_uuid=a1.payload_uuid,
        content_hash=a1.content_hash,
    )
    p = plan([a2], [installed(a1)], report({a1.ident: a1.payload_uuid}))  # type: ignore[dict-item]
    assert p.actions == [] and p.adopt == [((PROFILE, a1.ident), 2)]


def test_empty_merge() -> None:
    assert merge([]) == Merged({}, {})


def test_a_device_is_settled_only_when_everything_is_verified_in_sync() -> None:
    a = profile("com.example.a")
    tz = Desired(SETTING, "TimeZone", 1, value="Europe/Paris")
    applied = Record(SETTING, "TimeZone", 1, IN_SYNC, SETTINGS, False, value="Europe/Paris", acked_at=EARLIER)
    assert plan([a, tz], [installed(a), applied], report({a.ident: a.payload_uuid})).settled  # type: ignore[dict-item]
    # not verified yet (the ProfileList is older than the install), drifted, pending, conflict: not settled
    assert not plan([a], [installed(a)], report({}, at=EARLIER - timedelta(minutes=1))).settled
    assert not plan([a], [installed(a)], report({})).settled
    assert not plan([a], [], report({})).settled
    assert not plan([a, profile("com.example.a", bp=2, version=2)], [installed(a)], report({})).settled
    assert not plan([a], [installed(a)], report({a.ident: a.payload_uuid}), recheck_pending=True).settled  # type: ignore[dict-item]


def test_what_a_settled_mark_depends_on() -> None:
    one = merge([profile("com.example.a")])
    digest = combo_digest(one)
    assert digest == combo_digest(merge([profile("com.example.a")]))
    assert digest != combo_digest(merge([profile("com.example.a", version=2)]))
    assert digest != combo_digest(merge([profile("com.example.a", bp=2)]))
    assert digest != combo_digest(merge([profile("com.example.a"), profile("com.example.b")]))
    rep = report({})
    assert settled_token(digest, rep) == settled_token(digest, report({"x": "y"}))  # same times
    assert settled_token(digest, rep) != settled_token(digest, report({}, at=NOW + timedelta(seconds=1)))
    assert settled_token(digest, rep) != settled_token(digest, report({}, facts_at=NOW))
    # a settled device is re-planned when its ProfileList is due again
    assert may_skip(one, report({}, at=NOW - timedelta(hours=1)), NOW, POLICY)
    assert not may_skip(one, report({}, at=NOW - timedelta(days=2)), NOW, POLICY)
    assert not may_skip(one, None, NOW, POLICY)
    assert may_skip(merge([Desired(SETTING, "TimeZone", 1, value="UTC")]), None, NOW, POLICY)
