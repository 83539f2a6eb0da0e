"""Every command of Apple's schemas: built, validated, refused when malformed or sent where it cannot
run, and the generated builders kept equal to what the schemas give (the drift check).

Expectations come from the YAML itself (read here with PyYAML, judged by tests/apple_schema.py),
not from the generated module, so a generator bug cannot hide behind its own output.
"""

from __future__ import annotations

import copy
import functools
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from russet.commands import (
    COMMANDS,
    CommandError,
    CommandRefused,
    DeviceFacts,
    Param,
    build_command,
    check_target,
    codegen,
    generated,
    platform_of,
    refine,
)
from russet.commands.information import DEFAULT_QUERIES
from russet.commands.secrets import is_secret
from russet.kernel.errors import Invalid, Refused
from tests.apple_schema import SCHEMAS, example, free_form, schema_errors

SCHEMA_DIR = SCHEMAS / "mdm/commands"
PLATFORMS = ("iOS", "macOS", "tvOS", "visionOS", "watchOS")


@functools.cache
def schemas() -> dict[str, dict[str, Any]]:
    """Apple's command schemas by RequestType."""
    out = {}
    for path in sorted(SCHEMA_DIR.glob("*.yaml")):
        doc = yaml.safe_load(path.read_text())
        out[doc["payload"]["requesttype"]] = doc
    return out


REQUEST_TYPES = sorted(schemas())


def _keys(request_type: str) -> list[dict[str, Any]] | None:
    keys: list[dict[str, Any]] | None = schemas()[request_type].get("payloadkeys")
    return keys


def fit_cross_checks(request_type: str, params: dict[str, Any]) -> dict[str, Any]:
    """An example made to satisfy the rules hand-written builders add to Apple's schema."""
    params = copy.deepcopy(params)
    if request_type in ("DeviceLock", "EraseDevice") and "PIN" in params:
        params["PIN"] = "123456"  # six digits
    if request_type == "InstallApplication":
        for key in ("Identifier", "ManifestURL"):
            params.pop(key, None)
        params["iTunesStoreID"] = 361285480  # exactly one source
    if request_type == "EnableLostMode":
        params.setdefault("Message", "Lost")
    if request_type == "ScheduleOSUpdate":
        for update in params["Updates"]:
            update.setdefault("ProductKey", "MSU_UPDATE_22F82")
            update["InstallAction"] = "InstallLater" if "MaxUserDeferrals" in update else "Default"
    if request_type == "DeviceInformation" and "DeviceAttestationNonce" in params:
        params["Queries"] = [*params["Queries"], "DevicePropertiesAttestation"]
    return params


# -- every command builds ----------------------------------------------------------------------


def test_every_schema_has_exactly_one_builder_generated_from_it() -> None:
    assert set(COMMANDS) == set(schemas())
    for request_type, builder in COMMANDS.items():
        schema_builder = getattr(generated, request_type)
        assert schema_builder.from_schema and issubclass(builder, schema_builder)
        assert schema_builder.title == schemas()[request_type]["title"]


@pytest.mark.parametrize("request_type", REQUEST_TYPES)
@pytest.mark.parametrize("full", [False, True], ids=["required-keys", "every-key"])
def test_every_command_builds_from_schema_values(request_type: str, full: bool) -> None:
    params = example(_keys(request_type), full=full)
    # The builder generated from the schema takes Apple's own example values as they are...
    built = getattr(generated, request_type)(**params).to_dict()
    assert schema_errors(_keys(request_type), {k: v for k, v in built.items() if k != "RequestType"}) == []
    # ...and the registered builder (with any hand-written rules) once they are met, on every path.
    params = fit_cross_checks(request_type, params)
    command = COMMANDS[request_type](**params).to_dict()
    assert command["RequestType"] == request_type
    assert schema_errors(_keys(request_type), {k: v for k, v in command.items() if k != "RequestType"}) == []
    assert build_command({"RequestType": request_type, **params}) == command


def test_a_command_without_keys_takes_none() -> None:
    assert build_command({"RequestType": "ShutDownDevice"}) == {"RequestType": "ShutDownDevice"}
    with pytest.raises(CommandError, match="ShutDownDevice: unknown key 'Now'"):
        build_command({"RequestType": "ShutDownDevice", "Now": True})


