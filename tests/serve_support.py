"""Running `russet serve` as a real process in a test: a free port, and waiting until it answers."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until_serving(proc: subprocess.Popen[bytes], url: str, timeout: float) -> None:
    """Until `russet serve` (`proc`, its output piped) answers `url`/api/v1/health; RuntimeError
    with what it printed if it exits first or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{url}/api/v1/health").status_code == 200:
                return
        if proc.poll() is not None or time.monotonic() > deadline:
            output = proc.stdout.read().decode() if proc.stdout else ""
            raise RuntimeError(f"russet serve did not come up: {output}")
        time.sleep(0.1)
