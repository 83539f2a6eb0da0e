"""MDM command builders, checked against Apple's own YAML schemas for each RequestType."""

from __future__ import annotations

import base64
import functools
import json
import plistlib
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml

from russet.commands import COMMANDS, Command, CommandError, Param, build_command, render_command_plist
from russet.commands.device import DeviceLock, EraseDevice
from russet.commands.information import DEFAULT_QUERIES, DeviceInformation
from russet.commands.inventory import inventory_update, summary_fields
from russet.commands.settings import SETTINGS_ITEMS, Settings
from russet.commands.updates import ScheduleOSUpdate
from tests.apple_schema import CAPTURES, SCHEMAS, example, free_form, schema_errors

SCHEMA_DIR = SCHEMAS / "mdm/commands"


@functools.cache
def schemas() -> dict[str, dict[str, Any]]:
    """Apple's command schemas by RequestType."""
    out = {}
    for path in sorted(SCHEMA_DIR.glob("*.yaml")):
        doc = yaml.safe_load(path.read_text())
        out[doc["payload"]["requesttype"]] = doc
    return out


def spec_drift(params: Mapping[str, Param], keys: list[dict[str, Any]] | None, path: str = "") -> list[str]:
    """Every way a builder's declarations disagree with Apple's schema keys."""
    known = {k["key"]: k for k in keys or []}
    errors = []
    for name, param in params.items():
        if name not in known:
            errors.append(f"{path}{name}: declared but not in Apple's schema")
        else:
            errors += _param_drift(param, known[name], f"{path}{name}")
    for k in keys or []:
        declared = params.get(k["key"])
        if k.get("presence") == "required" and (declared is None or not declared.required):
            errors.append(f"{path}{k['key']}: Apple requires it, the builder does not")
    return errors


def _param_drift(param: Param, spec: dict[str, Any], path: str) -> list[str]:
    if f"<{param.type}>" != spec["type"]:
        return [f"{path}: declared {param.type}, Apple says {spec['type']}"]
    rangelist = spec.get("rangelist")
    if rangelist is not None and (param.choices is None or not set(param.choices) <= set(rangelist)):
        return [f"{path}: choices {param.choices} do not follow Apple's rangelist {rangelist}"]
    if rangelist is None and param.choices is not None:
        return [f"{path}: choices {param.choices} where Apple has no rangelist"]
    subkeys: list[dict[str, Any]] = spec.get("subkeys") or []
    if param.type == "dictionary":
        if free_form(subkeys):
            return [] if param.subkeys is None else [f"{path}: Apple leaves it free-form"]
        if param.subkeys is None:
            return [f"{path}: declared free-form, Apple lists its keys"]
        return spec_drift(param.subkeys, subkeys, f"{path}.")
    if param.type == "array":
        if param.item is None:
            return [f"{path}: declares no item type"]
        if len(subkeys) == 1:
            return _param_drift(param.item, subkeys[0], f"{path}[]")
        return _variant_drift(param.item, subkeys, path)
    return []


def _variant_drift(param: Param, alternatives: list[dict[str, Any]], path: str) -> list[str]:
    """Compare a tagged union (Settings items) with Apple's list of alternative dictionaries."""
    if param.variants is None:
        return [f"{path}: Apple lists alternatives, the builder has no variants"]
    by_tag = {}
    for alt in alternatives:
        tag_key = next(k for k in alt["subkeys"] if k["key"] == param.tag)
        (tag,) = tag_key["rangelist"]
        by_tag[tag] = [k for k in alt["subkeys"] if k["key"] != param.tag]
    errors = []
    for tag, fields in param.variants.items():
        if tag not in by_tag:
            errors.append(f"{path}[]: {param.tag} {tag} is not in Apple's schema")
        else:
            errors += spec_drift(fields, by_tag[tag], f"{path}[{tag}].")
    return errors


# ---------------------------------------------------------------------------------------------
# Representative parameters for every builder.

PROFILE = plistlib.dumps(
    {
        "PayloadType": "Configuration",
        "PayloadIdentifier": "com.example.wifi",
        "PayloadUUID": "B0A5C3C1-5D3F-4C0E-9A5B-2F8E6D1C7A90",
        "PayloadVersion": 1,
        "PayloadContent": [],
    }
)