# -- every command refuses malformed input --------------------------------------------------------


def _walk(
    keys: list[dict[str, Any]] | None, value: dict[str, Any], path: str
) -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(error path, key spec, the dictionary holding it) for every key of `value` at any depth."""
    if not keys or free_form(keys):
        return
    specs = {k["key"]: k for k in keys}
    for key in list(value):
        spec = specs[key]
        where = f"{path}.{key}" if path else key
        yield where, spec, value
        subkeys = spec.get("subkeys") or []
        if spec["type"] == "<dictionary>":
            yield from _walk(subkeys, value[key], where)
        elif spec["type"] == "<array>" and subkeys and subkeys[0]["type"] == "<dictionary>":
            for i, item in enumerate(value[key]):
                alternative = subkeys[i] if len(subkeys) > 1 else subkeys[0]
                yield from _walk(alternative.get("subkeys"), item, f"{where}[{i}]")


def _full(request_type: str) -> dict[str, Any]:
    return fit_cross_checks(request_type, example(_keys(request_type), full=True))


def _required_cases() -> Iterator[tuple[str, str]]:
    for request_type in REQUEST_TYPES:
        for where, spec, _ in _walk(_keys(request_type), _full(request_type), ""):
            if spec.get("presence") == "required":
                yield request_type, where


def _typed_cases() -> Iterator[tuple[str, str]]:
    for request_type in REQUEST_TYPES:
        for where, spec, _ in _walk(_keys(request_type), _full(request_type), ""):
            if spec["type"] != "<any>":
                yield request_type, where


def _mutated(request_type: str, target: str, change: Any) -> dict[str, Any]:
    """The full example of `request_type` with the key at `target` removed (`change` is None)
    or given the value `change` returns for its spec."""
    params = _full(request_type)
    for where, spec, holder in _walk(_keys(request_type), params, ""):
        if where == target:
            key = spec["key"]
            if change is None:
                del holder[key]
            else:
                holder[key] = change(spec)
            return params
    raise AssertionError(f"no {target} in {request_type}")


_WRONG = {
    "<string>": 5,
    "<integer>": "5",
    "<boolean>": "yes",
    "<real>": "0.5",
    "<data>": 5,
    "<date>": 5,
    "<array>": "x",
    "<dictionary>": ["x"],
}


@pytest.mark.parametrize(("request_type", "path"), list(_required_cases()))
def test_a_missing_required_key_is_refused(request_type: str, path: str) -> None:
    params = _mutated(request_type, path, None)
    with pytest.raises(CommandError) as caught:
        getattr(generated, request_type)(**params)
    assert str(caught.value) == f"{request_type}: missing required key {path}"
    if (request_type, path) == ("DeviceInformation", "Queries"):  # Russet fills in its default list
        assert build_command({"RequestType": request_type})["Queries"] == list(DEFAULT_QUERIES)
        return
    with pytest.raises(CommandError) as caught:
        build_command({"RequestType": request_type, **params})
    assert str(caught.value) == f"{request_type}: missing required key {path}"


@pytest.mark.parametrize(("request_type", "path"), list(_typed_cases()))
def test_a_key_of_the_wrong_type_is_refused(request_type: str, path: str) -> None:
    params = _mutated(request_type, path, lambda spec: _WRONG[spec["type"]])
    with pytest.raises(CommandError) as caught:
        build_command({"RequestType": request_type, **params})
    message = str(caught.value)
    if path.endswith("].Item"):  # the tag of a Settings item names the item's keys
        assert message.startswith(f"{request_type}: {path} 5 is not one of")
    else:
        assert re.match(rf"{request_type}: {re.escape(path)}(\[0\])? must be ", message), message


def _choice_cases() -> Iterator[tuple[str, str]]:
    for request_type in REQUEST_TYPES:
        for where, spec, _ in _walk(_keys(request_type), _full(request_type), ""):
            if "rangelist" in spec and not where.endswith("].Item"):
                yield request_type, where


@pytest.mark.parametrize(("request_type", "path"), list(_choice_cases()))
def test_a_value_outside_apples_rangelist_is_refused(request_type: str, path: str) -> None:
    params = _mutated(request_type, path, lambda spec: 987654 if spec["type"] == "<integer>" else "Nope")
    with pytest.raises(CommandError, match=rf"{request_type}: {re.escape(path)} must be one of"):
        build_command({"RequestType": request_type, **params})


@pytest.mark.parametrize("request_type", REQUEST_TYPES)
def test_an_unknown_key_is_refused(request_type: str) -> None:
    params = {**fit_cross_checks(request_type, example(_keys(request_type), full=False)), "Colour": "red"}
    with pytest.raises(CommandError, match=f"{request_type}: unknown key 'Colour'"):
        build_command({"RequestType": request_type, **params})


def test_unknown_request_types_are_refused_everywhere() -> None:
    with pytest.raises(CommandError, match="unknown RequestType 'Bogus'"):
        build_command({"RequestType": "Bogus"})
    with pytest.raises(CommandError, match=r"unknown RequestType 'EraseDevise' \(did you mean EraseDevice"):
        build_command({"RequestType": "EraseDevise"})
    with pytest.raises(CommandError, match="unknown RequestType 'Bogus'"):
        check_target("Bogus", DeviceFacts(platform="iOS"))


# -- refused where it cannot run -------------------------------------------------------------------


def _support(request_type: str, platform: str) -> dict[str, Any]:
    entry: dict[str, Any] = schemas()[request_type]["payload"]["supportedOS"].get(platform) or {}
    return entry


def _welcoming(request_type: str, platform: str) -> DeviceFacts:
    """Facts of a device that Apple's schema says runs `request_type` on `platform`."""
    entry = _support(request_type, platform)
    user_only = entry.get("devicechannel") is False
    return DeviceFacts(
        platform=platform,  # type: ignore[arg-type]
        os_version=entry["introduced"],
        supervised=True,
        ade=True,
        user_enrollment=False,
        shared_ipad=(entry.get("sharedipad") or {}).get("mode") == "required",
        channel="user" if user_only else "device",
    )


