"""Device identity from a TLS-terminating proxy: the client certificate in a request header.

Behind a proxy the device's mutual-TLS certificate (Apple protocol §c.1) never reaches Russet;
the proxy forwards it in a header instead, in one of two encodings:

* RFC 9440 `Client-Cert`: the DER certificate as a structured-field byte sequence, `:<base64>:`.
* nginx `$ssl_client_escaped_cert`: the PEM certificate, URL-escaped.

Whoever can set that header speaks for any device whose (public) certificate they know, so the
header is only trustworthy when the proxy overwrites it on every request and Russet cannot be
reached except through the proxy (see the README). The certificate found here is then checked
exactly like a signer's: issued by Russet's CA, valid now, bound to the enrollment.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Literal
from urllib.parse import unquote

from cryptography import x509

from russet.mdm.errors import Forbidden
from russet.mdm.identity import Presented

CertFormat = Literal["auto", "rfc9440", "nginx"]
_PEM_BEGIN = "-----BEGIN CERTIFICATE-----"
MAX_HEADER_CHARS = 16 * 1024  # a device identity is ~1-2 KB; anything far larger is not one


class UnreadableCertificate(ValueError):
    """The header's value is not a certificate in the expected encoding."""


def detect_format(value: str) -> Literal["rfc9440", "nginx"]:
    """RFC 9440 values are colon-wrapped; nginx's are escaped PEM (`-----BEGIN%20…` or `%2D…`)."""
    if value.startswith(":"):
        return "rfc9440"
    if value.startswith(("-----BEGIN", "%2D", "%2d")):
        return "nginx"
    raise UnreadableCertificate("neither RFC 9440 (:base64:) nor URL-escaped PEM")


def parse_rfc9440(value: str) -> x509.Certificate:
    if len(value) < 3 or not (value.startswith(":") and value.endswith(":")):
        raise UnreadableCertificate("an RFC 9440 value must be base64 between colons (:MII…:)")
    try:
        der = base64.b64decode(value[1:-1], validate=True)
    except (binascii.Error, ValueError):
        raise UnreadableCertificate("the RFC 9440 value is not base64") from None
    try:
        return x509.load_der_x509_certificate(der)
    except ValueError:
        raise UnreadableCertificate("the RFC 9440 value is not a DER certificate") from None


def parse_nginx(value: str) -> x509.Certificate:
    # unquote, not unquote_plus: a "+" in the base64 body is a plus, not a space.
    try:
        pem = unquote(value, errors="strict").strip()
    except UnicodeDecodeError:  # %-escapes of bytes that are not UTF-8: no PEM is
        raise UnreadableCertificate("the value is not one URL-escaped PEM certificate") from None
    if not pem.startswith(_PEM_BEGIN) or pem.count(_PEM_BEGIN) != 1:
        raise UnreadableCertificate("the value is not one URL-escaped PEM certificate")
    try:
        return x509.load_pem_x509_certificate(pem.encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        raise UnreadableCertificate("the URL-escaped PEM does not hold a certificate") from None


def parse_client_cert(value: str, cert_format: CertFormat = "auto") -> x509.Certificate:
    value = value.strip()
    if not value:
        raise UnreadableCertificate("the value is empty")
    if len(value) > MAX_HEADER_CHARS:
        raise UnreadableCertificate(f"the value is over {MAX_HEADER_CHARS} characters")
    kind = detect_format(value) if cert_format == "auto" else cert_format
    return parse_rfc9440(value) if kind == "rfc9440" else parse_nginx(value)


class ProxyClientCertSource:
    """The certificate in `header`; used instead of Mdm-Signature when a proxy terminates TLS.

    It is the only source in that mode, so a request without the header is refused here (403)
    rather than falling back to anything else. 403, not 401: 401 makes a device remove its MDM
    profile, and a proxy that stopped sending the header must not unenroll the whole fleet.
    """

    def __init__(self, header: str, cert_format: CertFormat = "auto") -> None:
        self.header = header
        self._key = header.lower()  # request headers arrive lower-cased (ASGI)
        self._format = cert_format

    def present(self, headers: Mapping[str, str], body: bytes) -> Presented | None:
        getlist = getattr(headers, "getlist", None)  # Starlette's Headers keeps repeated fields
        if getlist is not None and len(getlist(self._key)) > 1:
            # The proxy appended its value to one the client sent instead of replacing it.
            raise Forbidden(f"the {self.header} header appears more than once; the proxy must overwrite it")
        value = headers.get(self._key)
        if value is None or not value.strip():
            raise Forbidden(
                f"no device certificate: the proxy sent no {self.header} header "
                "(does it request client certificates and set the header?)"
            )
        try:
            return Presented(parse_client_cert(value, self._format))
        except UnreadableCertificate as exc:
            raise Forbidden(f"the {self.header} header does not hold a certificate: {exc}") from None
