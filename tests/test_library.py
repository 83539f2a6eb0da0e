"""The profile library: uploads validated against Apple's schemas (refusals in the schema's words,
nothing stored), signed uploads unwrapped, versions, variables per device, Russet's signature on
delivery, installs a device fetches, deletion, and contents sealed at rest. On SQLite and
PostgreSQL through the usual fixtures."""

from __future__ import annotations

import base64
import json
import plistlib
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from russet.enrollment.profile import ProfileRequest, build_profile
from russet.kernel.errors import Conflict, Invalid, NotFound, TooLarge
from russet.library.tables import library_profile_versions, library_profiles
from russet.library.upload import MAX_PROFILE_BYTES
from russet.mdm.tables import command_queue
from russet.pki import sign_attached, verify_attached
from russet.runtime import Russet
from russet.schemas import profile_problems
from russet.storage.secretbox import SecretBox, new_key
from simulators.device import SimDevice, SimUser
from tests.conftest import PUBLIC_URL, TOPIC
from tests.library_support import passcode, payload, profile, restrictions, third_party_signer, wifi, xml


def stored(russet: Russet) -> tuple[int, int]:
    """(profiles, versions) in the database."""
    with russet.storage.engine.connect() as conn:
        return (
            conn.execute(select(func.count()).select_from(library_profiles)).scalar_one(),
            conn.execute(select(func.count()).select_from(library_profile_versions)).scalar_one(),
        )


def delivered(russet: Russet, signed: bytes) -> dict[str, Any]:
    """The profile inside Russet's signature, after checking that signature with cryptography:
    the content verifies with the signer certificate, which is Russet's and issued by its CA."""
    verified = verify_attached(signed)
    assert verified.certificate == russet.authority.signer_certificate
    verified.certificate.verify_directly_issued_by(russet.authority.ca_certificate)
    content: dict[str, Any] = plistlib.loads(verified.content)
    return content


# -- valid profiles --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "payloads",
    [
        [wifi()],
        [passcode()],
        [restrictions()],
        [wifi(), passcode(), restrictions()],
        # Apple's placeholders: ConsentText is language -> text; custom settings are free-form.
        [
            payload(
                "com.apple.ManagedClient.preferences",
                "com.example.custom",
                PayloadContent={"com.example.app": {"Forced": [{"mcx_preference_settings": {"Key": 1}}]}},
            )
        ],
    ],
    ids=["wifi", "passcode", "restrictions", "all-three", "custom-settings"],
)
def test_valid_profiles_are_stored_with_their_summary(russet: Russet, payloads: list[dict[str, Any]]) -> None:
    document = profile(*payloads, ConsentText={"default": "Agree?", "en": "Agree?"})
    result = russet.library.add(xml(document), name="office", uploaded_by="tests")
    assert result["created"] and result["version"] == 1
    shown = russet.library.show("office")
    assert shown["identifier"] == "com.example.wifi"
    assert shown["payload_types"] == [p["PayloadType"] for p in payloads]
    assert [p["uuid"] for p in shown["payloads"]] == [p["PayloadUUID"] for p in payloads]
    assert shown["versions"][0]["payload_uuid"] == document["PayloadUUID"]
    assert shown["versions"][0]["uploaded_by"] == "tests"
    assert len(shown["content_sha256"]) == 64
    assert stored(russet) == (1, 1)


def test_a_binary_plist_and_integers_for_reals_are_accepted(russet: Russet) -> None:
    # <real> keys given as <integer> (devices read both as a number); a binary plist
    document = profile(wifi(), identifier="com.example.binary", DurationUntilRemoval=3600)
    result = russet.library.add(plistlib.dumps(document, fmt=plistlib.FMT_BINARY))
    assert result["created"] and result["profile"]["name"] == "com.example.binary"


def test_russets_own_enrollment_profile_fits_the_schemas_but_is_not_a_library_profile(russet: Russet) -> None:
    enrollment = build_profile(
        ProfileRequest(PUBLIC_URL, TOPIC, identity="pkcs12"), russet.authority, russet.storage.certificates
    )
    assert profile_problems(enrollment) == []
    with pytest.raises(Invalid, match=r"com.apple.mdm payloads come only with enrollment"):
        russet.library.add(plistlib.dumps(enrollment))
    assert stored(russet) == (0, 0)


# -- refusals --------------------------------------------------------------------------------