PAIRS = [(r, p) for r in REQUEST_TYPES for p in PLATFORMS]


@pytest.mark.parametrize(("request_type", "platform"), PAIRS)
def test_each_platform_runs_or_refuses_as_apple_says(request_type: str, platform: str) -> None:
    entry = _support(request_type, platform)
    if entry.get("introduced", "n/a") == "n/a":
        with pytest.raises(CommandRefused) as caught:
            check_target(request_type, DeviceFacts(platform=platform))  # type: ignore[arg-type]
        assert caught.value.reasons == [f"{request_type} is not available on {platform}"]
        return
    facts = _welcoming(request_type, platform)
    check_target(request_type, facts)  # runs
    check_target(request_type, DeviceFacts(platform=facts.platform, channel=facts.channel))  # facts unknown
    refusals = {
        "os_version": ("0.9", f"{request_type} needs {platform} {entry['introduced']} or later"),
        "supervised": (False, f"{request_type} needs a supervised device on {platform}"),
        "ade": (False, f"{request_type} needs a device enrolled through Automated Device Enrollment"),
        "user_enrollment": (True, f"{request_type} is not available with User Enrollment on {platform}"),
    }
    applies = {
        "os_version": True,
        "supervised": bool(entry.get("supervised")),
        "ade": bool(entry.get("requiresdep")),
        "user_enrollment": (entry.get("userenrollment") or {}).get("mode") == "forbidden",
    }
    for fact, (value, reason) in refusals.items():
        changed = DeviceFacts(**{**_fields(facts), fact: value})
        if applies[fact]:
            with pytest.raises(CommandRefused) as caught:
                check_target(request_type, changed)
            assert any(r.startswith(reason) for r in caught.value.reasons), caught.value.reasons
        else:
            check_target(request_type, changed)


def _fields(facts: DeviceFacts) -> dict[str, Any]:
    return {name: getattr(facts, name) for name in DeviceFacts.__slots__}


@pytest.mark.parametrize("request_type", REQUEST_TYPES)
def test_the_user_channel_of_a_mac_runs_what_apple_says(request_type: str) -> None:
    entry = _support(request_type, "macOS")
    if entry.get("introduced", "n/a") == "n/a":
        return
    facts = DeviceFacts(platform="macOS", channel="user")
    if entry.get("userchannel"):
        check_target(request_type, facts)
    else:
        with pytest.raises(CommandRefused, match=f"{request_type} is not available on the user channel"):
            check_target(request_type, facts)


