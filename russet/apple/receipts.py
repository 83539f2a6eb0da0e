"""Disconnect and purge receipts signed by Russet's CA, so that an auditor can check them later.

A receipt is JSON. Its canonical form (keys sorted, no whitespace, ASCII) is wrapped in a CMS
SignedData made by Russet's profile-signing identity, whose certificate Russet's CA issued; the
DER goes into the receipt's `signature` field as base64. Verifying takes the receipt apart again:
the signature must verify, its signed content must be exactly the canonical form of the other
fields (any change after signing shows), and the signer must chain to this Russet's CA (a receipt
signed by anyone else is refused even if it is internally consistent).
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from cryptography import x509

from russet.pki import cms
from russet.pki.authority import Authority
from russet.pki.chain import ChainError, issued_by

SIGNATURE_FIELD = "signature"


class ReceiptRefused(Exception):
    """A receipt that is not intact or not Russet's; `str()` says why in one line."""


def canonical(receipt: dict[str, Any]) -> bytes:
    """The bytes that are signed: the receipt without its signature, in one stable spelling."""
    unsigned = {k: v for k, v in receipt.items() if k != SIGNATURE_FIELD}
    return json.dumps(unsigned, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


class ReceiptSeal:
    """Signs receipts with the profile signer and verifies them against the CA."""

    def __init__(self, authority: Authority) -> None:
        self._authority = authority

    def sign(self, receipt: dict[str, Any]) -> dict[str, Any]:
        """The receipt with its `signature` (base64 DER CMS SignedData enveloping the canonical form)."""
        der = cms.sign_attached(
            canonical(receipt),
            self._authority.signer_certificate,
            self._authority.signer_key,
            [self._authority.ca_certificate],
        )
        return {**receipt, SIGNATURE_FIELD: base64.b64encode(der).decode()}

    def verify(self, receipt: Any) -> dict[str, Any]:
        """The receipt if intact and signed under Russet's CA; ReceiptRefused otherwise."""
        if not isinstance(receipt, dict):
            raise ReceiptRefused("not a receipt: expected a JSON object")
        encoded = receipt.get(SIGNATURE_FIELD)
        if not isinstance(encoded, str) or not encoded:
            raise ReceiptRefused("the receipt has no signature")
        try:
            der = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise ReceiptRefused("the receipt's signature is not base64") from None
        try:
            signed = cms.verify_attached(der)
        except cms.SignatureError as exc:
            raise ReceiptRefused(f"the receipt's signature does not verify ({exc})") from None
        if signed.content != canonical(receipt):
            raise ReceiptRefused("the receipt was changed after it was signed")
        self._check_signer(signed.certificate)
        return receipt

    def _check_signer(self, signer: x509.Certificate) -> None:
        ca = self._authority.ca_certificate
        if signer == ca:
            return
        try:
            issued_by(signer, ca)
        except ChainError as exc:
            raise ReceiptRefused(f"the receipt was not signed under this Russet's CA ({exc})") from None
