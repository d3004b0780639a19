#!/usr/bin/env python3
"""e2e-threads: 4 producers allocate, 4 consumers free through a queue (threads), 3 runs; one
thread takes the live map's solo mode and another ends it with blocks in flight (solo_handoff), 3 runs.

Asserts exact producer site numbers (4000 allocations and frees, 352000 bytes, nothing live),
totals (4008 allocations: + one DTV per thread; 4000 frees; 8 blocks live), leaks summary bytes
equal to the report's live bytes."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import memlens_test as mt  # noqa: E402


def threads(suite, attempt):
    outdir, report, leaks, expect = mt.check_program(suite, "threads")
    proc = mt.one_process(suite, report, "threads", "report")
    leak_proc = mt.one_process(suite, leaks, "threads", "leaks")
    totals = proc.get("totals") or {}
    suite.eq("leaks summary.heap.bytes vs report totals.live_bytes (the DTVs)",
             totals.get("live_bytes"), ((leak_proc.get("summary") or {}).get("heap") or {}).get("bytes"))
    suite.eq("report totals.live_bytes = everything but the producer blocks",
             (totals.get("allocated_bytes") or 0) - 352000, totals.get("live_bytes"))


def solo_handoff(suite, attempt):
    outdir, report, leaks, expect = mt.check_program(suite, "solo_handoff")
    proc = mt.one_process(suite, report, "solo_handoff", "report")
    totals = proc.get("totals") or {}
    suite.eq("report totals.live_bytes = everything but the two sites' blocks",
             (totals.get("allocated_bytes") or 0) - 8400000 - 480000, totals.get("live_bytes"))


def main():
    suite = mt.Suite("e2e-threads")
    for attempt in range(1, 4):
        suite.case(f"threads run {attempt}", threads, attempt)
    for attempt in range(1, 4):
        suite.case(f"solo_handoff run {attempt}", solo_handoff, attempt)
    suite.finish()


if __name__ == "__main__":
    main()