@pytest.mark.parametrize(
    ("request_type", "facts", "command", "reason"),
    [
        (
            "EnableLostMode",
            DeviceFacts(platform="iOS", supervised=False),
            None,
            "EnableLostMode needs a supervised device on iOS",
        ),
        ("EnableLostMode", DeviceFacts(platform="macOS"), None, "EnableLostMode is not available on macOS"),
        (
            "EraseDevice",
            DeviceFacts(platform="macOS", channel="user"),
            None,
            "EraseDevice is not available on the user channel on macOS",
        ),
        (
            "EraseDevice",
            DeviceFacts(channel="user"),
            None,
            "EraseDevice is not available on the user channel",
        ),
        (
            "EraseDevice",
            DeviceFacts(platform="iOS", user_enrollment=True),
            None,
            "EraseDevice is not available with User Enrollment on iOS",
        ),
        (
            "DeclarativeManagement",
            DeviceFacts(platform="iOS", os_version="14.8.1"),
            None,
            "DeclarativeManagement needs iOS 15.0 or later (the device runs 14.8.1)",
        ),
        (
            "LogOutUser",
            DeviceFacts(platform="iOS", shared_ipad=False),
            None,
            "LogOutUser needs a Shared iPad",
        ),
        (
            "ClearPasscode",
            DeviceFacts(platform="iOS", shared_ipad=True),
            None,
            "ClearPasscode is not available on a Shared iPad",
        ),
        (
            "EraseDevice",
            DeviceFacts(platform="iOS", shared_ipad=True, channel="user"),
            None,
            "EraseDevice is not available on the user channel on iOS",
        ),
        (
            "InviteToProgram",
            DeviceFacts(platform="iOS", shared_ipad=True),
            None,
            "InviteToProgram is not available on the device channel on iOS",
        ),
        (
            "DeviceConfigured",
            DeviceFacts(platform="macOS", ade=False),
            None,
            "DeviceConfigured needs a device enrolled through Automated Device Enrollment on macOS",
        ),
        # Keys and Settings items have their own support.
        (
            "EraseDevice",
            DeviceFacts(platform="iOS"),
            {"PIN": "123456"},
            "EraseDevice: PIN is not available on iOS",
        ),
        (
            "EraseDevice",
            DeviceFacts(platform="iOS", os_version="16.7"),
            {"ReturnToService": {"Enabled": True}},
            "EraseDevice: ReturnToService needs iOS 17.0 or later (the device runs 16.7)",
        ),
        (
            "Settings",
            DeviceFacts(platform="iOS", supervised=False),
            {
                "Settings": [
                    {"Item": "TimeZone", "TimeZone": "UTC"},
                    {"Item": "Wallpaper", "Image": b"x", "Where": 1},
                ]
            },
            "Settings: Settings[1] (Item Wallpaper) needs a supervised device on iOS",
        ),
        (
            "Settings",
            DeviceFacts(platform="macOS"),
            {"Settings": [{"Item": "Wallpaper", "Image": b"x", "Where": 1}]},
            "Settings: Settings[0] (Item Wallpaper) is not available on macOS",
        ),
    ],
)
def test_refusals_say_why(
    request_type: str, facts: DeviceFacts, command: dict[str, Any] | None, reason: str
) -> None:
    with pytest.raises(Refused) as caught:
        check_target(request_type, facts, command)
    assert reason in str(caught.value).split("; ")
    assert not isinstance(caught.value, Invalid)


def test_every_reason_is_given_at_once() -> None:
    facts = DeviceFacts(platform="iOS", os_version="9.0", supervised=False)
    with pytest.raises(CommandRefused) as caught:
        check_target("PlayLostModeSound", facts)
    assert caught.value.reasons == [
        "PlayLostModeSound needs iOS 10.3 or later (the device runs 9.0)",
        "PlayLostModeSound needs a supervised device on iOS",
    ]


