"""A TLS-terminating reverse proxy on 127.0.0.1, doing for tests what nginx does in production.

It terminates TLS, asks the client for a certificate, and forwards each request over plain HTTP
to the upstream with that certificate in a header: RFC 9440 (`:base64 DER:`) or nginx's
`$ssl_client_escaped_cert` (URL-escaped PEM). Like a correctly configured proxy it overwrites
the header: a copy sent by the client never reaches the upstream.

Python's TLS server cannot accept any certificate at all (nginx's `optional_no_ca`), so the
proxy trusts the CA files it is given; a test that wants a foreign certificate to reach the
upstream adds that CA, which is what `optional_no_ca` amounts to.
"""

from __future__ import annotations

import base64
import ssl
import threading
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from simulators.tls import TlsFiles

Format = Literal["rfc9440", "nginx"]
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "host"}


def rfc9440_value(cert: x509.Certificate) -> str:
    """RFC 9440 §2.2: the DER certificate as a structured-field byte sequence."""
    return ":" + base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode() + ":"


def nginx_value(cert: x509.Certificate) -> str:
    """nginx's $ssl_client_escaped_cert: the PEM certificate, URL-escaped."""
    return quote(cert.public_bytes(serialization.Encoding.PEM).decode(), safe="")


def header_value(cert: x509.Certificate, fmt: Format) -> str:
    return rfc9440_value(cert) if fmt == "rfc9440" else nginx_value(cert)


class TlsTerminatingProxy:
    def __init__(
        self,
        tls: TlsFiles,
        upstream: str,
        header: str,
        fmt: Format,
        client_ca_files: Sequence[Path],
    ) -> None:
        self.url = ""
        proxy = self
        self.forwarded: list[dict[str, str]] = []  # the headers each forwarded request carried
        self._http = httpx.Client(base_url=upstream, timeout=30)

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {
                    k: v
                    for k, v in self.headers.items()
                    if k.lower() not in _HOP_BY_HOP and k.lower() != header.lower()
                }
                assert isinstance(self.connection, ssl.SSLSocket)
                der = self.connection.getpeercert(binary_form=True)
                if der:  # no certificate: no header, as nginx leaves an empty value out
                    headers[header] = header_value(x509.load_der_x509_certificate(der), fmt)
                proxy.forwarded.append(dict(headers))
                answer = proxy._http.request(self.command, self.path, content=body, headers=headers)
                self.send_response(answer.status_code)
                for name, value in answer.headers.items():
                    if name.lower() not in _HOP_BY_HOP and name.lower() != "content-length":
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            do_GET = do_POST = do_PUT = _forward

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(tls.cert_file, tls.key_file)
        ctx.verify_mode = ssl.CERT_OPTIONAL  # ssl_verify_client optional
        for ca_file in client_ca_files:
            ctx.load_verify_locations(cafile=str(ca_file))
        self._server.socket = ctx.wrap_socket(self._server.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> TlsTerminatingProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._http.close()
