"""Round-trip benchmark: how many device requests a real `russet serve` answers per second.

Simulated devices enroll over HTTP, then drain queued commands the way a device does
(Idle -> command -> Acknowledged -> next command ... -> empty 200). Every request is a real,
signed Apple MDM request to a `russet serve` subprocess on the loopback interface, so the
figures cover HTTP parsing, Mdm-Signature verification, plist parsing and the database.

Client-side RSA signing would take CPU from the server on a small machine, so every body is
signed before the phase that sends it; the timed phases only send bytes. Setup (identities,
signatures) is not timed.

    python bench/roundtrips.py --backend both --devices 200 --commands-per-device 10
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import multiprocessing
import os
import plistlib
import re
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
from sqlalchemy import create_engine, select, text

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # the simulator lives next to the package, not inside it
    sys.path.insert(0, str(ROOT))

from russet.config import Settings  # noqa: E402
from russet.enrollment.profile import ProfileRequest, build_profile, signed_profile  # noqa: E402
from russet.pki import sign_detached  # noqa: E402
from russet.runtime import Russet  # noqa: E402
from russet.storage.schema import command_queue  # noqa: E402
from simulators.device import CHECKIN_TYPE, CONNECT_TYPE, Enrollment, SimDevice  # noqa: E402

TOPIC = "com.apple.mgmt.External.00000000-bench-4000-8000-000000000000"
DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
COMMAND_TYPES = ("DeviceInformation", "ProfileList")  # alternated: k-th command of each device
PROFILES_PER_TASK = 16  # identities generated per pool task (each costs an RSA key generation)
_COMMAND_UUID = re.compile(rb"<key>CommandUUID</key>\s*<string>([^<]+)</string>")


class BenchError(RuntimeError):
    """The benchmark could not run as asked (server did not start, a request was refused...)."""


# -- options and results --------------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    backends: tuple[str, ...]
    devices: int
    commands_per_device: int
    concurrency: int
    workers: int
    port: int
    postgres_url: str
    log_level: str


@dataclass
class Phase:
    """Requests answered in a timed phase, with per-request latencies and CPU used on each side."""

    requests: int = 0
    elapsed: float = 0.0
    latencies: list[float] = field(default_factory=list)
    server_cpu: float = 0.0
    client_cpu: float = 0.0
    failures: list[str] = field(default_factory=list)

    def rate(self, count: int | None = None) -> float:
        return (self.requests if count is None else count) / self.elapsed if self.elapsed else 0.0

    def percentile_ms(self, q: float) -> float:
        ordered = sorted(self.latencies)
        if not ordered:
            return float("nan")
        return 1000 * ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


@dataclass
class Result:
    backend: str
    devices: int
    commands: int
    enrollment: Phase
    exchange: Phase
    problems: list[str]


# -- simulated devices with pre-signed requests ----------------------------------------------------


@dataclass(frozen=True)
class Signed:
    """A request body and the headers (with Mdm-Signature) that go with it."""

    body: bytes
    headers: dict[str, str]


@dataclass
class BenchDevice:
    sim: SimDevice
    profile: bytes
    checkins: list[Signed] = field(default_factory=list)  # Authenticate, TokenUpdate
    idle: Signed | None = None
    acks: dict[str, Signed] = field(default_factory=dict)  # CommandUUID -> its Acknowledged report
    expected: list[tuple[str, str]] = field(default_factory=list)  # (CommandUUID, RequestType), queue order
    received: list[str] = field(default_factory=list)

    @property
    def udid(self) -> str:
        return self.sim.udid


def _make_profiles(env: dict[str, str], count: int) -> list[bytes]:
    """Pool task: `count` signed enrollment profiles, each with a freshly issued identity."""
    russet = Russet.open(Settings.from_env(env), migrate_db=False)
    try:
        request = ProfileRequest(russet.settings.public_url, TOPIC)
        return [
            signed_profile(
                build_profile(request, russet.authority, russet.storage.certificates), russet.authority
            )
            for _ in range(count)
        ]
    finally:
        russet.close()


def _sign_bodies(profile: bytes, bodies: list[bytes]) -> list[str]:
    """Pool task: base64 Mdm-Signature values for `bodies`, signed with the profile's identity."""
    enrollment = Enrollment.from_profile(profile)
    return [
        base64.b64encode(sign_detached(b, enrollment.certificate, enrollment.key)).decode() for b in bodies
    ]