def _without(document: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in document.items() if k != key}


BAD: list[tuple[str, bytes, str]] = [
    (
        "unknown-payload-type",
        xml(profile(payload("com.apple.wifi.manged", "com.example.x"))),
        r"PayloadContent\[0\]\.PayloadType: 'com.apple.wifi.manged' is not a payload type in Apple's "
        r"schemas; did you mean 'com.apple.wifi.managed'\?",
    ),
    (
        "unknown-key",
        xml(profile(wifi(AutoJion=True))),
        r"PayloadContent\[0\]\.AutoJion: not a key of Wi-Fi \(com.apple.wifi.managed\) in Apple's schema; "
        r"did you mean 'AutoJoin'\?",
    ),
    (
        "wrong-type",
        xml(profile(wifi(HIDDEN_NETWORK="yes"))),
        r"PayloadContent\[0\]\.HIDDEN_NETWORK: must be a boolean, not a string "
        r"\[Hidden: If 'true', defines this network as hidden\]",
    ),
    (
        "missing-required-payload-key",
        xml(profile(_without(wifi(), "PayloadUUID"))),
        r"PayloadContent\[0\]\.PayloadUUID: required by Apple's schema, and missing "
        r"\[The globally unique identifier for the payload\]",
    ),
    (
        "missing-required-top-level-key",
        xml(_without(profile(wifi()), "PayloadIdentifier")),
        r"PayloadIdentifier: required by Apple's schema, and missing \[The reverse-DNS style identifier",
    ),
    (
        "outside-rangelist",
        xml(profile(wifi(EncryptionType="WPA4"))),
        r"PayloadContent\[0\]\.EncryptionType: 'WPA4' is not one of 'WEP', 'WPA', 'WPA2', 'WPA3', 'Any', "
        r"'None' \[Encryption Type: The encryption type for the network\]",
    ),
    (
        "outside-range",
        xml(profile(passcode(maxFailedAttempts=20))),
        r"PayloadContent\[0\]\.maxFailedAttempts: 20 is outside 2…11 \[Maximum Number of Failed Attempts",
    ),
    (
        "bad-format",
        xml(profile(wifi(PayloadCertificateUUID="not-a-uuid"))),
        r"PayloadCertificateUUID: 'not-a-uuid' does not have the form",
    ),
    (
        "top-level-version",
        xml(profile(wifi(), PayloadVersion=2)),
        r"PayloadVersion: 2 is not one of 1 \[The version number of the profile format",
    ),
    (
        "duplicate-payload-uuid",
        xml(profile(wifi(PayloadUUID="A"), passcode(PayloadUUID="A"))),
        r"PayloadContent\[1\]\.PayloadUUID: 'A' is PayloadContent\[0\]'s too; it must be unique",
    ),
    ("not-a-plist", b"<html>hello</html>", r"not a property list: the XML has no <plist> element"),
    ("not-xml", b"\x00\x01garbage", r"not a property list Russet accepts"),
    ("not-a-dictionary", plistlib.dumps(["a"]), r"a profile is a dictionary at its top level, not a list"),
    ("empty", b"  \n", r"the file is empty"),
    (
        "entity-expansion",
        b'<?xml version="1.0"?><!DOCTYPE plist [<!ENTITY a "aaaa">]><plist><string>&a;</string></plist>',
        r"not a property list Russet accepts",
    ),
    (
        "encrypted",
        xml(_without(profile(), "PayloadContent") | {"IsEncrypted": True, "EncryptedPayloadContent": b"x"}),
        r"encrypted profiles are not supported",
    ),
]


@pytest.mark.parametrize(("data", "words"), [(d, w) for _, d, w in BAD], ids=[i for i, _, _ in BAD])
def test_each_bad_profile_is_refused_in_the_schemas_words_and_nothing_is_stored(
    russet: Russet, data: bytes, words: str
) -> None:
    with pytest.raises(Invalid, match=words):
        russet.library.add(data, name="office")
    assert stored(russet) == (0, 0)
    assert russet.library.list_profiles() == []


def test_a_too_large_profile_is_refused(russet: Russet) -> None:
    with pytest.raises(TooLarge, match=f"up to {MAX_PROFILE_BYTES}"):
        russet.library.add(b"<" + b"x" * MAX_PROFILE_BYTES)
    assert stored(russet) == (0, 0)