SETTINGS_EXAMPLE: list[dict[str, Any]] = [
    {"Item": "Wallpaper", "Image": b"\x89PNG\r\n\x1a\n", "Where": 3},
    {"Item": "DataRoaming", "Enabled": False},
    {"Item": "VoiceRoaming", "Enabled": True},
    {"Item": "PersonalHotspot", "Enabled": False},
    {"Item": "Bluetooth", "Enabled": True},
    {
        "Item": "ApplicationConfiguration",
        "Identifier": "com.example.app",
        "Configuration": {"ServerURL": "https://example.com", "Retries": 3, "Tags": ["a", "b"]},
    },
    {
        "Item": "ApplicationAttributes",
        "Identifier": "com.example.app",
        "Attributes": {"VPNUUID": "C1D2", "AssociatedDomains": ["applinks:example.com"], "Removable": False},
    },
    {"Item": "DeviceName", "DeviceName": "Front desk iPad"},
    {"Item": "HostName", "HostName": "front-desk"},
    {
        "Item": "OrganizationInfo",
        "OrganizationInfo": {"OrganizationName": "Example", "OrganizationEmail": "it@example.com"},
    },
    {"Item": "MDMOptions", "MDMOptions": {"ActivationLockAllowedWhileSupervised": True}},
    {"Item": "MaximumResidentUsers", "MaximumResidentUsers": 4},
    {
        "Item": "SharedDeviceConfiguration",
        "QuotaSize": 8192,
        "ManagedAppleIDDefaultDomains": ["example.com"],
        "AwaitUserConfiguration": {"Enabled": True},
        "PasscodePolicy": {"PasscodeLockGracePeriod": 300, "AutoLockTime": 120},
    },
    {"Item": "DiagnosticSubmission", "Enabled": False},
    {"Item": "AppAnalytics", "Enabled": False},
    {"Item": "PasscodeLockGracePeriod", "PasscodeLockGracePeriod": 900},
    {"Item": "TimeZone", "TimeZone": "Europe/Paris"},
    {"Item": "SoftwareUpdateSettings", "RecommendationCadence": 2},
    {"Item": "AccessibilitySettings", "BoldTextEnabled": True, "TextSize": 6},
]

EXAMPLES: dict[str, list[dict[str, Any]]] = {
    "DeviceInformation": [
        {},
        {"Queries": ["UDID", "DevicePropertiesAttestation"], "DeviceAttestationNonce": bytes(range(32))},
    ],
    "SecurityInfo": [{}],
    "CertificateList": [{}, {"ManagedOnly": True}],
    "Restrictions": [{"ProfileRestrictions": True}],
    "ProfileList": [{"ManagedOnly": False}],
    "InstallProfile": [{"Payload": PROFILE}],
    "RemoveProfile": [{"Identifier": "com.example.wifi"}],
    "InstalledApplicationList": [
        {},
        {
            "Identifiers": ["com.apple.Pages"],
            "ManagedAppsOnly": True,
            "Items": ["Name", "Version", "IsAppClip"],
        },
    ],
    "ManagedApplicationList": [{"Identifiers": ["com.example.app"]}],
    "InstallApplication": [
        {
            "iTunesStoreID": 361285480,
            "Options": {"PurchaseMethod": 1},
            "ManagementFlags": 5,
            "Configuration": {"ServerURL": "https://example.com", "Port": 443},
            "Attributes": {"Removable": False, "Hideable": False, "AssociatedDomains": ["example.com"]},
            "ChangeManagementState": "Managed",
            "InstallAsManaged": True,
        },
        {"Identifier": "com.example.app", "iOSApp": True},
        {"ManifestURL": "https://example.com/app/manifest.plist"},
    ],
    "RemoveApplication": [{"Identifier": "com.example.app"}],
    "DeviceLock": [{}, {"Message": "Call IT", "PhoneNumber": "+33 1 23 45 67 89", "PIN": "042917"}],
    "EraseDevice": [
        {},
        {
            "PIN": "123456",
            "PreserveDataPlan": True,
            "DisallowProximitySetup": True,
            "ObliterationBehavior": "DoNotObliterate",
            "ReturnToService": {"Enabled": True, "WiFiProfileData": PROFILE, "MDMProfileData": PROFILE},
        },
    ],
    "RestartDevice": [{}, {"NotifyUser": True}, {"RebuildKernelCache": True, "KextPaths": ["/L/E/x.kext"]}],
    "ShutDownDevice": [{}],
    "ClearPasscode": [{"UnlockToken": b"\x00\x01\xfe\xff"}],
    "RequestUnlockToken": [{}],
    "DeviceConfigured": [{}],
    "DeclarativeManagement": [{}, {"Data": b'{"SyncTokens": {"DeclarationsToken": "abc"}}'}],
    "EnableLostMode": [{"Message": "Lost"}, {"PhoneNumber": "+1 555 0100", "Footnote": "Reward"}],
    "DisableLostMode": [{}],
    "DeviceLocation": [{}],
    "PlayLostModeSound": [{}],
    "Settings": [{"Settings": SETTINGS_EXAMPLE}],
    "ScheduleOSUpdate": [
        {
            "Updates": [
                {"ProductKey": "MSU_UPDATE_22F82", "InstallAction": "InstallLater", "MaxUserDeferrals": 3},
                {"ProductVersion": "17.5.1", "InstallAction": "InstallASAP", "Priority": "High"},
            ]
        }
    ],
    "AvailableOSUpdates": [{}],
    "OSUpdateStatus": [{}],
}

