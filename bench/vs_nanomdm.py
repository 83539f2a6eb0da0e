"""Russet against NanoMDM: the same mdmb devices and workloads on both servers, one after the other.

For each store (SQLite for Russet and NanoMDM's file store; PostgreSQL for both) the benchmark
starts each server on 127.0.0.1, enrolls the same number of mdmb devices into it (SCEP, then
Authenticate and TokenUpdate), makes them check in idle, and runs command round trips (each
command queued through the server's own API, delivered, acknowledged). It prints requests/s,
server CPU seconds per 1,000 requests, p50/p99 latency and peak RSS for each, and the ratio
Russet/NanoMDM.

The peers are not part of this repository: build jessepeterson/mdmb, micromdm/nanomdm and
micromdm/scep yourself and pass their binaries (see bench/README.md, including the one-line
change mdmb needs so that its SCEP requests use AES rather than DES). Without them the benchmark
measures Russet alone and says so: with --mdmb alone it drives Russet with mdmb; with nothing,
with the project's simulated devices (bench/roundtrips.py), whose figures are not comparable
with mdmb-driven ones.

    python bench/vs_nanomdm.py --mdmb ~/peers/mdmb --nanomdm ~/peers/nanomdm \\
        --scepserver ~/peers/scepserver --nanomdm-source ~/src/nanomdm --backend both
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import plistlib
import re
import secrets
import selectors
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg

BENCH = Path(__file__).resolve().parent
if str(BENCH) not in sys.path:  # run as a script, bench/ is already there; imported, it may not be
    sys.path.insert(0, str(BENCH))

import roundtrips as rt  # noqa: E402  (sets up the project root on sys.path too)
from _measure import load_average, machine_busy_cpu, peak_rss_kib, reset_peak_rss  # noqa: E402

from russet.config import Settings  # noqa: E402
from russet.pki import verify_attached  # noqa: E402
from russet.runtime import Russet  # noqa: E402

TOPIC = rt.TOPIC
QUERIES = ["DeviceName", "SerialNumber", "UDID"]  # the DeviceInformation queries mdmb answers
# mdmb prints this line once for every DeviceInformation command it handles (with the queries it
# could not answer, none here): counting them tells how many commands reached the devices.
_HANDLED = b"unknown DeviceInfo queries"
_ERRORS = re.compile(rb"^Errors\s+(\d+)", re.MULTILINE)
SCEP_REQUESTS = 3  # GetCACaps, GetCACert, PKIOperation (mdmb fetches the CA every time)
WORKLOADS = ("enrollment", "idle check-ins", "command round trips")


class BenchError(RuntimeError):
    """The benchmark could not run as asked; the message says what to fix."""


# -- options ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    backends: tuple[str, ...]
    devices: int
    idle_rounds: int
    commands_per_device: int
    concurrency: int
    workers: int
    postgres_url: str
    mdmb: Path | None
    nanomdm: Path | None
    scepserver: Path | None
    nanomdm_source: Path | None
    nanomdm_file_backend: str
    profile: Path | None = None  # py-spy output per store and workload, Russet's server only


def parse_args(argv: list[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="mdmb must be built with pkcs7.ContentEncryptionAlgorithm set to AES (see bench/README.md): "
        "its default, DES-CBC, is refused by Russet's SCEP responder.",
    )
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--devices", type=int, default=200)
    parser.add_argument("--idle-rounds", type=int, default=10, help="idle check-ins per device")
    parser.add_argument("--commands-per-device", type=int, default=1, help="round trips per device")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=8,
        help="devices talking at once (mdmb processes, one connection each)",
    )
    parser.add_argument("--workers", type=int, default=2, help="russet serve --workers")
    parser.add_argument("--postgres-url", default=rt.DEFAULT_POSTGRES_URL, help="throwaway schemas go here")
    parser.add_argument("--mdmb", type=Path, help="mdmb binary (jessepeterson/mdmb, built with AES for SCEP)")
    parser.add_argument("--nanomdm", type=Path, help="nanomdm binary (micromdm/nanomdm)")
    parser.add_argument("--scepserver", type=Path, help="scepserver binary (micromdm/scep), NanoMDM's CA")
    parser.add_argument(
        "--nanomdm-source", type=Path, help="NanoMDM checkout: storage/pgsql/schema.sql is loaded from it"
    )
    parser.add_argument(
        "--nanomdm-file-backend",
        choices=["file", "filekv"],
        default="file",
        help="NanoMDM's store next to Russet's SQLite (file: deprecated but shipped; filekv: its successor)",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        help="py-spy record of Russet's server per store and workload: FILE-<store>-<workload>.<ext> "
        "(.svg, .json speedscope, else collapsed stacks); profiled figures are not comparable",
    )
    args = parser.parse_args(argv)
    for name in ("devices", "idle_rounds", "commands_per_device", "concurrency", "workers"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    for name in ("mdmb", "nanomdm", "scepserver"):
        path = getattr(args, name)
        if path is not None and not (path.is_file() and os.access(path, os.X_OK)):
            parser.error(f"--{name} {path}: not an executable file")
    if (args.nanomdm is None) != (args.scepserver is None):
        parser.error("--nanomdm and --scepserver go together (scepserver is NanoMDM's CA)")
    if args.nanomdm is not None and args.mdmb is None:
        parser.error("--nanomdm needs --mdmb: NanoMDM is driven by mdmb devices only")
    backends = ("sqlite", "postgres") if args.backend == "both" else (args.backend,)
    if args.nanomdm is not None and "postgres" in backends:
        schema = (args.nanomdm_source or Path("-")) / "storage" / "pgsql" / "schema.sql"
        if not schema.is_file():
            parser.error("NanoMDM on PostgreSQL needs --nanomdm-source DIR with storage/pgsql/schema.sql")
    return Options(
        backends,
        args.devices,
        args.idle_rounds,
        args.commands_per_device,
        args.concurrency,
        args.workers,
        args.postgres_url,
        args.mdmb,
        args.nanomdm,
        args.scepserver,
        args.nanomdm_source,
        args.nanomdm_file_backend,
        args.profile,
    )


# -- what one workload cost -----------------------------------------------------------------------------


@dataclass
class Measured:
    """One workload on one server: requests answered, wall time, latencies, and server resources."""

    requests: int = 0
    elapsed: float = 0.0
    latencies: list[float] = field(default_factory=list)
    latency_of: str = "request"
    server_cpu: float = 0.0  # the server's processes
    database_cpu: float = 0.0  # PostgreSQL backends serving it
    other_cpu: float = 0.0  # the rest of the machine, client included
    peak_rss_kib: int = 0
    backends_opened: int = 0  # PostgreSQL connections the server opened during the phase
    errors: list[str] = field(default_factory=list)

    def rate(self) -> float:
        return self.requests / self.elapsed if self.elapsed else float("nan")

    def cpu_per_1000(self) -> float:
        """Server CPU seconds (server + its database) per 1,000 requests."""
        return 1000 * (self.server_cpu + self.database_cpu) / self.requests if self.requests else float("nan")

    def percentile_ms(self, q: float) -> float:
        ordered = sorted(self.latencies)
        if not ordered:
            return float("nan")
        return 1000 * ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


class Meter:
    """CPU of the server processes (with descendants) and of the PostgreSQL backends whose
    application_name marks them as this server's, read from /proc, plus peak RSS (VmHWM).

    A backend that disconnects takes its CPU time with it, and a pool that closes idle connections
    (Go's database/sql keeps two by default, and NanoMDM does not change that) opens and closes
    backends all through a phase. So the backends are sampled every 20 ms while a phase runs, and a
    backend that is gone counts with its last sample: at most 20 ms of its life is missed. The
    number of backends seen is kept too: connection churn is itself a cost.
    """

    INTERVAL = 0.02

    def __init__(self, pids: Sequence[int], admin_url: str | None, application_name: str | None) -> None:
        self.pids, self.admin_url, self.application_name = list(pids), admin_url, application_name

    def _backends(self, conn: psycopg.Connection[tuple[int]]) -> dict[int, float]:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = %s", (self.application_name,)
        ).fetchall()
        return {pid: rt.process_tree_cpu(pid) for (pid,) in rows}

    def _server(self) -> float:
        return sum(rt.process_tree_cpu(p) for p in self.pids)

    @contextlib.contextmanager
    def measuring(self, into: Measured) -> Iterator[None]:
        reset_peak_rss(self.pids)
        with contextlib.ExitStack() as stack:
            conn = None
            if self.admin_url is not None:
                conn = stack.enter_context(psycopg.connect(self.admin_url, autocommit=True))
            baseline = self._backends(conn) if conn is not None else {}
            latest = dict(baseline)
            stop = threading.Event()

            def sample() -> None:
                assert conn is not None
                while not stop.wait(self.INTERVAL):
                    latest.update(self._backends(conn))

            sampler = threading.Thread(target=sample, daemon=True) if conn is not None else None
            server, machine = self._server(), machine_busy_cpu()
            if sampler is not None:
                sampler.start()
            try:
                yield
            finally:
                stop.set()
                if sampler is not None:
                    sampler.join()
                server2, machine2 = self._server(), machine_busy_cpu()
                if conn is not None:
                    latest.update(self._backends(conn))
        # A backend that connected during the phase started from zero.
        database = sum(cpu - baseline.get(pid, 0.0) for pid, cpu in latest.items())
        into.server_cpu += server2 - server
        into.database_cpu += database
        into.other_cpu += max(0.0, machine2 - machine - (server2 - server) - database)
        into.backends_opened += len(set(latest) - set(baseline))
        into.peak_rss_kib = max(into.peak_rss_kib, peak_rss_kib(self.pids))


# -- mdmb devices ---------------------------------------------------------------------------------------


class Fleet:
    """mdmb devices spread over `lanes` mdmb databases; each lane is one mdmb process at a time
    (a bolt database admits one), i.e. one device talking to the server over one connection."""

    def __init__(self, binary: Path, workdir: Path, devices: int, lanes: int) -> None:
        self.binary, self.workdir = binary, workdir
        workdir.mkdir(parents=True, exist_ok=True)
        sizes = [devices // lanes + (1 if i < devices % lanes else 0) for i in range(min(lanes, devices))]
        self.lanes: list[tuple[Path, list[str]]] = []
        for i, size in enumerate(sizes):
            db = workdir / f"lane{i}.db"
            out = self._run(db, ["devices-create", "-n", str(size)])
            udids = [line for line in out.splitlines() if re.fullmatch(r"[0-9A-F-]{36}", line)]
            if len(udids) != size:
                raise BenchError(f"mdmb devices-create made {len(udids)} devices, not {size}:\n{out[-500:]}")
            self.lanes.append((db, udids))

    def clone(self, workdir: Path) -> Fleet:
        """The same devices (UDIDs, serials, keys) in fresh copies of the databases, not yet enrolled."""
        workdir.mkdir(parents=True, exist_ok=True)
        twin = Fleet.__new__(Fleet)
        twin.binary, twin.workdir, twin.lanes = self.binary, workdir, []
        for db, udids in self.lanes:
            shutil.copyfile(db, workdir / db.name)
            twin.lanes.append((workdir / db.name, udids))
        return twin

    @property
    def udids(self) -> list[str]:
        return [u for _, udids in self.lanes for u in udids]

    def _run(self, db: Path, args: list[str]) -> str:
        done = subprocess.run(
            [str(self.binary), "-db", str(db), *args], capture_output=True, timeout=300, check=False
        )
        if done.returncode != 0:
            raise BenchError(
                f"mdmb {' '.join(args[:1])} exited {done.returncode}: {done.stderr.decode()[-500:]}"
            )
        return done.stdout.decode()

    def enroll(self, profiles: dict[str, Path], into: Measured) -> None:
        """Every device installs its own profile (SCEP, Authenticate, TokenUpdate), lanes in parallel.
        Latency is a whole installation as mdmb does it: process start, two RSA key generations
        (the device key and SCEP's self-signed one), five requests."""
        lock = threading.Lock()

        def lane(db: Path, udids: list[str]) -> None:
            for udid in udids:
                started = time.perf_counter()
                done = subprocess.run(
                    [str(self.binary), "-db", str(db), "-uuids", udid, "devices-profiles-install"]
                    + ["-f", str(profiles[udid])],
                    capture_output=True,
                    timeout=120,
                    check=False,
                )
                took = time.perf_counter() - started
                # mdmb logs a failed installation on stderr and still exits 0.
                problem = done.stderr.decode(errors="replace").strip()
                with lock:
                    if done.returncode or problem:
                        into.errors.append(f"{udid}: {problem or done.returncode}")
                    else:
                        into.latencies.append(took)
                        into.requests += SCEP_REQUESTS + 2

        started = time.perf_counter()
        with ThreadPoolExecutor(len(self.lanes)) as pool:
            list(pool.map(lambda lane_: lane(*lane_), self.lanes))
        into.elapsed += time.perf_counter() - started
        into.latency_of = "enrollment (mdmb process, SCEP + check-ins)"

    def connect(self, iterations: int, requests_per_connect: int, into: Measured) -> int:
        """`devices-connect -w 1 -i N` in every lane at once. mdmb writes a '.' unbuffered after each
        completed connect; with one worker per process the time between two dots is one connect
        (signing included, as a device sees it), timed here from the line that starts the loop.
        Returns how many DeviceInformation commands the devices handled."""
        lanes = [
            _Lane(
                subprocess.Popen(
                    [str(self.binary), "-db", str(db), "-uuids", "all", "devices-connect", "-w", "1"]
                    + ["-i", str(iterations)],
                    stdout=subprocess.PIPE,
                    stderr=(self.workdir / f"{db.stem}.stderr").open("ab"),
                ),
                self.workdir / f"{db.stem}.stderr",
            )
            for db, _ in self.lanes
        ]
        selector = selectors.DefaultSelector()
        for lane in lanes:
            assert lane.proc.stdout is not None
            os.set_blocking(lane.proc.stdout.fileno(), False)
            selector.register(lane.proc.stdout, selectors.EVENT_READ, lane)
        open_pipes = len(lanes)
        while open_pipes:
            events = selector.select(timeout=300)
            if not events:
                raise BenchError("mdmb devices-connect printed nothing for 300 s")
            for key, _ in events:
                now = time.perf_counter()
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    selector.unregister(key.fileobj)
                    open_pipes -= 1
                    continue
                key.data.feed(chunk, now)
        handled, connects = 0, 0
        for lane in lanes:
            lane.proc.wait(timeout=60)
            handled += lane.output.count(_HANDLED)
            connects += len(lane.latencies)
            into.latencies += lane.latencies
            counted = _ERRORS.search(lane.output)
            lane_errors = int(counted.group(1)) if counted else -1
            if lane.proc.returncode != 0 or lane_errors != 0:
                err = lane.stderr.read_text(errors="replace").strip()[-300:]
                into.errors.append(f"mdmb exit {lane.proc.returncode}, {lane_errors} errors: {err}")
        starts = [lane.started for lane in lanes if lane.started is not None]
        ends = [lane.last for lane in lanes if lane.last is not None]
        into.requests += connects * requests_per_connect
        into.elapsed += max(ends) - min(starts) if starts and ends else 0.0
        into.latency_of = (
            "connect" if requests_per_connect == 1 else f"connect ({requests_per_connect} requests)"
        )
        return handled


@dataclass
class _Lane:
    """One `mdmb devices-connect` process and what its output said so far."""

    proc: subprocess.Popen[bytes]
    stderr: Path
    output: bytes = b""
    started: float | None = None  # when "starting N workers ..." was read
    last: float | None = None  # when the last dot was read
    done: bool = False  # the dots ended ("\n\n", then the summary, whose numbers have dots too)
    latencies: list[float] = field(default_factory=list)

    def feed(self, chunk: bytes, now: float) -> None:
        seen = len(self.output)
        self.output += chunk
        if self.done:
            return
        if self.started is None:
            marker = self.output.find(b"starting ")
            end = self.output.find(b"\n", marker) if marker >= 0 else -1
            if end < 0:
                return
            self.started = self.last = now
            seen = end + 1
        fresh = self.output[seen:]
        if b"\n\n" in self.output[max(0, seen - 1) :]:
            cut = self.output.find(b"\n\n", max(0, seen - 1))
            fresh = self.output[seen:cut] if cut >= seen else b""
            self.done = True
        dots = fresh.count(b".")
        if dots:
            # Dots read together completed together as far as this reader can tell.
            assert self.last is not None
            self.latencies.append(now - self.last)
            self.latencies.extend([0.0] * (dots - 1))
            self.last = now


# -- the servers ----------------------------------------------------------------------------------------


class Server:
    """What a workload needs from a server under test."""

    name = ""
    pids: list[int]
    meter: Meter

    def profiles(self, udids: list[str], directory: Path) -> dict[str, Path]:
        raise NotImplementedError

    async def enqueue(self, client: httpx.AsyncClient, udid: str) -> None:
        raise NotImplementedError

    @property
    def api_url(self) -> str:
        raise NotImplementedError

    def profiling(self, workload: str) -> contextlib.AbstractContextManager[None]:
        """py-spy on the server during `workload`, when asked for (--profile): Russet only."""
        return contextlib.nullcontext()


def device_information() -> dict[str, object]:
    return {"RequestType": "DeviceInformation", "Queries": QUERIES}


class RussetServer(Server):
    name = "Russet"

    def __init__(
        self,
        base_url: str,
        api_key: str,
        pid: int,
        meter: Meter,
        env: dict[str, str],
        profile: Path | None = None,
    ) -> None:
        self.base_url, self.api_key, self.pids, self.meter = base_url, api_key, [pid], meter
        self.env = env  # the server's settings (RUSSET_*), for setup work done outside it
        self.profile = profile  # --profile with the store's name added: a workload's name goes next

    def profiling(self, workload: str) -> contextlib.AbstractContextManager[None]:
        if self.profile is None:
            return contextlib.nullcontext()
        slug = workload.replace(" ", "-")
        return rt.profiling(self.pids[0], self.profile.with_stem(f"{self.profile.stem}-{slug}"))

    @property
    def api_url(self) -> str:
        return self.base_url

    def profiles(self, udids: list[str], directory: Path) -> dict[str, Path]:
        """One enrollment profile per device, from one token's URL, as a device downloads it; mdmb
        reads plain plists, so the CMS signature is checked and taken off here."""
        headers = {"Authorization": f"Bearer {self.api_key}"}
        with httpx.Client(base_url=self.base_url, trust_env=False, timeout=60) as client:
            made = client.post(
                "/api/v1/enrollment/tokens", json={"uses": len(udids), "expires": "1d"}, headers=headers
            )
            if made.status_code != 201:
                raise BenchError(
                    f"creating an enrollment token answered {made.status_code}: {made.text[:200]}"
                )
            url = made.json()["url"]
            paths = {}
            for udid in udids:
                got = client.get(url)
                if got.status_code != 200:
                    raise BenchError(f"GET {url} answered {got.status_code}: {got.text[:200]}")
                paths[udid] = directory / f"{udid}.mobileconfig"
                paths[udid].write_bytes(verify_attached(got.content).content)
        return paths

    async def enqueue(self, client: httpx.AsyncClient, udid: str) -> None:
        response = await client.post(
            "/api/v1/commands",
            json={"devices": [udid], "command": device_information()},
            headers={"Authorization": f"Bearer {self.api_key}"},
        )
        if response.status_code != 201:
            raise BenchError(f"Russet queueing answered {response.status_code}: {response.text[:200]}")


class NanoServer(Server):
    name = "NanoMDM"

    def __init__(self, mdm_url: str, scep_url: str, api_key: str, pids: list[int], meter: Meter) -> None:
        self.mdm_url, self.scep_url, self.api_key, self.pids, self.meter = (
            mdm_url,
            scep_url,
            api_key,
            pids,
            meter,
        )
        self.challenge = secrets.token_hex(16)

    @property
    def api_url(self) -> str:
        return self.mdm_url

    def profiles(self, udids: list[str], directory: Path) -> dict[str, Path]:
        """NanoMDM serves no profiles: one written here per device, shaped like Russet's (SCEP,
        RSA 2048, the scepserver's static challenge; MDM payload with SignMessage)."""
        paths = {}
        for udid in udids:
            identity = str(uuid.uuid4()).upper()
            profile = {
                "PayloadContent": [
                    {
                        "PayloadContent": {
                            "Challenge": self.challenge,
                            "Key Type": "RSA",
                            "Key Usage": 5,
                            "Keysize": 2048,
                            "Name": "NanoMDM",
                            "Subject": [[["CN", f"bench device {udid[:8]}"]]],
                            "URL": f"{self.scep_url}/scep",
                        },
                        "PayloadIdentifier": "bench.nanomdm.identity",
                        "PayloadType": "com.apple.security.scep",
                        "PayloadUUID": identity,
                        "PayloadVersion": 1,
                    },
                    {
                        "AccessRights": 8191,
                        "CheckOutWhenRemoved": True,
                        "IdentityCertificateUUID": identity,
                        "PayloadIdentifier": "bench.nanomdm.mdm",
                        "PayloadType": "com.apple.mdm",
                        "PayloadUUID": str(uuid.uuid4()).upper(),
                        "PayloadVersion": 1,
                        "ServerCapabilities": [
                            "com.apple.mdm.per-user-connections",
                            "com.apple.mdm.bootstraptoken",
                        ],
                        "ServerURL": f"{self.mdm_url}/mdm",
                        "SignMessage": True,
                        "Topic": TOPIC,
                    },
                ],
                "PayloadDisplayName": "NanoMDM bench enrollment",
                "PayloadIdentifier": "bench.nanomdm.enrollment",
                "PayloadType": "Configuration",
                "PayloadUUID": str(uuid.uuid4()).upper(),
                "PayloadVersion": 1,
            }
            paths[udid] = directory / f"{udid}.mobileconfig"
            paths[udid].write_bytes(plistlib.dumps(profile))
        return paths

    async def enqueue(self, client: httpx.AsyncClient, udid: str) -> None:
        body = plistlib.dumps({"Command": device_information(), "CommandUUID": str(uuid.uuid4())})
        # nopush: there is no APNs here; NanoMDM then only queues.
        response = await client.put(
            f"/v1/enqueue/{udid}?nopush=1", content=body, auth=("nanomdm", self.api_key)
        )
        if response.status_code != 200:
            raise BenchError(f"NanoMDM queueing answered {response.status_code}: {response.text[:200]}")


# -- starting the servers -------------------------------------------------------------------------------


def wait_for(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 60.0) -> None:
    """Until `url` answers (any status below 500); a server that exits first is an error."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"{log.stem} exited with {proc.returncode}:\n{rt.tail(log)}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2, trust_env=False).status_code < 500:
                return
        time.sleep(0.1)
    raise BenchError(f"{url} did not answer within {timeout:.0f} s:\n{rt.tail(log)}")


@contextlib.contextmanager
def process(command: list[str], log: Path, ready_url: str, cwd: Path | None = None) -> Iterator[int]:
    with log.open("wb") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=cwd)
        try:
            wait_for(ready_url, proc, log)
            yield proc.pid
        finally:
            rt.stop(proc)


@contextlib.contextmanager
def russet_server(opts: Options, backend: str, tmp: Path) -> Iterator[RussetServer]:
    with rt.database(backend, tmp, opts.postgres_url) as db:
        port = rt.free_port()
        env = {
            "RUSSET_DATA_DIR": str(tmp / "data"),
            "RUSSET_DATABASE_URL": db.url,
            "RUSSET_PUBLIC_URL": f"http://127.0.0.1:{port}",
            "RUSSET_PUSH_TOPIC": TOPIC,
        }
        russet = Russet.open(Settings.from_env(env))  # schema, CA
        try:
            api_key = russet.storage.api_keys.create("bench")
        finally:
            russet.close()
        with rt.running_server(env, port, opts.workers, "info", tmp / "russet.log") as pid:
            meter = Meter([pid], db.admin_url, db.application_name)
            profile = opts.profile and opts.profile.with_stem(f"{opts.profile.stem}-{backend}")
            yield RussetServer(f"http://127.0.0.1:{port}", api_key, pid, meter, env, profile)


@contextlib.contextmanager
def nano_database(
    opts: Options, backend: str, tmp: Path
) -> Iterator[tuple[list[str], str | None, str | None]]:
    """NanoMDM's storage flags, and (PostgreSQL) the admin URL and application_name of its backends."""
    if backend == "sqlite":
        flags = ["-storage", opts.nanomdm_file_backend, "-storage-dsn", str(tmp / "nanodb")]
        if opts.nanomdm_file_backend == "file":
            flags += ["-storage-options", "enable_deprecated=1"]
        yield flags, None, None
        return
    assert opts.nanomdm_source is not None
    schema = "bench_nano_" + secrets.token_hex(5)
    ddl = (opts.nanomdm_source / "storage" / "pgsql" / "schema.sql").read_text()
    with psycopg.connect(opts.postgres_url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
        conn.execute(f"SET search_path TO {schema}")
        # The peer's own schema file (several statements, no parameters), read from a path the user gave.
        conn.execute(ddl.encode())
    try:
        sep = "&" if "?" in opts.postgres_url else "?"
        # lib/pq passes unknown parameters (search_path) to the server as run-time parameters.
        dsn = f"{opts.postgres_url}{sep}sslmode=disable&search_path={schema}&application_name={schema}"
        yield ["-storage", "pgsql", "-storage-dsn", dsn], opts.postgres_url, schema
    finally:
        with psycopg.connect(opts.postgres_url, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


@contextlib.contextmanager
def nano_server(opts: Options, backend: str, tmp: Path) -> Iterator[NanoServer]:
    assert opts.nanomdm is not None and opts.scepserver is not None
    depot = tmp / "depot"
    # Same CA key size as Russet's (RSA 3072): SCEP decrypts and signs with it.
    made = subprocess.run(
        [str(opts.scepserver), "ca", "-init", "-keySize", "3072", "-depot", str(depot)],
        capture_output=True,
        check=False,
    )
    if made.returncode != 0:
        raise BenchError(f"scepserver ca -init failed: {made.stderr.decode()[-300:]}")
    scep_port, mdm_port, api_key = rt.free_port(), rt.free_port(), secrets.token_urlsafe(16)
    with nano_database(opts, backend, tmp) as (storage, admin_url, app_name):
        scep_cmd = [str(opts.scepserver), "-depot", str(depot), "-http-addr", f"127.0.0.1:{scep_port}"]
        nano = NanoServer(
            f"http://127.0.0.1:{mdm_port}",
            f"http://127.0.0.1:{scep_port}",
            api_key,
            [],
            Meter([], None, None),
        )
        scep_cmd += ["-challenge", nano.challenge]
        mdm_cmd = [str(opts.nanomdm), "-listen", f"127.0.0.1:{mdm_port}", "-ca", str(depot / "ca.pem")]
        mdm_cmd += ["-api", api_key, *storage]
        with (
            process(
                scep_cmd, tmp / "scepserver.log", f"{nano.scep_url}/scep?operation=GetCACaps"
            ) as scep_pid,
            process(mdm_cmd, tmp / "nanomdm.log", f"{nano.mdm_url}/version") as mdm_pid,
        ):
            nano.pids = [mdm_pid, scep_pid]
            nano.meter = Meter(nano.pids, admin_url, app_name)
            yield nano


# -- the workloads ----------------------------------------------------------------------------------------


def run_mdmb(opts: Options, server: Server, fleet: Fleet, tmp: Path) -> dict[str, Measured]:
    results = {w: Measured() for w in WORKLOADS}
    profiles = server.profiles(fleet.udids, tmp)
    with server.meter.measuring(results["enrollment"]):
        fleet.enroll(profiles, results["enrollment"])
    if errors := results["enrollment"].errors:
        hint = ""
        if any("badAlg" in e for e in errors):
            hint = " (mdmb encrypts SCEP with DES unless built with the AES change: see bench/README.md)"
        raise BenchError(f"{server.name}: {len(errors)} devices failed to enroll, first: {errors[0]}{hint}")
    idle = results["idle check-ins"]
    with server.profiling(WORKLOADS[1]), server.meter.measuring(idle):
        fleet.connect(opts.idle_rounds, 1, idle)
    commands = results["command round trips"]
    api = Measured()
    for _ in range(opts.commands_per_device):
        with server.profiling(WORKLOADS[2]), server.meter.measuring(commands):
            asyncio.run(enqueue_all(server, fleet.udids, opts.concurrency, api))
            handled = fleet.connect(1, 2, commands)
        if handled != len(fleet.udids):
            commands.errors.append(
                f"devices handled {handled} DeviceInformation commands, {len(fleet.udids)} queued"
            )
    commands.requests += api.requests
    commands.elapsed += api.elapsed
    commands.errors += api.errors
    commands.latency_of += (
        f"; API queueing p50 {api.percentile_ms(0.5):.1f} / p99 {api.percentile_ms(0.99):.1f} ms"
    )
    return results


async def enqueue_all(server: Server, udids: list[str], concurrency: int, into: Measured) -> None:
    """One API call per device (a command for that device), `concurrency` at a time."""
    pending = iter(udids)

    async def lane(client: httpx.AsyncClient) -> None:
        for udid in pending:
            started = time.perf_counter()
            try:
                await server.enqueue(client, udid)
            except (BenchError, httpx.HTTPError) as exc:
                into.errors.append(f"{udid}: {exc}")
                continue
            into.latencies.append(time.perf_counter() - started)
            into.requests += 1

    async with contextlib.AsyncExitStack() as stack:
        clients = [await stack.enter_async_context(rt.new_client(server.api_url)) for _ in range(concurrency)]
        started = time.perf_counter()
        await asyncio.gather(*(lane(c) for c in clients))
        into.elapsed += time.perf_counter() - started


def run_simulated(opts: Options, server: RussetServer) -> dict[str, Measured]:
    """Russet alone, without mdmb: the project's simulated devices (bench/roundtrips.py), with
    identities from PKCS#12 profiles made in setup, so enrollment here is Authenticate and
    TokenUpdate only (no SCEP)."""
    with rt.pool() as workers:  # one pool for the run: each of its processes imports Russet
        return _simulated(opts, server, workers)


def _simulated(opts: Options, server: RussetServer, workers: ProcessPoolExecutor) -> dict[str, Measured]:
    devices = rt.make_devices(workers, server.env, opts.devices)
    rt.presign_checkins(workers, devices)
    rt.presign_reports(workers, devices)  # the Idle report (no commands queued yet)
    results = {w: Measured() for w in WORKLOADS}

    async def enroll(client: httpx.AsyncClient, device: rt.BenchDevice, phase: rt.Phase) -> None:
        await rt.enroll(client, device, phase)

    async def idle(client: httpx.AsyncClient, device: rt.BenchDevice, phase: rt.Phase) -> None:
        assert device.idle is not None
        for _ in range(opts.idle_rounds):
            if await rt.put(client, "/mdm/connect", device.idle, phase):
                raise BenchError("an idle device was handed a command")

    def phase(job: rt.Job, into: Measured) -> None:
        async def go() -> rt.Phase:
            done = rt.Phase()
            async with contextlib.AsyncExitStack() as stack:
                clients = [
                    await stack.enter_async_context(rt.new_client(server.base_url))
                    for _ in range(opts.concurrency)
                ]
                started = time.perf_counter()
                await rt.for_each_device(clients, devices, job, done)
                done.elapsed = time.perf_counter() - started
            return done

        with server.meter.measuring(into):
            done = asyncio.run(go())
        into.requests += done.requests
        into.elapsed += done.elapsed
        into.latencies += done.latencies
        into.errors += done.failures

    phase(enroll, results["enrollment"])
    phase(idle, results["idle check-ins"])
    commands = results["command round trips"]
    api = Measured()
    by_udid = {d.udid: d for d in devices}

    class Recording(RussetServer):  # keeps the CommandUUIDs, which the pre-signed acks need
        async def enqueue(self, client: httpx.AsyncClient, udid: str) -> None:
            response = await client.post(
                "/api/v1/commands",
                json={"devices": [udid], "command": device_information()},
                headers={"Authorization": f"Bearer {self.api_key}"},
            )
            if response.status_code != 201:
                raise BenchError(f"Russet queueing answered {response.status_code}: {response.text[:200]}")
            by_udid[udid].expected.append(
                (response.json()["commands"][0]["command_uuid"], "DeviceInformation")
            )

    recording = Recording(server.base_url, server.api_key, server.pids[0], server.meter, server.env)
    for _ in range(opts.commands_per_device):
        with server.meter.measuring(commands):
            asyncio.run(enqueue_all(recording, list(by_udid), opts.concurrency, api))
        rt.presign_reports(workers, devices)  # untimed: signing the acknowledgements
        phase(rt.drain, commands)
        for d in devices:
            d.expected.clear()
    commands.requests += api.requests
    commands.elapsed += api.elapsed
    commands.errors += api.errors
    commands.latency_of = (
        f"request; API queueing p50 {api.percentile_ms(0.5):.1f} / p99 {api.percentile_ms(0.99):.1f} ms"
    )
    return results


# -- output ---------------------------------------------------------------------------------------------


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}" if b and a == a and b == b else "-"


COLUMNS = ("req/s", "CPU s/1k req", "p50 ms", "p99 ms", "peak RSS MiB", "requests", "other CPU s")


def row(label: str, server: str, cells: Sequence[str]) -> str:
    widths = [len(c) + 2 for c in COLUMNS]
    return f"  {label:<20} {server:<8}" + "".join(f"{c:>{w}}" for c, w in zip(cells, widths, strict=False))


def figures(m: Measured) -> tuple[float, float, float, float, float]:
    return m.rate(), m.cpu_per_1000(), m.percentile_ms(0.5), m.percentile_ms(0.99), m.peak_rss_kib / 1024


def print_store(backend: str, opts: Options, results: dict[str, dict[str, Measured]], load: str) -> None:
    stores = {
        "sqlite": f"Russet on SQLite, NanoMDM -storage {opts.nanomdm_file_backend}",
        "postgres": "both on PostgreSQL",
    }
    print(f"\n== {backend}: {stores[backend]}; {opts.devices} devices, {opts.concurrency} at a time ==")
    print(f"  load average before -> after: {load}")
    print(row("workload", "server", COLUMNS))
    for workload in WORKLOADS:
        for name, per in results.items():
            m = per[workload]
            rate, cpu, p50, p99, rss = figures(m)
            cells = [f"{rate:.0f}", f"{cpu:.3f}", f"{p50:.1f}", f"{p99:.1f}", f"{rss:.1f}", f"{m.requests}"]
            print(row(workload, name, [*cells, f"{m.other_cpu:.1f}"]))
        if len(results) == 2:
            pairs = zip(
                figures(results["Russet"][workload]), figures(results["NanoMDM"][workload]), strict=True
            )
            print(row("", "R/N", [ratio(r, n) for r, n in pairs]))
    print("  latency is per:")
    for workload in WORKLOADS:
        for name, per in results.items():
            print(f"    {workload} / {name}: {per[workload].latency_of}")
    if backend == "postgres":
        opened = "; ".join(
            f"{name} " + ", ".join(f"{per[w].backends_opened}" for w in WORKLOADS)
            for name, per in results.items()
        )
        print(f"  PostgreSQL connections opened during enrollment, idle, commands: {opened}")
    print("  CPU s/1k req: the server's processes (NanoMDM: nanomdm + scepserver) and their PostgreSQL")
    print("  backends; other CPU s: the rest of the machine meanwhile (mdmb, this script, other users)")
    print_targets(results)


def print_targets(results: dict[str, dict[str, Measured]]) -> None:
    """The targets of issue #18, printed, never asserted."""
    print("  targets (printed, not asserted):")
    for workload in ("idle check-ins", "command round trips"):
        r = results["Russet"][workload]
        if "NanoMDM" in results:
            n = results["NanoMDM"][workload]
            cpu, rate = r.cpu_per_1000() / n.cpu_per_1000(), r.rate() / n.rate()
            met = {True: "met", False: "NOT met"}
            print(
                f"    {workload}: CPU per request R/N {cpu:.2f} (<= 0.8: {met[cpu <= 0.8]}), "
                f"throughput R/N {rate:.2f} (>= 1.2: {met[rate >= 1.2]})"
            )
        p99, rate = r.percentile_ms(0.99), r.rate()
        verdict = ("met" if p99 < 50 else "NOT met") if rate >= 500 else "not judged, below 500 req/s"
        print(
            f"    {workload}: Russet p99 {p99:.1f} ms at {rate:.0f} req/s (p99 < 50 ms at 500/s: {verdict})"
        )


# -- command line -----------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(argv)
    if opts.mdmb is None:
        print(
            "No peers given (--mdmb, --nanomdm, --scepserver): measuring Russet ALONE, driven by the "
            "project's simulated devices (bench/roundtrips.py; enrollment without SCEP). No comparison."
        )
    elif opts.nanomdm is None:
        print(
            "NanoMDM not given (--nanomdm, --scepserver): measuring Russet ALONE with mdmb devices. "
            "No comparison."
        )
    failed = False
    for backend in opts.backends:
        print(
            f"-- {backend}: {opts.devices} devices, {opts.idle_rounds} idle check-ins and "
            f"{opts.commands_per_device} command round trip(s) each, {opts.concurrency} at a time"
        )
        results: dict[str, dict[str, Measured]] = {}
        load = load_average()
        try:
            with tempfile.TemporaryDirectory(prefix=f"vs-nanomdm-{backend}-") as name:
                tmp = Path(name)
                template = (
                    Fleet(opts.mdmb, tmp / "fleet", opts.devices, opts.concurrency) if opts.mdmb else None
                )
                (tmp / "russet").mkdir()
                with russet_server(opts, backend, tmp / "russet") as server:
                    if template is not None:
                        fleet = template.clone(tmp / "russet" / "mdmb")
                        results["Russet"] = run_mdmb(opts, server, fleet, tmp / "russet")
                    else:
                        results["Russet"] = run_simulated(opts, server)
                if opts.nanomdm is not None and template is not None:
                    (tmp / "nanomdm").mkdir()
                    with nano_server(opts, backend, tmp / "nanomdm") as nano:
                        fleet = template.clone(tmp / "nanomdm" / "mdmb")
                        results["NanoMDM"] = run_mdmb(opts, nano, fleet, tmp / "nanomdm")
        except BenchError as exc:
            print(f"!!! {backend}: {exc}", file=sys.stderr)
            failed = True
            continue
        print_store(backend, opts, results, f"{load} -> {load_average()}")
        for name, per in results.items():
            for workload, m in per.items():
                for line in m.errors[:5]:
                    print(f"!!! {backend} {name} {workload}: {line}", file=sys.stderr)
                failed = failed or bool(m.errors)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