def test_a_bad_upload_is_a_400_naming_the_problem_and_stores_nothing(
    client: TestClient, russet: Russet, api_headers: dict[str, str]
) -> None:
    response = client.post(
        "/api/v1/profiles?name=office",
        content=xml(profile(wifi(EncryptionType="WPA4"))),
        headers={**api_headers, "Content-Type": "application/x-apple-aspen-config"},
    )
    assert response.status_code == 400
    assert "EncryptionType: 'WPA4' is not one of" in response.json()["detail"]
    assert stored(russet) == (0, 0)


# -- signed uploads --------------------------------------------------------------------------


def test_signed_uploads_are_unwrapped_and_their_signer_recorded(russet: Russet) -> None:
    cert, key = third_party_signer()
    content = xml(profile(wifi()))
    der = sign_attached(content, cert, key, [])
    result = russet.library.add(der, name="office")
    assert result["created"]
    version = russet.library.versions("office")[0]
    assert version["signed_by"] == "CN=Example Corp Profile Signing"
    assert version["signer_sha256"] == cert.fingerprint(hashes.SHA256()).hex()
    # The same profile unsigned, or signed as PEM, is the same content: no new version.
    assert russet.library.add(content, name="office")["created"] is False
    pem = b"-----BEGIN PKCS7-----\n" + base64.encodebytes(der) + b"-----END PKCS7-----\n"
    assert russet.library.add(pem, name="office")["created"] is False
    _, stored_content = russet.library.download("office")
    assert plistlib.loads(stored_content) == plistlib.loads(content)


def test_a_tampered_or_unreadable_signature_is_refused(russet: Russet) -> None:
    cert, key = third_party_signer()
    der = bytearray(sign_attached(xml(profile(wifi())), cert, key, []))
    at = der.find(b"Office")
    der[at] ^= 0x01  # the signed content changed after signing
    with pytest.raises(Invalid, match="the profile's signature: message digest does not match"):
        russet.library.add(bytes(der))
    with pytest.raises(Invalid, match="the profile's signature: malformed CMS"):
        russet.library.add(b"\x30\x82\x01\x00garbage")
    with pytest.raises(Invalid, match="not valid base64"):
        russet.library.add(b"-----BEGIN PKCS7-----\n!!!\n-----END PKCS7-----\n")
    assert stored(russet) == (0, 0)


# -- versions --------------------------------------------------------------------------------


def test_changes_add_versions_identical_content_does_not_and_old_versions_stay(russet: Russet) -> None:
    first = profile(wifi())
    assert russet.library.add(xml(first), name="office")["version"] == 1
    again = russet.library.add(xml(first))  # no name: found by its PayloadIdentifier
    assert again["created"] is False and again["version"] == 1
    second = {**first, "PayloadContent": [wifi(SSID_STR="Office-5G")]}
    assert russet.library.add(xml(second))["version"] == 2
    third = {**first, "PayloadContent": [wifi(SSID_STR="Office-6G")]}
    assert russet.library.add(xml(third), name="office")["version"] == 3
    assert [v["version"] for v in russet.library.versions("office")] == [3, 2, 1]
    assert russet.library.show("com.example.wifi")["latest_version"] == 3
    for number, ssid in ((1, "Office"), (2, "Office-5G"), (None, "Office-6G")):
        name, content = russet.library.download("office", number)
        assert plistlib.loads(content)["PayloadContent"][0]["SSID_STR"] == ssid
    assert name == "office-v3.mobileconfig"
    # Going back to the first content is a change too: version 4.
    assert russet.library.add(xml(first))["version"] == 4
    assert stored(russet) == (1, 4)


def test_names_and_identifiers_stay_paired(russet: Russet) -> None:
    russet.library.add(xml(profile(wifi())), name="office")
    with pytest.raises(
        Conflict, match=r"profile 'office' is com.example.wifi, and this file is com.example.other"
    ):
        russet.library.add(xml(profile(wifi(), identifier="com.example.other")), name="office")
    with pytest.raises(Conflict, match=r"com.example.wifi is already in the library as profile 'office'"):
        russet.library.add(xml(profile(wifi(SSID_STR="x"))), name="lobby")
    with pytest.raises(Invalid, match="profile name"):
        russet.library.add(xml(profile(wifi(), identifier="com.example.slash")), name="a/b")
    assert stored(russet) == (1, 1)


