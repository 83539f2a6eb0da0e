"""The connection's key pair and the ABM/ASM server token (.p7m) encrypted to it (§e.1).

The admin uploads Russet's certificate when creating the MDM server in ABM/ASM; Apple then offers
a token file: S/MIME EnvelopedData to that certificate, whose plaintext holds the OAuth 1.0a
credentials as JSON. The private key never leaves Russet (it is sealed at rest) and stays valid
for renewed tokens, so the certificate is long-lived.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from asn1crypto import cms as asn1_cms
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives import padding, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import NameOID

from russet.abm.errors import TokenError
from russet.apple.connection.tokens import ExpiryWarning
from russet.pki.ca import key_usage, self_signed

CERTIFICATE_YEARS = 10  # renewed tokens are encrypted to the same certificate: keep it long-lived
EXPIRY_WARNING_DAYS = 30
MAX_TOKEN_BYTES = 64 * 1024  # a server token file is about 4 KB; far more is not one
TOKEN_FIELDS = ("consumer_key", "consumer_secret", "access_token", "access_secret", "access_token_expiry")


@dataclass(frozen=True)
class ServerToken:
    """OAuth 1.0a credentials of one ABM/ASM MDM server."""

    consumer_key: str
    consumer_secret: str
    access_token: str
    access_secret: str
    access_token_expiry: datetime

    def to_json(self) -> bytes:
        data = asdict(self)
        data["access_token_expiry"] = self.access_token_expiry.isoformat()
        return json.dumps(data).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> ServerToken:
        data = json.loads(raw)
        data["access_token_expiry"] = datetime.fromisoformat(data["access_token_expiry"])
        return cls(**data)


def make_key_pair(name: str) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    """A fresh RSA key and the self-signed certificate the admin uploads to ABM/ASM."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, f"Russet ABM {name}"[:64]),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Russet MDM"),
        ]
    )
    usage = key_usage(digital_signature=True, key_encipherment=True)  # Apple encrypts tokens to it
    cert = self_signed(key, subject, 365 * CERTIFICATE_YEARS, usage=usage)
    return key, cert


# -- decrypting the .p7m ---------------------------------------------------------------------------


def decrypt_server_token(
    data: bytes, cert: x509.Certificate, key: rsa.RSAPrivateKey, *, now: datetime | None = None
) -> ServerToken:
    """The credentials in a token file downloaded from ABM/ASM for this certificate's MDM server."""
    der = _envelope_der(data)
    enveloped = _enveloped_data(der)
    _require_recipient(enveloped, cert)
    plaintext = _decrypt(der, enveloped, cert, key)
    token = _parse_plaintext(plaintext)
    now = now or datetime.now(UTC)
    if token.access_token_expiry <= now:
        raise TokenError(
            f"this server token expired on {token.access_token_expiry.isoformat()}; download a new one "
            "from Apple Business/School Manager (the MDM server's page, Download Token)"
        )
    return token


expiry_warning = ExpiryWarning(
    token="server token",
    expired="download a renewed token from ABM/ASM",
    soon="download a renewed token from ABM/ASM and load it with `russet abm token`",
    days=EXPIRY_WARNING_DAYS,
)


def _envelope_der(data: bytes) -> bytes:
    """The DER of the CMS structure, from S/MIME (headers, blank line, base64), PEM or DER."""
    if len(data) > MAX_TOKEN_BYTES:
        raise TokenError(f"a server token file is a few KB; this one is {len(data)} bytes")
    text = data.strip()
    if not text:
        raise TokenError("the token file is empty")
    if text[:1] == b"\x30":
        return text
    if text.startswith(b"-----BEGIN"):
        body = b"".join(line for line in text.splitlines() if not line.startswith(b"-----"))
    else:
        normalised = text.replace(b"\r\n", b"\n")
        head, sep, rest = normalised.partition(b"\n\n")
        # S/MIME headers end at the first blank line; a bare base64 body is accepted too.
        body = rest if sep and b":" in head.split(b"\n", 1)[0] else normalised
    try:
        return base64.b64decode(b"".join(body.split()), validate=True)
    except (binascii.Error, ValueError):
        raise TokenError(
            "this is not a server token: expected the .p7m file downloaded from Apple Business/School "
            "Manager (S/MIME, base64)"
        ) from None


def _enveloped_data(der: bytes) -> asn1_cms.EnvelopedData:
    try:
        info = asn1_cms.ContentInfo.load(der)
        content_type = info["content_type"].native
        if content_type != "enveloped_data":
            if "." in content_type:  # an OID asn1crypto does not know: not a real CMS structure
                raise TokenError("the token file is corrupt (no CMS structure inside)")
            raise TokenError(f"this file holds CMS {content_type}, not an encrypted server token")
        enveloped = info["content"]
        enveloped.native  # noqa: B018 -- parses everything now, so corruption is reported here
    except TokenError:
        raise
    except (ValueError, TypeError, KeyError) as exc:
        raise TokenError(f"the token file is corrupt (CMS structure unreadable: {exc})") from None
    return enveloped


