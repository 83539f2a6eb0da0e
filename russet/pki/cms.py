"""CMS SignedData: verifying device signatures (``Mdm-Signature``, ADE MachineInfo), signing profiles.

Verification parses with asn1crypto, which exposes what ``cryptography`` hides (signer infos,
signed attributes, the raw bytes that were signed), and does the cryptography with
``cryptography``. ``verify_detached`` runs on every device request: embedded certificates are
handed to ``cryptography`` as raw DER without asn1crypto decoding them, and signed attributes are
walked without building typed objects.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime

from asn1crypto import algos, cms, core
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import pkcs7

_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha1": hashes.SHA1,
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}


class SignatureError(Exception):
    """A CMS signature is malformed, unsupported or does not verify; ``str()`` says why."""


class MalformedSignature(SignatureError):
    """The bytes are not a readable CMS structure at all (truncated, garbage), as opposed to a
    well-formed signature that does not verify; callers may answer the two differently."""


def _hash_algorithm(algorithm: cms.DigestAlgorithm) -> hashes.HashAlgorithm:
    name = algorithm["algorithm"].native
    if name not in _HASHES:
        raise SignatureError(f"unsupported digest algorithm {name}")
    return _HASHES[name]()


def _subject_key_identifier(cert: x509.Certificate) -> bytes | None:
    try:
        return cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    except x509.ExtensionNotFound:
        return None


def _identifies(sid: cms.SignerIdentifier, cert: x509.Certificate) -> bool:
    if sid.name == "issuer_and_serial_number":
        return (
            cert.serial_number == sid.chosen["serial_number"].native
            and cert.issuer.public_bytes() == sid.chosen["issuer"].dump()
        )
    return _subject_key_identifier(cert) == sid.chosen.native


def _signer_certificate(signed_data: cms.SignedData, sid: cms.SignerIdentifier) -> x509.Certificate:
    embedded = signed_data["certificates"]
    if isinstance(embedded, core.Void):
        raise SignatureError("signer certificate is not embedded in the signature")
    # A device sends the same certificates and signer identifier with every request: the search
    # (decoding each certificate, comparing issuer and serial) is done once per distinct pair.
    return _find_signer(embedded.contents, sid.dump())


@functools.lru_cache(maxsize=4096)
def _find_signer(certificates: bytes, sid_der: bytes) -> x509.Certificate:
    """The embedded certificate `sid_der` names, searched among the DER `certificates` (the
    contents of SignedData's certificates field). Pure, so cached: a malformed or unmatched input
    raises, and exceptions are not cached."""
    sid = cms.SignerIdentifier.load(sid_der)
    choices = cms.CertificateSet.load(b"\x31" + _der_length(len(certificates)) + certificates)
    for choice in choices:
        if choice.name == "certificate":
            cert = x509.load_der_x509_certificate(choice.chosen.dump())
            if _identifies(sid, cert):
                return cert
    raise SignatureError("signer certificate is not embedded in the signature")


def _der_length(size: int) -> bytes:
    """A DER length octet string for `size`."""
    if size < 0x80:
        return bytes([size])
    octets = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(octets)]) + octets


_SEQUENCE, _SET, _OBJECT_IDENTIFIER, _OCTET_STRING = 0x30, 0x31, 0x06, 0x04
_CONTENT_TYPE = core.ObjectIdentifier("1.2.840.113549.1.9.3").dump()
_MESSAGE_DIGEST = core.ObjectIdentifier("1.2.840.113549.1.9.4").dump()
_SIGNING_TIME = core.ObjectIdentifier("1.2.840.113549.1.9.5").dump()
_UTC_TIME, _GENERALIZED_TIME = 0x17, 0x18


@dataclass(frozen=True, slots=True)
class Signed:
    """A verified signature: what was signed, by whom, and when the signer says it signed."""

    content: bytes
    certificate: x509.Certificate
    signing_time: datetime | None  # the signingTime attribute, if the signer included one


def _element(data: bytes, start: int, end: int) -> tuple[int, int, int]:
    """The DER element at `data[start:end]`: (identifier octet, where its contents start, where
    it ends). Offsets rather than slices: the device path reads some twenty elements out of each
    request's signature, and copying what follows each one, as a parser over bytes does, cost
    more than reading it. Raises ValueError for what DER does not allow or this reader does not
    take (indefinite lengths, multi-octet tags, lengths past `end`)."""
    if end - start < 2:
        raise ValueError("truncated DER element")
    identifier = data[start]
    if identifier & 0x1F == 0x1F:
        raise ValueError("DER tag numbers above 30 are not read here")
    length = data[start + 1]
    contents = start + 2
    if length & 0x80:
        count = length & 0x7F
        if count == 0 or count > 4 or contents + count > end:
            raise ValueError("indefinite or unreadable DER length")
        length = int.from_bytes(data[contents : contents + count], "big")
        contents += count
    if contents + length > end:
        raise ValueError("DER element longer than what holds it")
    return identifier, contents, contents + length


def _der_elements(data: bytes) -> list[tuple[int, bytes, bytes]]:
    """Split concatenated DER elements into (identifier octet, whole encoding, contents).

    Signed attributes are walked this way rather than with asn1crypto's typed classes: building
    typed objects for every attribute (signing time, S/MIME capabilities...) took about 90 us per
    request, this a few.
    """
    elements = []
    start, end = 0, len(data)
    while start < end:
        identifier, contents, stop = _element(data, start, end)
        elements.append((identifier, data[start:stop], data[contents:stop]))
        start = stop
    return elements


def _signing_time(values: bytes) -> datetime:
    [(identifier, encoded, _)] = _der_elements(values)
    if identifier == _UTC_TIME:
        return core.UTCTime.load(encoded).native
    if identifier == _GENERALIZED_TIME:
        return core.GeneralizedTime.load(encoded).native
    raise SignatureError("signing time attribute is not a UTCTime or GeneralizedTime")


def _signed_bytes(
    transmitted: bytes | None, content: bytes, content_type: bytes, digest: hashes.HashAlgorithm
) -> tuple[bytes, datetime | None]:
    """Return what the signature covers (the content, or the signed attributes bound to it) and
    the signing time among those attributes. `transmitted` is the signed attributes' encoding as
    sent (the [0] IMPLICIT field), None without any; `content_type` the encapsulated content
    type's OBJECT IDENTIFIER encoding."""
    if transmitted is None:
        return content, None
    # RFC 5652 5.4: the signature covers the attributes DER-encoded as a SET, not as the [0] IMPLICIT
    # field they are transmitted in; both share length and contents, only the tag byte differs.
    signed = b"\x31" + transmitted[1:]
    digests: list[bytes] = []
    signing_time = None
    [(_, _, attributes)] = _der_elements(signed)
    for identifier, _, attribute in _der_elements(attributes):
        (oid_identifier, oid, _), (values_identifier, _, values) = _der_elements(attribute)
        if (identifier, oid_identifier, values_identifier) != (_SEQUENCE, _OBJECT_IDENTIFIER, _SET):
            raise SignatureError("malformed signed attribute")
        if oid == _MESSAGE_DIGEST:
            for value_identifier, _, value in _der_elements(values):
                if value_identifier != _OCTET_STRING:
                    raise SignatureError("message digest attribute is not an OCTET STRING")
                digests.append(value)
        elif oid == _SIGNING_TIME:
            signing_time = _signing_time(values)
        elif oid == _CONTENT_TYPE and [v for _, v, _ in _der_elements(values)] != [content_type]:
            raise SignatureError("signed content-type attribute does not match the content")
    if len(digests) != 1:
        raise SignatureError("signed attributes must hold exactly one message digest")
    if not hmac.compare_digest(digests[0], hashlib.new(digest.name, content).digest()):
        raise SignatureError("message digest does not match the content")
    return signed, signing_time


@functools.lru_cache(maxsize=64)
def _signature_algorithm(
    der: bytes,
) -> tuple[str, str, padding.AsymmetricPadding | None, hashes.HashAlgorithm | None]:
    """A SignerInfo's signatureAlgorithm (DER): its scheme, its name, and for RSASSA-PSS the
    padding and hash its parameters give. Pure, so cached: a device signs every request alike."""
    algorithm = algos.SignedDigestAlgorithm.load(der)
    scheme = algorithm.signature_algo
    if scheme != "rsassa_pss":
        return scheme, algorithm["algorithm"].native, None, None
    params = algorithm["parameters"]
    mgf_hash = _hash_algorithm(params["mask_gen_algorithm"]["parameters"])
    pss = padding.PSS(mgf=padding.MGF1(mgf_hash), salt_length=params["salt_length"].native)
    return scheme, algorithm["algorithm"].native, pss, _hash_algorithm(params["hash_algorithm"])


@functools.lru_cache(maxsize=64)
def _digest_algorithm(der: bytes) -> hashes.HashAlgorithm:
    """A SignerInfo's digestAlgorithm (DER) as a hash; cached like `_signature_algorithm`."""
    return _hash_algorithm(cms.DigestAlgorithm.load(der))


def _check_signature(
    algorithm_der: bytes, signature: bytes, cert: x509.Certificate, data: bytes, digest: hashes.HashAlgorithm
) -> None:
    public_key = cert.public_key()
    scheme, name, pss, pss_hash = _signature_algorithm(algorithm_der)
    try:
        if pss is not None and pss_hash is not None and isinstance(public_key, rsa.RSAPublicKey):
            public_key.verify(signature, data, pss, pss_hash)  # set for rsassa_pss only
        elif scheme == "rsassa_pkcs1v15" and isinstance(public_key, rsa.RSAPublicKey):
            public_key.verify(signature, data, padding.PKCS1v15(), digest)
        elif scheme == "ecdsa" and isinstance(public_key, ec.EllipticCurvePublicKey):
            public_key.verify(signature, data, ec.ECDSA(digest))
        else:
            raise SignatureError(f"unsupported signature algorithm {name} for a {type(public_key).__name__}")
    except InvalidSignature as exc:
        raise SignatureError("signature does not verify with the signer certificate") from exc


def _verify(der: bytes, detached_content: bytes | None) -> Signed:
    info = cms.ContentInfo.load(der, strict=True)
    if info["content_type"].native != "signed_data":
        raise SignatureError(f"expected CMS SignedData, got {info['content_type'].native}")
    signed_data = info["content"]
    encapsulated = signed_data["encap_content_info"]
    embedded = encapsulated["content"]
    if detached_content is None:
        if isinstance(embedded, core.Void):
            raise SignatureError("SignedData is detached: it does not contain the signed content")
        content = bytes(embedded)
    else:
        if not isinstance(embedded, core.Void):
            raise SignatureError("SignedData encapsulates content: expected a detached signature")
        content = detached_content
    signers = signed_data["signer_infos"]
    if len(signers) != 1:
        raise SignatureError(f"expected exactly one signer, found {len(signers)}")
    signer = signers[0]
    cert = _signer_certificate(signed_data, signer["sid"])
    digest = _digest_algorithm(signer["digest_algorithm"].dump())
    transmitted = signer["signed_attrs"]
    attributes = None if isinstance(transmitted, core.Void) else transmitted.dump()
    data, signing_time = _signed_bytes(attributes, content, encapsulated["content_type"].dump(), digest)
    _check_signature(signer["signature_algorithm"].dump(), signer["signature"].native, cert, data, digest)
    return Signed(content, cert, signing_time)


# -- the device path's reader ------------------------------------------------------------------------
#
# Every device request carries an Mdm-Signature, and asn1crypto's typed parse of it (ContentInfo,
# SignedData, SignerInfo, each child's spec looked up and built) cost ~75 of the ~105 us its
# verification took on this project's machine. `_verify_detached_fast` finds the same fields in the
# DER by offset instead (`_element`: 87 -> 70 us per verification here, against slicing with
# asn1crypto's low-level parser), then runs the very same checks (`_find_signer`,
# `_digest_algorithm`, `_signed_bytes`, `_check_signature`) on them. It reads only the shape a
# detached SignedData with one signer has in DER; anything else (BER's indefinite lengths, an
# encapsulated content, several signers, no certificates, unexpected tags) makes it step aside, and
# the full parse above decides and names what is wrong.

_SIGNED_DATA = core.ObjectIdentifier("1.2.840.113549.1.7.2").dump()
_INTEGER, _CONTEXT_0, _CONTEXT_1, _SKI = 0x02, 0xA0, 0xA1, 0x80


class _Unusual(Exception):
    """The fast reader does not handle this input itself: the full parse decides."""


class _Reader:
    """Reads DER elements one after another within `data[start:end]`, by offset."""

    __slots__ = ("data", "at", "end")

    def __init__(self, data: bytes, start: int, end: int) -> None:
        self.data, self.at, self.end = data, start, end

    def next(self, identifier: int | None = None) -> tuple[int, int, int, int]:
        """The next element (optionally required to have `identifier` as its first octet):
        (identifier octet, where it starts, where its contents start, where it ends)."""
        start = self.at
        try:
            found, contents, stop = _element(self.data, start, self.end)
        except ValueError as exc:  # truncated, BER: the full parse words the refusal
            raise _Unusual from exc
        if identifier is not None and found != identifier:
            raise _Unusual  # not the field expected here
        self.at = stop
        return found, start, contents, stop

    def inside(self, identifier: int) -> _Reader:
        """A reader of the next element's contents, which must have `identifier`."""
        _, _, contents, stop = self.next(identifier)
        return _Reader(self.data, contents, stop)

    def whole(self, identifier: int | None = None) -> bytes:
        """The next element's whole encoding."""
        _, start, _, stop = self.next(identifier)
        return self.data[start:stop]

    def optional(self, identifier: int) -> tuple[int, int, int, int] | None:
        """An OPTIONAL field, as `next` gives it, or None when the next element is not it."""
        if self.at < self.end and self.data[self.at] == identifier:
            return self.next(identifier)
        return None

    @property
    def done(self) -> bool:
        return self.at == self.end


def _verify_detached_fast(der: bytes, content: bytes) -> Signed:
    outer = _Reader(der, 0, len(der))
    info = outer.inside(_SEQUENCE)  # ContentInfo
    if info.whole(_OBJECT_IDENTIFIER) != _SIGNED_DATA:
        raise _Unusual
    explicit = info.inside(_CONTEXT_0)
    signed_data = explicit.inside(_SEQUENCE)  # SignedData
    signed_data.next(_INTEGER)  # version
    signed_data.next(_SET)  # digestAlgorithms
    encapsulated = signed_data.inside(_SEQUENCE)  # EncapsulatedContentInfo
    encapsulated_type = encapsulated.whole(_OBJECT_IDENTIFIER)
    certificates = signed_data.optional(_CONTEXT_0)
    signed_data.optional(_CONTEXT_1)  # crls
    signers = signed_data.inside(_SET)
    signer = signers.inside(_SEQUENCE)  # the one SignerInfo
    if not all(r.done for r in (outer, info, explicit, encapsulated, signed_data, signers)):
        raise _Unusual  # trailing bytes, an encapsulated content, several signers
    if certificates is None:
        raise _Unusual
    signer.next(_INTEGER)  # version
    sid_identifier, sid_start, _, sid_end = signer.next()
    digest_algorithm = signer.whole(_SEQUENCE)
    attributes = signer.optional(_CONTEXT_0)
    signature_algorithm = signer.whole(_SEQUENCE)
    _, _, signature_start, signature_end = signer.next(_OCTET_STRING)
    signer.optional(_CONTEXT_1)  # unsignedAttrs
    if not signer.done or sid_identifier not in (_SEQUENCE, _SKI):
        raise _Unusual
    cert = _find_signer(der[certificates[2] : certificates[3]], der[sid_start:sid_end])
    digest = _digest_algorithm(digest_algorithm)
    transmitted = None if attributes is None else der[attributes[1] : attributes[3]]
    data, signing_time = _signed_bytes(transmitted, content, encapsulated_type, digest)
    _check_signature(signature_algorithm, der[signature_start:signature_end], cert, data, digest)
    return Signed(content, cert, signing_time)


def _guarded_verify(der: bytes, detached_content: bytes | None, *, fast: bool = True) -> Signed:
    # The input comes straight from the network and asn1crypto decodes lazily, so a malformed
    # structure can surface as almost any exception anywhere; callers need exactly one type.
    # (`fast=False`: the full parse alone, which the tests hold the fast reader to.)
    try:
        if fast and detached_content is not None:
            try:
                return _verify_detached_fast(der, detached_content)
            except _Unusual:
                pass
        return _verify(der, detached_content)
    except SignatureError:
        raise
    except Exception as exc:
        raise MalformedSignature(f"malformed CMS signature: {type(exc).__name__}: {exc}") from exc


def verify_detached(signature_der: bytes, content: bytes) -> Signed:
    """Verify a detached CMS signature over ``content`` (``Mdm-Signature``).

    Only the signature is checked; whether the signer is trusted is ``ca.validate_issued``'s job.
    """
    return _guarded_verify(signature_der, content)


def verify_attached(signed_der: bytes) -> Signed:
    """Verify CMS SignedData that carries its content (ADE MachineInfo, signed profiles)."""
    return _guarded_verify(signed_der, None)


def sign_detached(content: bytes, cert: x509.Certificate, key: pkcs7.PKCS7PrivateKeyTypes) -> bytes:
    """Sign as an Apple device signs a request body for ``Mdm-Signature`` (DER, detached, SHA-256)."""
    return (
        pkcs7.PKCS7SignatureBuilder()
        .set_data(content)
        .add_signer(cert, key, hashes.SHA256())
        .sign(serialization.Encoding.DER, [pkcs7.PKCS7Options.DetachedSignature, pkcs7.PKCS7Options.Binary])
    )


def sign_attached(
    content: bytes,
    cert: x509.Certificate,
    key: pkcs7.PKCS7PrivateKeyTypes,
    extra_certs: list[x509.Certificate],
) -> bytes:
    """Wrap ``content`` in DER SignedData (signed .mobileconfig), embedding ``extra_certs`` as chain.

    ``Binary`` keeps the bytes exactly as given instead of MIME-canonicalising line endings.
    """
    builder = pkcs7.PKCS7SignatureBuilder().set_data(content).add_signer(cert, key, hashes.SHA256())
    for extra in extra_certs:
        builder = builder.add_certificate(extra)
    return builder.sign(serialization.Encoding.DER, [pkcs7.PKCS7Options.Binary])