def make_devices(pool: ProcessPoolExecutor, env: dict[str, str], count: int) -> list[BenchDevice]:
    """One device per enrollment profile; key generation runs in the pool, on every core."""
    chunks = [min(PROFILES_PER_TASK, count - i) for i in range(0, count, PROFILES_PER_TASK)]
    profiles = [p for batch in pool.map(_make_profiles, [env] * len(chunks), chunks) for p in batch]
    return [BenchDevice(SimDevice(Enrollment.from_profile(p)), p) for p in profiles]


def sign_all(
    pool: ProcessPoolExecutor,
    devices: list[BenchDevice],
    bodies: Callable[[BenchDevice], list[bytes]],
    content_type: str,
) -> list[list[Signed]]:
    """Sign every device's bodies in the pool; returns them with their headers, per device."""
    per_device = [bodies(d) for d in devices]
    signatures = pool.map(_sign_bodies, [d.profile for d in devices], per_device, chunksize=8)
    return [
        [Signed(b, {"Content-Type": content_type, "Mdm-Signature": s}) for b, s in zip(bs, ss, strict=True)]
        for bs, ss in zip(per_device, signatures, strict=True)
    ]


def presign_checkins(pool: ProcessPoolExecutor, devices: list[BenchDevice]) -> None:
    def bodies(d: BenchDevice) -> list[bytes]:
        return [plistlib.dumps(d.sim.authenticate_message()), plistlib.dumps(d.sim.token_update_message())]

    for device, signed in zip(devices, sign_all(pool, devices, bodies, CHECKIN_TYPE), strict=True):
        device.checkins = signed


def presign_reports(pool: ProcessPoolExecutor, devices: list[BenchDevice]) -> None:
    """The Idle report and one Acknowledged report per queued command (UUIDs are known by now)."""

    def bodies(d: BenchDevice) -> list[bytes]:
        reports = [plistlib.dumps(d.sim.report_message("Idle"))]
        reports += [plistlib.dumps(acknowledgement(d.sim, uuid, kind)) for uuid, kind in d.expected]
        return reports

    for device, signed in zip(devices, sign_all(pool, devices, bodies, CONNECT_TYPE), strict=True):
        device.idle = signed[0]
        device.acks = {uuid: s for (uuid, _), s in zip(device.expected, signed[1:], strict=True)}


def acknowledgement(sim: SimDevice, command_uuid: str, request_type: str) -> dict[str, Any]:
    """A report as an iPhone sends it for the command, so the server parses and stores real sizes."""
    if request_type == "DeviceInformation":
        return sim.report_message("Acknowledged", command_uuid, QueryResponses=_query_responses(sim))
    return sim.report_message("Acknowledged", command_uuid, ProfileList=_profile_list(sim))


def _query_responses(sim: SimDevice) -> dict[str, Any]:
    return {
        "UDID": sim.udid,
        "SerialNumber": sim.serial,
        "DeviceName": f"Bench iPhone {sim.serial[-4:]}",
        "Model": "MQ9T3",
        "ModelName": "iPhone",
        "ModelNumber": "MQ9T3LL/A",
        "ProductName": "iPhone15,2",
        "OSVersion": sim.os_version,
        "BuildVersion": "22B83",
        "SupplementalBuildVersion": "22B83",
        "IsSupervised": True,
        "IsAppleSilicon": False,
        "DeviceCapacity": 238.31,
        "AvailableDeviceCapacity": 171.2,
        "BatteryLevel": 0.83,
        "IsActivationLockEnabled": False,
        "IsDeviceLocatorServiceEnabled": True,
        "IsMDMLostModeEnabled": False,
        "AwaitingConfiguration": False,
        "TimeZone": "Europe/Paris",
        "WiFiMAC": "f0:18:98:12:34:56",
        "BluetoothMAC": "f0:18:98:12:34:57",
        "IMEI": "35 123456 789012 3",
        "ICCID": "8933 1500 1234 5678 9012",
        "PhoneNumber": "+33 6 12 34 56 78",
    }