def _require_recipient(enveloped: asn1_cms.EnvelopedData, cert: x509.Certificate) -> None:
    """Say plainly when the token was encrypted to another certificate than this connection's."""
    ours_issuer = asn1_x509.Name.load(cert.issuer.public_bytes())
    try:
        ours_ski = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    except x509.ExtensionNotFound:
        ours_ski = None
    others = []
    for info in enveloped["recipient_infos"]:
        if info.name != "ktri":
            others.append(f"a {info.name} recipient")
            continue
        rid = info.chosen["rid"]
        if rid.name == "issuer_and_serial_number":
            issuer, serial = rid.chosen["issuer"], rid.chosen["serial_number"].native
            if issuer == ours_issuer and serial == cert.serial_number:
                return
            others.append(f"certificate serial {serial:x} of {issuer.human_friendly}")
        else:
            if ours_ski is not None and rid.chosen.native == ours_ski:
                return
            others.append(f"key id {rid.chosen.native.hex()}")
    raise TokenError(
        "this server token was encrypted for another certificate ("
        + "; ".join(others)
        + f"), not this connection's (serial {cert.serial_number:x}). Upload this connection's "
        "certificate to the MDM server in ABM/ASM and download the token again"
    )


def _decrypt(
    der: bytes, enveloped: asn1_cms.EnvelopedData, cert: x509.Certificate, key: rsa.RSAPrivateKey
) -> bytes:
    try:
        return pkcs7.pkcs7_decrypt_der(der, cert, key, [])
    except UnsupportedAlgorithm:
        pass  # cryptography only decrypts AES-CBC content; older tokens may use 3DES
    except ValueError as exc:
        raise TokenError(f"the token file could not be decrypted with this connection's key: {exc}") from None
    return _decrypt_other_ciphers(enveloped, key)


_CBC_CIPHERS: dict[str, type[TripleDES] | type[algorithms.AES]] = {
    "tripledes_3key": TripleDES,
    "aes128_cbc": algorithms.AES,
    "aes192_cbc": algorithms.AES,
    "aes256_cbc": algorithms.AES,
}


def _decrypt_other_ciphers(enveloped: asn1_cms.EnvelopedData, key: rsa.RSAPrivateKey) -> bytes:
    content = enveloped["encrypted_content_info"]
    algorithm = content["content_encryption_algorithm"]
    cipher_class = _CBC_CIPHERS.get(algorithm["algorithm"].native)
    if cipher_class is None:
        raise TokenError(
            f"the token uses content encryption {algorithm['algorithm'].native}, which Russet cannot decrypt"
        )
    info = next(i.chosen for i in enveloped["recipient_infos"] if i.name == "ktri")
    try:
        content_key = key.decrypt(info["encrypted_key"].native, PKCS1v15())
        decryptor = Cipher(cipher_class(content_key), modes.CBC(algorithm.encryption_iv)).decryptor()
        padded = decryptor.update(content["encrypted_content"].native) + decryptor.finalize()
        unpadder = padding.PKCS7(64 if cipher_class is TripleDES else 128).unpadder()
        return unpadder.update(padded) + unpadder.finalize()
    except (ValueError, TypeError) as exc:
        raise TokenError(f"the token file could not be decrypted with this connection's key: {exc}") from None


_MESSAGE = re.compile(r"-----BEGIN MESSAGE-----(.*?)-----END MESSAGE-----", re.S)


def _parse_plaintext(plaintext: bytes) -> ServerToken:
    """MIME-ish text: headers, a blank line, then the JSON between BEGIN/END MESSAGE markers."""
    try:
        text = plaintext.decode("utf-8")
    except UnicodeDecodeError:
        raise TokenError("the decrypted token is not text; the file is corrupt") from None
    match = _MESSAGE.search(text)
    body = match.group(1) if match else text[text.find("{") :] if "{" in text else text
    try:
        data = json.loads(body)
    except ValueError:
        raise TokenError("the decrypted token does not hold the expected JSON; the file is corrupt") from None
    if not isinstance(data, dict):
        raise TokenError("the decrypted token's JSON is not an object")
    missing = [f for f in TOKEN_FIELDS if not isinstance(data.get(f), str) or not data[f]]
    if missing:
        raise TokenError(f"the decrypted token lacks {', '.join(missing)}")
    try:
        expiry = datetime.fromisoformat(data["access_token_expiry"])
    except ValueError:
        raise TokenError(
            f"access_token_expiry {data['access_token_expiry']!r} is not an ISO 8601 time"
        ) from None
    if expiry.tzinfo is None:
        expiry = expiry.replace(tzinfo=UTC)
    return ServerToken(
        consumer_key=data["consumer_key"],
        consumer_secret=data["consumer_secret"],
        access_token=data["access_token"],
        access_secret=data["access_secret"],
        access_token_expiry=expiry,
    )


def certificate_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)
