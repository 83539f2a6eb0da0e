"""Round-trip benchmark: how many device requests a real `russet serve` answers per second.

Simulated devices enroll over HTTP, then drain queued commands the way a device does
(Idle -> command -> Acknowledged -> next command ... -> empty 200). Every request is a real,
signed Apple MDM request to a `russet serve` subprocess on the loopback interface, so the
figures cover HTTP parsing, Mdm-Signature verification, plist parsing and the database.

Client-side RSA signing would take CPU from the server on a small machine, so every body is
signed before the phase that sends it; the timed phases only send bytes. Setup (identities,
signatures) is not timed.

    python bench/roundtrips.py --backend both --devices 200 --commands-per-device 10

The access log's cost: by default each backend runs twice, with `RUSSET_ACCESS_LOG` off and then
on (text lines to a file, every worker appending), and the two are printed side by side with
the difference; the "on" run also checks that the file holds exactly one line per request.
`--access-log off|on` runs one of them; `--repeat N` alternates N pairs and compares medians.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import importlib.util
import multiprocessing
import os
import plistlib
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import psycopg
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import create_engine, select, text

# httpcore tries `import sniffio` on every request; when sniffio is not installed (newer anyio
# does not need it) each failed import walks sys.path, ~13% of this client's CPU. Marking it
# absent makes the import fail at once, with the same outcome ("asyncio").
if importlib.util.find_spec("sniffio") is None:
    sys.modules["sniffio"] = None  # type: ignore[assignment]

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # the simulator lives next to the package, not inside it
    sys.path.insert(0, str(ROOT))

from russet.config import Settings  # noqa: E402
from russet.enrollment.profile import ProfileRequest, build_profile, signed_profile  # noqa: E402
from russet.mdm.tables import command_queue  # noqa: E402
from russet.pki import sign_detached  # noqa: E402
from russet.runtime import Russet  # noqa: E402
from simulators.device import CHECKIN_TYPE, CONNECT_TYPE, Enrollment, SimDevice  # noqa: E402

TOPIC = "com.apple.mgmt.External.00000000-bench-4000-8000-000000000000"
DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
COMMAND_TYPES = ("DeviceInformation", "ProfileList")  # alternated: k-th command of each device
PROFILES_PER_TASK = 25  # profiles made per pool task (each costs an RSA key generation)
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
    profile: Path | None = None  # py-spy output for the round-trip phase
    access_logs: tuple[str, ...] = ("off", "on")  # RUSSET_ACCESS_LOG off, or on (to a file)
    repeat: int = 1


@dataclass
class Phase:
    """Requests answered in a timed phase, with per-request latencies and CPU used on each side."""

    requests: int = 0
    elapsed: float = 0.0
    latencies: list[float] = field(default_factory=list)
    cpu: dict[str, float] = field(default_factory=dict)  # server, database, client, other (s)
    db_connections: int = 0  # PostgreSQL connections opened during the phase
    failures: list[str] = field(default_factory=list)

    def rate(self, count: int | None = None) -> float:
        return (self.requests if count is None else count) / self.elapsed if self.elapsed else 0.0

    def cpu_ms_per_request(self) -> float:
        """Server-side CPU (Russet and its database) per request: steadier than requests per second."""
        server = self.cpu.get("server", 0.0) + self.cpu.get("database", 0.0)
        return 1000 * server / self.requests if self.requests else float("nan")

    def cpu_summary(self) -> str:
        return ", ".join(f"{k} {v:.1f}" for k, v in self.cpu.items()) + " s"

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
    server_log_tail: str = ""
    access_log: str = "off"
    access_lines: int = 0  # lines the access log received ("on" runs)


# -- simulated devices with pre-signed requests ----------------------------------------------------


@dataclass(frozen=True)
class Signed:
    """A request body and the headers (with Mdm-Signature) that go with it."""

    body: bytes
    headers: dict[str, str]


@dataclass(frozen=True)
class Credentials:
    """A device identity as picklable bytes, so pool processes can sign with it."""

    key_der: bytes  # PKCS#8, unencrypted: it never leaves this benchmark's processes
    cert_der: bytes
    server_url: str
    checkin_url: str
    topic: str

    def enrollment(self) -> Enrollment:
        # The key was checked when its profile was installed; skipping RSA validation saves ~ms each.
        key = serialization.load_der_private_key(self.key_der, None, unsafe_skip_rsa_key_validation=True)
        assert isinstance(key, rsa.RSAPrivateKey)
        cert = x509.load_der_x509_certificate(self.cert_der)
        return Enrollment(cert, key, self.server_url, self.checkin_url, self.topic)


@dataclass
class BenchDevice:
    sim: SimDevice
    credentials: Credentials
    checkins: list[Signed] = field(default_factory=list)  # Authenticate, TokenUpdate
    idle: Signed | None = None
    acks: dict[str, Signed] = field(default_factory=dict)  # CommandUUID -> its Acknowledged report
    expected: list[tuple[str, str]] = field(default_factory=list)  # (CommandUUID, RequestType), queue order
    received: list[str] = field(default_factory=list)

    @property
    def udid(self) -> str:
        return self.sim.udid


def _install_profiles(env: dict[str, str], count: int) -> list[Credentials]:
    """Pool task: issue `count` signed enrollment profiles and install each as a device would.

    Both ends are slow on purpose (RSA key generation, PKCS#12 key derivation), so they run here,
    once per device, rather than in the parent.
    """
    russet = Russet.open(Settings.from_env(env), migrate_db=False)
    try:
        # PKCS#12: the identity comes in the profile, so no SCEP exchange is needed to set up.
        request = ProfileRequest(russet.settings.public_url, TOPIC, identity="pkcs12")
        installed = []
        for _ in range(count):
            profile = build_profile(request, russet.authority, russet.storage.certificates)
            e = Enrollment.from_profile(signed_profile(profile, russet.authority))
            key_der = e.key.private_bytes(
                serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
            cert_der = e.certificate.public_bytes(serialization.Encoding.DER)
            installed.append(Credentials(key_der, cert_der, e.server_url, e.checkin_url, e.topic))
        return installed
    finally:
        russet.close()


def _sign_bodies(credentials: Credentials, bodies: list[bytes]) -> list[str]:
    """Pool task: base64 Mdm-Signature values for `bodies`, signed with the device's identity."""
    enrollment = credentials.enrollment()
    return [
        base64.b64encode(sign_detached(b, enrollment.certificate, enrollment.key)).decode() for b in bodies
    ]


def make_devices(pool: ProcessPoolExecutor, env: dict[str, str], count: int) -> list[BenchDevice]:
    """One device per enrollment profile, the profiles made and installed in the pool."""
    chunks = [min(PROFILES_PER_TASK, count - i) for i in range(0, count, PROFILES_PER_TASK)]
    installed = [c for batch in pool.map(_install_profiles, [env] * len(chunks), chunks) for c in batch]
    return [BenchDevice(SimDevice(c.enrollment()), c) for c in installed]


def sign_all(
    pool: ProcessPoolExecutor,
    devices: list[BenchDevice],
    bodies: Callable[[BenchDevice], list[bytes]],
    content_type: str,
) -> list[list[Signed]]:
    """Sign every device's bodies in the pool; returns them with their headers, per device."""
    per_device = [bodies(d) for d in devices]
    signatures = pool.map(_sign_bodies, [d.credentials for d in devices], per_device, chunksize=8)
    return [
        [Signed(b, {"Content-Type": content_type, "Mdm-Signature": s}) for b, s in zip(bs, ss, strict=True)]
        for bs, ss in zip(per_device, signatures, strict=True)
    ]


def presign_checkins(pool: ProcessPoolExecutor, devices: list[BenchDevice]) -> None:
    """Authenticate and TokenUpdate, signed just before the server starts: signatures carry a
    signing time, and Russet refuses ones older than its replay window (10 minutes)."""

    def bodies(d: BenchDevice) -> list[bytes]:
        return [plistlib.dumps(d.sim.authenticate_message()), plistlib.dumps(d.sim.token_update_message())]

    for device, signed in zip(devices, sign_all(pool, devices, bodies, CHECKIN_TYPE), strict=True):
        device.checkins = signed


def presign_reports(pool: ProcessPoolExecutor, devices: list[BenchDevice]) -> None:
    """The Idle report and one Acknowledged report per queued command (UUIDs are known by now)."""

    def bodies(d: BenchDevice) -> list[bytes]:
        reports = [plistlib.dumps(d.sim.report_message("Idle"))]
        reports += [plistlib.dumps(acknowledgement(d.sim, u, kind)) for u, kind in d.expected]
        return reports

    for device, signed in zip(devices, sign_all(pool, devices, bodies, CONNECT_TYPE), strict=True):
        device.idle = signed[0]
        device.acks = {u: s for (u, _), s in zip(device.expected, signed[1:], strict=True)}


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
        # Not supervised: a supervised device's first DeviceInformation makes Russet queue an
        # ActivationLockBypassCode of its own (escrow), which this benchmark's pre-signed answers
        # have no reply for; it measures the round trips it queues itself.
        "IsSupervised": False,
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
            "PayloadUUID": str(uuid.uuid5(uuid.NAMESPACE_OID, sim.udid + identifier)).upper(),
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


@dataclass(frozen=True)
class Database:
    url: str
    admin_url: str | None = None  # PostgreSQL: where pg_stat_activity is read from
    application_name: str | None = None  # PostgreSQL: marks the server's connections


@contextlib.contextmanager
def database(backend: str, data_dir: Path, postgres_url: str) -> Iterator[Database]:
    """A fresh database: a SQLite file in the data dir, or a PostgreSQL schema dropped afterwards."""
    if backend == "sqlite":
        yield Database(f"sqlite:///{data_dir / 'russet.db'}")
        return
    schema = "bench_" + secrets.token_hex(5)
    admin = create_engine(postgres_url.replace("postgresql://", "postgresql+psycopg://", 1))
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        sep = "&" if "?" in postgres_url else "?"
        url = f"{postgres_url}{sep}options={quote(f'-csearch_path={schema}')}&application_name={schema}"
        yield Database(url, postgres_url, schema)
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


@contextlib.contextmanager
def profiling(pid: int, output: Path | None) -> Iterator[None]:
    """py-spy on the server (and its workers) for the duration of the block, if asked for.

    Only the thread holding the GIL is sampled (--gil): the server's threadpool is mostly threads
    waiting on a queue or the database, which would otherwise bury where CPU goes. Sampling is
    --nonblocking, so the server is not paused while it may hold SQLite's write lock. The format
    follows the file name: .svg flame graph, .json speedscope, else collapsed stacks. py-spy
    still takes CPU of its own, so figures from a profiled run are not comparable.
    """
    if output is None:
        yield
        return
    binary = os.environ.get("PY_SPY") or shutil.which("py-spy")
    if binary is None:
        raise BenchError("--profile needs py-spy (pip install py-spy, or set PY_SPY to its path)")
    fmt = {".svg": "flamegraph", ".json": "speedscope"}.get(output.suffix, "raw")
    command = [binary, "record", "--pid", str(pid), "--subprocesses", "--gil", "--nonblocking"]
    command += ["--rate", os.environ.get("PY_SPY_RATE", "100"), "--format", fmt, "--output", str(output)]
    spy = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(1.0)  # let it attach to every worker before the load starts
    try:
        yield
    finally:
        spy.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
        _, err = spy.communicate(timeout=60)
        if spy.returncode not in (0, -signal.SIGINT):
            print(
                f"  py-spy failed ({spy.returncode}): {err.decode(errors='replace').strip()}", file=sys.stderr
            )
        else:
            print(f"  profile of the round-trip phase written to {output}")


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


def machine_busy_cpu() -> float:
    """CPU seconds all cores of the machine spent busy (anything but idle and iowait)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Snapshot:
    server: float  # CPU seconds so far, per party
    client: float
    machine: float
    backends: dict[int, float]  # PostgreSQL backends serving Russet now: pid -> CPU seconds
    sessions: int  # PostgreSQL: connections ever opened to the database (pg_stat_database)


@dataclass(frozen=True)
class CpuMeter:
    """Who spent the CPU in a phase: the server, its PostgreSQL backends, this client, or others.

    On a small machine they all share the cores, so requests per second alone cannot tell a
    slower server from a busier neighbour; "other" shows how much the run was disturbed. A
    PostgreSQL backend that disconnected during the phase is counted in "other", so the count
    of connections opened is reported alongside.
    """

    server_pid: int
    database: Database

    def snapshot(self) -> Snapshot:
        backends, sessions = self._postgres() if self.database.admin_url else ({}, 0)
        return Snapshot(
            process_tree_cpu(self.server_pid), time.process_time(), machine_busy_cpu(), backends, sessions
        )

    def _postgres(self) -> tuple[dict[int, float], int]:
        assert self.database.admin_url is not None
        with psycopg.connect(self.database.admin_url, autocommit=True) as conn:
            pids = conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE application_name = %s",
                (self.database.application_name,),
            ).fetchall()
            row = conn.execute(
                "SELECT sessions FROM pg_stat_database WHERE datname = current_database()"
            ).fetchone()
        return {pid: process_tree_cpu(pid) for (pid,) in pids}, int(row[0]) if row else 0

    @staticmethod
    def spent(before: Snapshot, after: Snapshot) -> dict[str, float]:
        # A backend that connected during the phase started from zero.
        db = sum(cpu - before.backends.get(pid, 0.0) for pid, cpu in after.backends.items())
        server, client = after.server - before.server, after.client - before.client
        other = max(0.0, after.machine - before.machine - server - client - db)
        return {"server": server, "database": db, "client": client, "other": other}

    @staticmethod
    def connections_opened(before: Snapshot, after: Snapshot) -> int:
        """PostgreSQL connections opened in between, less the meter's own (approximate: the
        statistics are flushed by each backend about once a second)."""
        return max(0, after.sessions - before.sessions - 1)


# -- the HTTP phases --------------------------------------------------------------------------------


# A job: what one simulated device does, over the connection of the lane that runs it.
Job = Callable[[httpx.AsyncClient, BenchDevice, Phase], Awaitable[None]]


def new_client(base_url: str, connections: int = 1) -> httpx.AsyncClient:
    """HTTP/1.1 keep-alive, never through a proxy (loopback only).

    Each lane gets a client with one connection, as a device has its own: httpcore scans its
    whole pool on every request, so one client shared by C lanes costs O(C) client CPU per request.
    """
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    return httpx.AsyncClient(base_url=base_url, limits=limits, timeout=120.0, trust_env=False)


async def for_each_device(
    clients: list[httpx.AsyncClient], devices: list[BenchDevice], job: Job, phase: Phase
) -> None:
    """Run `job` for every device, one lane per client; a failing device is recorded, not fatal."""
    pending = iter(devices)

    async def lane(client: httpx.AsyncClient) -> None:
        for device in pending:  # shared iterator: each device is taken by exactly one lane
            try:
                await job(client, device, phase)
            except Exception as exc:  # noqa: BLE001 - report every failure, keep measuring the rest
                phase.failures.append(f"{device.udid}: {type(exc).__name__}: {exc}")

    await asyncio.gather(*(lane(c) for c in clients))


async def timed(
    meter: CpuMeter, base_url: str, devices: list[BenchDevice], concurrency: int, job: Job
) -> Phase:
    """Time one phase: wall clock, latencies, and who spent the CPU.

    The clients are made before the clock starts: each builds an SSL context (tens of ms of CPU)
    even for plain HTTP. Their connections are opened inside the phase, which is cheap.
    """
    phase = Phase()
    async with contextlib.AsyncExitStack() as stack:
        clients = [await stack.enter_async_context(new_client(base_url)) for _ in range(concurrency)]
        before = meter.snapshot()
        started = time.perf_counter()
        await for_each_device(clients, devices, job, phase)
        phase.elapsed = time.perf_counter() - started
        after = meter.snapshot()
        phase.cpu = meter.spent(before, after)
        phase.db_connections = meter.connections_opened(before, after)
    return phase


async def put(client: httpx.AsyncClient, path: str, signed: Signed, phase: Phase) -> bytes:
    started = time.perf_counter()
    response = await client.put(path, content=signed.body, headers=signed.headers)
    phase.latencies.append(time.perf_counter() - started)
    phase.requests += 1
    if response.status_code != 200:
        raise BenchError(f"PUT {path} answered {response.status_code}: {response.text.strip()[:200]}")
    return response.content


async def enroll(client: httpx.AsyncClient, device: BenchDevice, phase: Phase) -> None:
    """Authenticate then TokenUpdate, as a device installing the profile does."""
    for signed in device.checkins:
        await put(client, "/mdm/checkin", signed, phase)


async def drain(client: httpx.AsyncClient, device: BenchDevice, phase: Phase) -> None:
    """Idle, then acknowledge every command handed out until the empty answer."""
    assert device.idle is not None
    signed = device.idle
    while body := await put(client, "/mdm/connect", signed, phase):
        handed = command_uuid(body)
        device.received.append(handed)
        if handed not in device.acks:
            raise BenchError(f"handed command {handed}, which was not queued for this device")
        signed = device.acks[handed]


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
        expected = [u for u, _ in device.expected]
        if device.received != expected:
            problems.append(
                f"{device.udid}: handed {len(device.received)} commands, expected {len(expected)} in order"
            )
        problems += [
            f"{u} ({device.udid}) is {statuses.get(u)!r}, not 'acknowledged'"
            for u in expected
            if statuses.get(u) != "acknowledged"
        ]
    queued = {u for d in devices for u, _ in d.expected}
    problems += [
        f"{u} is in the database but was never queued by the benchmark" for u in set(statuses) - queued
    ]
    return problems


# -- one backend, start to finish -------------------------------------------------------------------


def run_backend(opts: Options, backend: str, access_log: str = "off") -> Result:
    port = opts.port or free_port()
    with (
        tempfile.TemporaryDirectory(prefix=f"russet-bench-{backend}-") as tmp,
        database(backend, Path(tmp), opts.postgres_url) as db,
    ):
        env = {
            "RUSSET_DATA_DIR": str(Path(tmp) / "data"),
            "RUSSET_DATABASE_URL": db.url,
            "RUSSET_PUBLIC_URL": f"http://127.0.0.1:{port}",
            "RUSSET_PUSH_TOPIC": TOPIC,
            "RUSSET_ACCESS_LOG": str(Path(tmp) / "access.log") if access_log == "on" else "off",
        }
        settings = Settings.from_env(env)
        api_key, devices = prepare(opts, env, settings)
        log = Path(tmp) / "server.log"
        with running_server(env, port, opts.workers, opts.log_level, log) as pid:
            print(f"  server pid {pid} on 127.0.0.1:{port}, {opts.workers} worker(s); log {log}")
            enrollment, exchange = asyncio.run(
                exercise(opts, backend, CpuMeter(pid, db), f"http://127.0.0.1:{port}", api_key, devices)
            )
            problems = enrollment.failures + exchange.failures + verify(settings.database_url, devices)
        lines = 0
        if access_log == "on":
            lines, mismatch = check_access_log(Path(tmp) / "access.log", enrollment, exchange)
            problems += mismatch
        # The log goes away with the temporary directory: keep its end as evidence of a failure.
        log_tail = tail(log, 40) if problems else ""
    commands = sum(len(d.expected) for d in devices)
    return Result(
        backend, len(devices), commands, enrollment, exchange, problems, log_tail, access_log, lines
    )


def check_access_log(path: Path, enrollment: Phase, exchange: Phase) -> tuple[int, list[str]]:
    """One line per device request, naming its device: check-ins and connects counted apart."""
    counts = {"/mdm/checkin": 0, "/mdm/connect": 0}
    unnamed = 0
    with path.open() as log:
        lines = 0
        for line in log:
            lines += 1
            fields = line.split()
            if len(fields) >= 7 and fields[2] in counts:
                counts[fields[2]] += 1
                unnamed += not fields[6].startswith("device=")
    problems = [
        f"access log: {found} lines for PUT {route}, {sent} requests sent"
        for route, found, sent in (
            ("/mdm/checkin", counts["/mdm/checkin"], enrollment.requests),
            ("/mdm/connect", counts["/mdm/connect"], exchange.requests),
        )
        if found != sent
    ]
    if unnamed:
        problems.append(f"access log: {unnamed} device lines without their device")
    return lines, problems


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
    opts: Options, backend: str, meter: CpuMeter, base_url: str, api_key: str, devices: list[BenchDevice]
) -> tuple[Phase, Phase]:
    """Enroll (timed), queue and pre-sign (untimed), then the timed command round trips."""
    enrollment = await timed(meter, base_url, devices, opts.concurrency, enroll)
    print_phase("enrollment", enrollment, "check-ins")
    if enrollment.failures:
        raise BenchError(f"{len(enrollment.failures)} devices failed to enroll: {enrollment.failures[0]}")
    started = time.perf_counter()
    async with new_client(base_url) as client:
        await queue_commands(client, api_key, devices, opts.commands_per_device)
    queued = time.perf_counter()
    with pool() as workers:
        presign_reports(workers, devices)  # nothing else runs meanwhile, so blocking the loop is fine
    print(
        f"  queued {sum(len(d.expected) for d in devices)} commands via the API in {queued - started:.2f} s; "
        f"signed reports in {time.perf_counter() - queued:.1f} s"
    )
    with profiling(meter.server_pid, profile_path(opts, backend)):
        exchange = await timed(meter, base_url, devices, opts.concurrency, drain)
    print_phase("round trips", exchange, "connect requests")
    return enrollment, exchange


def profile_path(opts: Options, backend: str) -> Path | None:
    """The --profile file, named per backend when several run (one would overwrite the other)."""
    if opts.profile is None or len(opts.backends) == 1:
        return opts.profile
    return opts.profile.with_name(f"{opts.profile.stem}-{backend}{opts.profile.suffix}")


# -- output -----------------------------------------------------------------------------------------


def print_phase(name: str, phase: Phase, unit: str) -> None:
    print(
        f"  {name}: {phase.requests} {unit} in {phase.elapsed:.2f} s = {phase.rate():.0f}/s; "
        f"latency p50 {phase.percentile_ms(0.5):.1f} ms, p99 {phase.percentile_ms(0.99):.1f} ms, "
        f"max {phase.percentile_ms(1.0):.1f} ms; "
        f"CPU {phase.cpu_summary()}"
    )


def print_result(result: Result, opts: Options) -> None:
    ex, en = result.exchange, result.enrollment
    print(
        f"\n== {result.backend}: {opts.workers} worker(s), concurrency {opts.concurrency}, "
        f"access log {result.access_log} =="
    )
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
        ("CPU used", ex.cpu_summary()),
        *([("database connections opened", f"~{ex.db_connections}")] if result.backend == "postgres" else []),
        ("server CPU per round trip", f"{ex.cpu_ms_per_request():.2f} ms (Russet + database)"),
        ("enrollment check-ins/s", f"{en.rate():.0f} ({en.requests} in {en.elapsed:.2f} s)"),
        ("server CPU per check-in", f"{en.cpu_ms_per_request():.2f} ms (Russet + database)"),
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
        print(f"!!! server log, last lines:\n{result.server_log_tail}", file=sys.stderr)
    else:
        print(f"  verified: all {result.commands} commands acknowledged, each handed once and in queue order")
        if result.access_log == "on":
            print(f"  verified: the access log has one line per device request ({result.access_lines} lines)")


def print_access_log_cost(backend: str, results: list[Result]) -> None:
    """Off and on side by side (medians over the repeats), with the difference in per cent."""
    off = [r for r in results if r.access_log == "off"]
    on = [r for r in results if r.access_log == "on"]
    if not off or not on:
        return

    def median(values: list[float]) -> float:
        return statistics.median(values)

    rows = [
        (
            "round trips/s",
            median([r.exchange.rate() for r in off]),
            median([r.exchange.rate() for r in on]),
            1,
        ),
        (
            "server CPU per round trip (ms)",
            median([r.exchange.cpu_ms_per_request() for r in off]),
            median([r.exchange.cpu_ms_per_request() for r in on]),
            -1,
        ),
        (
            "enrollment check-ins/s",
            median([r.enrollment.rate() for r in off]),
            median([r.enrollment.rate() for r in on]),
            1,
        ),
    ]
    print(f"\n== {backend}: access log cost ({len(off)} run(s) each, medians) ==")
    for label, a, b, better in rows:
        cost = (a - b) / a * 100 if better > 0 else (b - a) / a * 100
        print(f"  {label:<32} off {a:9.2f}   on {b:9.2f}   cost {cost:+.1f}%")


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
    parser.add_argument(
        "--access-log",
        choices=["both", "off", "on"],
        default="both",
        help="RUSSET_ACCESS_LOG off, on (a file), or both in turn and compared (default)",
    )
    parser.add_argument("--repeat", type=int, default=1, help="off/on pairs run (medians compared)")
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="FILE",
        help="record the server with py-spy during the round-trip phase (.svg, .json or collapsed .txt)",
    )
    args = parser.parse_args(argv)
    for name in ("devices", "commands_per_device", "concurrency", "workers", "repeat"):
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
        args.profile,
        ("off", "on") if args.access_log == "both" else (args.access_log,),
        args.repeat,
    )


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(argv)
    failed = False
    for backend in opts.backends:
        results: list[Result] = []
        for run in range(opts.repeat):
            # Pairs alternate which goes first, so a drift in the machine's load favours neither.
            for access_log in opts.access_logs if run % 2 == 0 else opts.access_logs[::-1]:
                print(
                    f"-- {backend}: {opts.devices} devices x {opts.commands_per_device} commands, "
                    f"concurrency {opts.concurrency}, workers {opts.workers}, access log {access_log}"
                )
                try:
                    result = run_backend(opts, backend, access_log)
                except BenchError as exc:
                    report_problems(backend, [str(exc)])
                    failed = True
                    continue
                print_result(result, opts)
                results.append(result)
                failed = failed or bool(result.problems)
        print_access_log_cost(backend, results)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
