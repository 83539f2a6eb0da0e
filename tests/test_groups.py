"""Groups: the query language, smart and static groups, nesting and cycles, CSV, scopes."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest

from russet.groups.query import MAX_CONDITIONS, MAX_DEPTH, MAX_QUERY_CHARS, parse, version_key
from russet.groups.service import Scope
from russet.kernel.errors import Conflict, Invalid, NotFound, TooLarge
from russet.kernel.events import DeviceFactsChanged, EventBus, GroupMembersChanged
from russet.runtime import Russet
from russet.storage.db import utcnow
from tests.groups_support import (
    add_device,
    add_user_channel,
    list_in_abm,
    served_ade_profile,
    set_seen,
)


def members(russet: Russet, name: str) -> list[str]:
    return russet.groups.show(name, limit=1000)["members"]


def preview(russet: Russet, query: str) -> list[str]:
    return russet.groups.preview(query, limit=1000)["devices"]


# -- the language ---------------------------------------------------------------------------------


def test_versions_compare_part_by_part() -> None:
    assert version_key("17.10") > version_key("17.9") > version_key("17.4.1") > version_key("17.4")  # type: ignore[operator]
    assert version_key("17.0.0") == version_key("17") == (17,)
    assert version_key("17.4 beta") is None


@pytest.mark.parametrize(
    ("query", "message"),
    [
        (
            'modle = "iPad"',
            "unknown field 'modle' at character 1; valid fields: abm_account, battery_health, device_name",
        ),
        ('os_version >= "seventeen"', 'wants a version such as "17.4"'),
        ('supervised = "yes"', "supervised is true or false"),
        ('model < "iPad"', "model does not take <"),
        ("last_checkin < 7", "compares with an age such as 30m"),
        ('platform = "ios16"', "platform is one of iOS, iPadOS, macOS"),
        ('enrollment_type = "dep"', "enrollment_type is one of ade, ota, user"),
        ('model = "iPad', "not closed"),
        ('model = "iPad" and', "expected a condition at character 19, found the end of the query"),
        ('(model = "iPad"', "expected ')'"),
        ('model = "iPad" supervised = true', "expected and, or or the end at character 16"),
        ("in_group(Lab)", 'in_group wants a group name in "double quotes"'),
        ("", "empty"),
        ('model = "a\x00"', "NUL"),
        ("model $ 1", "unexpected '$' at character 7"),
        ("last_checkin < 99999d", "longer than 3650d"),
    ],
)
def test_bad_queries_are_refused_naming_the_problem(query: str, message: str) -> None:
    with pytest.raises(Invalid) as refused:
        parse(query)
    assert message in str(refused.value)


def test_queries_are_bounded() -> None:
    with pytest.raises(Invalid, match=f"longer than {MAX_QUERY_CHARS}"):
        parse('model = "' + "x" * MAX_QUERY_CHARS + '"')
    with pytest.raises(Invalid, match=f"nested more than {MAX_DEPTH}"):
        parse("(" * (MAX_DEPTH + 1) + "supervised = true" + ")" * (MAX_DEPTH + 1))
    with pytest.raises(Invalid, match=f"nested more than {MAX_DEPTH}"):
        parse("not " * (MAX_DEPTH + 1) + "supervised = true")
    with pytest.raises(Invalid, match=f"more than {MAX_CONDITIONS} conditions"):
        parse(" or ".join(["supervised = true"] * (MAX_CONDITIONS + 1)))
    parse(" or ".join(["supervised = true"] * MAX_CONDITIONS))  # the limit itself is fine


# -- smart groups -----------------------------------------------------------------------------------


def test_smart_group_fields(russet: Russet) -> None:
    ipad = add_device(
        russet, "IPAD-1", serial="S-IPAD", product="iPad13,1", os_version="17.10", supervised=True
    )
    phone = add_device(russet, "PHONE-1", serial="S-PHONE", os_version="17.9", supervised=False)
    mac = add_device(
        russet, "MAC-1", serial="S-MAC", product="Mac14,2", os_version="14.6.1", seen_ago=timedelta(days=40)
    )
    old = add_device(russet, "OLD-1", serial="S-OLD", os_version="16.7.2", seen_ago=None, enabled=False)
    byod = add_device(russet, "ENR-1", os_version="17.4", enrollment_type="user_enrollment")
    add_user_channel(russet, mac, "501")
    list_in_abm(russet, "School", "S-IPAD")
    list_in_abm(russet, "Office", "S-IPAD")
    list_in_abm(russet, "Office", "S-MAC")
    served_ade_profile(russet, ipad, "S-IPAD")

    assert preview(russet, 'os_version >= "17.9"') == [ipad, phone]  # 17.10 > 17.9, in order
    assert preview(russet, 'os_version < "17"') == [mac, old]
    assert preview(russet, 'os_version = "17.4.0"') == [byod]
    assert preview(russet, 'model ~ "ipad" and supervised = true') == [ipad]
    assert preview(russet, "supervised = false") == [phone]
    assert preview(russet, "supervised = null") == sorted([mac, old, byod])
    assert preview(russet, 'platform = "macos"') == [mac]
    assert preview(russet, 'platform = "iOS"') == sorted([phone, old, byod])
    assert preview(russet, 'enrollment_type = "ade"') == [ipad]
    assert preview(russet, 'enrollment_type = "user"') == [byod]
    assert preview(russet, 'enrollment_type = "ota"') == sorted([phone, mac, old])
    assert preview(russet, "user_channel = true") == [mac]
    assert preview(russet, 'abm_account = "office"') == sorted([ipad, mac])
    assert preview(russet, 'abm_account != "School"') == [mac]  # listed, but not by School
    assert preview(russet, "abm_account = null") == sorted([phone, old, byod])
    assert preview(russet, "last_checkin < 7d") == sorted([ipad, phone, byod])
    assert preview(russet, "last_checkin > 30d") == [mac]  # never seen: not older than 30 days either
    assert preview(russet, "enrolled = false") == [old]
    assert preview(russet, 'serial = "s-phone" or udid = "mac-1"') == sorted([phone, mac])
    assert preview(russet, 'model != "iPad13,1"') == sorted([phone, mac, old, byod])
    assert preview(russet, 'not (model ~ "iPad")') == sorted([phone, mac, old, byod])
    assert russet.groups.preview("supervised = true", limit=0) == {
        "query": "supervised = true",
        "count": 1,
        "devices": [],
    }


def test_smart_group_is_stored_and_recomputed_when_facts_or_query_change(russet: Russet) -> None:
    a = add_device(russet, "A", os_version="17.4")
    b = add_device(russet, "B", os_version="17.2")
    group = russet.groups.create("Current", query='os_version >= "17.4"', description="up to date")
    assert group["kind"] == "smart" and group["member_count"] == 1 and group["evaluated_at"] is not None
    assert members(russet, "Current") == [a]

    from sqlalchemy import update

    from russet.mdm.tables import enrollments

    with russet.storage.engine.begin() as conn:
        conn.execute(update(enrollments).where(enrollments.c.id == b).values(os_version="17.5"))
    assert members(russet, "Current") == [a]  # nothing said the facts changed yet
    russet.events.publish(DeviceFactsChanged((b,)))
    assert members(russet, "Current") == [a, b]

    updated = russet.groups.update("Current", query='os_version >= "17.5"')
    assert updated["member_count"] == 1 and members(russet, "Current") == [b]
    assert russet.groups.groups_of(b) == ["Current"]


def test_clock_groups_are_refreshed_by_the_periodic_method(russet: Russet) -> None:
    a = add_device(russet, "A", seen_ago=timedelta(days=1))
    russet.groups.create("Seen this week", query="last_checkin < 7d")
    russet.groups.create("Static", kind="static")
    assert members(russet, "Seen this week") == [a]
    set_seen(russet, a, utcnow() - timedelta(days=8))  # as if a week went by without a check-in
    assert russet.groups.refresh_clock_groups() == {"groups": 1}
    assert members(russet, "Seen this week") == []
    assert russet.groups.reconcile() == {"groups": 1}


# -- static groups and CSV ----------------------------------------------------------------------------


def test_static_members_by_udid_or_serial(russet: Russet) -> None:
    a = add_device(russet, "AAAA-1", serial="C02AAA")
    b = add_device(russet, "BBBB-2", serial="C02BBB")
    add_device(russet, "CCCC-3", serial="C02CCC")
    russet.groups.create("Lab")
    assert russet.groups.add_members("Lab", ["aaaa-1", "c02bbb"]) == {
        "group": "Lab",
        "added": 2,
        "members": 2,
    }
    assert russet.groups.add_members("Lab", ["AAAA-1"])["added"] == 0  # already in
    assert members(russet, "Lab") == [a, b]

    with pytest.raises(Invalid, match="no device with UDID or serial 'NOPE'"):
        russet.groups.add_members("Lab", ["CCCC-3", "NOPE"])
    assert members(russet, "Lab") == [a, b]  # all or nothing

    assert russet.groups.remove_members("Lab", ["C02AAA"]) == {"group": "Lab", "removed": 1, "members": 1}
    russet.groups.create("Modern", query='os_version >= "17"')
    with pytest.raises(Conflict, match="smart: its members come from its query"):
        russet.groups.add_members("Modern", ["AAAA-1"])
    with pytest.raises(NotFound, match="no group named 'Nope'"):
        russet.groups.add_members("Nope", ["AAAA-1"])
    with pytest.raises(Conflict, match="exists already"):
        russet.groups.create("Lab")
    with pytest.raises(Invalid, match="static: it has no query"):
        russet.groups.update("Lab", query="supervised = true")
    with pytest.raises(Invalid, match="group name"):
        russet.groups.create("a/b")


def test_csv_import_good(russet: Russet) -> None:
    a = add_device(russet, "AAAA-1", serial="C02AAA")
    b = add_device(russet, "BBBB-2", serial="C02BBB")
    c = add_device(russet, "CCCC-3", serial="C02CCC")
    russet.groups.create("Carts")
    data = '\ufeffSerial Number,Note\n# cart 1\nC02AAA,first\n\n"BBBB-2","second, with a comma"\n'.encode()
    result = russet.groups.import_csv("Carts", data)
    assert result == {"group": "Carts", "rows": 2, "added": 2, "removed": 0, "members": 2}
    assert members(russet, "Carts") == [a, b]
    replaced = russet.groups.import_csv("Carts", b"CCCC-3\nC02BBB\n", replace=True)
    assert replaced == {"group": "Carts", "rows": 2, "added": 1, "removed": 1, "members": 2}
    assert members(russet, "Carts") == [b, c]


def test_csv_import_bad_lines_are_named_and_nothing_is_stored(russet: Russet) -> None:
    add_device(russet, "AAAA-1", serial="C02AAA")
    russet.groups.create("Carts")
    data = b"udid\nAAAA-1\nMISSING-1\n,orphan note\n" + b"X" * 301 + b"\nMISSING-2\n"
    with pytest.raises(Invalid) as refused:
        russet.groups.import_csv("Carts", data)
    message = str(refused.value)
    assert "line 4: no identifier in the first column" in message
    assert "line 5: identifier longer than 300 characters" in message
    assert "nothing imported" in message
    assert members(russet, "Carts") == []

    with pytest.raises(Invalid) as refused:
        russet.groups.import_csv("Carts", b"AAAA-1\nMISSING-1\nC02AAA\nMISSING-2\n")
    assert "line 2: no device with UDID or serial 'MISSING-1'" in str(refused.value)
    assert "line 4: no device with UDID or serial 'MISSING-2'" in str(refused.value)
    assert members(russet, "Carts") == []

    with pytest.raises(Invalid, match="not UTF-8"):
        russet.groups.import_csv("Carts", b"\xff\xfe")
    with pytest.raises(Invalid, match="no device identifiers"):
        russet.groups.import_csv("Carts", b"udid\n\n# nothing\n")
    with pytest.raises(TooLarge):
        russet.groups.import_csv("Carts", b"A\n" * (600 * 1024))
    assert members(russet, "Carts") == []


# -- nesting, cycles, scopes ------------------------------------------------------------------------


def test_nested_groups_follow_their_parts_and_cycles_are_refused(russet: Russet) -> None:
    a = add_device(russet, "A", serial="SA", supervised=True)
    b = add_device(russet, "B", serial="SB", supervised=True)
    add_device(russet, "C", serial="SC", supervised=False)
    russet.groups.create("Lab")
    russet.groups.create("Supervised", query="supervised = true")
    russet.groups.create("Lab supervised", query='in_group("Lab") and in_group("Supervised")')
    russet.groups.create("Outside lab", query='in_group("Supervised") and not in_group("Lab supervised")')
    assert members(russet, "Lab supervised") == []
    assert members(russet, "Outside lab") == [a, b]

    russet.groups.add_members("Lab", ["SA", "SC"])  # a static change flows into the smart groups using it
    assert members(russet, "Lab supervised") == [a]
    assert members(russet, "Outside lab") == [b]

    before = russet.groups.show("Supervised")
    with pytest.raises(Invalid) as refused:
        russet.groups.update("Supervised", query='supervised = true or in_group("Outside lab")')
    assert "cyclic group definition: Supervised -> Outside lab -> Supervised" in str(refused.value)
    assert russet.groups.show("Supervised") == before  # nothing stored
    with pytest.raises(Invalid, match="cyclic group definition: Self -> Self"):
        russet.groups.create("Self", query='in_group("Self")')
    with pytest.raises(NotFound):
        russet.groups.show("Self")
    with pytest.raises(Invalid, match="in_group names no group called 'Nope'"):
        russet.groups.create("Ghost", query='in_group("Nope")')
    with pytest.raises(Conflict, match="used through in_group by Lab supervised"):
        russet.groups.delete("Lab")
    with pytest.raises(Conflict, match="used through in_group by Lab supervised, Outside lab"):
        russet.groups.update("Supervised", new_name="Managed")

    russet.groups.delete("Outside lab")
    assert russet.groups.delete("Lab supervised") == {"deleted": "Lab supervised", "members": 1}
    assert russet.groups.update("Lab", new_name="Lab 2")["name"] == "Lab 2"


def test_scope_include_exclude(russet: Russet) -> None:
    ids = [add_device(russet, f"D{i}", serial=f"S{i}", supervised=i % 2 == 0) for i in range(6)]
    russet.groups.create("Supervised", query="supervised = true")  # D0 D2 D4
    russet.groups.create("Lab")
    russet.groups.add_members("Lab", ["D1", "D2"])
    russet.groups.create("Broken")
    russet.groups.add_members("Broken", ["D4", "D1"])

    scope = Scope(include=["Supervised", "Lab"], exclude=["Broken"])
    assert russet.groups.scope_devices(scope) == [ids[0], ids[2]]
    assert russet.groups.scope_devices(Scope(include=["Lab", "Supervised"])) == [
        ids[0],
        ids[1],
        ids[2],
        ids[4],
    ]
    assert russet.groups.scope_devices(scope, limit=1) == [ids[0]]
    assert russet.groups.scope_devices(scope, limit=1, after=ids[0]) == [ids[2]]
    lab_id = russet.groups.show("Lab")["id"]
    assert russet.groups.scope_devices(Scope(include=[lab_id])) == [ids[1], ids[2]]
    assert russet.groups.scope_devices(Scope(include=[])) == []
    with pytest.raises(NotFound):
        russet.groups.scope_devices(Scope(include=["Nope"]))
    with pytest.raises(NotFound):
        russet.groups.scope_devices(Scope(include=[999999]))


def test_group_pages(russet: Russet) -> None:
    for i in range(5):
        add_device(russet, f"D{i}")
    for name in ("b", "a", "c"):
        russet.groups.create(name, query='os_version = "17.4"')
    first = russet.groups.page(limit=2)
    assert [g["name"] for g in first["groups"]] == ["a", "b"] and first["next"] == "b"
    assert [g["name"] for g in russet.groups.page(limit=2, after="b")["groups"]] == ["c"]
    shown = russet.groups.show("a", limit=2)
    assert shown["members"] == ["D0", "D1"] and shown["next"] == "D1" and shown["member_count"] == 5
    assert russet.groups.show("a", limit=2, after="D3")["members"] == ["D4"]


def test_a_failing_subscriber_does_not_fail_the_publisher(caplog: pytest.LogCaptureFixture) -> None:
    bus = EventBus()
    seen: list[tuple[str, ...]] = []

    def broken(event: DeviceFactsChanged) -> None:
        raise RuntimeError("boom")

    bus.subscribe(DeviceFactsChanged, broken)
    bus.subscribe(DeviceFactsChanged, lambda event: seen.append(event.device_ids))
    with caplog.at_level(logging.ERROR, logger="russet.events"):
        bus.publish(DeviceFactsChanged(("X",)))
    assert seen == [("X",)]
    assert "a handler of DeviceFactsChanged failed" in caplog.text


def test_static_member_changes_publish_an_event_making_the_next_blueprints_pass_full(russet: Russet) -> None:
    a = add_device(russet, "AAAA-1", serial="C02AAA")
    b = add_device(russet, "BBBB-2", serial="C02BBB")
    russet.groups.create("Lab")
    heard: list[GroupMembersChanged] = []
    russet.events.subscribe(GroupMembersChanged, heard.append)
    assert russet.blueprints.items.run_state()["changed_at"] is None  # no blueprint or scope changed yet

    russet.groups.add_members("Lab", ["AAAA-1", "C02BBB"])
    assert heard == [GroupMembersChanged("Lab", tuple(sorted([a, b])))]
    assert russet.blueprints.items.run_state()["changed_at"] is not None  # the root's subscription

    russet.groups.remove_members("Lab", ["C02AAA"])
    russet.groups.import_csv("Lab", b"AAAA-1\n", replace=True)
    assert heard[1:] == [GroupMembersChanged("Lab", (a,)), GroupMembersChanged("Lab", tuple(sorted([a, b])))]

    with pytest.raises(Invalid):
        russet.groups.add_members("Lab", ["NOPE"])
    assert len(heard) == 3  # a refused change publishes nothing
