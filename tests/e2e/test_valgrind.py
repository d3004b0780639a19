#!/usr/bin/env python3
"""e2e-valgrind: memlens agrees with valgrind on the same programs.

Each program runs under `valgrind --leak-check=no --run-libc-freeres=no --run-cxx-freeres=no`
(no freeres: memlens sees the process as it ends, with the stdout buffer and libstdc++'s
emergency pool still allocated) and under memlens.  Asserted:
  valgrind "in use at exit: X bytes in N blocks" == memlens leaks summary.heap {bytes, blocks}
  valgrind "total heap usage: A allocs, F frees, B bytes allocated" == memlens report totals
  {allocations, frees, allocated_bytes}
and valgrind's numbers equal the expect file's (a check of the derivation itself).  threads and
solo_handoff: counts only (the DTV size depends on the TLS modules loaded, memlens's included).  Not here:
fork/exec (several processes), dlopen (ld.so's allocations depend on the objects loaded),
pvalloc (valgrind 3.19 aborts on it), steady (killed).  Skips (77) without valgrind."""
import os
import re
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import memlens_test as mt  # noqa: E402

VALGRIND_OPTIONS = ["--leak-check=no", "--run-libc-freeres=no", "--run-cxx-freeres=no",
                    "--error-exitcode=0"]


def number(text):
    return int(text.replace(",", ""))


def valgrind_numbers(suite, argv, workdir):
    log = os.path.join(workdir, "valgrind.log")
    result = mt.run(["valgrind", f"--log-file={log}", *VALGRIND_OPTIONS, *argv], timeout=300,
                    cwd=workdir)
    with open(log, errors="replace") as handle:
        text = handle.read()
    in_use = re.search(r"in use at exit: ([\d,]+) bytes in ([\d,]+) blocks", text)
    usage = re.search(r"total heap usage: ([\d,]+) allocs, ([\d,]+) frees, ([\d,]+) bytes allocated",
                      text)
    suite.require(in_use and usage, f"valgrind summary not found in its log:\n{mt.tail(text)}")
    return result, {
        "in_use_bytes": number(in_use.group(1)), "in_use_blocks": number(in_use.group(2)),
        "allocs": number(usage.group(1)), "frees": number(usage.group(2)),
        "allocated_bytes": number(usage.group(3)),
    }


def compare(suite, name, counts_only=False):
    mt.require_tools(suite)
    if name == "cxx_new" and not mt.have_cpp():
        mt.skip("no C++ compiler: cxx_new not built")
    argv = [mt.program(name)]
    expect = mt.load_expect(name)
    workdir = mt.new_dir(f"valgrind-{name}")
    result, vg = valgrind_numbers(suite, argv, workdir)
    suite.eq(f"{name}: exit status under valgrind", expect.get("exit_status", 0), result.returncode)
    for field, value in expect.get("valgrind", {}).items():
        suite.eq(f"{name}: valgrind {field} vs expect file (derivation check)", value, vg[field])

    outdir, _ = mt.traced_run(suite, argv, f"valgrind-{name}-memlens", compare_plain=False)
    report = mt.one_process(suite, mt.cli_json(suite, "report", outdir), name, "report")
    leaks = mt.one_process(suite, mt.cli_json(suite, "leaks", outdir), name, "leaks")
    totals = report.get("totals") or {}
    heap = (leaks.get("summary") or {}).get("heap") or {}
    pairs = [("in use at exit: blocks", "in_use_blocks", heap.get("blocks")),
             ("total heap usage: allocs", "allocs", totals.get("allocations")),
             ("total heap usage: frees", "frees", totals.get("frees"))]
    if not counts_only:
        pairs += [("in use at exit: bytes", "in_use_bytes", heap.get("bytes")),
                  ("total heap usage: bytes allocated", "allocated_bytes",
                   totals.get("allocated_bytes"))]
    for label, field, got in pairs:
        suite.eq(f"{name}: memlens vs valgrind {label}", vg[field], got)


def main():
    suite = mt.Suite("e2e-valgrind")
    if shutil.which("valgrind") is None:
        print("SKIP: valgrind is not installed")
        sys.exit(mt.SKIP_EXIT)
    for name in ("plain_leaks", "stdio_buf", "kinds", "mmap_leaks", "cxx_new", "signal_alloc"):
        suite.case(name, compare, name)
    suite.case("threads (counts only)", compare, "threads", counts_only=True)
    suite.case("solo_handoff (counts only)", compare, "solo_handoff", counts_only=True)
    suite.finish()


if __name__ == "__main__":
    main()
