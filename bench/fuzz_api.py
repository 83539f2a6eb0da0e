"""A longer schemathesis run against the admin API than the test suite's (tests/test_api_fuzz.py).

Opens a throwaway server (SQLite, or a throwaway PostgreSQL schema), creates an API key, and sends
`--examples` generated requests per operation and mode (valid and schema-breaking) through the ASGI
app. Stops at the first 5xx or answer the OpenAPI document does not describe, printing it with a
curl line; otherwise prints how many requests went out and how long it took.

    python bench/fuzz_api.py [--backend sqlite|postgres|both] [--examples N]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from fastapi.testclient import TestClient

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the tests package, run from anywhere

from _measure import fresh_database  # noqa: E402

from russet.app import create_app  # noqa: E402
from russet.config import Settings  # noqa: E402
from russet.runtime import Russet  # noqa: E402
from tests.api_fuzz import fuzz_api  # noqa: E402

PUBLIC_URL = "https://mdm.example.test"


def run(backend: str, url: str, examples: int, verbose: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings.from_env(
            {"RUSSET_DATA_DIR": tmp, "RUSSET_DATABASE_URL": url, "RUSSET_PUBLIC_URL": PUBLIC_URL}
        )
        russet = Russet.open(settings)
        try:
            headers = {"Authorization": f"Bearer {russet.storage.api_keys.create('fuzz')}"}
            start = time.perf_counter()
            with TestClient(create_app(russet), base_url=PUBLIC_URL) as client:
                sent = fuzz_api(client, headers, examples, report=print if verbose else None)
            took = time.perf_counter() - start
        finally:
            russet.close()
    print(f"{backend}: {sent} requests, {examples} examples per operation and mode, {took:.1f} s: no failure")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="sqlite")
    parser.add_argument("--examples", type=int, default=100, help="per operation and mode (default 100)")
    parser.add_argument("--verbose", action="store_true", help="print each operation as it passes")
    args = parser.parse_args()
    if args.examples < 1:
        parser.error("--examples must be at least 1")
    for backend in ("sqlite", "postgres") if args.backend == "both" else (args.backend,):
        with fresh_database(backend) as url:
            run(backend, url, args.examples, args.verbose)


if __name__ == "__main__":
    main()
