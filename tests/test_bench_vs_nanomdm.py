"""bench/vs_nanomdm.py reads latencies from mdmb's progress dots and peak RSS from /proc: both are
easy to get subtly wrong (mdmb's closing summary has dots of its own), so they are pinned here."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
sys.path.append(str(BENCH))  # after the project: bench/ has generic module names

import vs_nanomdm  # noqa: E402
from _measure import peak_rss_kib, process_tree, reset_peak_rss  # noqa: E402

SUMMARY = (
    b"\n\nTotal MDM connects                3 (100%)\nErrors                            0 (0%)\n"
    b"Total elapsed time                37.647396ms\nMin MDM connect elapsed           3.444833ms\n"
    b"Max MDM connect elapsed           24.119121ms\nAvg (mean) MDM connect elapsed    12.52491ms\n"
)


def lane() -> vs_nanomdm._Lane:
    return vs_nanomdm._Lane(proc=None, stderr=Path("/dev/null"))  # type: ignore[arg-type]


def test_each_dot_is_one_connect_timed_from_the_previous_one() -> None:
    seen = lane()
    seen.feed(b"starting 1 workers for 1 iterations of 3 devices (3 connects)\n", 10.0)
    seen.feed(b".", 10.5)
    seen.feed(b"unknown DeviceInfo queries: \n.", 11.25)  # a command's line comes before its dot
    seen.feed(b"..", 12.0)  # read together: one gap, the other counted as immediate
    assert seen.latencies == [0.5, 0.75, 0.75, 0.0]
    assert seen.started == 10.0 and seen.last == 12.0


def test_the_summary_after_the_dots_counts_no_connect() -> None:
    seen = lane()
    seen.feed(b"starting 1 workers for 1 iterations of 2 devices (2 connects)\n..", 1.0)
    seen.feed(b"." + SUMMARY[:30], 2.0)  # the last dot, then the summary, split anywhere
    seen.feed(SUMMARY[30:], 3.0)
    assert len(seen.latencies) == 3
    assert seen.last == 2.0 and seen.done


def test_nothing_is_timed_before_the_loop_starts() -> None:
    seen = lane()
    seen.feed(b"2021/03/02 device not enrolled (no identity uuid). skipped\nstart", 1.0)
    seen.feed(b"ing 1 workers for 1 iterations of 1 devices (1 connects)\n", 2.0)
    seen.feed(b"." + SUMMARY, 2.5)
    assert seen.latencies == [0.5]


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux /proc")
def test_peak_rss_covers_children_and_can_be_reset() -> None:
    touch_and_free = (
        "b = bytearray(150 * 2**20)\n"
        "for i in range(0, len(b), 4096): b[i] = 1\n"
        "del b\n"
        "print('freed', flush=True)\n"
        "input()\n"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", touch_and_free], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        assert child.stdout is not None and child.stdout.readline() == b"freed\n"
        assert child.pid in process_tree(os.getpid())
        held = peak_rss_kib([child.pid])
        assert held > 150 * 1024  # the peak, though the memory is given back
        assert peak_rss_kib([os.getpid()]) > held  # the tree counts this process and its child
        if not reset_peak_rss([child.pid]):
            pytest.skip("the kernel refused to reset VmHWM")
        assert peak_rss_kib([child.pid]) < 100 * 1024  # now what it holds, not what it held
    finally:
        child.kill()
        child.wait()
