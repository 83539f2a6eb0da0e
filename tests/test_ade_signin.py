"""Sign-in during Setup Assistant (issue #17 item 1): an ADE device's web view opens
/mdm/enroll/signin with its Apple-signed MachineInfo in `x-apple-aspen-deviceinfo`; the person
signs in with the local OpenID Connect provider started here (simulators/oidc.py) or a local
account; the answer is the enrollment profile, recorded with the device and the person, and the
simulated device that installs it enrolls bound to that person. A forged header, a wrong
password, another browser's or an expired sign-in, a provider saying no: no profile, a reason,
nothing stored."""

from __future__ import annotations

import base64
import dataclasses
import plistlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from russet.access.roles import Role
from russet.app import create_app
from russet.config import Settings
from russet.enrollment import signin
from russet.enrollment.primary_account import account_configuration
from russet.enrollment.tables import enrollment_requests
from russet.enrollment.tokens import EnrollmentRequestLog, Person
from russet.kernel.errors import NotFound
from russet.pki import fingerprint
from russet.runtime import Russet
from russet.scep.tables import scep_challenges
from simulators.ade import AdeDevice, TestAppleCA
from simulators.device import Enrollment, SimDevice
from simulators.oidc import OidcProvider
from tests.cli_support import cli_invoker
from tests.conftest import PUBLIC_URL
from tests.test_console import log_in
from tests.test_sso import with_sso

SIGNIN = "/mdm/enroll/signin"
CALLBACK = f"{PUBLIC_URL}{SIGNIN}/callback"
PROFILE_TYPE = "application/x-apple-aspen-config"
HEADER = "x-apple-aspen-deviceinfo"


@pytest.fixture
def provider() -> Iterator[OidcProvider]:
    idp = OidcProvider(redirect_uris=(CALLBACK,)).start()
    idp.person = {"sub": "u-17", "email": "Ann@Example.com", "name": "Ann Example"}
    yield idp
    idp.stop()


def ade_settings(
    settings: Settings, apple: TestAppleCA, tmp_path: Path, idp: OidcProvider | None
) -> Settings:
    bundle = tmp_path / "ade-ca.pem"
    bundle.write_bytes(apple.pem_bundle())
    base = settings if idp is None else with_sso(settings, idp)
    return dataclasses.replace(base, ade_ca_file=str(bundle), push_topic=settings.push_topic)


@pytest.fixture
def server(
    settings: Settings, apple: TestAppleCA, tmp_path: Path, provider: OidcProvider
) -> Iterator[tuple[Russet, TestClient]]:
    russet = Russet.open(ade_settings(settings, apple, tmp_path, provider))
    with TestClient(create_app(russet), base_url=PUBLIC_URL) as client:
        yield russet, client
    russet.close()


def header(device: AdeDevice, body: bytes | None = None) -> dict[str, str]:
    return {HEADER: base64.b64encode(device.signed_request() if body is None else body).decode()}


def count(russet: Russet, table: Any) -> int:
    with russet.storage.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def nothing_handed_out(russet: Russet) -> None:
    assert count(russet, enrollment_requests) == 0
    assert count(russet, scep_challenges) == 0


def csrf(page: str) -> str:
    return page.split('name="csrf" value="', 1)[1].split('"', 1)[0]


def sign_on(client: TestClient, device: AdeDevice) -> Any:
    """As the web view would: the page, the provider (which signs the person in), back to Russet."""
    page = client.get(SIGNIN, headers=header(device))
    assert page.status_code == 200 and 'id="sso"' in page.text, page.text
    assert "HttpOnly" in page.headers["set-cookie"] and "Secure" in page.headers["set-cookie"]
    start = client.get(f"{SIGNIN}/sso", follow_redirects=False)
    assert start.status_code == 303, start.text
    back = httpx.get(start.headers["location"], follow_redirects=False)
    assert back.status_code == 302 and back.headers["location"].startswith(CALLBACK), back.text
    return client.get(back.headers["location"].removeprefix(PUBLIC_URL), follow_redirects=False)


