#!/usr/bin/env python3
"""e2e-leaks: plain malloc/free leaks (plain_leaks), the stdout buffer (stdio_buf) and an allocation
in a signal handler (signal_alloc: its stack crosses the signal frame through libunwind), and a thread
cancelled inside getline (cancel_getline: glibc unwinds it through memlens's wrapper; the program
must not hang on the FILE lock getline's cleanup releases).

Asserts, from the expect files: exit status and stdout unchanged under memlens; one stream with
header and end; report totals (allocations, frees, allocated/live bytes, live blocks, exact heap
peak), per-function sites (first frame) and per-kind sums; leaks summary and leaked blocks per
function; the leak site's file and line; the 2 MiB block's op records; no mmap site for
glibc's internal mmap of the 2 MiB block."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import memlens_test as mt  # noqa: E402


def plain_leaks(suite):
    outdir, report, leaks, _ = mt.check_program(suite, "plain_leaks")
    proc = mt.one_process(suite, report, "plain_leaks", "report")
    sites = proc.get("sites") or []
    three = [s for s in sites if mt.function_name(mt.frame0(s)) == "leak_three"]
    line = mt.marker_line("plain_leaks.c", "LEAK-SITE leak_three")
    mt.check_frame_location(suite, "report", three, "leak_three", "plain_leaks.c", line=line,
                            obj="plain_leaks")
    suite.eq("report: sites of leak_three (one call site in a loop)", 1, len(three))
    for site in three:
        suite.check("main" in mt.stack_functions(site),
                    f"leak_three site: main missing from stack {mt.stack_functions(site)}")
    suite.check(not [s for s in sites if str(s.get("kind")).startswith("mmap")],
                "report: glibc's internal mmap for the 2 MiB malloc must not be a site: "
                f"{[(s.get('kind'), mt.stack_functions(s)[:3]) for s in sites if str(s.get('kind')).startswith('mmap')]}")
    leak_proc = mt.one_process(suite, leaks, "plain_leaks", "leaks")
    mt.check_frame_location(suite, "leaks", leak_proc.get("leaks") or [], "leak_three",
                            "plain_leaks.c", line=line)

    stream = mt.read_streams(outdir)[0]
    header = stream.header or {}
    suite.check(os.path.basename(str(header.get("exe"))) == "plain_leaks",
                f"header exe: expected …/plain_leaks, got {header.get('exe')!r}")
    suite.eq("header mode", "full", header.get("mode"))
    suite.eq("end record reason", "exit", (stream.end or {}).get("reason"))
    suite.eq("end record status", 0, (stream.end or {}).get("status"))
    ops = [r for r in stream.of_type("op") if r.get("size") == 2 * 1024 * 1024]
    kinds = sorted(str(r.get("kind")) for r in ops)
    suite.eq("op records of the 2 MiB block (default MEMLENS_OP_MIN 1 MiB)", ["free", "malloc"], kinds)
    small = [r for r in stream.of_type("op") if (r.get("size") or 0) < 1024 * 1024]
    suite.eq("op records below MEMLENS_OP_MIN", [], small)


def stdio_buf(suite):
    mt.check_program(suite, "stdio_buf")


def signal_alloc(suite):
    _, report, _, _ = mt.check_program(suite, "signal_alloc")
    proc = mt.one_process(suite, report, "signal_alloc", "report")
    sites = [s for s in proc.get("sites") or [] if mt.function_name(mt.frame0(s)) == "handler_alloc"]
    for site in sites:
        stack = mt.stack_functions(site)
        suite.check("raise_here" in stack and "main" in stack,
                    f"handler_alloc's stack should cross the signal frame to raise_here and main: {stack}")


def cancel_getline(suite):
    mt.check_program(suite, "cancel_getline")


def main():
    suite = mt.Suite("e2e-leaks")
    suite.case("plain_leaks", plain_leaks)
    suite.case("stdio_buf (stdout buffer counted)", stdio_buf)
    suite.case("signal_alloc (stack through a signal frame)", signal_alloc)
    suite.case("cancel_getline (a thread cancelled inside a wrapper)", cancel_getline)
    suite.finish()


if __name__ == "__main__":
    main()
