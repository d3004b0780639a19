#!/usr/bin/env python3
"""e2e-cli_control: `memlens status|top|dump|trim|reset-peak TARGET` and `memlens trends`.

`steady` (1000 bytes every 10 ms, in steady_alloc) runs under the real preload; the CLI asks it
by PID (found through MEMLENS_OUT in its environment, or its cwd's memlens-steady-PID/) and by
run directory, as text and --json; bad targets exit 2 with one line. Then `memlens trends --json`
on finished runs: `grow_linear` (2,500,000 bytes/s for 3 s in grow_alloc) must be a `linear` heap
with the true rate (±15 %) and confidence >= 80, its top site grow_alloc, whose block age the heap
uses; `churn` (constant live set) must be a `stable` heap with confidence <= 20 and no block age."""
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import memlens_test as mt  # noqa: E402

GROW_RATE = 2_500_000.0   # bytes/s, from grow_linear.c: 25,000 bytes every 10 ms


def cli(*args, timeout=30):
    return mt.run([mt.CLI, *args], timeout=timeout)


def start_steady(outdir=None, cwd=None):
    env = mt.clean_env({"LD_PRELOAD": mt.LIB, "MEMLENS_INTERVAL": "100ms"})
    if outdir:
        env["MEMLENS_OUT"] = outdir
    proc = subprocess.Popen([mt.program("steady")], env=env, cwd=cwd, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    run_dir = outdir or os.path.join(cwd, f"memlens-steady-{proc.pid}")
    sock = os.path.join(run_dir, f"memlens.{proc.pid}.sock")
    deadline = time.time() + 10
    while time.time() < deadline and not os.path.exists(sock):
        time.sleep(0.05)
    time.sleep(0.5)   # some allocations first
    return proc, run_dir, sock


def stop(proc):
    proc.kill()
    proc.wait(timeout=10)


def ok_json(suite, label, res):
    if not suite.check(res.returncode == 0, f"{label}: {res.describe()}"):
        return {}
    try:
        doc = json.loads(res.stdout)
    except ValueError:
        suite.fail(f"{label}: not JSON: {res.stdout!r}")
        return {}
    suite.eq(f"{label} ok", True, doc.get("ok"))
    return doc


def control_commands(suite):
    outdir = os.path.join(mt.new_dir("cli-control"), "run")
    proc, run_dir, sock = start_steady(outdir=outdir)
    try:
        suite.require(os.path.exists(sock), f"no control socket {sock}")
        pid = str(proc.pid)
        for target in (pid, run_dir):
            st = ok_json(suite, f"status --json {target}", cli("status", "--json", target))
            suite.eq("status pid", proc.pid, st.get("pid"))
            suite.check(st.get("heap_live", 0) >= 10000, f"status heap_live: {st}")
            for field in ("rss", "heap_peak", "mmap_live", "sites", "threads", "stream"):
                suite.check(field in st, f"status --json lacks {field}: {st}")
        text = cli("status", pid)
        suite.check(text.returncode == 0 and "heap live" in text.stdout and "KiB" in text.stdout,
                    f"status text: {text.describe()}")
        top = cli("top", "3", pid)
        suite.check(top.returncode == 0 and "steady_alloc" in top.stdout and "steady.c" in top.stdout,
                    f"top names steady_alloc (steady.c): {top.describe()}")
        top_dir = cli("top", run_dir)
        suite.check(top_dir.returncode == 0 and "steady_alloc" in top_dir.stdout,
                    f"top by run dir: {top_dir.describe()}")
        tj = ok_json(suite, "top --json", cli("top", "2", "--json", pid))
        sites = tj.get("sites") or []
        suite.check(0 < len(sites) <= 2 and sites[0].get("live_bytes", 0) % 1000 == 0
                    and sites[0].get("live_bytes", 0) >= 10000, f"top --json sites: {sites}")
        dump = ok_json(suite, "dump --json", cli("dump", "--json", run_dir))
        suite.eq("dump number", 1, dump.get("dump"))
        dtext = cli("dump", pid)
        suite.check(dtext.returncode == 0 and "dump #2" in dtext.stdout, f"dump text: {dtext.describe()}")
        trim = ok_json(suite, "trim --json", cli("trim", "--json", pid))
        suite.check(trim.get("rss_before", 0) > 0 and "rss_after" in trim, f"trim: {trim}")
        ttext = cli("trim", run_dir)
        suite.check(ttext.returncode == 0 and "rss before" in ttext.stdout, f"trim text: {ttext.describe()}")
        ok_json(suite, "reset-peak --json", cli("reset-peak", "--json", pid))
        rtext = cli("reset-peak", run_dir)
        suite.check(rtext.returncode == 0 and "reset" in rtext.stdout, f"reset-peak text: {rtext.describe()}")
        bad_n = cli("top", "0", pid)
        suite.eq("top 0 exit", 2, bad_n.returncode)
    finally:
        stop(proc)
    # the process is gone: its pid and its (stale or removed) socket are errors
    for args in (("status", str(proc.pid)), ("top", run_dir), ("status", "/nonexistent-memlens-dir"),
                 ("status", mt.new_dir("cli-control-empty")), ("status",), ("dump", "--bogus", "1")):
        res = cli(*args)
        suite.eq(f"memlens {' '.join(args)}: exit", 2, res.returncode)
        lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
        suite.check(lines and lines[0].startswith("memlens"), f"one error line: {res.stderr!r}")
        suite.eq(f"memlens {' '.join(args)}: stdout", "", res.stdout)
    res = cli("status", "1")   # init: not traced (or not readable): still one line, exit 2
    suite.eq("status of an untraced pid: exit", 2, res.returncode)


def control_by_cwd(suite):
    cwd = mt.new_dir("cli-control-cwd")
    proc, run_dir, sock = start_steady(cwd=cwd)
    try:
        suite.require(os.path.exists(sock), f"no control socket {sock} in the default run dir")
        st = ok_json(suite, "status by pid (default run dir)", cli("status", "--json", str(proc.pid)))
        suite.eq("status pid", proc.pid, st.get("pid"))
        top = cli("top", str(proc.pid))
        suite.check(top.returncode == 0 and "steady_alloc" in top.stdout, f"top: {top.describe()}")
    finally:
        stop(proc)


def traced(name):
    outdir = os.path.join(mt.new_dir("cli-trends-" + name), "run")
    env = mt.clean_env({"LD_PRELOAD": mt.LIB, "MEMLENS_OUT": outdir, "MEMLENS_INTERVAL": "100ms"})
    res = mt.run([mt.program(name)], env=env, timeout=60)
    if res.returncode != 0:
        raise mt.CaseFailed(res.describe())
    return outdir


def trends_doc(suite, outdir):
    res = cli("trends", "--json", outdir)
    suite.require(res.returncode == 0, f"trends: {res.describe()}")
    doc = json.loads(res.stdout)
    procs = doc.get("processes") or []
    suite.require(len(procs) == 1, f"one process expected: {len(procs)}")
    return procs[0]


def trends_linear(suite):
    outdir = traced("grow_linear")
    proc = trends_doc(suite, outdir)
    metrics = proc.get("metrics") or {}
    for key in ("rss", "heap", "mmap"):
        m = metrics.get(key) or {}
        for field in ("pattern", "rate_bps", "mb_per_min", "r2", "confidence", "samples"):
            suite.check(field in m, f"metrics.{key} lacks {field}: {m}")
    heap = metrics.get("heap") or {}
    suite.eq("heap pattern", "linear", heap.get("pattern"))
    rate = heap.get("rate_bps") or 0.0
    suite.check(abs(rate - GROW_RATE) <= 0.15 * GROW_RATE, f"heap rate {rate} B/s, true {GROW_RATE}")
    suite.check(abs(heap.get("mb_per_min", 0) - rate * 60 / 1048576) < 0.01,
                f"mb_per_min agrees with rate_bps: {heap}")
    suite.ge("heap confidence", 80, heap.get("confidence"))
    suite.eq("heap samples (default window)", 20, heap.get("samples"))
    sites = proc.get("sites") or []
    suite.require(sites, "no sites")
    top = sites[0]
    suite.eq("top growing site function", "grow_alloc", mt.function_name((top.get("stack") or [{}])[0]))
    suite.eq("top growing site pattern", "linear", top.get("pattern"))
    suite.ge("top growing site confidence", 80, top.get("confidence"))
    for field in ("site", "kind", "rate_bps", "mb_per_min", "r2", "samples", "block_age_s"):
        suite.check(field in top, f"site lacks {field}: {top}")
    age = top.get("block_age_s")
    suite.check(isinstance(age, float) and 0 < age <= top.get("span_s", 0),
                f"top site block_age_s within its window: {top}")
    suite.eq("heap block_age_s = top growing site's", age, heap.get("block_age_s"))
    suite.eq("mmap block_age_s (no mapping site grows)", None, metrics.get("mmap", {}).get("block_age_s", "absent"))
    small = trends_doc_window(suite, outdir, 8)
    suite.eq("--window 8 samples", 8, (small.get("metrics") or {}).get("heap", {}).get("samples"))
    text = cli("trends", outdir)
    suite.check(text.returncode == 0 and "linear" in text.stdout and "grow_alloc" in text.stdout,
                f"trends text: {text.describe()}")
    suite.eq("--window 3 exit", 2, cli("trends", "--window", "3", outdir).returncode)


def trends_doc_window(suite, outdir, n):
    res = cli("trends", "--json", "--window", str(n), outdir)
    suite.require(res.returncode == 0, f"trends --window: {res.describe()}")
    return json.loads(res.stdout)["processes"][0]


def trends_stable(suite):
    outdir = traced("churn")
    proc = trends_doc(suite, outdir)
    heap = (proc.get("metrics") or {}).get("heap") or {}
    suite.eq("churn heap pattern", "stable", heap.get("pattern"))
    suite.le("churn heap confidence", 20, heap.get("confidence"))
    suite.eq("churn heap block_age_s (nothing grows)", None, heap.get("block_age_s", "absent"))


def main():
    suite = mt.Suite("e2e-cli_control")
    mt.require_tools(suite)
    suite.case("control commands by pid and run dir", control_commands)
    suite.case("pid without MEMLENS_OUT: cwd's memlens-steady-PID/", control_by_cwd)
    suite.case("trends: linear growth", trends_linear)
    suite.case("trends: steady churn is stable", trends_stable)
    suite.finish()


if __name__ == "__main__":
    main()
