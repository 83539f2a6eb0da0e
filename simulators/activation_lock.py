"""Apple's Activation Lock service on 127.0.0.1, checking what Apple would.

`POST /deviceservicesworkers/escrowKeyUnlock?serial=…&productType=…[&imei=…&meid=…]` with a form body
(`orgName`, `guid`, `escrowKey`), over mutual TLS: the client must present an MDM push
certificate issued by Apple (here: the `FakeAppleCA` of simulators/apns.py), whose UID is an MDM
topic. A device locked here (`lock`) is cleared when the escrow key is its bypass code; anything
else is refused the way Apple refuses it (400 for a malformed request, 403 for a wrong
certificate, 404 for a device it does not know). Every request is kept in `requests`.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from cryptography.x509.oid import NameOID

from simulators.https_peer import HttpsServer
from simulators.tls import TlsFiles

PATH = "/deviceservicesworkers/escrowKeyUnlock"
TOPIC_PREFIX = "com.apple.mgmt."


@dataclass
class Locked:
    product_type: str
    bypass_code: str
    cleared: bool = False
    imei: str | None = None  # a cellular device is found only with its IMEI/MEID too
    meid: str | None = None


@dataclass
class Request:
    status: int
    query: dict[str, str]
    form: dict[str, str]
    client_topic: str | None


@dataclass
class ActivationLockSimulator:
    tls: TlsFiles
    apple_ca_pem: bytes  # the CA that issues push certificates: only those may call
    devices: dict[str, Locked] = field(default_factory=dict)  # serial -> its lock
    requests: list[Request] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._http = HttpsServer(
            self.tls, self._handle, content_type="text/plain", client_ca=self.apple_ca_pem.decode()
        )
        self.url = f"https://127.0.0.1:{self._http.port}"

    def lock(
        self,
        serial: str,
        product_type: str,
        bypass_code: str,
        imei: str | None = None,
        meid: str | None = None,
    ) -> None:
        """Activation Lock turned on for a device, clearable with `bypass_code`; a cellular
        device's request must name its `imei`/`meid` (digits, no spaces) too."""
        self.devices[serial] = Locked(product_type, bypass_code, imei=imei, meid=meid)

    def __enter__(self) -> ActivationLockSimulator:
        self._http.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.stop()

    def _handle(
        self, method: str, target: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, bytes, dict[str, str]]:
        parts = urlsplit(target)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
        topic = _topic(headers.get(":client-certificate", ""))
        status, text = self._decide(method, parts.path, headers, query, form, topic)
        self.requests.append(Request(status, query, form, topic))
        return status, text.encode(), {}

    def _decide(
        self,
        method: str,
        path: str,
        headers: dict[str, str],
        query: dict[str, str],
        form: dict[str, str],
        topic: str | None,
    ) -> tuple[int, str]:
        if path != PATH:
            return 404, "no such endpoint"
        if method != "POST":
            return 405, "POST only"
        if topic is None or not topic.startswith(TOPIC_PREFIX):
            return 403, "the client certificate is not an MDM push certificate"
        if not headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            return 400, "the body must be application/x-www-form-urlencoded"
        missing = [k for k in ("serial", "productType") if not query.get(k)]
        missing += [k for k in ("orgName", "guid", "escrowKey") if not form.get(k)]
        if missing:
            return 400, f"missing {', '.join(missing)}"
        device = self.devices.get(query["serial"])
        if device is None or device.product_type != query["productType"]:
            return 404, "device not found"
        if (device.imei and query.get("imei") != device.imei) or (
            device.meid and query.get("meid") != device.meid
        ):
            return 404, "device not found (a cellular device needs its imei and meid)"
        if form["escrowKey"] != device.bypass_code:
            return 400, "invalid escrow key"
        device.cleared = True
        return 200, ""


def _topic(der_b64: str) -> str | None:
    if not der_b64:
        return None
    cert = x509.load_der_x509_certificate(base64.b64decode(der_b64))
    found = cert.subject.get_attributes_for_oid(NameOID.USER_ID)
    return str(found[0].value) if found else None