# Every other command: its required keys and all its keys, with values taken from Apple's schema.
for _name, _doc in schemas().items():
    if _name not in EXAMPLES:
        _keys = _doc.get("payloadkeys")
        EXAMPLES[_name] = [example(_keys, full=False), example(_keys, full=True)]

CASES = [(name, params) for name in sorted(EXAMPLES) for params in EXAMPLES[name]]


def _as_json(value: Any) -> Any:
    """What an admin posting JSON sends: data as base64 strings."""
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, dict):
        return {k: _as_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_as_json(v) for v in value]
    return value


def test_every_builder_has_examples_and_a_schema() -> None:
    assert set(EXAMPLES) == set(COMMANDS)
    assert set(COMMANDS) <= set(schemas())


def test_settings_example_covers_every_item() -> None:
    assert [item["Item"] for item in SETTINGS_EXAMPLE] == list(SETTINGS_ITEMS)


@pytest.mark.parametrize(("request_type", "params"), CASES)
def test_builder_output_matches_apple_schema(request_type: str, params: dict[str, Any]) -> None:
    command = COMMANDS[request_type](**params).to_dict()
    assert command["RequestType"] == request_type
    body = {k: v for k, v in command.items() if k != "RequestType"}
    assert schema_errors(schemas()[request_type].get("payloadkeys"), body) == []


@pytest.mark.parametrize(("request_type", "params"), CASES)
def test_dict_round_trips(request_type: str, params: dict[str, Any]) -> None:
    cls = COMMANDS[request_type]
    command = cls(**params).to_dict()
    assert cls.from_dict(command).to_dict() == command
    assert build_command(command) == command
    assert build_command(_as_json(command)) == command  # base64 strings become bytes again


@pytest.mark.parametrize("request_type", sorted(COMMANDS))
def test_declared_params_follow_apple_schema(request_type: str) -> None:
    assert spec_drift(COMMANDS[request_type].params, schemas()[request_type].get("payloadkeys")) == []


def test_schema_validator_catches_mistakes() -> None:
    """The checks above are only worth something if the validator can say no."""
    keys = schemas()["Settings"]["payloadkeys"]
    assert schema_errors(keys, {"Settings": [{"Item": "Bluetooth", "Enabled": True}]}) == []
    assert schema_errors(keys, {})  # Settings is required
    assert schema_errors(keys, {"Settings": [], "Extra": 1})
    assert schema_errors(keys, {"Settings": [{"Item": "Bluetooth", "Enabled": "yes"}]})
    assert schema_errors(keys, {"Settings": [{"Item": "Teleport", "Enabled": True}]})
    assert schema_errors(keys, {"Settings": [{"Item": "Wallpaper", "Image": b"", "Where": 4}]})
    queries = schemas()["DeviceInformation"]["payloadkeys"]
    assert schema_errors(queries, {"Queries": ["SerialNumbr"]})
    assert schema_errors(queries, {"Queries": ["UDID"], "DeviceAttestationNonce": "not bytes"})