def test_what_a_target_can_run_is_not_refused() -> None:
    mac = DeviceFacts(platform="macOS", os_version="15.1", supervised=True, channel="user")
    check_target("DeviceInformation", mac, {"Queries": ["UDID"]})
    check_target("ProfileList", mac)
    ipad = DeviceFacts(platform="iOS", os_version="17.5", supervised=True, shared_ipad=True)
    check_target("Settings", ipad, {"Settings": [{"Item": "Wallpaper", "Image": b"x", "Where": 3}]})
    check_target("EraseDevice", ipad, {"ReturnToService": {"Enabled": True}})
    check_target("LogOutUser", ipad)
    check_target("EraseDevice", DeviceFacts())  # nothing known: the device's own answer will say
    check_target("EraseDevice", DeviceFacts(platform="iOS", os_version="beta"))  # unreadable version


def test_a_malformed_command_is_invalid_before_its_target_is_judged() -> None:
    with pytest.raises(CommandError, match="EraseDevice: PIN must be a string of 6 digits"):
        check_target("EraseDevice", DeviceFacts(platform="iOS"), {"PIN": "1"})


def test_platform_and_facts_from_what_devices_report() -> None:
    assert platform_of("iPhone14,2") == platform_of("iPad13,1") == platform_of("iPod9,1") == "iOS"
    assert platform_of("MacBookPro18,1") == platform_of("iMac21,1") == platform_of("Mac14,2") == "macOS"
    assert platform_of("VirtualMac2,1") == platform_of("Macmini9,1") == "macOS"
    assert platform_of("AppleTV11,1") == "tvOS"
    assert platform_of("Watch6,1") == "watchOS"
    assert platform_of("RealityDevice14,1") == "visionOS"
    assert platform_of("Toaster1,1") is platform_of(None) is platform_of("") is None
    inventory = {
        "DeviceInformation": {
            "ProductName": "iPad13,1",
            "OSVersion": "17.5",
            "IsSupervised": True,
            "IsMultiUser": True,
        },
        "SecurityInfo": {"ManagementStatus": {"EnrolledViaDEP": True, "IsUserEnrollment": False}},
    }
    assert DeviceFacts.from_inventory(inventory, channel="user") == DeviceFacts(
        platform="iOS",
        os_version="17.5",
        supervised=True,
        channel="user",
        user_enrollment=False,
        shared_ipad=True,
        ade=True,
    )
    odd = {
        "DeviceInformation": {"ProductName": 7, "OSVersion": ["17"], "IsSupervised": "yes"},
        "SecurityInfo": [],
    }
    assert DeviceFacts.from_inventory(odd) == DeviceFacts()
    assert DeviceFacts.from_inventory({}, user_enrollment=True) == DeviceFacts(user_enrollment=True)


# -- hand-written extras refine, never redefine ------------------------------------------------


def test_refinements_keep_apples_keys_and_types() -> None:
    params = generated.EraseDevice.params
    pinned = refine(params, "PIN", hint="six digits", pattern=re.compile("[0-9]{6}"))
    assert pinned["PIN"].type == "string" and pinned["PIN"].hint == "six digits"
    assert params["PIN"].hint is None  # the generated declaration is untouched
    narrowed = refine(params, "ObliterationBehavior", choices=("Default",))
    assert narrowed["ObliterationBehavior"].choices == ("Default",)
    nested = refine(generated.ScheduleOSUpdate.params, "Updates[].Priority", choices=("Low",))
    item = nested["Updates"].item
    assert item is not None and item.subkeys is not None and item.subkeys["Priority"].choices == ("Low",)
    variant = refine(generated.Settings.params, "Settings[TimeZone].TimeZone", hint="an IANA name")
    variants = variant["Settings"].item.variants  # type: ignore[union-attr]
    assert variants is not None and variants["TimeZone"]["TimeZone"].hint == "an IANA name"
    with pytest.raises(TypeError, match="refine cannot change type"):
        refine(params, "PIN", type="integer")
    with pytest.raises(ValueError, match="must narrow"):
        refine(params, "ObliterationBehavior", choices=("Sometimes",))
    with pytest.raises(ValueError, match="must narrow"):
        refine(params, "PIN", choices=("123456",))  # Apple lists no choices for it
    with pytest.raises(KeyError, match="no key 'Colour'"):
        refine(params, "Colour", hint="x")
    with pytest.raises(KeyError, match="no variant 'Teleport'"):
        refine(generated.Settings.params, "Settings[Teleport].Enabled", hint="x")


