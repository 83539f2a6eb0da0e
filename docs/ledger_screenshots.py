"""Make docs/ledger-table.png and docs/ledger-subject.png: the console's privacy report and a
subject's export, in Debian's chromium (Playwright with executable_path, as tests/test_console.py).

The data is real traffic: an Apps and Books location on the simulator (`simulators/vpp.py`), a
person registered there and licensed a device, simulated devices enrolled (one of them a Shared
iPad the person signs in to), pushes recorded as the pusher records them, and an ABM look-up of a
serial. To show a chart over time, the ledger rows' times are then spread over the past two weeks
(an UPDATE of the `at` column, nothing else), and the APNs detail older than 7 days is folded into
counts by a retention policy.

    python docs/ledger_screenshots.py [--out docs]
"""

from __future__ import annotations

import argparse
import socket
import sys
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import uvicorn  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402
from sqlalchemy import select, update  # noqa: E402

from russet.app import create_app  # noqa: E402
from russet.apple.gateway import Call, Datum  # noqa: E402
from russet.apple.tables import ledger  # noqa: E402
from russet.config import Settings  # noqa: E402
from russet.runtime import Russet  # noqa: E402
from russet.storage.db import utcnow  # noqa: E402
from simulators.device import Enrollment, SimDevice, SimUser  # noqa: E402
from tests.conftest import PUBLIC_URL, TOPIC, new_profile  # noqa: E402
from tests.vpp_support import PAGES, add, deliver, run, simulated  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
PERSON = "ada.lovelace@school.example.org"


def seed(russet: Russet, sim: object, token: str) -> str:
    add(russet, token)
    deliver(russet, sim)  # type: ignore[arg-type]
    run(russet, russet.vpp.create_user("main", email="ada@example.org", managed_apple_id=PERSON))
    sim.process()  # type: ignore[attr-defined]
    deliver(russet, sim)  # type: ignore[arg-type]
    with TestClient(create_app(russet), base_url=PUBLIC_URL) as client:
        devices = [SimDevice(Enrollment.from_profile(new_profile(russet)), path_only=True) for _ in range(6)]
        for d in devices:
            d.enroll(client)
        ipad = devices[0]
        ipad.check_in(client, ipad.user_token_update_message(SimUser.shared_ipad_user(PERSON)))
    run(russet, russet.vpp.assign("main", PAGES, serials=[ipad.serial]))
    sim.process()  # type: ignore[attr-defined]
    deliver(russet, sim)  # type: ignore[arg-type]
    for i, d in enumerate(devices):
        call = Call(
            "apns",
            "default",
            "POST /3/device/{token}",
            "wake the device so it contacts Russet for its queued MDM commands",
            [
                Datum("Token", d.push_token.hex(), subject=d.udid),
                Datum("PushMagic", d.push_magic, subject=d.udid),
                Datum("topic", TOPIC),
            ],
        )
        for _ in range(2 + i):
            russet.gateway.record(call, 200, "apns-id", [Datum("apns-id", "apns-id", subject=d.udid)])
    russet.gateway.record(
        Call(
            "abm",
            "main",
            "POST /devices",
            "look up devices assigned to this MDM server",
            [Datum("devices", d.serial, d.serial) for d in devices],
        ),
        200,
        None,
    )
    russet.ledger.flush()
    # Spread the rows over the past two weeks, so the chart shows days.
    now = utcnow()
    with russet.storage.engine.begin() as conn:
        ids = [r.id for r in conn.execute(select(ledger.c.id).order_by(ledger.c.id))]
        for n, row_id in enumerate(ids):
            conn.execute(
                update(ledger)
                .where(ledger.c.id == row_id)
                .values(at=now - timedelta(days=(n * 5) % 14, minutes=n))
            )
    russet.ledger_privacy.set_retention("apns", 7, by="docs")
    russet.ledger_privacy.apply_retention()
    return ipad.udid


def serve(russet: Russet) -> tuple[uvicorn.Server, threading.Thread, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(create_app(russet), host="127.0.0.1", port=port, lifespan="off", log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(500):
        if server.started:
            break
        time.sleep(0.01)
    return server, thread, f"http://127.0.0.1:{port}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=ROOT / "docs")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings.from_env(
            {
                "RUSSET_DATA_DIR": f"{tmp}/data",
                "RUSSET_DATABASE_URL": f"sqlite:///{tmp}/russet.db",
                "RUSSET_PUBLIC_URL": PUBLIC_URL,
                "RUSSET_PUSH_TOPIC": TOPIC,
            }
        )
        with simulated(Path(tmp), settings) as (sim, russet, token):
            seed(russet, sim, token)
            key = russet.storage.api_keys.create("dpo")
            server, thread, base = serve(russet)
            try:
                with sync_playwright() as p:
                    browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
                    page = browser.new_page(viewport={"width": 1400, "height": 900})
                    page.goto(f"{base}/console/ledger/table")
                    page.fill("input[name=api_key]", key)
                    page.click("button[type=submit]")
                    page.wait_for_url(f"{base}/console/ledger/table")
                    page.screenshot(path=str(args.out / "ledger-table.png"), full_page=True)
                    page.goto(f"{base}/console/ledger/subject?q={PERSON}")
                    page.screenshot(path=str(args.out / "ledger-subject.png"), full_page=True)
                    browser.close()
            finally:
                server.should_exit = True
                thread.join(10)
    print(f"wrote {args.out / 'ledger-table.png'} and {args.out / 'ledger-subject.png'}")


if __name__ == "__main__":
    main()
