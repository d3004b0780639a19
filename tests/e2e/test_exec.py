#!/usr/bin/env python3
"""e2e-exec: exec_leaker leaks then execs exec_target, which leaks a different amount.

Asserts two streams with the same pid: seq 0 (exec record, end reason exec) and seq 1 (parent =
the seq-0 stream); both images' report numbers, exec_target's leaks; exit status 3 and stdout
unchanged.  With --no-follow-exec only the first image is traced."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import memlens_test as mt  # noqa: E402


def follow(suite):
    mt.require_tools(suite)
    expect = mt.load_expect("exec_leaker")
    target = mt.program("exec_target")
    outdir, _ = mt.traced_run(suite, [mt.program("exec_leaker"), target], "exec",
                              expect_status=expect["exit_status"])
    streams = mt.read_streams(outdir)
    suite.require(len(streams) == 2, f"expected 2 streams (one per image), got {[s.name for s in streams]}")
    by_seq = {(s.header or {}).get("seq"): s for s in streams}
    suite.require(sorted(by_seq, key=str) == [0, 1], f"stream seqs: expected [0, 1], got {sorted(by_seq, key=str)}")
    first, second = by_seq[0], by_seq[1]
    mt.check_stream_basics(suite, first)
    mt.check_stream_basics(suite, second)
    suite.eq("both images have the same pid", first.header.get("pid"), second.header.get("pid"))
    suite.check(str(first.header.get("exe")).endswith("exec_leaker"),
                f"seq 0 exe: expected …exec_leaker, got {first.header.get('exe')!r}")
    suite.check(str(second.header.get("exe")).endswith("exec_target"),
                f"seq 1 exe: expected …exec_target, got {second.header.get('exe')!r}")
    suite.eq("seq 1 argv", [target, "from-exec"], second.header.get("argv"))
    suite.eq("seq 1 header parent (previous image)", first.name, second.header.get("parent"))
    execs = first.of_type("exec")
    if suite.check(len(execs) == 1, f"seq 0: expected 1 exec record, got {len(execs)}"):
        suite.eq("seq 0 exec record path", target, execs[0].get("path"))
    suite.eq("seq 0 end reason", "exec", (first.end or {}).get("reason"))
    suite.eq("seq 1 end reason", "exit", (second.end or {}).get("reason"))
    suite.eq("seq 1 end status", 3, (second.end or {}).get("status"))

    report = mt.cli_json(suite, "report", outdir)
    leaks = mt.cli_json(suite, "leaks", outdir)
    for exe_name, numbers in expect["processes"].items():
        proc = mt.one_process(suite, report, exe_name, "report")
        mt.check_report_process(suite, exe_name, proc, numbers["report"])
        if "leaks" in numbers:
            mt.check_leaks_process(suite, exe_name, mt.one_process(suite, leaks, exe_name, "leaks"),
                                   numbers["leaks"])


def no_follow(suite):
    mt.require_tools(suite)
    expect = mt.load_expect("exec_leaker")
    outdir, _ = mt.traced_run(suite, [mt.program("exec_leaker"), mt.program("exec_target")],
                              "exec-nofollow", options=["--no-follow-exec"],
                              expect_status=expect["exit_status"])
    streams = mt.read_streams(outdir)
    suite.eq("streams with --no-follow-exec", ["exec_leaker"],
             [os.path.basename(str((s.header or {}).get("exe"))) for s in streams])
    report = mt.cli_json(suite, "report", outdir)
    proc = mt.one_process(suite, report, "exec_leaker", "report")
    mt.check_report_process(suite, "exec_leaker", proc, expect["processes"]["exec_leaker"]["report"])


def main():
    suite = mt.Suite("e2e-exec")
    suite.case("exec followed (two images, same pid)", follow)
    suite.case("exec not followed (--no-follow-exec)", no_follow)
    suite.finish()


if __name__ == "__main__":
    main()
