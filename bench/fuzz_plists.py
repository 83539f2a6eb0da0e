"""Longer fuzzing of the device plist parsing than the test suite does.

Two targets, each driven by hypothesis with the strategies in tests/plist_fuzz.py:

1. `russet.plists.loads` on property lists (XML and binary) and mangled copies of them, plus the
   hand-built bombs: it must return plistlib's value or raise PlistRejected, nothing else;
2. PUT /mdm/checkin and /mdm/connect of an in-process Russet (a temporary SQLite database, or a
   throwaway schema with --database-url), with bodies signed by an enrolled device so they reach
   the parser and the protocol handlers: every answer must be a 200 or a 4xx, never a 5xx or an
   exception.

Batches of --examples run until --seconds have passed (at least one batch each), each batch with
a fresh random seed, printed so a failure can be replayed with --seed.

    python bench/fuzz_plists.py --examples 50              # a second or two: a smoke run
    python bench/fuzz_plists.py --seconds 600 --examples 500
"""

from __future__ import annotations

import argparse
import logging
import os
import plistlib
import random
import secrets
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # this tree's package, simulators and test strategies

from fastapi.testclient import TestClient  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import seed as hypothesis_seed  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402

from russet import plists  # noqa: E402
from russet.app import create_app  # noqa: E402
from russet.config import Settings  # noqa: E402
from russet.runtime import Russet  # noqa: E402
from simulators.device import Enrollment, SimDevice  # noqa: E402
from tests.conftest import PUBLIC_URL, TOPIC, new_profile  # noqa: E402
from tests.plist_fuzz import (  # noqa: E402
    cycle,
    deep_binary,
    deep_xml,
    encode,
    entity_bomb,
    fuzz_device_endpoints,
    mangled,
    reference_bomb,
    values,
)


def fuzz_parser(examples: int, seed: int) -> Counter[str]:
    outcomes: Counter[str] = Counter()

    @settings(max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(value=values, binary=st.booleans(), data=st.data())
    def one(value: Any, binary: bool, data: st.DataObject) -> None:
        encoded = encode(value, binary)
        if encoded is None:
            outcomes["unwritable"] += 1
            return
        assert plists.loads(encoded) == plistlib.loads(encoded)
        try:
            plists.loads(data.draw(mangled(encoded)))
            outcomes["read"] += 1
        except plists.PlistRejected:
            outcomes["refused"] += 1

    hypothesis_seed(seed)(one)()
    for bomb in (reference_bomb(40), cycle(), deep_xml(50_000), deep_binary(250), entity_bomb(10)):
        try:
            plists.loads(bomb)
            raise AssertionError("a bomb was read")
        except plists.PlistRejected:
            outcomes["bomb refused"] += 1
    return outcomes


def open_server(directory: Path, database_url: str | None) -> tuple[Russet, Any]:
    """A Russet on a temporary SQLite file, or in a throwaway PostgreSQL schema (and its cleanup)."""
    cleanup = None
    url = f"sqlite:///{directory / 'russet.db'}"
    if database_url:
        base = database_url.replace("postgresql://", "postgresql+psycopg://", 1)
        schema = "fuzz_" + secrets.token_hex(6)
        admin = create_engine(base)
        with admin.begin() as conn:
            conn.execute(text(f"CREATE SCHEMA {schema}"))
        url = f"{base}{'&' if '?' in base else '?'}options={quote(f'-csearch_path={schema}')}"

        def cleanup() -> None:
            with admin.begin() as conn:
                conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
            admin.dispose()

    env = {
        "RUSSET_DATA_DIR": str(directory / "data"),
        "RUSSET_DATABASE_URL": url,
        "RUSSET_PUBLIC_URL": PUBLIC_URL,
        "RUSSET_PUSH_TOPIC": TOPIC,
        "RUSSET_MAX_BODY_BYTES": str(256 * 1024),
    }
    return Russet.open(Settings.from_env(env)), cleanup


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--examples", type=int, default=200, help="hypothesis examples per batch and target")
    parser.add_argument("--seconds", type=float, default=0, help="keep running batches this long")
    parser.add_argument("--seed", type=int, default=None, help="the first batch's seed (to replay a failure)")
    parser.add_argument("--database-url", default=os.environ.get("RUSSET_TEST_DATABASE_URL"))
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # every refusal is logged as a warning: thousands of lines
    started = time.monotonic()
    parser_outcomes: Counter[str] = Counter()
    statuses: Counter[int] = Counter()
    batches = 0
    seed = args.seed if args.seed is not None else random.randrange(2**32)
    with tempfile.TemporaryDirectory() as tmp:
        russet, cleanup = open_server(Path(tmp), args.database_url)
        try:
            with TestClient(create_app(russet), base_url=PUBLIC_URL) as client:
                print(f"server ready after {time.monotonic() - started:.1f} s", flush=True)
                while True:
                    print(f"batch {batches + 1}: seed {seed}", flush=True)
                    parser_outcomes += fuzz_parser(args.examples, seed)
                    # A fresh device per batch: a fuzzed CheckOut or Authenticate may unenroll the last.
                    device = SimDevice(Enrollment.from_profile(new_profile(russet)), path_only=True)
                    device.enroll(client)
                    statuses += fuzz_device_endpoints(client, device, TOPIC, args.examples, seed)
                    batches += 1
                    if time.monotonic() - started >= args.seconds:
                        break
                    seed = random.randrange(2**32)
        finally:
            russet.close()
            if cleanup is not None:
                cleanup()
    elapsed = time.monotonic() - started
    print(f"{batches} batch(es) in {elapsed:.1f} s")
    print("parser:", dict(sorted(parser_outcomes.items())))
    print("device endpoints, answers by status:", dict(sorted(statuses.items())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
