"""Apple's Activation Lock service: clearing a device's Activation Lock with its bypass code.

`POST https://deviceservices-external.apple.com/deviceservicesworkers/escrowKeyUnlock` with the
device in the query (`serial`, `productType`, and `imei`/`meid` for a cellular device, from its
DeviceInformation answer) and a form body (`orgName`, `guid`, `escrowKey`), over mutual TLS presenting the
MDM's APNs certificate (Apple's "Creating and using bypass codes"). The base URL is
`RUSSET_ACTIVATION_LOCK_URL`; the call goes through the gateway like every call to Apple, so
its fields are declared in the catalogue and recorded in the ledger, and a disconnected
connection sends nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from russet.apple.gateway import AppleGateway, Call, Datum

SERVICE = "activationlock"
PATH = "/deviceservicesworkers/escrowKeyUnlock"
ENDPOINT = f"POST {PATH}"
MAX_SHOWN = 200  # characters of Apple's answer kept in the clear record and error messages


@dataclass(frozen=True)
class Unlock:
    """What one request carries."""

    serial_number: str
    product_type: str
    escrow_key: str
    org_name: str
    guid: str
    imei: str | None = None  # a cellular device's, when known
    meid: str | None = None


@dataclass(frozen=True)
class Answer:
    status: int
    text: str  # the start of Apple's body, for people


class ActivationLockClient:
    def __init__(self, gateway: AppleGateway, base_url: str) -> None:
        self._gateway = gateway
        self._url = base_url.rstrip("/") + PATH

    async def unlock(
        self,
        connection: str,
        unlock: Unlock,
        identity: tuple[x509.Certificate, PrivateKeyTypes],
    ) -> Answer:
        """Ask Apple to clear the device's Activation Lock (not retried: Apple counts attempts
        against the device, and a 5xx is for the admin to see)."""
        serial = unlock.serial_number
        cellular = {k: v for k, v in (("imei", unlock.imei), ("meid", unlock.meid)) if v}
        call = Call(
            SERVICE,
            connection,
            ENDPOINT,
            "clear a supervised device's Activation Lock with the bypass code it escrowed",
            [
                Datum("serial", serial, serial),
                Datum("productType", unlock.product_type, serial),
                Datum("escrowKey", unlock.escrow_key, serial),
                Datum("orgName", unlock.org_name),
                Datum("guid", unlock.guid),
                *[Datum(k, v, serial) for k, v in cellular.items()],
            ],
        )
        form = urlencode({"orgName": unlock.org_name, "guid": unlock.guid, "escrowKey": unlock.escrow_key})
        response = await self._gateway.request(
            call,
            "POST",
            self._url,
            params={"serial": serial, "productType": unlock.product_type, **cellular},
            content=form.encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            identity=identity,
            retry=False,
        )
        text = response.content[:MAX_SHOWN].decode("utf-8", "replace")
        return Answer(response.status_code, "".join(c for c in text if c.isprintable()))
