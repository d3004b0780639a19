#!/usr/bin/env python3
"""e2e-alerts: live trends and alerts written by the collector (docs/format.md: trend, alert,
alert_summary).

`grow_linear` grows the heap by 2,500,000 bytes/s for 3 s; `churn` keeps a constant live set. Both run
directly under the preload with MEMLENS_INTERVAL=100ms and a fake cgroup v2 tree (MEMLENS_CGROUP_ROOT):
thresholds as a percent of the cgroup limit and as absolute sizes, the growth rule and the heap trend
(linear, rate within 15 %, confidence >= 80), the per-rule rate limit (MEMLENS_ALERT_LIMIT, flapping
cgroup usage rewritten by the test), MEMLENS_ALERT_FD receiving the same lines, and churn judged
`stable` with no growth alert. `spike` holds 64 MiB for 0.3 s (3 samples) over a steady working set: its heap is a
`spike` with confidence 0 and no growth alert, live and in `memlens trends --json`. Block ages: the
growing site of grow_linear (it never frees: exact) against its heap_live snapshots, churn's FIFO site
young, no age for a heap that does not grow."""
import json
import os
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import memlens_test as mt  # noqa: E402

MAX = 1 << 30           # fake memory.max
TRUE_RATE = 2500000.0   # grow_linear, bytes/s


def fake_cgroup(current, limit=MAX):
    root = mt.new_dir("alerts-cgroup")
    with open("/proc/self/cgroup") as handle:
        v2 = [line.split(":", 2)[2].strip() for line in handle if line.startswith("0::")]
    group = os.path.join(root, (v2[0] if v2 else "/").lstrip("/"))
    os.makedirs(group, exist_ok=True)
    set_file(os.path.join(group, "memory.current"), current)
    set_file(os.path.join(group, "memory.max"), limit)
    return root, group


def set_file(path, value):   # atomic replace: the collector never reads a half-written file
    tmp = path + ".tmp"
    with open(tmp, "w") as handle:
        handle.write(f"{value}\n")
    os.replace(tmp, path)


