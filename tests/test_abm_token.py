"""ABM connections: the key pair, the server token (.p7m) and what is kept of it."""

from __future__ import annotations

import base64
import dataclasses
import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from asn1crypto import algos, cms
from asn1crypto import x509 as asn1_x509
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives import padding, serialization
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from sqlalchemy import select

from russet.abm.errors import AbmError, TokenError
from russet.abm.tables import abm_servers
from russet.abm.token import decrypt_server_token, expiry_warning, make_key_pair
from russet.apple.tables import apple_connections
from russet.cli.main import cli
from russet.config import Settings
from simulators.dep import Credentials, make_server_token
from tests.abm_support import connect, run, simulated


def _token_plaintext(credentials: Credentials) -> bytes:
    return (
        "Content-Type: text/plain;charset=UTF-8\r\n\r\n-----BEGIN MESSAGE-----\n"
        + json.dumps(dataclasses.asdict(credentials))
        + "\n-----END MESSAGE-----\n"
    ).encode()


def test_key_pair_certificate_is_long_lived_and_uploadable() -> None:
    key, cert = make_key_pair("main")
    assert cert.public_key().public_numbers() == key.public_key().public_numbers()
    assert cert.not_valid_after_utc - cert.not_valid_before_utc > timedelta(days=3000)
    assert key.key_size == 2048
    assert cert.public_bytes(serialization.Encoding.PEM).startswith(b"-----BEGIN CERTIFICATE-----")


@pytest.mark.parametrize("cipher", [algorithms.AES128, algorithms.AES256])
def test_token_decrypts_to_the_oauth_credentials(
    cipher: type[algorithms.AES128] | type[algorithms.AES256],
) -> None:
    key, cert = make_key_pair("main")
    credentials = Credentials.new()
    token = decrypt_server_token(make_server_token(cert, credentials, content_encryption=cipher), cert, key)
    assert (token.consumer_key, token.consumer_secret) == (
        credentials.consumer_key,
        credentials.consumer_secret,
    )
    assert (token.access_token, token.access_secret) == (credentials.access_token, credentials.access_secret)
    assert token.access_token_expiry == datetime.fromisoformat(credentials.access_token_expiry)


def _triple_des_token(cert: x509.Certificate, plaintext: bytes) -> bytes:
    """EnvelopedData with 3DES content encryption, which cryptography's pkcs7 cannot decrypt."""
    content_key, iv = os.urandom(24), os.urandom(8)
    padder = padding.PKCS7(64).padder()
    padded = padder.update(plaintext) + padder.finalize()
    encryptor = Cipher(TripleDES(content_key), modes.CBC(iv)).encryptor()
    ciphertext = encryptor.update(padded) + encryptor.finalize()
    issuer = asn1_x509.Name.load(cert.issuer.public_bytes())
    recipient = cms.KeyTransRecipientInfo(
        {
            "version": "v0",
            "rid": cms.RecipientIdentifier(
                {"issuer_and_serial_number": {"issuer": issuer, "serial_number": cert.serial_number}}
            ),
            "key_encryption_algorithm": {"algorithm": "rsaes_pkcs1v15"},
            "encrypted_key": cert.public_key().encrypt(content_key, PKCS1v15()),  # type: ignore[union-attr]
        }
    )
    enveloped = cms.EnvelopedData(
        {
            "version": "v0",
            "recipient_infos": [cms.RecipientInfo({"ktri": recipient})],
            "encrypted_content_info": {
                "content_type": "data",
                "content_encryption_algorithm": algos.EncryptionAlgorithm(
                    {"algorithm": "tripledes_3key", "parameters": iv}
                ),
                "encrypted_content": ciphertext,
            },
        }
    )
    der = cms.ContentInfo({"content_type": "enveloped_data", "content": enveloped}).dump()
    return b"Content-Type: application/pkcs7-mime; smime-type=enveloped-data\n\n" + base64.encodebytes(der)


def test_token_with_3des_content_encryption_is_decrypted_too() -> None:
    key, cert = make_key_pair("main")
    credentials = Credentials.new()
    token = decrypt_server_token(_triple_des_token(cert, _token_plaintext(credentials)), cert, key)
    assert token.access_secret == credentials.access_secret


def test_token_for_another_key_is_a_clear_error() -> None:
    _, ours = make_key_pair("main")
    other_key, other = make_key_pair("other")
    data = make_server_token(other, Credentials.new())
    with pytest.raises(TokenError, match="encrypted for another certificate"):
        decrypt_server_token(data, ours, make_key_pair("main")[0])
    assert decrypt_server_token(data, other, other_key).consumer_key.startswith("CK_")


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda d: b"", "empty"),
        (lambda d: b"just some text\n\nnot base64 at all!", "not a server token"),
        (lambda d: d[: len(d) // 2], "not a server token|corrupt"),
        (lambda d: d.replace(b"MII", b"XII", 1), "corrupt"),
    ],
)
def test_corrupt_token_file_is_a_clear_error(damage, message: str) -> None:  # type: ignore[no-untyped-def]
    key, cert = make_key_pair("main")
    with pytest.raises(TokenError, match=message):
        decrypt_server_token(damage(make_server_token(cert, Credentials.new())), cert, key)


