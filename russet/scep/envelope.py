"""CMS EnvelopedData for SCEP's pkcsPKIEnvelope: opening a request's, sealing a CertRep's.

Written with asn1crypto + ``cryptography`` rather than ``pkcs7_decrypt_der`` so that every way a
request can fail (not for our CA, unsupported algorithm, bad padding) becomes a SCEP failInfo
with a reason, and so the reply can use the cipher the client chose. Only RSA key transport and
AES-CBC are accepted: AES is what Russet advertises, and DES/3DES/RC2 are refused with badAlg.
"""

from __future__ import annotations

import os

from asn1crypto import cms, core
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import padding as symmetric_padding
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from russet.scep.message import FailInfo, Refused

# asn1crypto's names for the content ciphers accepted, with their key sizes in bytes.
AES_CBC = {"aes128_cbc": 16, "aes192_cbc": 24, "aes256_cbc": 32}
_OAEP_HASHES: dict[str, type[hashes.HashAlgorithm]] = {"sha1": hashes.SHA1, "sha256": hashes.SHA256}


def _is_recipient(rid: cms.RecipientIdentifier, cert: x509.Certificate) -> bool:
    if rid.name == "issuer_and_serial_number":
        return (
            rid.chosen["serial_number"].native == cert.serial_number
            and rid.chosen["issuer"].dump() == cert.issuer.public_bytes()
        )
    try:
        ski = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    except x509.ExtensionNotFound:
        return False
    return bool(rid.chosen.native == ski)


def _key_transport_padding(algorithm: cms.KeyEncryptionAlgorithm) -> padding.AsymmetricPadding:
    name = algorithm["algorithm"].native
    if name == "rsaes_pkcs1v15":
        return padding.PKCS1v15()
    if name == "rsaes_oaep":
        params = algorithm["parameters"]
        digest = params["hash_algorithm"]["algorithm"].native
        mgf_digest = params["mask_gen_algorithm"]["parameters"]["algorithm"].native
        if digest not in _OAEP_HASHES or mgf_digest not in _OAEP_HASHES:
            raise Refused(FailInfo.BAD_ALG, f"unsupported RSA-OAEP hash {digest}/{mgf_digest}")
        return padding.OAEP(
            mgf=padding.MGF1(_OAEP_HASHES[mgf_digest]()), algorithm=_OAEP_HASHES[digest](), label=None
        )
    raise Refused(FailInfo.BAD_ALG, f"unsupported key transport algorithm {name}")


def _content_key(enveloped: cms.EnvelopedData, cert: x509.Certificate, key: rsa.RSAPrivateKey) -> bytes:
    for recipient in enveloped["recipient_infos"]:
        if recipient.name == "ktri" and _is_recipient(recipient.chosen["rid"], cert):
            info = recipient.chosen
            try:
                return key.decrypt(
                    info["encrypted_key"].native, _key_transport_padding(info["key_encryption_algorithm"])
                )
            except ValueError:
                # One answer for every decryption failure, so the reply is no padding oracle.
                raise Refused(FailInfo.BAD_MESSAGE_CHECK, "the request cannot be decrypted") from None
    raise Refused(FailInfo.BAD_MESSAGE_CHECK, "the request is not encrypted to Russet's CA certificate")


def open_envelope(der: bytes, cert: x509.Certificate, key: rsa.RSAPrivateKey) -> tuple[bytes, str]:
    """Decrypt a pkcsPKIEnvelope addressed to ``cert``; returns the content and the cipher's name.

    Raises Refused with the failInfo a CertRep should carry.
    """
    try:
        info = cms.ContentInfo.load(der, strict=True)
        if info["content_type"].native != "enveloped_data":
            raise Refused(
                FailInfo.BAD_REQUEST,
                f"the pkcsPKIEnvelope is {info['content_type'].native}, not EnvelopedData",
            )
        enveloped = info["content"]
        encrypted = enveloped["encrypted_content_info"]
        algorithm = encrypted["content_encryption_algorithm"]
        cipher_name = algorithm["algorithm"].native
        if cipher_name not in AES_CBC:
            raise Refused(
                FailInfo.BAD_ALG, f"content encryption {cipher_name} is not supported (use AES-CBC)"
            )
        iv = algorithm["parameters"].native
        ciphertext = encrypted["encrypted_content"].native
        if not isinstance(iv, bytes) or len(iv) != 16 or not ciphertext:
            raise Refused(FailInfo.BAD_REQUEST, "the pkcsPKIEnvelope has no IV or no encrypted content")
        content_key = _content_key(enveloped, cert, key)
    except Refused:
        raise
    except Exception as exc:  # asn1crypto decodes lazily: malformed input raises many types
        raise Refused(FailInfo.BAD_REQUEST, f"unreadable pkcsPKIEnvelope ({type(exc).__name__})") from exc
    if len(content_key) != AES_CBC[cipher_name]:
        raise Refused(FailInfo.BAD_MESSAGE_CHECK, "the request cannot be decrypted")
    decryptor = Cipher(algorithms.AES(content_key), modes.CBC(iv)).decryptor()
    unpadder = symmetric_padding.PKCS7(128).unpadder()
    try:
        padded = decryptor.update(ciphertext) + decryptor.finalize()
        return unpadder.update(padded) + unpadder.finalize(), cipher_name
    except ValueError:
        raise Refused(FailInfo.BAD_MESSAGE_CHECK, "the request cannot be decrypted") from None


def seal_envelope(content: bytes, recipient: x509.Certificate, cipher_name: str = "aes256_cbc") -> bytes:
    """Encrypt ``content`` to ``recipient``'s RSA key as DER EnvelopedData (RSA PKCS#1 v1.5, AES-CBC)."""
    public_key = recipient.public_key()
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise Refused(FailInfo.BAD_ALG, "the requester's certificate has no RSA key to encrypt the reply to")
    content_key, iv = os.urandom(AES_CBC[cipher_name]), os.urandom(16)
    padder = symmetric_padding.PKCS7(128).padder()
    encryptor = Cipher(algorithms.AES(content_key), modes.CBC(iv)).encryptor()
    ciphertext = encryptor.update(padder.update(content) + padder.finalize()) + encryptor.finalize()
    rid = cms.RecipientIdentifier(
        name="issuer_and_serial_number",
        value={
            "issuer": asn1_x509.Name.load(recipient.issuer.public_bytes()),
            "serial_number": recipient.serial_number,
        },
    )
    enveloped = cms.EnvelopedData(
        {
            "version": "v0",
            "recipient_infos": [
                cms.RecipientInfo(
                    name="ktri",
                    value={
                        "version": "v0",
                        "rid": rid,
                        "key_encryption_algorithm": {
                            "algorithm": "rsaes_pkcs1v15",
                            "parameters": core.Null(),
                        },
                        "encrypted_key": public_key.encrypt(content_key, padding.PKCS1v15()),
                    },
                )
            ],
            "encrypted_content_info": {
                "content_type": "data",
                "content_encryption_algorithm": {"algorithm": cipher_name, "parameters": iv},
                "encrypted_content": ciphertext,
            },
        }
    )
    return cms.ContentInfo({"content_type": "enveloped_data", "content": enveloped}).dump()