def test_unknown_profiles_and_versions_are_not_found(russet: Russet) -> None:
    with pytest.raises(NotFound, match="no profile named 'nope'"):
        russet.library.show("nope")
    russet.library.add(xml(profile(wifi())), name="office")
    with pytest.raises(NotFound, match="has no version 7"):
        russet.library.download("office", 7)


# -- delivery --------------------------------------------------------------------------------


def test_variables_are_substituted_in_values_and_the_result_is_signed(russet: Russet) -> None:
    document = profile(
        wifi(Password="$SERIAL-$UDID", DisplayedOperatorName="$DEVICE_NAME"),
        PayloadDescription="For $USERNAME, keeps $HOME and $SERIALNUMBER",
    )
    added = russet.library.add(xml(document), name="office")
    assert added["unknown_variables"] == ["$HOME", "$SERIALNUMBER"]
    assert added["profile"]["variables"] == ["DEVICE_NAME", "SERIAL", "UDID", "USERNAME"]
    hostile = "Bob's <iPad> & ]]></string><key>Evil</key><string>"
    signed = russet.library.render(
        "office",
        None,
        {"SERIAL": "C02X", "UDID": "U-1", "DEVICE_NAME": hostile + "\x01", "USERNAME": "alex"},
        device="U-1",
    )
    rendered = delivered(russet, signed)
    assert rendered["PayloadContent"][0]["Password"] == "C02X-U-1"
    assert rendered["PayloadContent"][0]["DisplayedOperatorName"] == hostile  # text, not markup
    assert rendered["PayloadDescription"] == "For alex, keeps $HOME and $SERIALNUMBER"
    assert "Evil" not in rendered and profile_problems(rendered) == []
    with pytest.raises(Conflict, match=r"\$USERNAME has no value for U-1"):
        russet.library.render(
            "office", None, {"SERIAL": "C02X", "UDID": "U-1", "DEVICE_NAME": "x"}, device="U-1"
        )


def _enroll(client: TestClient, device: SimDevice) -> SimDevice:
    device.enroll(client)
    return device


def test_install_queues_install_profile_that_a_device_fetches_with_its_own_values(
    client: TestClient, russet: Russet, api_headers: dict[str, str], make_device: Any
) -> None:
    phones = [_enroll(client, make_device()), _enroll(client, make_device())]
    response = client.post(
        "/api/v1/profiles",
        files={"file": ("office.mobileconfig", xml(profile(wifi(Password="wifi-$SERIAL"))))},
        data={"name": "office"},
        headers=api_headers,
    )
    assert response.status_code == 201, response.text
    response = client.post(
        "/api/v1/profiles/office/install", json={"devices": [p.udid for p in phones]}, headers=api_headers
    )
    assert response.status_code == 201, response.text
    queued = {c["device"]: c["command_uuid"] for c in response.json()["commands"]}
    assert set(queued) == {p.udid for p in phones} and response.json()["version"] == 1
    for phone in phones:
        command = phone.command_of(phone.connect(client, phone.report_message("Idle")))
        assert command is not None and command["CommandUUID"] == queued[phone.udid]
        assert command["Command"]["RequestType"] == "InstallProfile"
        installed = delivered(russet, command["Command"]["Payload"])
        assert installed["PayloadContent"][0]["Password"] == f"wifi-{phone.serial}"
        assert installed["PayloadIdentifier"] == "com.example.wifi"
        reply = phone.connect(client, phone.report_message("Acknowledged", queued[phone.udid]))
        assert phone.command_of(reply) is None
        shown = client.get(f"/api/v1/commands/{queued[phone.udid]}", headers=api_headers).json()
        assert shown["status"] == "acknowledged" and shown["created_by"] == "tests"


def test_a_profile_without_variables_is_one_signed_body_for_every_device(
    client: TestClient, russet: Russet, make_device: Any
) -> None:
    phones = [_enroll(client, make_device()), _enroll(client, make_device())]
    russet.library.add(xml(profile(passcode(), identifier="com.example.passcode")), name="passcode")
    result = russet.library.install("passcode", [p.udid for p in phones], created_by="tests")
    payloads = []
    for phone in phones:
        command = phone.command_of(phone.connect(client, phone.report_message("Idle")))
        assert command is not None
        payloads.append(command["Command"]["Payload"])
        assert delivered(russet, command["Command"]["Payload"])["PayloadContent"][0]["minLength"] == 6
    assert payloads[0] == payloads[1] and len(result["commands"]) == 2


