"""In-process device path: CPU per Idle check-in and per command round trip, without HTTP.

The side-by-side benchmark (`vs_nanomdm.py`) measures a real server over the network, where the
machine's other load, uvicorn and the client all move the figures. This one measures what
Russet itself spends per device request, in one process, as the minimum over several repeats
(the least disturbed run): the handler alone (identity check, plist parse, service and store:
what runs in the worker thread) and the whole ASGI app (routing, body reading, the thread hop).
Issue #18's hot-path work is judged by these numbers first, then confirmed side by side.

    python bench/device_path.py --backend both --devices 50 --rounds 40 --repeats 7
    python bench/device_path.py --backend sqlite --command DeviceInformation --profile /tmp/trip.pstats

`--command DeviceInformation` round-trips the command `vs_nanomdm.py` sends (three queries, the
answer merged into the device's facts), ProfileList (the default) an inventory answer. `--profile`
writes cProfile statistics of the round-trip phase (read with `python -m pstats FILE`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import json
import os
import plistlib
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # russet, simulators, tests

from _measure import fresh_database, load_average  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402
from starlette.datastructures import Headers  # noqa: E402

from russet.app import create_app  # noqa: E402
from russet.config import Settings  # noqa: E402
from russet.mdm.messages import parse_plist  # noqa: E402
from russet.runtime import Russet  # noqa: E402
from simulators.device import CONNECT_TYPE, Enrollment, SimDevice  # noqa: E402
from tests.conftest import PUBLIC_URL, TOPIC, new_profile  # noqa: E402

Request = tuple[str, bytes, dict[str, str]]


def _signed(device: SimDevice, message: dict[str, Any]) -> Request:
    body = plistlib.dumps(message)
    path = device._url(device.enrollment.server_url)  # noqa: SLF001 (the simulator's own URL rule)
    return path, body, device.signed_headers(body, CONNECT_TYPE)


async def _call(app: Any, request: Request, method: str = "PUT") -> int:
    path, body, headers = request
    scope = {
        "type": "http", "http_version": "1.1", "method": method, "path": path, "raw_path": path.encode(),
        "root_path": "", "scheme": "https", "query_string": b"", "server": ("mdm.example.test", 443),
        "client": ("127.0.0.1", 5000),
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()]
        + [(b"host", b"mdm.example.test"), (b"content-length", str(len(body)).encode())],
    }  # fmt: skip
    delivered = False
    status: list[int] = []

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if delivered:
            return {"type": "http.disconnect"}
        delivered = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            status.append(message["status"])

    await app(scope, receive, send)
    return status[0]


def _best(repeats: int, count: int, run: Callable[[], None]) -> float:
    """The least CPU per request (ms) over `repeats` runs of `run`, which makes `count` requests."""
    best = float("inf")
    for _ in range(repeats):
        started = time.process_time()
        run()
        best = min(best, (time.process_time() - started) / count)
    return best * 1000


@contextlib.contextmanager
def _profiled(profiler: cProfile.Profile | None) -> Iterator[None]:
    """`profiler` on for the block (a timed run), if there is one."""
    if profiler is None:
        yield
        return
    profiler.enable()
    try:
        yield
    finally:
        profiler.disable()


# What each command's Acknowledged carries (DeviceInformation: what mdmb answers vs_nanomdm.py's).
COMMANDS: dict[str, tuple[dict[str, Any], Callable[[SimDevice], dict[str, Any]]]] = {
    "ProfileList": ({"RequestType": "ProfileList"}, lambda sim: {"ProfileList": []}),
    "DeviceInformation": (
        {"RequestType": "DeviceInformation", "Queries": ["DeviceName", "SerialNumber", "UDID"]},
        lambda sim: {
            "QueryResponses": {
                "DeviceName": f"Bench {sim.serial}",
                "SerialNumber": sim.serial,
                "UDID": sim.udid,
            }
        },
    ),
}


async def _round_trips(
    russet: Russet,
    app: Any,
    sims: list[SimDevice],
    repeats: int,
    command: str,
    profiler: cProfile.Profile | None,
) -> float:
    """CPU (ms) per command round trip through the whole ASGI app: one `command` queued per
    device (untimed, as are the signatures), then Idle (the command handed out) and its
    Acknowledged (stored, nothing next), the least over `repeats` runs."""
    best = float("inf")
    body, answer = COMMANDS[command]
    for _ in range(repeats):  # runs inside the event loop: the queueing and signing are untimed
        ids = [sim.udid for sim in sims]
        queued = russet.devices.send_command(ids, body, created_by="bench")
        uuid_of = {c["device"]: c["command_uuid"] for c in queued["commands"]}
        requests = []
        for sim in sims:
            requests.append(_signed(sim, sim.report_message("Idle")))
            ack = sim.report_message("Acknowledged", uuid_of[sim.udid], **answer(sim))
            requests.append(_signed(sim, ack))

        with _profiled(profiler):
            started = time.process_time()
            for request in requests:
                if await _call(app, request) != 200:
                    raise SystemExit("a command round trip was not answered 200")
            best = min(best, (time.process_time() - started) / len(sims))
    return best * 1000


async def _api_queueing(
    russet: Russet,
    app: Any,
    sims: list[SimDevice],
    repeats: int,
    command: str,
    profiler: cProfile.Profile | None,
) -> float:
    """CPU (ms) per admin API call queueing `command` for one device (`POST /api/v1/commands`,
    authenticated by an API key, audited), through the whole ASGI app: the call each command
    round trip of `vs_nanomdm.py` starts with; the least over `repeats` runs."""
    key = russet.access.create_key(f"bench-{os.getpid()}-{time.monotonic_ns()}")
    headers = {"authorization": f"Bearer {key}", "content-type": "application/json"}
    body, _ = COMMANDS[command]
    calls = [
        ("/api/v1/commands", json.dumps({"devices": [sim.udid], "command": body}).encode(), headers)
        for sim in sims
    ]
    best = float("inf")
    for _ in range(repeats):
        with _profiled(profiler):
            started = time.process_time()
            for call in calls:
                if await _call(app, call, "POST") != 201:
                    raise SystemExit("queueing a command through the API was not answered 201")
            best = min(best, (time.process_time() - started) / len(calls))
    return best * 1000  # (each run leaves one more command queued per device, as a busy fleet has)


def measure(
    backend: str,
    devices: int,
    rounds: int,
    repeats: int,
    metrics: bool = False,
    command: str = "ProfileList",
    profile: Path | None = None,
) -> None:
    with fresh_database(backend) as url, tempfile.TemporaryDirectory() as data:
        settings = Settings.from_env(
            {
                "RUSSET_DATA_DIR": str(Path(data) / "data"),
                "RUSSET_DATABASE_URL": url,
                "RUSSET_PUBLIC_URL": PUBLIC_URL,
                "RUSSET_PUSH_TOPIC": TOPIC,
                "RUSSET_ACCESS_LOG": "off",
                "RUSSET_METRICS": "on" if metrics else "off",
            }
        )
        russet = Russet.open(settings)
        try:
            app = create_app(russet)
            sims = []
            with TestClient(app, base_url=PUBLIC_URL) as client:
                for _ in range(devices):
                    sim = SimDevice(Enrollment.from_profile(new_profile(russet)), path_only=True)
                    sim.enroll(client)
                    sim.connect(client, sim.report_message("Idle"))
                    sims.append(sim)
            idles = [_signed(sim, sim.report_message("Idle")) for _ in range(rounds) for sim in sims]
            parsed = [(Headers(headers=h), body) for _, body, h in idles]

            def handler_only() -> None:
                for headers, body in parsed:
                    identity = russet.identities.identify(headers, body, unique=False)
                    russet.mdm.report(identity, parse_plist(body), body)

            async def whole_app() -> tuple[float, float]:
                """Both ASGI measurements in one event loop (a loop and its worker threads
                are made once, as in a server)."""
                best = float("inf")
                for _ in range(repeats):
                    started = time.process_time()
                    for request in idles:
                        if await _call(app, request) != 200:
                            raise SystemExit(f"an Idle check-in was not answered 200 ({backend})")
                    best = min(best, (time.process_time() - started) / len(idles))
                trip = await _round_trips(russet, app, sims, repeats, command, profiler)
                api = await _api_queueing(russet, app, sims, repeats, command, api_profiler)
                return best * 1000, trip, api

            profiler = cProfile.Profile() if profile is not None else None
            api_profiler = cProfile.Profile() if profile is not None else None

            handler = _best(repeats, len(parsed), handler_only)
            asgi, trip, api = asyncio.run(whole_app())
            print(
                f"{backend:9} Idle check-in, nothing queued: handler {handler:.3f} ms CPU, "
                f"whole ASGI app {asgi:.3f} ms CPU per request "
                f"({devices} devices x {rounds} rounds, min of {repeats})"
            )
            print(
                f"{backend:9} {command} round trip (Idle -> command, Acknowledged -> none): {trip:.3f} ms CPU"
            )
            print(
                f"{backend:9} {command} queued by the admin API (POST /api/v1/commands, one device): "
                f"{api:.3f} ms CPU"
            )
            if profiler is not None and api_profiler is not None and profile is not None:
                out = profile.with_name(f"{profile.stem}-{backend}{profile.suffix}")
                profiler.dump_stats(out)
                api_out = profile.with_name(f"{profile.stem}-{backend}-api{profile.suffix}")
                api_profiler.dump_stats(api_out)
                print(
                    f"{backend:9} round trips and API calls profiled (cProfile, slower than unprofiled): "
                    f"{out}, {api_out}"
                )
        finally:
            russet.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--devices", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--metrics", action="store_true", help="with RUSSET_METRICS=on (its middleware)")
    parser.add_argument(
        "--command", choices=sorted(COMMANDS), default="ProfileList", help="command round-tripped"
    )
    parser.add_argument("--profile", type=Path, help="cProfile the round trips into FILE-<backend>.pstats")
    args = parser.parse_args()
    os.environ.setdefault("RUSSET_ACCESS_LOG", "off")
    print(f"load average before: {load_average()}")
    for backend in ("sqlite", "postgres") if args.backend == "both" else (args.backend,):
        measure(backend, args.devices, args.rounds, args.repeats, args.metrics, args.command, args.profile)
    print(f"load average after: {load_average()}")


if __name__ == "__main__":
    main()