def install(client: TestClient, device: AdeDevice, profile: bytes, *, awaiting: bool = False) -> SimDevice:
    """Install the profile (SCEP) and enroll: Authenticate, then TokenUpdate (in Setup Assistant
    with `awaiting`: AwaitingConfiguration true)."""
    enrollment = Enrollment.from_profile(profile, client)
    sim = SimDevice(
        enrollment, udid=device.udid, serial=device.serial, path_only=True, product_name=device.product
    )
    for msg in (sim.authenticate_message(), sim.token_update_message(AwaitingConfiguration=awaiting)):
        assert sim.check_in(client, msg).status_code == 200
    return sim


def commands(client: TestClient, sim: SimDevice) -> list[dict[str, Any]]:
    """Every command the device is handed, in order, each acknowledged."""
    got: list[dict[str, Any]] = []
    response = sim.connect(client, sim.report_message("Idle"))
    while (command := sim.command_of(response)) is not None and len(got) < 20:
        got.append(command["Command"])
        response = sim.connect(client, sim.report_message("Acknowledged", command["CommandUUID"]))
    return got


def test_single_sign_on_then_the_device_enrolls_bound_to_the_person(
    server: tuple[Russet, TestClient], apple: TestAppleCA, provider: OidcProvider
) -> None:
    russet, client = server
    device = AdeDevice(apple, style="macos", product="Mac14,2")
    answer = sign_on(client, device)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == PROFILE_TYPE and answer.headers["cache-control"] == "no-store"
    assert 'russet_enroll_signin=""' in answer.headers["set-cookie"]  # the pending sign-in is spent
    sim = install(client, device, answer.content)
    [request] = russet.enrollment.recent_requests()
    assert request["method"] == "ade_signin"
    assert (request["udid"], request["serial_number"], request["product"]) == (
        device.udid,
        device.serial,
        "Mac14,2",
    )
    assert (request["person_id"], request["person_email"], request["person_name"]) == (
        "u-17",
        "ann@example.com",
        "Ann Example",
    )
    assert request["issued_fp"] == fingerprint(sim.enrollment.certificate)
    [(_, _, asked)] = [r for r in provider.requests if r[1] == "/authorize"]
    assert asked["redirect_uri"] == CALLBACK and asked["code_challenge_method"] == "S256"
    # The person is the device's user: the device view, the `enrolled_by` fact, smart groups.
    api = {"Authorization": f"Bearer {russet.storage.api_keys.create('tests')}"}
    shown = client.get(f"/api/v1/devices/{device.udid}", headers=api).json()
    assert (shown["enrollment_method"], shown["enrolled_by"]) == ("ade_signin", "ann@example.com")
    [facts] = russet.groups._facts.facts([device.udid])  # type: ignore[attr-defined]
    assert (facts["enrollment_method"], facts["enrolled_by"]) == ("ade_signin", "ann@example.com")
    assert russet.groups.preview('enrolled_by = "ann@example.com"')["devices"] == [device.udid]
    assert russet.groups.preview('enrolled_by ~ "example.com"')["count"] == 1


def test_a_later_ade_enrollment_without_sign_in_unbinds_the_person(
    server: tuple[Russet, TestClient], apple: TestAppleCA
) -> None:
    russet, client = server
    device = AdeDevice(apple)
    install(client, device, sign_on(client, device).content)
    assert russet.devices.show_device(device.udid)["enrolled_by"] == "ann@example.com"
    device.enroll(client, f"{PUBLIC_URL}/mdm/enroll")  # wiped, then enrolled by a plain ADE profile
    assert russet.devices.show_device(device.udid)["enrolled_by"] is None
    assert russet.groups.preview('enrolled_by = "ann@example.com"')["count"] == 0