def test_drift_check_catches_mistakes() -> None:
    keys = schemas()["EraseDevice"]["payloadkeys"]
    assert spec_drift({"PIN": Param("integer")}, keys)
    assert spec_drift({"Colour": Param("string")}, keys)
    assert spec_drift({"ObliterationBehavior": Param("string")}, keys)  # rangelist not enforced
    assert spec_drift({"ReturnToService": Param("dictionary")}, keys)
    assert spec_drift({}, schemas()["RemoveProfile"]["payloadkeys"])  # required key not declared
    bad_item = {
        "Settings": Param("array", required=True, item=Param("dictionary", variants={"Teleport": {}}))
    }
    assert spec_drift(bad_item, schemas()["Settings"]["payloadkeys"])


def test_device_information_default_queries() -> None:
    command = DeviceInformation().to_dict()
    assert command["Queries"] == list(DEFAULT_QUERIES)
    assert {"UDID", "SerialNumber", "OSVersion", "Model", "IsSupervised", "WiFiMAC", "IMEI"} <= set(
        command["Queries"]
    )
    assert DeviceInformation(Queries=["UDID"]).to_dict()["Queries"] == ["UDID"]


# ---------------------------------------------------------------------------------------------
# Refusals, each naming the key at fault.

BAD_INPUTS: list[tuple[type[Command], dict[str, Any], str]] = [
    (DeviceLock, {"PIN": 123456}, "DeviceLock: PIN must be a string of 6 digits, not int"),
    (DeviceLock, {"PIN": "12345"}, "DeviceLock: PIN must be a string of 6 digits"),
    (DeviceLock, {"PIN": "12345a"}, "DeviceLock: PIN must be a string of 6 digits"),
    (DeviceLock, {"Message": None}, "DeviceLock: Message must be a string, not None"),
    (EraseDevice, {"Foo": 1}, "EraseDevice: unknown key 'Foo'"),
    (EraseDevice, {"ObliterationBehavior": "Never"}, "EraseDevice: ObliterationBehavior must be one of"),
    (EraseDevice, {"ReturnToService": {}}, "EraseDevice: missing required key ReturnToService.Enabled"),
    (
        EraseDevice,
        {"ReturnToService": {"Enabled": 1}},
        "EraseDevice: ReturnToService.Enabled must be a boolean",
    ),
    (
        EraseDevice,
        {"ReturnToService": {"Enabled": True, "MDMProfileData": "%%%"}},
        "EraseDevice: ReturnToService.MDMProfileData must be data; '%%%' is not valid base64",
    ),
    (COMMANDS["RemoveProfile"], {}, "RemoveProfile: missing required key Identifier"),
    (COMMANDS["InstallProfile"], {"Payload": 7}, "InstallProfile: Payload must be data"),
    (DeviceInformation, {"Queries": "UDID"}, "DeviceInformation: Queries must be an array, not str"),
    (DeviceInformation, {"Queries": ["UDID", 3]}, "DeviceInformation: Queries[1] must be a string, not int"),
    (
        DeviceInformation,
        {"Queries": ["DevicePropertiesAttestation"], "DeviceAttestationNonce": bytes(33)},
        "DeviceInformation: DeviceAttestationNonce must be at most 32 bytes",
    ),
    (
        DeviceInformation,
        {"Queries": ["UDID"], "DeviceAttestationNonce": b"n"},
        "DeviceInformation: DeviceAttestationNonce needs 'DevicePropertiesAttestation' in Queries",
    ),
    (Settings, {}, "Settings: missing required key Settings"),
    (Settings, {"Settings": [{"Enabled": True}]}, "Settings: missing required key Settings[0].Item"),
    (Settings, {"Settings": [{"Item": "Teleport"}]}, "Settings: Settings[0].Item 'Teleport' is not one of"),
    (Settings, {"Settings": [{"Item": 4}]}, "Settings: Settings[0].Item 4 is not one of"),
    (
        Settings,
        {"Settings": [{"Item": "TimeZone", "TimeZone": "UTC"}, {"Item": "Bluetooth"}]},
        "Settings: missing required key Settings[1].Enabled",
    ),
    (
        Settings,
        {"Settings": [{"Item": "Bluetooth", "Enabled": True, "Colour": "red"}]},
        "Settings: unknown key 'Settings[0].Colour'",
    ),
    (
        Settings,
        {"Settings": [{"Item": "Wallpaper", "Image": b"x", "Where": True}]},
        "Settings: Settings[0].Where must be an integer, not bool",
    ),
    (
        Settings,
        {"Settings": [{"Item": "ApplicationConfiguration", "Identifier": "a", "Configuration": {"k": None}}]},
        "Settings: Settings[0].Configuration.k is None",
    ),
    (COMMANDS["EnableLostMode"], {"Footnote": "x"}, "EnableLostMode: Message or PhoneNumber is required"),
    (COMMANDS["InstallApplication"], {}, "InstallApplication: exactly one of iTunesStoreID"),
    (
        COMMANDS["InstallApplication"],
        {"iTunesStoreID": 1, "Identifier": "com.example.app"},
        "InstallApplication: exactly one of iTunesStoreID, Identifier, ManifestURL is needed, not 2",
    ),
    (
        COMMANDS["InstallApplication"],
        {"ManifestURL": "http://example.com/m.plist"},
        "InstallApplication: ManifestURL must begin with https:",
    ),
    (
        COMMANDS["InstallApplication"],
        {"iTunesStoreID": 2**64},
        "InstallApplication: iTunesStoreID is out of the 64-bit integer range",
    ),
    (
        ScheduleOSUpdate,
        {"Updates": [{"InstallAction": "Default"}]},
        "ScheduleOSUpdate: Updates[0] needs ProductKey or ProductVersion",
    ),
    (
        ScheduleOSUpdate,
        {"Updates": [{"ProductKey": "k", "InstallAction": "Default", "MaxUserDeferrals": 2}]},
        "ScheduleOSUpdate: Updates[0].MaxUserDeferrals only applies to InstallAction InstallLater",
    ),
    (
        ScheduleOSUpdate,
        {"Updates": [{"ProductKey": "k", "InstallAction": "Soon"}]},
        "ScheduleOSUpdate: Updates[0].InstallAction must be one of 'Default'",
    ),
]