def test_token_with_wrong_json_inside_is_a_clear_error() -> None:
    key, cert = make_key_pair("main")
    from cryptography.hazmat.primitives.serialization import pkcs7

    data = (
        pkcs7.PKCS7EnvelopeBuilder()
        .set_data(
            b'Content-Type: text/plain\r\n\r\n-----BEGIN MESSAGE-----\n{"consumer_key": "CK_1"}\n'
            b"-----END MESSAGE-----\n"
        )  # fmt: skip
        .add_recipient(cert)
        .encrypt(serialization.Encoding.SMIME, [pkcs7.PKCS7Options.Binary])
    )
    with pytest.raises(TokenError, match="lacks consumer_secret, access_token, access_secret"):
        decrypt_server_token(data, cert, key)


def test_expired_token_is_refused() -> None:
    key, cert = make_key_pair("main")
    data = make_server_token(cert, Credentials.new(valid_for=timedelta(days=-1)))
    with pytest.raises(TokenError, match="expired"):
        decrypt_server_token(data, cert, key)


def test_expiry_warning_starts_30_days_out() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert expiry_warning(now + timedelta(days=31), now) is None
    assert "expires in 29 days" in (expiry_warning(now + timedelta(days=29, hours=1), now) or "")
    assert "expired" in (expiry_warning(now - timedelta(seconds=1), now) or "")


def test_token_is_stored_sealed_and_connects(tmp_path: Path, settings: Settings) -> None:
    with simulated(tmp_path, settings) as (sim, russet):
        result = connect(russet, sim)
        assert result["warning"] is None and result["account_error"] is None
        assert result["account"]["server_uuid"] == sim.account["server_uuid"]
        with russet.storage.engine.connect() as conn:
            row = conn.execute(select(abm_servers)).one()
            status = conn.execute(select(apple_connections.c.status)).scalar_one()
        assert status == "active"
        dump = repr(tuple(row))
        for secret in (
            sim.credentials.consumer_secret,
            sim.credentials.access_secret,
            sim.credentials.access_token,
        ):
            assert secret not in dump and secret.encode() not in row.sealed_token
        assert b"PRIVATE KEY" not in row.sealed_key
        # A second `create` with the same name is refused; the key stays.
        with pytest.raises(AbmError, match="already exists"):
            russet.abm.create("main")


def test_token_for_unknown_connection_or_before_create(tmp_path: Path, settings: Settings) -> None:
    with simulated(tmp_path, settings) as (sim, russet):
        _, cert = make_key_pair("x")
        with pytest.raises(AbmError, match="no ABM connection named 'nope'"):
            run(russet, russet.abm.load_token("nope", sim.token_for(cert)))
        with pytest.raises(AbmError, match="letters, digits"):
            russet.abm.create("bad name/..")


def test_cli_create_and_token_show_expiry_and_warn(
    tmp_path: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    with simulated(tmp_path, settings) as (sim, russet):
        russet.close()  # the CLI opens its own
        env = {
            "RUSSET_DATA_DIR": str(settings.data_dir),
            "RUSSET_DATABASE_URL": settings.database_url,
            "RUSSET_PUBLIC_URL": settings.public_url,
            "RUSSET_ABM_URL": sim.url,
            "RUSSET_APPLE_CA_FILE": str(tmp_path / "dep-tls" / "ca.pem"),
        }
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        cert_file = tmp_path / "abm.pem"
        result = CliRunner().invoke(cli, ["abm", "create", "school", "--out", str(cert_file)])
        assert result.exit_code == 0, result.output
        cert = x509.load_pem_x509_certificate(cert_file.read_bytes())

        sim.credentials = Credentials.new(valid_for=timedelta(days=12))
        token_file = tmp_path / "school_Token_smime.p7m"
        token_file.write_bytes(sim.token_for(cert))
        result = CliRunner().invoke(cli, ["abm", "token", "school", str(token_file)])
        assert result.exit_code == 0, result.output
        assert "expires" in result.output and "warning: the server token expires in 11 days" in result.output
        assert "Russet test server" in result.output

        other_key, other_cert = make_key_pair("other")
        token_file.write_bytes(make_server_token(other_cert, Credentials.new()))
        result = CliRunner().invoke(cli, ["abm", "token", "school", str(token_file)])
        assert result.exit_code == 1 and "encrypted for another certificate" in result.output
        assert "Traceback" not in result.output

        token_file.write_bytes(make_server_token(cert, Credentials.new(valid_for=timedelta(days=-2))))
        result = CliRunner().invoke(cli, ["abm", "token", "school", str(token_file)])
        assert result.exit_code == 1 and "expired on" in result.output