def _profile_list(sim: SimDevice) -> list[dict[str, Any]]:
    def profile(identifier: str, name: str, payloads: list[str]) -> dict[str, Any]:
        return {
            "PayloadIdentifier": identifier,
            "PayloadUUID": sim.push_magic,
            "PayloadDisplayName": name,
            "PayloadVersion": 1,
            "PayloadRemovalDisallowed": False,
            "IsManaged": True,
            "IsEncrypted": False,
            "PayloadContent": [
                {"PayloadType": t, "PayloadIdentifier": f"{identifier}.{i}", "PayloadVersion": 1}
                for i, t in enumerate(payloads)
            ],
        }

    return [
        profile(
            "test.example.mdm.russet.enrollment",
            "Russet MDM enrollment",
            ["com.apple.mdm", "com.apple.security.pkcs12"],
        ),
        profile("com.example.wifi", "Office Wi-Fi", ["com.apple.wifi.managed"]),
        profile("com.example.restrictions", "Restrictions", ["com.apple.applicationaccess"]),
    ]


# -- database and server --------------------------------------------------------------------------


@contextlib.contextmanager
def database(backend: str, data_dir: Path, postgres_url: str) -> Iterator[str]:
    """A fresh database URL: a SQLite file in the data dir, or a PostgreSQL schema dropped afterwards."""
    if backend == "sqlite":
        yield f"sqlite:///{data_dir / 'russet.db'}"
        return
    schema = "bench_" + secrets.token_hex(5)
    admin = create_engine(postgres_url.replace("postgresql://", "postgresql+psycopg://", 1))
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        sep = "&" if "?" in postgres_url else "?"
        yield f"{postgres_url}{sep}options={quote(f'-csearch_path={schema}')}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def russet_executable() -> list[str]:
    """The `russet` script of this interpreter's environment (the venv), else the module entry point."""
    script = Path(sys.executable).with_name("russet")
    return (
        [str(script)]
        if script.exists()
        else [sys.executable, "-c", "from russet.cli.main import main; main()"]
    )


@contextlib.contextmanager
def running_server(env: dict[str, str], port: int, workers: int, log_level: str, log: Path) -> Iterator[int]:
    """`russet serve` as a subprocess; yields its pid once /api/v1/health answers, stops it after."""
    command = [
        *russet_executable(),
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--log-level",
        log_level,
    ]
    with log.open("wb") as out:
        proc = subprocess.Popen(command, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT)
        try:
            wait_healthy(proc, f"http://127.0.0.1:{port}", log)
            yield proc.pid
        finally:
            stop(proc)


