"""The server's listening socket, bound by `russet serve` before anything else: a port in use is
one line, and the banner names the address actually bound. It only accepts connections; the Apple
gateway (and the OIDC and webhook clients) are still the only code that opens any."""

from __future__ import annotations

import socket

import click


def listen(host: str, port: int) -> socket.socket:
    """A bound, listening TCP socket for uvicorn, or one line saying why not."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.set_inheritable(True)  # the worker processes serve the same socket
    return sock


def reachable(host: str) -> str:
    """The address to print for a bound host: a wildcard is reached through the loopback here."""
    if host in ("0.0.0.0", "", "::"):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host