def test_a_hand_written_builder_cannot_change_apples_keys() -> None:
    erase = COMMANDS["EraseDevice"]
    with pytest.raises(TypeError, match="changes the keys of EraseDevice"):

        class Sneaky(erase):  # type: ignore[valid-type,misc]
            params = {**generated.EraseDevice.params, "Colour": Param("string")}

    assert COMMANDS["EraseDevice"].__module__ == "russet.commands.device"
    assert COMMANDS["DeviceInformation"].params["Queries"].default == DEFAULT_QUERIES


def _all_keys(keys: list[dict[str, Any]] | None) -> Iterator[str]:
    for spec in keys or []:
        yield spec["key"]
        yield from _all_keys(spec.get("subkeys"))


@pytest.mark.parametrize("request_type", sorted(r for r in COMMANDS if COMMANDS[r].secret_keys))
def test_secret_keys_are_keys_of_the_command_or_its_answer(request_type: str) -> None:
    """A misspelt secret key would leave the secret readable at rest and in output."""
    doc = schemas()[request_type]
    known = {*_all_keys(doc.get("payloadkeys")), *_all_keys(doc.get("responsekeys"))}
    assert COMMANDS[request_type].secret_keys <= known


def test_commands_carrying_passwords_are_secret() -> None:
    for request_type in ("SetRecoveryLock", "AccountConfiguration", "RequestMirroring", "RotateFileVaultKey"):
        assert is_secret(request_type), request_type
    assert not is_secret("ProfileList") and not is_secret("Bogus")


# -- the drift check: generated code equals what the schemas give ----------------------------------


def test_generated_module_matches_apples_schemas(tmp_path: Path) -> None:
    """Fails when a schema changed and nobody ran `python -m russet.commands.codegen`."""
    out = tmp_path / "generated.py"
    assert codegen.main(["--out", str(out)]) == 0
    assert out.read_text() == codegen.TARGET.read_text(), "run: python -m russet.commands.codegen"
    assert codegen.main(["--check"]) == 0


def test_the_drift_check_notices_a_changed_schema(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    schemas_copy = tmp_path / "commands"
    shutil.copytree(SCHEMA_DIR, schemas_copy)
    path = schemas_copy / "profile.remove.yaml"
    doc = yaml.safe_load(path.read_text())
    doc["payloadkeys"].append({"key": "Force", "type": "<boolean>", "presence": "optional"})
    path.write_text(yaml.safe_dump(doc))
    assert codegen.main(["--schemas", str(schemas_copy), "--check"]) == 1
    assert "out of date" in capsys.readouterr().err
    text = codegen.generate(schemas_copy)
    assert '"Force": Param("boolean")' in text and text != codegen.TARGET.read_text()


def test_the_generator_refuses_what_it_cannot_express(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "commands"
    bad.mkdir()
    base = {"title": "T", "description": "D", "payload": {"requesttype": "Probe", "supportedOS": {}}}
    for name, doc, message in [
        ("type", {**base, "payloadkeys": [{"key": "A", "type": "<colour>"}]}, "unknown type '<colour>'"),
        (
            "version",
            {**base, "payload": {"requesttype": "Probe", "supportedOS": {"iOS": {"introduced": 10.1}}}},
            "is not an OS version",
        ),
        (
            "name",
            {**base, "payload": {"requesttype": "Not a name", "supportedOS": {}}},
            "is not a class name",
        ),
        (
            "range",
            {**base, "payloadkeys": [{"key": "A", "type": "<integer>", "rangelist": ["x"]}]},
            "rangelist value 'x' is not a integer",
        ),
    ]:
        for old in bad.glob("*.yaml"):
            old.unlink()
        (bad / f"{name}.yaml").write_text(yaml.safe_dump(doc))
        assert codegen.main(["--schemas", str(bad), "--out", str(tmp_path / "out.py")]) == 2
        assert message in capsys.readouterr().err
    assert not (tmp_path / "out.py").exists()