@pytest.mark.parametrize(("cls", "params", "message"), BAD_INPUTS)
def test_bad_input_is_refused_by_name(cls: type[Command], params: dict[str, Any], message: str) -> None:
    with pytest.raises(CommandError) as caught:
        cls(**params)
    assert str(caught.value).startswith(message)
    with pytest.raises(CommandError):  # the admin API path refuses it too
        build_command({"RequestType": cls.request_type, **params})


def _free(configuration: dict[Any, Any]) -> dict[str, Any]:
    return {"RequestType": "InstallApplication", "iTunesStoreID": 1, "Configuration": configuration}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({}, "RequestType must be a non-empty string, not None"),
        ({"RequestType": ""}, "RequestType must be a non-empty string"),
        ({"RequestType": "  "}, "RequestType must be a non-empty string"),
        ({"RequestType": 5}, "RequestType must be a non-empty string, not 5"),
        ({"RequestType": "FutureThing"}, "unknown RequestType 'FutureThing'"),
        ({"RequestType": "DeviceLok"}, "unknown RequestType 'DeviceLok' (did you mean DeviceLock"),
        # Free-form values (an app's managed configuration) must still fit in a plist.
        (_free({"Level": None}), "InstallApplication: Configuration.Level is None"),
        (_free({"A": {"B": [1, None]}}), "InstallApplication: Configuration.A.B[1] is None"),
        (_free({"A": {1: "x"}}), "InstallApplication: Configuration.A has a non-string key 1"),
        (_free({"A": {1, 2}}), "InstallApplication: Configuration.A is a set"),
        (_free({"A": 2**64}), "InstallApplication: Configuration.A is out of the 64-bit"),
        (_free({"A": [float("nan")]}), "InstallApplication: Configuration.A[0] must be a finite number"),
        ({"RequestType": "DeviceLock", "PIN": "1"}, "DeviceLock: PIN must be a string of 6 digits"),
    ],
)
def test_build_command_refuses(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(CommandError) as caught:
        build_command(raw)
    assert str(caught.value).startswith(message)


def test_build_command_refuses_non_dict() -> None:
    with pytest.raises(CommandError, match="must be a dictionary, not list"):
        build_command([("RequestType", "DeviceLock")])  # type: ignore[arg-type]


def test_build_command_refuses_unknown_request_types() -> None:
    """Issue #15: a RequestType no Apple schema defines used to be queued as it came."""
    with pytest.raises(CommandError, match="unknown RequestType 'TriggerEnhancedLogCollection'"):
        build_command({"RequestType": "TriggerEnhancedLogCollection", "Ids": ["a"]})


def test_build_command_makes_free_form_values_plist_ready() -> None:
    when = datetime(2025, 3, 1, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    raw = _free({"Ids": ("a", "b"), "At": when, "Blob": b"\x00"})
    assert build_command(raw) == {
        "RequestType": "InstallApplication",
        "iTunesStoreID": 1,
        "Configuration": {
            "Ids": ["a", "b"],
            "At": datetime(2025, 3, 1, 10, 0),  # moved to UTC, since plistlib ignores the zone
            "Blob": b"\x00",
        },
    }


def test_from_dict_checks_the_request_type() -> None:
    with pytest.raises(CommandError, match="DeviceLock: RequestType is 'EraseDevice'"):
        DeviceLock.from_dict({"RequestType": "EraseDevice"})
    assert DeviceLock.from_dict({"PIN": "000000"}).to_dict() == {"RequestType": "DeviceLock", "PIN": "000000"}


def test_a_request_type_has_one_builder() -> None:
    with pytest.raises(TypeError, match="two builders for RequestType DeviceLock"):

        class AnotherDeviceLock(Command):
            request_type = "DeviceLock"

    assert COMMANDS["DeviceLock"] is DeviceLock


# ---------------------------------------------------------------------------------------------
# Command-line parameters.


def test_cli_params_are_typed_by_declaration(tmp_path: Path) -> None:
    blob = tmp_path / "wifi.mobileconfig"
    blob.write_bytes(PROFILE)
    assert COMMANDS["InstallProfile"].coerce_cli_params({"Payload": f"@{blob}"}) == {"Payload": PROFILE}
    assert COMMANDS["ClearPasscode"].coerce_cli_params({"UnlockToken": "AAH+/w=="}) == {
        "UnlockToken": b"\x00\x01\xfe\xff"
    }
    for word, value in [
        ("true", True),
        ("YES", True),
        ("1", True),
        ("false", False),
        ("no", False),
        ("0", False),
    ]:
        assert COMMANDS["ProfileList"].coerce_cli_params({"ManagedOnly": word}) == {"ManagedOnly": value}
    app = COMMANDS["InstallApplication"].coerce_cli_params(
        {"iTunesStoreID": "361285480", "Options": '{"PurchaseMethod": 1}', "ManagementFlags": "5"}
    )
    assert app == {"iTunesStoreID": 361285480, "Options": {"PurchaseMethod": 1}, "ManagementFlags": 5}
    assert DeviceInformation.coerce_cli_params({"Queries": "UDID, SerialNumber"}) == {
        "Queries": ["UDID", "SerialNumber"]
    }
    assert DeviceInformation.coerce_cli_params({"Queries": '["UDID"]'}) == {"Queries": ["UDID"]}
    assert DeviceInformation.coerce_cli_params({"Queries": ""}) == {"Queries": []}
    assert DeviceLock.coerce_cli_params({"PIN": "012345"}) == {"PIN": "012345"}  # not an integer


def test_cli_nested_values_go_through_the_builder() -> None:
    image = base64.b64encode(b"\x89PNG").decode()
    raw = {"Settings": json.dumps([{"Item": "Wallpaper", "Image": image, "Where": 1}])}
    command = Settings(**Settings.coerce_cli_params(raw)).to_dict()
    assert command["Settings"] == [{"Item": "Wallpaper", "Image": b"\x89PNG", "Where": 1}]


@pytest.mark.parametrize(
    ("cls", "raw", "message"),
    [
        (COMMANDS["ProfileList"], {"ManagedOnly": "maybe"}, "ProfileList: ManagedOnly must be true/false"),
        (
            COMMANDS["InstallApplication"],
            {"iTunesStoreID": "12a"},
            "InstallApplication: iTunesStoreID must be",
        ),
        (
            COMMANDS["InstallApplication"],
            {"Options": "[1]"},
            "InstallApplication: Options must be a JSON object",
        ),
        (
            COMMANDS["InstallApplication"],
            {"Options": "{"},
            "InstallApplication: Options must be a JSON object",
        ),
        (COMMANDS["InstallProfile"], {"Payload": "@/nonexistent/x"}, "InstallProfile: Payload: cannot read"),
        (COMMANDS["InstallProfile"], {"Payload": "not base64!"}, "InstallProfile: Payload must be data"),
        (Settings, {"Settings": "Bluetooth"}, "Settings: Settings must be a JSON array"),
        (Settings, {"Settings": '{"Item": "x"}'}, "Settings: Settings must be a JSON array"),
        (DeviceLock, {"Colour": "red"}, "DeviceLock: unknown key 'Colour'"),
    ],
)
def test_bad_cli_values(cls: type[Command], raw: dict[str, str], message: str) -> None:
    with pytest.raises(CommandError) as caught:
        cls.coerce_cli_params(raw)
    assert str(caught.value).startswith(message)


def test_real_and_date_params() -> None:
    """No builder has a <real> or <date> parameter yet; a throwaway one checks they would work."""
    try:

        class Probe(Command):
            request_type = "RussetTestProbe"
            params = {
                "Ratio": Param("real"),
                "When": Param("date"),
                "Codes": Param("array", item=Param("integer")),
                "Extra": Param("any"),
            }

        typed = Probe.coerce_cli_params(
            {"Ratio": "0.5", "When": "2025-01-02T03:04:05Z", "Codes": "1, 2", "Extra": '{"a": 1}'}
        )
        assert typed == {
            "Ratio": 0.5,
            "When": datetime(2025, 1, 2, 3, 4, 5),  # naive UTC, as plistlib writes it
            "Codes": [1, 2],
            "Extra": {"a": 1},
        }
        assert Probe.coerce_cli_params({"Extra": "plain"}) == {"Extra": "plain"}
        assert Probe(**typed).to_dict()["When"] == datetime(2025, 1, 2, 3, 4, 5)
        assert Probe(Ratio=2).to_dict()["Ratio"] == 2.0
        assert type(Probe(Ratio=2).to_dict()["Ratio"]) is float  # rendered as <real>, not <integer>
        assert Probe.from_dict({"When": "2025-01-02T03:04:05"}).to_dict()["When"] == datetime(
            2025, 1, 2, 3, 4, 5
        )
        for raw, message in [
            ({"Ratio": "fast"}, "RussetTestProbe: Ratio must be a number, not 'fast'"),
            ({"Ratio": "nan"}, "RussetTestProbe: Ratio must be a number, not 'nan'"),
            ({"When": "tomorrow"}, "RussetTestProbe: When must be a date; 'tomorrow' is not ISO 8601"),
            ({"Codes": "1,x"}, "RussetTestProbe: Codes[1] must be an integer, not 'x'"),
        ]:
            with pytest.raises(CommandError) as caught:
                Probe.coerce_cli_params(raw)
            assert str(caught.value) == message
        with pytest.raises(CommandError, match="RussetTestProbe: Ratio must be a number, not bool"):
            Probe(Ratio=True)
        with pytest.raises(CommandError, match="RussetTestProbe: Ratio must be a finite number, not inf"):
            Probe(Ratio=float("inf"))
        with pytest.raises(CommandError, match="RussetTestProbe: When must be a date"):
            Probe(When=1)
    finally:
        COMMANDS.pop("RussetTestProbe", None)


# ---------------------------------------------------------------------------------------------
# What goes on the wire.


def test_render_command_plist_parses_back() -> None:
    uuid = "9F09D114-BCFD-42AD-A974-371AA7D6256E"
    command = build_command({"RequestType": "InstallProfile", "Payload": base64.b64encode(PROFILE).decode()})
    body = render_command_plist(uuid, command)
    assert body.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    assert b"<data>" in body
    assert plistlib.loads(body) == {
        "CommandUUID": uuid,
        "Command": {"RequestType": "InstallProfile", "Payload": PROFILE},
    }


@pytest.mark.parametrize(("request_type", "params"), CASES)
def test_every_example_renders(request_type: str, params: dict[str, Any]) -> None:
    command = COMMANDS[request_type](**params).to_dict()
    assert plistlib.loads(render_command_plist("u-1", command)) == {"CommandUUID": "u-1", "Command": command}


# ---------------------------------------------------------------------------------------------
# Inventory from command reports.


def _capture(name: str) -> dict[str, Any]:
    report: dict[str, Any] = plistlib.loads((CAPTURES / name).read_bytes())
    return report


def test_inventory_from_real_device_information_report() -> None:
    report = _capture("DeviceInformation.1.plist")
    update = inventory_update(report["RequestType"], report)
    assert update == {
        "DeviceInformation": {
            "HostName": "fruit.example.com",
            "UDID": "66ADE930-5FDF-5EC4-8429-15640684C489",
        }
    }
    json.dumps(update)
    assert summary_fields(update) == {}  # that device was asked nothing the list shows


def test_summary_fields_from_device_information() -> None:
    report = _capture("DeviceInformation.1.plist")
    report["QueryResponses"].update(
        SerialNumber="C02XK0AAJG5H",
        Model="MacBookPro16,1",
        ModelName="MacBook Pro",
        ProductName="MacBookPro16,1",
        OSVersion="15.1",
        BuildVersion="24B83",
        DeviceName="Ada's Mac",
        BatteryLevel=0.82,
    )
    update = inventory_update("DeviceInformation", report)
    assert update is not None
    assert summary_fields(update) == {
        "serial_number": "C02XK0AAJG5H",
        "model": "MacBookPro16,1",
        "model_name": "MacBook Pro",
        "product_name": "MacBookPro16,1",
        "os_version": "15.1",
        "build_version": "24B83",
        "device_name": "Ada's Mac",
    }
    assert summary_fields({"SecurityInfo": {}}) == {}


def test_inventory_of_security_info_and_apps_is_json_ready() -> None:
    cms = b"\x30\x82\x01\x00"
    security = {
        "Status": "Acknowledged",
        "SecurityInfo": {
            "FDE_Enabled": True,
            "FDE_PersonalRecoveryKeyCMS": cms,
            "ManagementStatus": {"EnrolledViaDEP": True},
            "FirmwarePasswordStatus": {"PasswordExists": False},
        },
    }
    update = inventory_update("SecurityInfo", security)
    assert update is not None
    assert update["SecurityInfo"]["FDE_PersonalRecoveryKeyCMS"] == base64.b64encode(cms).decode()
    assert update["SecurityInfo"]["ManagementStatus"] == {"EnrolledViaDEP": True}
    apps = {
        "Status": "Acknowledged",
        "InstalledApplicationList": [
            {"Identifier": "com.apple.Pages", "BundleSize": 4096, "Installed": datetime(2025, 1, 2, 3, 4, 5)}
        ],
    }
    update = inventory_update("InstalledApplicationList", apps)
    assert update == {
        "InstalledApplicationList": [
            {"Identifier": "com.apple.Pages", "BundleSize": 4096, "Installed": "2025-01-02T03:04:05+00:00"}
        ]
    }
    json.dumps(update)


def test_profile_list_keeps_each_profiles_identity_and_flags_not_its_payloads() -> None:
    entry = {
        "PayloadIdentifier": "com.example.wifi",
        "PayloadUUID": "A1B2",
        "PayloadDisplayName": "Office network" + "x" * 300,
        "PayloadVersion": 1,
        "IsManaged": True,
        "PayloadRemovalDisallowed": False,
        "SignerCertificates": [b"\x30\x82" * 500],
        "PayloadContent": [{"PayloadType": "com.apple.wifi.managed", "PayloadIdentifier": "w"}],
    }
    update = inventory_update(
        "ProfileList",
        {"Status": "Acknowledged", "ProfileList": [entry, "not a dict", {"PayloadVersion": True}]},
    )
    assert update == {
        "ProfileList": [
            {
                "PayloadIdentifier": "com.example.wifi",
                "PayloadUUID": "A1B2",
                "PayloadDisplayName": ("Office network" + "x" * 300)[:255],
                "PayloadVersion": 1,
                "IsManaged": True,
                "PayloadRemovalDisallowed": False,
            },
            {},
        ]
    }
    empty = {"Status": "Acknowledged", "ProfileList": []}
    assert inventory_update("ProfileList", empty) == {"ProfileList": []}


@pytest.mark.parametrize(
    ("request_type", "report"),
    [
        ("DeviceInformation", {"Status": "Error", "QueryResponses": {"UDID": "x"}}),
        ("DeviceInformation", {"Status": "NotNow"}),
        ("DeviceInformation", {"Status": "Acknowledged"}),
        ("DeviceInformation", {"Status": "Acknowledged", "QueryResponses": ["not", "a", "dict"]}),
        ("ProfileList", {"Status": "Error", "ProfileList": []}),
        ("ProfileList", {"Status": "Acknowledged", "ProfileList": {"not": "a list"}}),
        ("CertificateList", {"Status": "Acknowledged", "CertificateList": []}),
    ],
)
def test_reports_without_inventory(request_type: str, report: dict[str, Any]) -> None:
    assert inventory_update(request_type, report) is None
