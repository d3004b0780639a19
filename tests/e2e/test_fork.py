#!/usr/bin/env python3
"""e2e-fork: parent and two children leak different amounts (fork_leaks); a signal handler that
forks while the program is inside memlens (fork_in_handler).

Asserts three streams, each with header and end (reason exit, also for the child that calls
_exit); children have fork:true, ppid = parent pid and parent = the parent's stream name; exact
report totals, sites and leaks per process; status and stdout unchanged."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import memlens_test as mt  # noqa: E402


def owner_of(proc, function):
    return any(mt.function_name(mt.frame0(s)) == function for s in proc.get("sites") or [])


def fork_leaks(suite):
    mt.require_tools(suite)
    expect = mt.load_expect("fork_leaks")
    outdir, _ = mt.traced_run(suite, [mt.program("fork_leaks")], "fork", expect_status=0)
    streams = mt.read_streams(outdir)
    suite.require(len(streams) == 3, f"expected 3 streams (parent + 2 children), got "
                                     f"{[s.name for s in streams]}")
    for stream in streams:
        mt.check_stream_basics(suite, stream)
        suite.eq(f"{stream.name}: end reason", "exit", (stream.end or {}).get("reason"))
        suite.eq(f"{stream.name}: end status", 0, (stream.end or {}).get("status"))
    parents = [s for s in streams if not (s.header or {}).get("fork")]
    suite.require(len(parents) == 1, f"expected 1 stream without fork:true, got {[s.name for s in parents]}")
    parent = parents[0]
    parent_pid = parent.header.get("pid")
    for child in (s for s in streams if s is not parent):
        header = child.header or {}
        suite.eq(f"{child.name}: header fork", True, header.get("fork"))
        suite.eq(f"{child.name}: header ppid (parent pid)", parent_pid, header.get("ppid"))
        suite.eq(f"{child.name}: header parent (parent stream)", parent.name, header.get("parent"))
        suite.check(header.get("pid") != parent_pid, f"{child.name}: child pid equals parent pid")

    report = mt.cli_json(suite, "report", outdir)
    leaks = mt.cli_json(suite, "leaks", outdir)
    suite.require(len(report["processes"]) == 3,
                  f"report: expected 3 processes, got {len(report['processes'])}")
    by_role = {}
    for proc in report["processes"]:
        if proc.get("pid") == parent_pid:
            by_role.setdefault("parent", []).append(proc)
        elif owner_of(proc, "child_leak"):
            by_role.setdefault("child_exit", []).append(proc)
        elif owner_of(proc, "child_exit_leak"):
            by_role.setdefault("child__exit", []).append(proc)
        else:
            suite.fail(f"report: process {proc.get('pid')} has none of the expected sites: "
                       f"{sorted({str(mt.function_name(mt.frame0(s))) for s in proc.get('sites') or []})}")
    for role, numbers in expect["processes"].items():
        found = by_role.get(role, [])
        if not suite.check(len(found) == 1, f"report: expected 1 process for {role}, got {len(found)}"):
            continue
        proc = found[0]
        if role != "parent":
            suite.eq(f"{role}: report ppid", parent_pid, proc.get("ppid"))
        mt.check_report_process(suite, role, proc, numbers["report"])
        leak_procs = mt.process_by_pid(leaks, proc.get("pid"))
        if suite.check(len(leak_procs) == 1, f"leaks: expected 1 process with pid {proc.get('pid')}"):
            mt.check_leaks_process(suite, role, leak_procs[0], numbers["leaks"])


def fork_in_handler(suite):
    """A SIGALRM handler forks 100 times while the program mallocs and frees: the run ends (it hung
    when memlens's fork handlers waited for locks that the interrupted memlens code held), the
    parent's stream is complete, and every child that has a stream is a complete fork child."""
    mt.require_tools(suite)
    outdir, _ = mt.traced_run(suite, [mt.program("fork_in_handler")], "fork-in-handler", timeout=60,
                              expect_status=0)
    streams = mt.read_streams(outdir)
    parents = [s for s in streams if not (s.header or {}).get("fork")]
    suite.require(len(parents) == 1, f"expected 1 stream without fork:true, got {[s.name for s in parents]}")
    parent = parents[0]
    suite.check(len(streams) <= 101, f"at most 100 children: {len(streams)} streams")
    for stream in streams:
        mt.check_stream_basics(suite, stream)
        suite.eq(f"{stream.name}: end reason", "exit", (stream.end or {}).get("reason"))
        if stream is not parent:
            suite.eq(f"{stream.name}: header parent", parent.name, (stream.header or {}).get("parent"))
    report = mt.cli_json(suite, "report", outdir)
    suite.eq("report: one process per stream", len(streams), len(report["processes"]))


def main():
    suite = mt.Suite("e2e-fork")
    suite.case("fork_leaks", fork_leaks)
    suite.case("fork_in_handler", fork_in_handler)
    suite.finish()


if __name__ == "__main__":
    main()