def wait_healthy(proc: subprocess.Popen[bytes], base_url: str, log: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=base_url, trust_env=False, timeout=2.0) as client:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise BenchError(f"russet serve exited with {proc.returncode}:\n{tail(log)}")
            with contextlib.suppress(httpx.HTTPError):
                if client.get("/api/v1/health").status_code == 200:
                    return
            time.sleep(0.1)
    raise BenchError(f"russet serve did not answer /api/v1/health within {timeout:.0f} s:\n{tail(log)}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM lets uvicorn finish requests, stop its workers and run the shutdown (last-seen flush)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no server log)"


def process_tree_cpu(pid: int) -> float:
    """CPU seconds (user + system) of a process and its live descendants, read from /proc.

    With --workers > 1 the requests are served by uvicorn's child processes, so the parent's own
    time would say almost nothing.
    """
    ticks, total, stack = os.sysconf("SC_CLK_TCK"), 0, [pid]
    while stack:
        current = stack.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
            for task in Path(f"/proc/{current}/task").iterdir():
                stack.extend(int(c) for c in (task / "children").read_text().split())
        except OSError:
            continue
    return total / ticks


# -- the HTTP phases --------------------------------------------------------------------------------


def new_client(base_url: str, concurrency: int) -> httpx.AsyncClient:
    """HTTP/1.1 with one keep-alive connection per concurrent device; never a proxy (loopback only)."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    return httpx.AsyncClient(base_url=base_url, limits=limits, timeout=120.0, trust_env=False)


async def for_each_device(
    devices: list[BenchDevice], concurrency: int, job: Callable[[BenchDevice], Awaitable[None]], phase: Phase
) -> None:
    """Run `job` for every device, `concurrency` at a time; a failing device is recorded, not fatal."""
    pending = iter(devices)

    async def worker() -> None:
        for device in pending:  # shared iterator: each device is taken by exactly one worker
            try:
                await job(device)
            except Exception as exc:  # noqa: BLE001 - report every failure, keep measuring the rest
                phase.failures.append(f"{device.udid}: {type(exc).__name__}: {exc}")

    await asyncio.gather(*(worker() for _ in range(concurrency)))


async def timed(
    server_pid: int,
    devices: list[BenchDevice],
    concurrency: int,
    job: Callable[[BenchDevice, Phase], Awaitable[None]],
) -> Phase:
    """Time one phase: wall clock, latencies, and CPU spent by the server and by this client."""
    phase = Phase()
    server_before, client_before = process_tree_cpu(server_pid), time.process_time()
    started = time.perf_counter()
    await for_each_device(devices, concurrency, lambda d: job(d, phase), phase)
    phase.elapsed = time.perf_counter() - started
    phase.server_cpu = process_tree_cpu(server_pid) - server_before
    phase.client_cpu = time.process_time() - client_before
    return phase


async def put(client: httpx.AsyncClient, path: str, signed: Signed, phase: Phase) -> bytes:
    started = time.perf_counter()
    response = await client.put(path, content=signed.body, headers=signed.headers)
    phase.latencies.append(time.perf_counter() - started)
    phase.requests += 1
    if response.status_code != 200:
        raise BenchError(f"PUT {path} answered {response.status_code}: {response.text.strip()[:200]}")
    return response.content


async def enroll_all(
    client: httpx.AsyncClient, server_pid: int, devices: list[BenchDevice], concurrency: int
) -> Phase:
    """Authenticate then TokenUpdate per device, as a device installing the profile does."""

    async def enroll(device: BenchDevice, phase: Phase) -> None:
        for signed in device.checkins:
            await put(client, "/mdm/checkin", signed, phase)

    return await timed(server_pid, devices, concurrency, enroll)


async def drain_all(
    client: httpx.AsyncClient, server_pid: int, devices: list[BenchDevice], concurrency: int
) -> Phase:
    """Each device: Idle, then acknowledge every command it is handed until the empty answer."""

    async def drain(device: BenchDevice, phase: Phase) -> None:
        assert device.idle is not None
        signed = device.idle
        while body := await put(client, "/mdm/connect", signed, phase):
            uuid = command_uuid(body)
            device.received.append(uuid)
            if uuid not in device.acks:
                raise BenchError(f"handed command {uuid}, which was not queued for this device")
            signed = device.acks[uuid]

    return await timed(server_pid, devices, concurrency, drain)


def command_uuid(body: bytes) -> str:
    """The CommandUUID of a command plist; a regex first, since a full plist parse costs client CPU."""
    found = _COMMAND_UUID.search(body)
    return found.group(1).decode() if found else str(plistlib.loads(body)["CommandUUID"])


async def queue_commands(
    client: httpx.AsyncClient, api_key: str, devices: list[BenchDevice], per_device: int
) -> None:
    """K API calls, each queueing one command for every device; records the UUIDs per device."""
    by_udid = {d.udid: d for d in devices}
    for k in range(per_device):
        request_type = COMMAND_TYPES[k % len(COMMAND_TYPES)]
        response = await client.post(
            "/api/v1/commands",
            json={"devices": list(by_udid), "command": {"RequestType": request_type}},
            headers={"Authorization": f"Bearer {api_key}"},
        )
        if response.status_code != 201:
            raise BenchError(
                f"queueing {request_type} answered {response.status_code}: {response.text[:200]}"
            )
        for item in response.json()["commands"]:
            by_udid[item["device"]].expected.append((item["command_uuid"], request_type))


# -- verification -----------------------------------------------------------------------------------


def verify(database_url: str, devices: list[BenchDevice]) -> list[str]:
    """Every queued command must be `acknowledged`, handed to its device once, in queue order."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            statuses = dict(conn.execute(select(command_queue.c.command_uuid, command_queue.c.status)).all())
    finally:
        engine.dispose()
    problems = []
    for device in devices:
        expected = [uuid for uuid, _ in device.expected]
        if device.received != expected:
            problems.append(
                f"{device.udid}: handed {len(device.received)} commands, expected {len(expected)} in order"
            )
        problems += [
            f"{uuid} ({device.udid}) is {statuses.get(uuid)!r}, not 'acknowledged'"
            for uuid in expected
            if statuses.get(uuid) != "acknowledged"
        ]
    queued = {uuid for d in devices for uuid, _ in d.expected}
    problems += [
        f"{uuid} is in the database but was never queued by the benchmark" for uuid in set(statuses) - queued
    ]
    return problems


# -- one backend, start to finish -------------------------------------------------------------------


def run_backend(opts: Options, backend: str) -> Result:
    port = opts.port or free_port()
    with (
        tempfile.TemporaryDirectory(prefix=f"russet-bench-{backend}-") as tmp,
        database(backend, Path(tmp), opts.postgres_url) as database_url,
    ):
        env = {
            "RUSSET_DATA_DIR": str(Path(tmp) / "data"),
            "RUSSET_DATABASE_URL": database_url,
            "RUSSET_PUBLIC_URL": f"http://127.0.0.1:{port}",
            "RUSSET_PUSH_TOPIC": TOPIC,
        }
        settings = Settings.from_env(env)
        api_key, devices = prepare(opts, env, settings)
        log = Path(tmp) / "server.log"
        with running_server(env, port, opts.workers, opts.log_level, log) as pid:
            print(f"  server pid {pid} on 127.0.0.1:{port}, {opts.workers} worker(s); log {log}")
            enrollment, exchange = asyncio.run(
                exercise(opts, pid, f"http://127.0.0.1:{port}", api_key, devices)
            )
            problems = enrollment.failures + exchange.failures + verify(settings.database_url, devices)
    return Result(
        backend, len(devices), sum(len(d.expected) for d in devices), enrollment, exchange, problems
    )


def prepare(opts: Options, env: dict[str, str], settings: Settings) -> tuple[str, list[BenchDevice]]:
    """Untimed setup: schema and CA (by opening Russet once), an API key, identities, check-in signatures."""
    started = time.perf_counter()
    russet = Russet.open(settings)
    try:
        api_key = russet.storage.api_keys.create("bench")
    finally:
        russet.close()
    with pool() as workers:
        devices = make_devices(workers, env, opts.devices)
        presign_checkins(workers, devices)
    print(
        f"  setup: {len(devices)} identities and check-in signatures in {time.perf_counter() - started:.1f} s"
    )
    return api_key, devices


def pool() -> ProcessPoolExecutor:
    # spawn, not fork: the parent may hold database connections and event-loop threads.
    return ProcessPoolExecutor(
        max_workers=os.cpu_count() or 2, mp_context=multiprocessing.get_context("spawn")
    )


async def exercise(
    opts: Options, pid: int, base_url: str, api_key: str, devices: list[BenchDevice]
) -> tuple[Phase, Phase]:
    """Enroll (timed), queue and pre-sign (untimed), then the timed command round trips."""
    async with new_client(base_url, opts.concurrency) as client:
        enrollment = await enroll_all(client, pid, devices, opts.concurrency)
        print_phase("enrollment", enrollment, "check-ins")
        if enrollment.failures:
            raise BenchError(f"{len(enrollment.failures)} devices failed to enroll: {enrollment.failures[0]}")
        started = time.perf_counter()
        await queue_commands(client, api_key, devices, opts.commands_per_device)
    queued = time.perf_counter()
    with pool() as workers:
        presign_reports(workers, devices)  # nothing else runs meanwhile, so blocking the loop is fine
    print(
        f"  queued {sum(len(d.expected) for d in devices)} commands via the API in {queued - started:.2f} s; "
        f"signed reports in {time.perf_counter() - queued:.1f} s"
    )
    # A new client: connections left idle while signing may have been closed by the server's
    # keep-alive timeout; opening C fresh ones inside the timed phase costs next to nothing.
    async with new_client(base_url, opts.concurrency) as client:
        exchange = await drain_all(client, pid, devices, opts.concurrency)
    print_phase("round trips", exchange, "connect requests")
    return enrollment, exchange


# -- output -----------------------------------------------------------------------------------------


def print_phase(name: str, phase: Phase, unit: str) -> None:
    print(
        f"  {name}: {phase.requests} {unit} in {phase.elapsed:.2f} s = {phase.rate():.0f}/s; "
        f"latency p50 {phase.percentile_ms(0.5):.1f} ms, p99 {phase.percentile_ms(0.99):.1f} ms, "
        f"max {phase.percentile_ms(1.0):.1f} ms; "
        f"CPU server {phase.server_cpu:.1f} s, client {phase.client_cpu:.1f} s"
    )


def print_result(result: Result, opts: Options) -> None:
    ex, en = result.exchange, result.enrollment
    print(f"\n== {result.backend}: {opts.workers} worker(s), concurrency {opts.concurrency} ==")
    rows = [
        ("devices", f"{result.devices}"),
        ("commands", f"{result.commands}"),
        ("connect requests", f"{ex.requests}"),
        ("elapsed", f"{ex.elapsed:.2f} s"),
        ("round trips/s", f"{ex.rate():.0f}"),
        ("commands completed/s", f"{ex.rate(result.commands):.0f}"),
        (
            "latency p50 / p99 / max",
            f"{ex.percentile_ms(0.5):.1f} / {ex.percentile_ms(0.99):.1f} / {ex.percentile_ms(1.0):.1f} ms",
        ),
        ("CPU server / client", f"{ex.server_cpu:.1f} / {ex.client_cpu:.1f} s"),
        ("enrollment check-ins/s", f"{en.rate():.0f} ({en.requests} in {en.elapsed:.2f} s)"),
        (
            "enrollment latency p50 / p99 / max",
            f"{en.percentile_ms(0.5):.1f} / {en.percentile_ms(0.99):.1f} / {en.percentile_ms(1.0):.1f} ms",
        ),
    ]
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        print(f"  {label:<{width}}  {value}")
    if result.problems:
        report_problems(result.backend, result.problems)
    else:
        print(f"  verified: all {result.commands} commands acknowledged, each handed once and in queue order")


def report_problems(backend: str, problems: Iterable[str]) -> None:
    problems = list(problems)
    print(f"\n!!! MISMATCH on {backend}: {len(problems)} problem(s) !!!", file=sys.stderr)
    for line in problems[:20]:
        print(f"!!!   {line}", file=sys.stderr)
    if len(problems) > 20:
        print(f"!!!   ... and {len(problems) - 20} more", file=sys.stderr)


# -- command line -----------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="sqlite")
    parser.add_argument("--devices", type=int, default=200)
    parser.add_argument("--commands-per-device", type=int, default=10)
    parser.add_argument("--concurrency", type=int, default=50, help="devices talking to the server at once")
    parser.add_argument("--workers", type=int, default=2, help="russet serve --workers")
    parser.add_argument("--port", type=int, default=0, help="server port (default: a free one)")
    parser.add_argument(
        "--postgres-url",
        default=DEFAULT_POSTGRES_URL,
        help="database in which a throwaway schema is created (trust auth)",
    )
    parser.add_argument(
        "--log-level",
        default="info",
        choices=["debug", "info", "warning", "error"],
        help="russet serve --log-level (info is its default)",
    )
    args = parser.parse_args(argv)
    for name in ("devices", "commands_per_device", "concurrency", "workers"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    backends = ("sqlite", "postgres") if args.backend == "both" else (args.backend,)
    return Options(
        backends,
        args.devices,
        args.commands_per_device,
        args.concurrency,
        args.workers,
        args.port,
        args.postgres_url,
        args.log_level,
    )


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(argv)
    failed = False
    for backend in opts.backends:
        print(
            f"-- {backend}: {opts.devices} devices x {opts.commands_per_device} commands, "
            f"concurrency {opts.concurrency}, workers {opts.workers}"
        )
        try:
            result = run_backend(opts, backend)
        except BenchError as exc:
            report_problems(backend, [str(exc)])
            failed = True
            continue
        print_result(result, opts)
        failed = failed or bool(result.problems)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
