#!/usr/bin/env python3
"""e2e-sigkill: `steady` allocates 1000 bytes every 10 ms and is SIGKILLed after ~2.5 s with
MEMLENS_INTERVAL=200ms.

Asserts: memlens run exits 128+9; the stream has a header, no end record, no malformed line
other than a truncated last one; `memlens report --json` and `memlens leaks --json` succeed;
the steady_alloc site holds N allocations of 1000 bytes, none freed, with N at least what the
program had reported more than interval + 0.4 s before the kill, and at most what 10 ms sleeps
allow since the start."""
import os
import re
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import memlens_test as mt  # noqa: E402

INTERVAL_S = 0.2
RUN_FOR_S = 2.5
SLACK_S = 0.4


def sigkill(suite):
    mt.require_tools(suite)
    base = mt.new_dir("sigkill")
    outdir = os.path.join(base, "run")
    cmd = [mt.CLI, "run", "--out", outdir, "--", mt.program("steady")]
    started = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=base, env=mt.clean_env({"MEMLENS_INTERVAL": "200ms"}),
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)
    progress = []  # (monotonic time the line was read, allocations made by then)
    child_pid = []
    err_chunks = []

    def read_stdout():
        for raw in proc.stdout:
            line = raw.decode("utf-8", "replace").strip()
            now = time.monotonic()
            match = re.fullmatch(r"n=(\d+)", line)
            if match:
                progress.append((now, int(match.group(1))))
            match = re.fullmatch(r"pid=(\d+)", line)
            if match:
                child_pid.append(int(match.group(1)))

    def read_stderr():
        err_chunks.append(proc.stderr.read())

    readers = [threading.Thread(target=read_stdout, daemon=True),
               threading.Thread(target=read_stderr, daemon=True)]
    for reader in readers:
        reader.start()
    try:
        deadline = time.monotonic() + 20
        while not child_pid and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.02)
        suite.require(child_pid, "steady never printed its pid (memlens run exit status "
                                 f"{proc.poll()})")
        time.sleep(max(0.0, started + RUN_FOR_S - time.monotonic()))
        killed_at = time.monotonic()
        os.kill(child_pid[0], signal.SIGKILL)
        try:
            status = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            raise mt.CaseFailed("memlens run did not return within 30 s after its child was killed")
    finally:
        if proc.poll() is None:
            mt.kill_group(proc)
            proc.wait()
    for reader in readers:
        reader.join(timeout=5)
    stderr = b"".join(c for c in err_chunks if c).decode("utf-8", "replace")
    suite.eq("memlens run exit status after SIGKILL of the program", 128 + signal.SIGKILL, status)

    streams = mt.read_streams(outdir)
    suite.require(len(streams) == 1, f"expected 1 stream, got {[s.name for s in streams]} "
                                     f"(memlens stderr: {mt.tail(stderr, 500)})")
    stream = streams[0]
    mt.check_stream_basics(suite, stream, must_end=False)
    suite.check(stream.end is None, f"{stream.name}: a killed process cannot have an end record, got {stream.end}")
    suite.ge("snapshot records before the kill (200 ms interval, ~2.5 s)", 5,
             len(stream.of_type("snapshot")))

    report = mt.cli_json(suite, "report", outdir)
    mt.cli_json(suite, "leaks", outdir)
    proc_doc = mt.one_process(suite, report, "steady", "report")
    sites = mt.entries_of_function(suite, proc_doc.get("sites") or [], "steady_alloc",
                                   "report sites of steady_alloc")
    allocations = mt.total(sites, "allocations")
    suite.eq("steady_alloc frees", 0, mt.total(sites, "frees"))
    suite.eq("steady_alloc allocated_bytes = 1000 x allocations", 1000 * allocations,
             mt.total(sites, "allocated_bytes"))
    suite.eq("steady_alloc live_bytes = 1000 x allocations", 1000 * allocations,
             mt.total(sites, "live_bytes"))
    suite.eq("steady_alloc live_blocks = allocations", allocations, mt.total(sites, "live_blocks"))

    flushed_by = killed_at - INTERVAL_S - SLACK_S
    seen = [n for t, n in progress if t <= flushed_by]
    suite.check(seen, f"no progress line was read more than {INTERVAL_S + SLACK_S} s before the kill")
    lower = max(seen) if seen else 1
    upper = int((killed_at - started) / 0.010) + 1
    print(f"    killed after {killed_at - started:.2f} s; progress lines {len(progress)}, "
          f"last n={progress[-1][1] if progress else None}; bounds [{lower}, {upper}], "
          f"got {allocations}")
    suite.ge("steady_alloc allocations (reported by the program before the last sure flush)",
             lower, allocations)
    suite.le("steady_alloc allocations (10 ms sleeps since the start)", upper, allocations)
    suite.ge("progress lines before the kill (the program ran)", 5, len(progress))


def main():
    suite = mt.Suite("e2e-sigkill")
    suite.case("steady killed with SIGKILL", sigkill)
    suite.finish()


if __name__ == "__main__":
    main()