def test_user_channel_variables_and_refusals_queue_nothing(
    client: TestClient, russet: Russet, device: SimDevice
) -> None:
    device.enroll(client)
    user = SimUser.mac_user("alex")
    assert device.check_in(client, device.user_token_update_message(user)).status_code == 200
    russet.library.add(xml(profile(wifi(Password="$USERNAME/$SERIAL"))), name="office")
    channel = device.user_channel(user)
    rendered = delivered(russet, russet.library.render_for("office", None, channel))
    assert rendered["PayloadContent"][0]["Password"] == f"alex/{device.serial}"
    rendered = delivered(russet, russet.library.render_for("office", None, f"{device.udid}:alex"))
    assert rendered["PayloadContent"][0]["Password"] == f"alex/{device.serial}"
    # The device channel has no user: refused for it, and nothing is queued for the user either.
    with pytest.raises(Conflict, match=rf"\$USERNAME has no value for {device.udid}"):
        russet.library.install("office", [channel, device.udid])
    with pytest.raises(NotFound, match="no enrolled device 'GHOST'"):
        russet.library.install("office", [channel, "GHOST"])
    assert device.command_of(device.connect(client, device.report_message("Idle"))) is None
    with russet.storage.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(command_queue)).scalar_one() == 0


def test_install_of_a_profile_without_variables_to_an_unknown_device_is_not_found(russet: Russet) -> None:
    russet.library.add(xml(profile(passcode(), identifier="com.example.passcode")), name="passcode")
    with pytest.raises(NotFound):
        russet.library.install("passcode", ["GHOST"])
    with pytest.raises(Invalid, match="name at least one device"):
        russet.library.install("passcode", [])


# -- delete ----------------------------------------------------------------------------------


class _Blueprints:
    def __init__(self, using: dict[int, list[str]]) -> None:
        self.using = using

    def uses_of(self, profile_id: int) -> list[str]:
        return self.using.get(profile_id, [])


def test_delete_only_when_unused(russet: Russet) -> None:
    added = russet.library.add(xml(profile(wifi())), name="office")
    russet.library.add(xml(profile(wifi(SSID_STR="x"))), name="office")
    blueprints = _Blueprints({added["profile"]["id"]: ["blueprint 'Front desk'"]})
    russet.library.add_users(blueprints)
    with pytest.raises(Conflict, match="profile 'office' is in use: blueprint 'Front desk'"):
        russet.library.delete("office")
    assert stored(russet) == (1, 2)
    blueprints.using.clear()
    assert russet.library.delete("office") == {
        "deleted": "office",
        "identifier": "com.example.wifi",
        "versions": 2,
    }
    assert stored(russet) == (0, 0)
    with pytest.raises(NotFound):
        russet.library.delete("office")


# -- at rest ---------------------------------------------------------------------------------


def test_contents_are_sealed_at_rest_and_survive_a_key_rotation(russet: Russet) -> None:
    from russet.library.store import LibraryStore
    from russet.storage.rotation import reseal
    from russet.wiring.sealed import SEALED_COLUMNS

    russet.library.add(xml(profile(wifi())), name="office")
    with russet.storage.engine.connect() as conn:
        raw = conn.execute(select(library_profile_versions.c.sealed_content)).scalar_one()
    assert b"correct horse" not in raw and b"Office" not in raw
    old = SecretBox.load(russet.settings.data_dir, russet.settings.master_key)
    new = SecretBox(new_key())
    with russet.storage.engine.begin() as conn:
        counts = reseal(conn, old, new, SEALED_COLUMNS)
    assert counts["library_profile_versions.sealed_content"] == 1
    content = LibraryStore(russet.storage.engine, new).version(1)
    assert content is not None and b"correct horse battery staple" in content["content"]


# -- API and CLI -----------------------------------------------------------------------------


