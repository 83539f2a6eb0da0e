"""Long fuzz runs of every parser of outside input: the tests/test_fuzz_*.py properties, with
more examples than the default test run gives them, in rounds until a time budget is spent.

Each round runs the fuzz tests under pytest with RUSSET_FUZZ_EXAMPLES examples per property and
fresh random inputs; a failure prints hypothesis's shrunk example and stops the run (exit 1).

    python bench/fuzz_parsers.py                         # 1000 examples per property, one round
    python bench/fuzz_parsers.py --seconds 3600          # rounds for an hour
    python bench/fuzz_parsers.py --examples 2 -k apple_json  # tiny (CI): Apple's JSON only, seconds
    RUSSET_TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test python bench/fuzz_parsers.py
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FILES = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "tests").glob("test_fuzz_*.py"))


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--examples", type=int, default=1000, help="examples per property and round")
    parser.add_argument(
        "--seconds", type=float, default=0.0, help="keep running rounds this long (0: one round)"
    )
    parser.add_argument(
        "-k", dest="keyword", default="", help="pytest -k expression, e.g. scep (default: all)"
    )
    args = parser.parse_args()

    os.chdir(ROOT)
    sys.path.insert(0, str(ROOT))
    os.environ["RUSSET_FUZZ_EXAMPLES"] = str(args.examples)
    import pytest  # imported after the environment is set: tests.fuzz_support reads it on import

    started = time.monotonic()
    rounds = 0
    while True:
        rounds += 1
        round_start = time.monotonic()
        code = pytest.main(
            [
                "-q",
                "-p",
                "no:randomly",
                "-p",
                "no:cacheprovider",
                "-x",
                *(["-k", args.keyword] if args.keyword else []),
                *FILES,
            ]
        )
        print(
            f"round {rounds}: {args.examples} examples per property in {time.monotonic() - round_start:.1f} s"
        )
        if code != 0:
            print(f"fuzzing found a failure in round {rounds} (pytest exit {code})")
            return 1
        if time.monotonic() - started >= args.seconds:
            break
    print(f"{rounds} round(s), {time.monotonic() - started:.1f} s, no failure")
    return 0


if __name__ == "__main__":
    sys.exit(main())
