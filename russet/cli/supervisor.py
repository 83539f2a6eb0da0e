"""The parent process of `russet serve --workers N`: it supervises uvicorn's worker processes
and does nothing else, so it holds only what that needs.

`russet serve` sets the database up and prints its banner with the whole CLI and Russet loaded
(~140 MB), then replaces itself (exec, same pid) with this module in a fresh interpreter, handing
over its listening socket by descriptor: the supervisor imports uvicorn and the standard library
(~25 MB). The workers it spawns import this module as their `__main__` (multiprocessing's spawn),
not the CLI, and each opens its own Russet (`russet.app:app_from_env`).

When the workers have stopped, the `cli serve` audit row is recorded, as `russet serve` does.
"""

from __future__ import annotations

import logging
import os
import socket
import sys


def command(sock: socket.socket, workers: int, log_level: str) -> list[str]:
    """The command line that runs the supervisor on `sock`, which it leaves inheritable."""
    os.set_inheritable(sock.fileno(), True)
    return [sys.executable, "-m", __name__, str(sock.fileno()), str(workers), log_level]


def main(fd: int, workers: int, log_level: str) -> None:
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    sock = socket.socket(fileno=fd)
    os.set_inheritable(fd, False)
    config = uvicorn.Config(
        "russet.app:app_from_env", factory=True, workers=workers, log_level=log_level, access_log=False
    )
    code = 1
    try:
        Multiprocess(config, sockets=[sock]).run()  # what uvicorn.run does, on the socket bound before
        code = 0
    finally:
        _record_stop(code)


def _record_stop(code: int) -> None:
    """The audit row `russet serve` records when it ends (AuditedGroup): Russet is opened for it
    now, when the supervisor's memory no longer matters."""
    from russet.cli.common import cli_audit_entry
    from russet.config import Settings
    from russet.runtime import Russet

    try:
        russet = Russet.open(Settings.from_env(), migrate_db=False)
    except Exception as exc:
        print(f"warning: the audit log did not record this command: {exc}", file=sys.stderr)
        return
    try:
        russet.access.record(cli_audit_entry("serve", "", code))
    except Exception as exc:  # said, never hidden: the command itself is done
        print(f"warning: the audit log did not record this command: {exc}", file=sys.stderr)
    finally:
        russet.close()


if __name__ == "__main__":  # not in the workers, which import this module as __mp_main__
    main(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3])