def test_local_account_sign_in(server: tuple[Russet, TestClient], apple: TestAppleCA) -> None:
    russet, client = server
    russet.access.add_user("bo@example.com", Role.AUDITOR, "correct horse battery")
    device = AdeDevice(apple)
    page = client.get(SIGNIN, headers=header(device))
    form = {"csrf": csrf(page.text), "email": "bo@example.com", "password": "wrong"}
    wrong = client.post(SIGNIN, data=form)
    assert wrong.status_code == 403 and "wrong email address or password" in wrong.text
    assert wrong.headers["content-type"].startswith("text/html")
    nothing_handed_out(russet)
    right = client.post(SIGNIN, data={**form, "password": "correct horse battery"})
    assert right.status_code == 200 and right.headers["content-type"] == PROFILE_TYPE, right.text
    install(client, device, right.content)
    [request] = russet.enrollment.recent_requests()
    assert (request["method"], request["person_id"], request["person_email"]) == (
        "ade_signin",
        "bo@example.com",
        "bo@example.com",
    )
    assert request["identity_issued_at"] is not None


def test_the_form_needs_its_csrf_token(server: tuple[Russet, TestClient], apple: TestAppleCA) -> None:
    russet, client = server
    russet.access.add_user("bo@example.com", Role.AUDITOR, "correct horse battery")
    client.get(SIGNIN, headers=header(AdeDevice(apple)))
    forged = client.post(SIGNIN, data={"email": "bo@example.com", "password": "correct horse battery"})
    assert forged.status_code == 403 and "CSRF" in forged.text
    nothing_handed_out(russet)


def unsigned(device: AdeDevice) -> bytes:
    return plistlib.dumps(device.machine_info())


@pytest.mark.parametrize(
    ("make", "status", "reason"),
    [
        (lambda d: {}, 400, "header is missing"),
        (lambda d: {HEADER: "not base64 at all!"}, 400, "not base64"),
        (lambda d: {HEADER: "A" * (signin.MAX_DEVICE_INFO_CHARS + 4)}, 413, "too long"),
        (lambda d: header(d, unsigned(d)), 403, "not signed"),
        (lambda d: header(d, d.signed_request()[:-40]), 400, "CMS"),
        (lambda d: header(d, TamperedDevice.of(d)), 403, "signature"),
    ],
)
def test_a_forged_or_missing_device_info_is_refused_and_nothing_stored(
    server: tuple[Russet, TestClient], apple: TestAppleCA, make: Any, status: int, reason: str
) -> None:
    russet, client = server
    answer = client.get(SIGNIN, headers=make(AdeDevice(apple)))
    assert answer.status_code == status and reason in answer.text, answer.text
    assert "<form" not in answer.text and COOKIE_SET not in answer.headers.get("set-cookie", "")
    assert client.get(f"{SIGNIN}/sso", follow_redirects=False).status_code == 400  # no sign-in to go on with
    nothing_handed_out(russet)


COOKIE_SET = "russet_enroll_signin=ey"


class TamperedDevice:
    @staticmethod
    def of(device: AdeDevice) -> bytes:
        good = device.signed_request()
        at = good.index(device.serial.encode())
        return good[:at] + b"X" + good[at + 1 :]


def test_an_expired_sign_in_gets_no_profile(
    server: tuple[Russet, TestClient], apple: TestAppleCA, monkeypatch: pytest.MonkeyPatch
) -> None:
    russet, client = server
    russet.access.add_user("bo@example.com", Role.AUDITOR, "correct horse battery")
    page = client.get(SIGNIN, headers=header(AdeDevice(apple)))
    later = time.time() + signin.PENDING_SECONDS + 1
    monkeypatch.setattr(signin, "_now", lambda: later)  # the cookie outlived its ten minutes
    form = {"csrf": csrf(page.text), "email": "bo@example.com", "password": "correct horse battery"}
    expired = client.post(SIGNIN, data=form)
    assert expired.status_code == 400 and "took longer than 10 minutes" in expired.text
    assert client.get(f"{SIGNIN}/sso", follow_redirects=False).status_code == 400
    nothing_handed_out(russet)