def test_api_lists_shows_downloads_and_deletes(
    client: TestClient, russet: Russet, api_headers: dict[str, str], device: SimDevice
) -> None:
    device.enroll(client)
    body = xml(profile(wifi(Password="$SERIAL")))
    response = client.post(
        "/api/v1/profiles", content=body, headers={**api_headers, "Content-Type": "application/octet-stream"}
    )
    assert response.status_code == 201 and response.json()["profile"]["name"] == "com.example.wifi"
    response = client.post(
        "/api/v1/profiles", content=body, headers={**api_headers, "Content-Type": "application/octet-stream"}
    )
    assert response.status_code == 200 and response.json()["created"] is False
    listed = client.get("/api/v1/profiles", headers=api_headers).json()
    assert [p["name"] for p in listed] == ["com.example.wifi"]
    assert listed[0]["updated_at"].endswith("+00:00")
    shown = client.get("/api/v1/profiles/com.example.wifi", headers=api_headers).json()
    assert shown["payloads"][0]["type"] == "com.apple.wifi.managed"
    assert len(client.get("/api/v1/profiles/com.example.wifi/versions", headers=api_headers).json()) == 1
    plain = client.get("/api/v1/profiles/com.example.wifi/download?version=1", headers=api_headers)
    assert plain.status_code == 200
    assert plain.headers["content-type"] == "application/x-apple-aspen-config"
    assert plistlib.loads(plain.content)["PayloadContent"][0]["Password"] == "$SERIAL"
    signed = client.get(
        f"/api/v1/profiles/com.example.wifi/download?device={device.udid}", headers=api_headers
    )
    assert delivered(russet, signed.content)["PayloadContent"][0]["Password"] == device.serial
    assert client.get("/api/v1/profiles/nope", headers=api_headers).status_code == 404
    assert client.delete("/api/v1/profiles/com.example.wifi", headers=api_headers).status_code == 200
    assert client.get("/api/v1/profiles", headers=api_headers).json() == []


def test_multipart_upload_with_binary_content(
    client: TestClient, russet: Russet, api_headers: dict[str, str]
) -> None:
    cert, key = third_party_signer()
    der = sign_attached(xml(profile(wifi())), cert, key, [])
    response = client.post(
        "/api/v1/profiles?name=office", files={"file": ("o.mobileconfig", der)}, headers=api_headers
    )
    assert response.status_code == 201, response.text
    # The signature verified, so the binary part arrived byte for byte.
    assert russet.library.versions("office")[0]["signed_by"] == "CN=Example Corp Profile Signing"
    response = client.post("/api/v1/profiles", files={"other": ("o", der)}, headers=api_headers)
    assert response.status_code == 400 and "no `file` part" in response.json()["detail"]


def test_cli_round_trip(run: Any, tmp_path: Any) -> None:
    path = tmp_path / "office.mobileconfig"
    path.write_bytes(xml(profile(wifi(Password="$SERIAL $WIFI_KEY"))))
    code, out = run("profile", "add", str(path), "--name", "office")
    assert code == 0 and "office (com.example.wifi): version 1 added" in out
    assert "warning: $WIFI_KEY is not a variable Russet knows" in out
    code, out = run("profile", "add", str(path))
    assert code == 0 and "unchanged, still version 1" in out
    code, out = run("profile", "list", "--json")
    assert code == 0 and json.loads(out)[0]["variables"] == ["SERIAL"]
    code, out = run("profile", "list")
    assert "office" in out and "com.apple.wifi.managed" in out
    code, out = run("profile", "show", "office")
    assert code == 0 and "com.example.wifi.office" in out
    code, out = run("profile", "versions", "office", "--json")
    assert code == 0 and json.loads(out)[0]["uploaded_by"] == "cli"
    target = tmp_path / "out.mobileconfig"
    code, out = run("profile", "download", "office", "--out", str(target))
    assert code == 0 and plistlib.loads(target.read_bytes())["PayloadIdentifier"] == "com.example.wifi"
    code, out = run("profile", "install", "office", "GHOST")
    assert code == 1 and out.strip() == "Error: no enrolled device 'GHOST'"
    bad = tmp_path / "bad.mobileconfig"
    bad.write_bytes(xml(profile(wifi(EncryptionType="WPA4"))))
    code, out = run("profile", "add", str(bad))
    assert (
        code == 1
        and out.startswith("Error: the profile does not match Apple's schemas")
        and len(out.splitlines()) == 1
    )
    code, out = run("profile", "add", str(tmp_path / "missing.mobileconfig"))
    assert code == 1 and "Error: cannot read" in out
    code, out = run("profile", "rm", "office", "--json")
    assert code == 0 and json.loads(out)["versions"] == 1
    code, out = run("profile", "show", "office")
    assert code == 1 and "Error: no profile named 'office'" in out