def run_direct(suite, name, env_extra, pass_fds=(), during=None):
    outdir = os.path.join(mt.new_dir("alerts"), "run")
    env = mt.clean_env(env_extra)
    env.update({"LD_PRELOAD": mt.LIB, "MEMLENS_OUT": outdir, "MEMLENS_INTERVAL": "100ms"})
    proc = subprocess.Popen([mt.program(name)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            pass_fds=pass_fds)
    stop = threading.Event()
    worker = None
    if during:
        worker = threading.Thread(target=during, args=(stop,))
        worker.start()
    try:
        out, err = proc.communicate(timeout=60)
    finally:
        stop.set()
        if worker:
            worker.join()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    suite.require(proc.returncode == 0, f"{name} exited {proc.returncode}: {err[-500:]!r}")
    streams = mt.read_streams(outdir)
    suite.require(streams, f"{name}: no stream")
    return streams[0]


def alerts_of(stream, rule=None):
    return [r for r in stream.of_type("alert") if rule is None or r.get("rule") == rule]


def cgroup_levels(suite):
    root, _ = fake_cgroup(MAX * 8 // 10)   # 80 %: warning (60) and critical (75), not emergency (90)
    stream = run_direct(suite, "churn", {"MEMLENS_CGROUP_ROOT": root})
    got = alerts_of(stream, "threshold")
    suite.eq("threshold alerts (levels)", ["warning", "critical"], [a["level"] for a in got])
    for alert, pct in zip(got, (60, 75)):
        suite.eq(f"{alert['level']} metric", "cgroup", alert.get("metric"))
        suite.eq(f"{alert['level']} threshold", MAX * pct // 100, alert.get("threshold"))
        suite.eq(f"{alert['level']} limit", MAX, alert.get("limit"))
        suite.eq(f"{alert['level']} value", MAX * 8 // 10, alert.get("value"))
        suite.check(alert.get("sites"), f"{alert['level']}: no top sites: {alert}")
        suite.eq(f"{alert['level']} suppressed_before", 0, alert.get("suppressed_before"))
    site_ids = {r["id"] for r in stream.of_type("site")}
    for alert in got:
        missing = [row[0] for row in alert.get("sites", []) if row[0] not in site_ids]
        suite.check(not missing, f"alert names sites without a site record: {missing}")


def absolute_levels(suite):
    stream = run_direct(suite, "churn", {"MEMLENS_WARN": "1M", "MEMLENS_CRIT": "100G", "MEMLENS_EMERG": "0"})
    got = alerts_of(stream, "threshold")
    suite.eq("absolute: one warning", ["warning"], [a["level"] for a in got])
    if got:
        suite.eq("absolute: metric", "rss", got[0].get("metric"))
        suite.eq("absolute: threshold", 1 << 20, got[0].get("threshold"))
        suite.check("limit" not in got[0], f"absolute threshold has no limit: {got[0]}")
        suite.ge("absolute: value", 1 << 20, got[0].get("value"))


def rate_limit(suite):
    root, group = fake_cgroup(MAX // 10)

    def flap(stop):   # 80 % / 10 % every 150 ms: the warning level is entered again and again
        high = False
        while not stop.wait(0.15):
            high = not high
            set_file(os.path.join(group, "memory.current"), MAX * 8 // 10 if high else MAX // 10)

    stream = run_direct(suite, "churn", {"MEMLENS_CGROUP_ROOT": root, "MEMLENS_ALERT_LIMIT": "2",
                                         "MEMLENS_WARN": "60%", "MEMLENS_CRIT": "0", "MEMLENS_EMERG": "0"},
                        during=flap)
    got = alerts_of(stream, "threshold")
    suite.eq("rate limit: threshold alerts sent", 2, len(got))
    summary = stream.of_type("alert_summary")
    suite.require(summary, "no alert_summary record")
    rules = summary[-1]["rules"]
    suite.eq("summary: threshold sent", 2, rules["threshold"]["sent"])
    suite.ge("summary: threshold suppressed", 1, rules["threshold"]["suppressed"])


def growth_and_fd(suite):
    read_fd, write_fd = os.pipe()
    try:
        stream = run_direct(suite, "grow_linear", {"MEMLENS_ALERT_FD": str(write_fd), "MEMLENS_WARN": "1M"},
                            pass_fds=(write_fd,))
    finally:
        os.close(write_fd)
    with os.fdopen(read_fd, "rb") as handle:
        fd_lines = [json.loads(line) for line in handle.read().decode().splitlines()]
    heap = [r for r in stream.of_type("trend") if r.get("metric") == "heap"]
    suite.require(heap, "no heap trend records")
    last = heap[-1]
    suite.eq("heap trend pattern", "linear", last.get("pattern"))
    suite.check(abs(last["rate_bps"] - TRUE_RATE) <= 0.15 * TRUE_RATE,
                f"heap rate {last['rate_bps']} not within 15 % of {TRUE_RATE}")
    suite.ge("heap trend confidence", 80, last.get("confidence"))
    suite.check(abs(last["mb_per_min"] - last["rate_bps"] * 60 / 2**20) < 0.01, f"mb_per_min: {last}")
    # the growing function is the fastest-growing site of the live trends (named through memlens trends)
    sites = [r for r in stream.of_type("trend") if r.get("metric") == "site" and r["t"] == last["t"]]
    suite.require(sites, "no site trend with the last heap trend")
    fastest = max(sites, key=lambda r: r["rate_bps"])
    named = {s["site"]: s for s in trends_json(suite, stream).get("sites") or []}
    suite.eq("fastest-growing live site's function", "grow_alloc",
             mt.function_name(mt.frame0(named.get(fastest["site"], {}))))
    suite.eq("fastest-growing live site pattern", "linear", fastest.get("pattern"))
    check_block_age(suite, stream, last, fastest)
    growth = [a for a in alerts_of(stream, "growth") if a.get("metric") == "heap"]
    suite.eq("heap growth alerts", 1, len(growth))
    if growth:
        g = growth[0]
        suite.eq("growth alert pattern", "linear", g.get("pattern"))
        suite.eq("growth threshold (5 MiB/min)", 5 << 20, g.get("threshold"))
        suite.check(abs(g["rate_bps"] - TRUE_RATE) <= 0.15 * TRUE_RATE, f"growth alert rate: {g}")
        suite.ge("growth alert confidence", 50, g.get("confidence"))
    suite.eq("MEMLENS_ALERT_FD lines = stream alert records", stream.of_type("alert"), fd_lines)


def window_span_s(stream, t):
    """Span in seconds of the collector's window (MEMLENS_WINDOW default, 20 samples) ending at t."""
    times = [r["t"] for r in stream.of_type("snapshot") if r["t"] <= t][-20:]
    return (times[-1] - times[0]) / 1e9


def trends_json(suite, stream):
    """`memlens trends --json` on the run of `stream`: its one process."""
    res = mt.run([mt.CLI, "trends", "--json", os.path.dirname(stream.path)], timeout=30)
    suite.require(res.returncode == 0, f"trends: {res.describe()}")
    procs = json.loads(res.stdout).get("processes") or []
    suite.require(len(procs) == 1, f"one process expected: {len(procs)}")
    return procs[0]


def check_block_age(suite, stream, heap, fastest):
    """grow_linear never frees, so the median age of its live blocks is exact from the counters: check it
    against the heap_live of the snapshots (another counter, interpolated here), capped at the window's
    span as documented; the heap trend uses the age of the growing site of the same snapshot."""
    suite.require("block_age_s" in fastest, f"growing site trend lacks block_age_s: {fastest}")
    suite.eq("heap trend block_age_s = growing site's", fastest["block_age_s"], heap.get("block_age_s"))
    snaps = [(r["t"], r["heap_live"]) for r in stream.of_type("snapshot") if r["t"] <= heap["t"]]
    t_end, h_end = snaps[-1]
    half = h_end / 2
    t_star = snaps[0][0]
    for (t0, h0), (t1, h1) in zip(snaps, snaps[1:]):
        if h0 < half <= h1:
            t_star = t0 + (half - h0) / (h1 - h0) * (t1 - t0)
    want = min((t_end - t_star) / 1e9, window_span_s(stream, heap["t"]))
    got = fastest["block_age_s"]
    suite.check(abs(got - want) <= max(0.15, 0.15 * want),
                f"growing site block_age_s {got} s, from the heap_live snapshots {want:.3f} s")


def churn_stable(suite):
    stream = run_direct(suite, "churn", {})
    heap = [r for r in stream.of_type("trend") if r.get("metric") == "heap"]
    suite.require(heap, "no heap trend records")
    suite.eq("churn heap pattern", "stable", heap[-1].get("pattern"))
    suite.le("churn heap confidence", 20, heap[-1].get("confidence"))
    suite.eq("churn growth alerts", [], alerts_of(stream, "growth"))
    suite.check("block_age_s" not in heap[-1], f"no growing site, yet the heap has a block age: {heap[-1]}")
    # churn_alloc frees its oldest slot each time (FIFO): its live blocks are young
    sites = [r for r in stream.of_type("trend") if r.get("metric") == "site" and "block_age_s" in r]
    suite.require(sites, "no site trend with block_age_s")
    span = window_span_s(stream, sites[-1]["t"])
    suite.check(sites[-1]["block_age_s"] < span / 4,
                f"churn site block_age_s {sites[-1]['block_age_s']} s, not young in a {span:.2f} s window")


def spike_freed(suite):
    stream = run_direct(suite, "spike", {})
    heap = [r for r in stream.of_type("trend") if r.get("metric") == "heap"]
    suite.require(heap, "no heap trend records")
    last = heap[-1]
    # the 64 MiB block was seen: an op record, and a snapshot holding it
    big = [op for op in stream.of_type("op") if op.get("kind") == "malloc" and op.get("size") == 64 << 20]
    suite.eq("64 MiB malloc op records", 1, len(big))
    peak = max(r["heap_live"] for r in stream.of_type("snapshot"))
    suite.ge("a snapshot holds the spike", 64 << 20, peak)
    suite.eq("spike heap pattern", "spike", last.get("pattern"))
    suite.eq("spike heap confidence", 0, last.get("confidence"))
    suite.eq("spike growth alerts", [], alerts_of(stream, "growth"))
    offline = (trends_json(suite, stream).get("metrics") or {}).get("heap") or {}
    suite.eq("memlens trends: spike heap pattern", "spike", offline.get("pattern"))
    suite.eq("memlens trends: spike heap confidence", 0, offline.get("confidence"))


def bad_window(suite):
    env = mt.clean_env({"LD_PRELOAD": mt.LIB, "MEMLENS_OUT": os.path.join(mt.new_dir("alerts-bad"), "run"),
                        "MEMLENS_WINDOW": "4"})
    r = subprocess.run([mt.program("churn")], env=env, capture_output=True, timeout=60)
    suite.eq("MEMLENS_WINDOW=4: program still runs", 0, r.returncode)
    suite.check(b"MEMLENS_WINDOW" in r.stderr, f"no error line naming MEMLENS_WINDOW: {r.stderr!r}")


def main():
    suite = mt.Suite("e2e-alerts")
    mt.require_tools(suite)
    suite.case("cgroup percent levels", cgroup_levels)
    suite.case("absolute levels", absolute_levels)
    suite.case("rate limit per rule", rate_limit)
    suite.case("growth alert, heap trend and MEMLENS_ALERT_FD", growth_and_fd)
    suite.case("steady churn is stable", churn_stable)
    suite.case("a freed 64 MiB spike is a spike", spike_freed)
    suite.case("bad MEMLENS_WINDOW", bad_window)
    suite.finish()


if __name__ == "__main__":
    main()