def test_a_tampered_or_absent_cookie_gets_no_profile(
    server: tuple[Russet, TestClient], apple: TestAppleCA
) -> None:
    russet, client = server
    client.get(SIGNIN, headers=header(AdeDevice(apple)))
    client.cookies.set("russet_enroll_signin", "eyJmb3JnZWQiOnRydWV9", path=SIGNIN)
    tampered = client.get(f"{SIGNIN}/callback?code=x&state=y")
    assert tampered.status_code == 400 and "cookie is not valid" in tampered.text
    fresh = TestClient(client.app, base_url=PUBLIC_URL)
    absent = fresh.get(f"{SIGNIN}/callback?code=x&state=y")
    assert absent.status_code == 400 and "no sign-in is under way" in absent.text
    nothing_handed_out(russet)


def test_a_callback_for_another_sign_in_is_refused(
    server: tuple[Russet, TestClient], apple: TestAppleCA
) -> None:
    russet, client = server
    client.get(SIGNIN, headers=header(AdeDevice(apple)))
    start = client.get(f"{SIGNIN}/sso", follow_redirects=False)
    back = httpx.get(start.headers["location"], follow_redirects=False)
    code = back.headers["location"].split("code=", 1)[1].split("&", 1)[0]
    forged = client.get(f"{SIGNIN}/callback?code={code}&state=attackers")
    assert forged.status_code == 403 and "state differs" in forged.text
    assert "<form" in forged.text  # the person may try again while the sign-in lasts
    again = client.get(back.headers["location"].removeprefix(PUBLIC_URL))  # the flow was spent
    assert again.status_code == 400 and "no single sign-on was started" in again.text
    nothing_handed_out(russet)


@pytest.mark.parametrize(
    ("change", "status", "reason"),
    [
        ({"deny": True}, 403, "access_denied"),
        ({"id_token_changes": {"aud": "someone-else"}}, 403, "ID token is not valid"),
        ({"id_token_changes": {"nonce": "replayed"}}, 403, "ID token is not valid"),
    ],
)
def test_the_provider_saying_no_or_a_bad_id_token_gets_no_profile(
    server: tuple[Russet, TestClient],
    apple: TestAppleCA,
    provider: OidcProvider,
    change: dict[str, Any],
    status: int,
    reason: str,
) -> None:
    russet, client = server
    for name, value in change.items():
        setattr(provider, name, value)
    answer = sign_on(client, AdeDevice(apple))
    assert answer.status_code == status and reason in answer.text, answer.text
    assert answer.headers["content-type"].startswith("text/html")
    nothing_handed_out(russet)


def test_without_single_sign_on_only_local_accounts(
    settings: Settings, apple: TestAppleCA, tmp_path: Path
) -> None:
    russet = Russet.open(ade_settings(settings, apple, tmp_path, None))
    try:
        with TestClient(create_app(russet), base_url=PUBLIC_URL) as client:
            page = client.get(SIGNIN, headers=header(AdeDevice(apple)))
            assert page.status_code == 200 and 'id="sso"' not in page.text and "<form" in page.text
            sso = client.get(f"{SIGNIN}/sso", follow_redirects=False)
            assert sso.status_code == 404 and "not configured" in sso.text
    finally:
        russet.close()
    nothing_handed_out(russet)


def test_the_ledgers_subject_look_up_finds_the_person_and_their_device(
    server: tuple[Russet, TestClient], apple: TestAppleCA
) -> None:
    """Personal data (issue #17 item 5): the person's email finds the device they signed in for,
    and the device finds the person."""
    russet, client = server
    device = AdeDevice(apple)
    install(client, device, sign_on(client, device).content)
    source = "sign-ins before enrollment (enrollment requests)"
    # An account-driven enrollment's request names the person too (no device: Apple sends none).
    EnrollmentRequestLog(russet.storage.engine).record(
        "account", person=Person("u-99", "cy@example.com", "Cy")
    )

    def linked(query: str) -> set[tuple[str, str]]:
        found = russet.ledger_privacy.subject(query)["identifiers"]
        return {(i["kind"], i["value"]) for i in found if source in i["source"]}

    assert {("udid", device.udid), ("serial", device.serial), ("person", "u-17")} <= linked("ANN@example.com")
    assert ("email", "ann@example.com") in linked(device.serial)
    assert linked("nobody@example.com") == set()
    assert linked("cy@example.com") == {("person", "u-99")}


def test_erasing_the_person_clears_them_from_the_enrollment_requests(
    server: tuple[Russet, TestClient], apple: TestAppleCA, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Purge rules (issue #17): the ledger's erasure of a person (email or person id) clears who
    signed in on the enrollment requests naming them, and nobody else's; the look-up then finds
    nothing, and a second erasure has nothing to do."""
    russet, client = server
    device = AdeDevice(apple)
    install(client, device, sign_on(client, device).content)
    log = EnrollmentRequestLog(russet.storage.engine)
    log.record("account", person=Person("u-99", "cy@example.com", "Cy"))
    log.record("account", person=Person("u-17", "ann@example.com", "Ann"))  # Ann again, later
    r = enrollment_requests.c

    def people() -> list[tuple[str | None, ...]]:
        with russet.storage.engine.connect() as conn:
            query = select(r.method, r.udid, r.person_id, r.person_email, r.person_name).order_by(r.id)
            return [tuple(row) for row in conn.execute(query)]

    before = people()
    anns = [p for p in before if p[3] == "ann@example.com"]
    assert len(anns) == 2 and anns[0][:2] == ("ade_signin", device.udid)

    erased = russet.ledger_privacy.erase("Ann@Example.com", by="dpo", reason="asked")
    assert erased["enrollment_people_cleared"] == 2
    after = people()
    assert [p[:2] for p in after] == [p[:2] for p in before]  # the requests stay (how, which device)
    for row, was in zip(after, before, strict=True):
        assert row[2:] == ((None, None, None) if was[3] == "ann@example.com" else was[2:])
    assert ("account", None, "u-99", "cy@example.com", "Cy") in after  # Cy untouched
    found = {i["value"] for i in russet.ledger_privacy.subject("ann@example.com")["identifiers"]}
    assert found == {"ann@example.com"}  # only what was looked up: no device, no person id
    assert russet.ledger_privacy.erasures()[-1]["requested_by"] == "dpo"

    cli = cli_invoker(russet.settings, monkeypatch)
    by_id = cli("ledger", "erase", "u-99", "--yes")  # by the person id, with no ledger rows
    assert by_id.exit_code == 0, by_id.output
    assert "0 ledger rows" in by_id.output
    assert "1 enrollment requests no longer name the person" in by_id.output
    assert all(p[2:] == (None, None, None) for p in people())
    with pytest.raises(NotFound, match="nothing about"):
        russet.ledger_privacy.erase("u-99")
    refused = cli("ledger", "erase", "cy@example.com", "--yes")
    assert refused.exit_code != 0 and "nothing about" in refused.output


def test_an_oversized_form_is_refused_unread(server: tuple[Russet, TestClient], apple: TestAppleCA) -> None:
    russet, client = server
    client.get(SIGNIN, headers=header(AdeDevice(apple)))
    big = client.post(
        SIGNIN, content=b"email=" + b"a" * 9000, headers={"content-type": "application/x-www-form-urlencoded"}
    )
    assert big.status_code == 413 and "limit" in big.text
    nothing_handed_out(russet)


def test_a_macs_primary_account_is_pre_filled_before_setup_assistant_ends(
    server: tuple[Russet, TestClient], apple: TestAppleCA
) -> None:
    russet, client = server
    device = AdeDevice(apple, style="macos", product="Mac14,2")
    sim = install(client, device, sign_on(client, device).content, awaiting=True)
    got = commands(client, sim)
    assert [c["RequestType"] for c in got] == ["AccountConfiguration", "DeviceConfigured"]
    assert got[0]["PrimaryAccountUserName"] == "ann" and got[0]["PrimaryAccountFullName"] == "Ann Example"
    # A repeated TokenUpdate of the same enrollment queues nothing again.
    assert sim.check_in(client, sim.token_update_message(AwaitingConfiguration=True)).status_code == 200
    assert [c["RequestType"] for c in commands(client, sim)] == []


def test_no_account_configuration_for_an_iphone_or_without_sign_in(
    server: tuple[Russet, TestClient], apple: TestAppleCA
) -> None:
    russet, client = server
    phone = AdeDevice(apple)
    sim = install(client, phone, sign_on(client, phone).content, awaiting=True)
    assert [c["RequestType"] for c in commands(client, sim)] == ["DeviceConfigured"]
    mac = AdeDevice(apple, style="macos", product="Mac14,2")
    plain = install(client, mac, mac.fetch_profile(client, f"{PUBLIC_URL}/mdm/enroll"), awaiting=True)
    assert [c["RequestType"] for c in commands(client, plain)] == ["DeviceConfigured"]


@pytest.mark.parametrize(
    ("person", "short", "full"),
    [
        (Person("u-1", "Ann.Lee+mdm@example.com", "Ann Lee"), "ann.leemdm", "Ann Lee"),
        (Person("u-2", "42@example.com", None), "user42", "user42"),
        (Person("Zoë Ölund", None, " "), "zolund", "zolund"),
    ],
)
def test_short_names_are_made_safe(person: Person, short: str, full: str) -> None:
    command = account_configuration(person)
    assert (command["PrimaryAccountUserName"], command["PrimaryAccountFullName"]) == (short, full)


def test_the_console_and_the_cli_show_the_person(
    server: tuple[Russet, TestClient], apple: TestAppleCA, monkeypatch: pytest.MonkeyPatch
) -> None:
    russet, client = server
    device = AdeDevice(apple)
    install(client, device, sign_on(client, device).content)
    admin = TestClient(client.app, base_url=PUBLIC_URL)
    log_in(admin, russet.storage.api_keys.create("alex"))
    page = admin.get(f"/console/devices/{device.udid}")
    assert page.status_code == 200
    assert "Automated Device Enrollment with sign-in" in page.text
    assert "<dt>Signed in</dt><dd>ann@example.com</dd>" in page.text
    listed = cli_invoker(russet.settings, monkeypatch)("enrollment", "requests")
    assert listed.exit_code == 0 and "SIGNED IN" in listed.output and "ann@example.com" in listed.output


def test_head_probes_start_nothing(server: tuple[Russet, TestClient], apple: TestAppleCA) -> None:
    russet, client = server
    for path in (SIGNIN, f"{SIGNIN}/sso", f"{SIGNIN}/callback?code=x&state=y"):
        assert client.head(path, headers=header(AdeDevice(apple))).status_code == 405
    nothing_handed_out(russet)


def test_the_minimum_os_applies_before_sign_in(server: tuple[Russet, TestClient], apple: TestAppleCA) -> None:
    """A device below the minimum is told to update (Apple's JSON 403) before anyone signs in."""
    russet, client = server
    russet.enrollment.set_minimum_os("ios", "18.2")
    answer = client.get(SIGNIN, headers=header(AdeDevice(apple)))  # MachineInfo says 18.1, can update
    assert answer.status_code == 403 and answer.json()["details"] == {"OSVersion": "18.2"}
    assert "set-cookie" not in answer.headers
    nothing_handed_out(russet)
    russet.enrollment.clear_minimum_os("ios")
    assert client.get(SIGNIN, headers=header(AdeDevice(apple))).status_code == 200
