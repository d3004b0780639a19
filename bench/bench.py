#!/usr/bin/env python3
"""bench.py — memlens overhead against the plain run, heaptrack and LeakSanitizer (run via bench/run).

Model: a *workload* is one command (a C program built here, or python3 on a script). Each *tool*
(plain, memlens, sampled = memlens with MEMLENS_SAMPLE, heaptrack, lsan) turns it into a command line
and an environment, with a fresh output directory per run. For every workload the tools run
interleaved (plain, memlens, sampled, heaptrack, lsan, plain, ...) N times; the table shows each tool's median wall time as a ratio to the plain
median of the same invocation, the bytes it wrote, and the peak RSS from wait4's rusage.
Only the Python standard library is used.
"""
import argparse
import datetime
import json
import os
import platform
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
TOOLS = ("plain", "memlens", "sampled", "heaptrack", "lsan")   # sampled: memlens with MEMLENS_SAMPLE


# ---------------------------------------------------------------- workloads

class Workload:
    """One benchmark program: how to build it, its argv in full and quick mode."""

    def __init__(self, name, what, binary, args, quick_args, env=None, lsan=True):
        self.name, self.what, self.binary = name, what, binary
        self.args, self.quick_args = args, quick_args
        self.env = env or {}
        self.lsan = lsan  # False: the program cannot be built with -fsanitize=leak (python3)


def workloads():
    # Total work is kept similar across the churn variants: 1M replacements in all.
    return [
        Workload("churn-1t", "churn, 1 thread, 1M ops, depth 0-11", "churn",
                 ["1000000", "1", "12"], ["200000", "1", "12"]),
        Workload("churn-2t", "churn, 2 threads x 500k ops", "churn",
                 ["500000", "2", "12"], ["100000", "2", "12"]),
        Workload("churn-8t", "churn, 8 threads x 125k ops", "churn",
                 ["125000", "8", "12"], ["25000", "8", "12"]),
        Workload("churn-d30", "churn, 1 thread, 1M ops, depth 0-29", "churn",
                 ["1000000", "1", "30"], ["200000", "1", "30"]),
        Workload("sites", "5000 distinct call sites x 200 rounds", "sites", ["200"], ["40"]),
        Workload("live-1m", "1M blocks of 16-256 B held to exit", "live", ["1000000"], ["200000"]),
        Workload("python", "python3 alloc_heavy.py (pymalloc)", "python3",
                 [os.path.join(HERE, "alloc_heavy.py"), "60"],
                 [os.path.join(HERE, "alloc_heavy.py"), "12"], lsan=False),
        Workload("python-malloc", "same, PYTHONMALLOC=malloc", "python3",
                 [os.path.join(HERE, "alloc_heavy.py"), "60"],
                 [os.path.join(HERE, "alloc_heavy.py"), "12"],
                 env={"PYTHONMALLOC": "malloc"}, lsan=False),
    ]


def select(all_workloads, patterns):
    """--workload accepts exact names, prefixes (churn) and comma lists."""
    if not patterns:
        return all_workloads
    wanted = [p for arg in patterns for p in arg.split(",") if p]
    chosen = [w for w in all_workloads if any(w.name == p or w.name.startswith(p) for p in wanted)]
    if not chosen:
        sys.exit("bench: no workload matches %s (have: %s)"
                 % (", ".join(wanted), ", ".join(w.name for w in all_workloads)))
    return chosen


# ---------------------------------------------------------------- building

def newer(target, *sources):
    return not os.path.exists(target) or any(os.path.getmtime(s) > os.path.getmtime(target) for s in sources)


def run_build(cmd, timeout=600):
    print("bench: " + " ".join(cmd), file=sys.stderr)
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout, text=True)
    if r.returncode != 0:
        sys.stderr.write(r.stdout[-4000:])
        raise RuntimeError("build failed: " + " ".join(cmd))


def build_workloads(cache, need_lsan):
    """gcc -O2 for the plain/memlens/heaptrack binaries (no frame pointers: the hard case for a
    tracker); clang -O2 -fsanitize=leak for the LSan ones. Rebuilt only when a source is newer."""
    os.makedirs(cache, exist_ok=True)
    sites_c = os.path.join(cache, "sites.c")
    gen = os.path.join(HERE, "gen_sites.py")
    if newer(sites_c, gen):
        run_build([sys.executable, gen, sites_c, "5000"])
    sources = {"churn": os.path.join(HERE, "churn.c"), "sites": sites_c, "live": os.path.join(HERE, "live.c"),
               "empty": os.path.join(HERE, "empty.c")}
    bins = {}
    for name, src in sources.items():
        out = os.path.join(cache, name)
        if newer(out, src):
            run_build(["gcc", "-O2", "-pthread", "-o", out, src])
        bins[name] = out
        if need_lsan and name != "empty":
            lout = out + "-lsan"
            if newer(lout, src):
                run_build(["clang", "-O2", "-pthread", "-fsanitize=leak", "-o", lout, src])
            bins[name + "-lsan"] = lout
    # The distribution's interpreter, not a wrapper such as a pyenv shim (a shell script that would
    # be timed too); else the interpreter running this script.
    bins["python3"] = "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) else sys.executable
    return bins


def probe_lsan(cache):
    """LSan is usable when clang links -fsanitize=leak and the leak check runs here (it needs
    ptrace, refused in many containers). Returns None when usable, else the reason."""
    if not shutil.which("clang"):
        return "clang not installed"
    src, exe = os.path.join(cache, "lsan_probe.c"), os.path.join(cache, "lsan_probe")
    with open(src, "w") as f:
        f.write("#include <stdlib.h>\nvoid *volatile sink;\n"
                "int main(void){ sink = malloc(33); sink = 0; return 0; }\n")
    try:
        r = subprocess.run(["clang", "-O0", "-fsanitize=leak", "-o", exe, src],
                           capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            return "clang -fsanitize=leak does not link (libclang-rt-14-dev missing?)"
        r = subprocess.run([exe], capture_output=True, text=True, timeout=60,
                           env=dict(clean_env(), LSAN_OPTIONS="exitcode=23"))
    except (OSError, subprocess.TimeoutExpired) as e:
        return "probe failed: %s" % e
    if r.returncode == 23 and "detected memory leaks" in r.stderr:
        return None
    return "leak check does not run here (rc %d: %s)" % (r.returncode, r.stderr.strip().splitlines()[-1:] or "")


def find_library(args):
    """MEMLENS_LIB: use as is. BUILD_DIR: an existing (or new) meson build dir, shim target rebuilt.
    Neither: a release build of this tree in a cache dir outside the repo."""
    lib = os.environ.get("MEMLENS_LIB")
    if lib:
        if not os.path.isfile(lib):
            sys.exit("bench: MEMLENS_LIB=%s does not exist" % lib)
        return os.path.abspath(lib), "MEMLENS_LIB"
    build = os.environ.get("BUILD_DIR") or os.path.join(args.cache, "build")
    if not os.path.exists(os.path.join(build, "build.ninja")):
        run_build(["meson", "setup", build, REPO, "-Dtests=false", "-Dbuildtype=release"])
    run_build(["ninja", "-C", build, "shim/libmemlens.so"])
    kind = "BUILD_DIR" if os.environ.get("BUILD_DIR") else "release build in " + build
    return os.path.join(os.path.abspath(build), "shim", "libmemlens.so"), kind


# ---------------------------------------------------------------- running

def clean_env():
    """The caller's environment without anything that would change what is measured."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("MEMLENS_", "LSAN_", "ASAN_", "HEAPTRACK")) and k not in ("LD_PRELOAD", "PYTHONMALLOC")}
    return env


def tool_command(tool, w, bins, lib, outdir, quick, memlens_env, sample="512KiB"):
    """argv and env of one run of workload w under tool, writing into outdir."""
    args = w.quick_args if quick else w.args
    env = clean_env()
    env.update(w.env)
    if tool == "lsan":
        # Leaks reported (none expected: every workload frees or keeps its blocks reachable)
        # go to a file in outdir; exitcode=0 so a report is not counted as a failure.
        env["LSAN_OPTIONS"] = "exitcode=0:log_path=" + os.path.join(outdir, "lsan")
        return ["env", bins[w.binary + "-lsan"]] + args, env
    # Every command starts with env(1): the preload is set by env for the program's exec only, so
    # /usr/bin/time (the RSS probe wrapped around every run) is not tracked; plain and the peers
    # pay the same extra exec.
    argv = ["env", bins[w.binary]] + args
    if tool in ("memlens", "sampled"):
        env["MEMLENS_OUT"] = outdir
        env.update(memlens_env)
        if tool == "sampled":
            env["MEMLENS_SAMPLE"] = sample
        return ["env", "LD_PRELOAD=" + lib] + argv[1:], env
    if tool == "heaptrack":
        return ["env", "heaptrack", "-o", os.path.join(outdir, "heaptrack.out")] + argv[1:], env
    return argv, env


class Result:
    def __init__(self, seconds, cpu, maxrss_kib, out_bytes, round_no):
        self.seconds, self.cpu, self.maxrss_kib, self.out_bytes = seconds, cpu, maxrss_kib, out_bytes
        self.round_no = round_no


def fmt_ratio(v):
    """A ratio as the table shows it: 1.23x, FAIL (the tool failed), ? (no plain run to divide by)."""
    return v if isinstance(v, str) else "%.2fx" % v if v else "?"


def number(v):
    """The ratio as a number, None when the tool failed or it is unknown."""
    return v if isinstance(v, float) else None


NOISY_SPREAD = 1.25   # slowest / fastest plain run of a workload above which the table says it was noisy


def print_targets(summary, figures):
    """The performance issue's targets, checked against this invocation (workloads not run: n/a)."""
    ratio = {name: r for name, r, _ in summary}
    paired = {name: pr for name, _, pr in summary}

    def line(what, figure, met):
        print("  %-44s %-44s %s" % (what, figure, "n/a" if met is None else "met" if met else "MISSED"))

    print("targets:")
    full = number(ratio.get("churn-1t", {}).get("memlens"))
    line("full mode, churn-1t <= 2.00x", "%.2fx (paired %s)" % (full, fmt_ratio(paired["churn-1t"].get("memlens"))) if full else "n/a",
         full <= 2.0 if full else None)
    heap = number(ratio.get("churn-1t", {}).get("heaptrack"))
    line(">= 3x faster than heaptrack (churn-1t)", "%.1fx" % (heap / full) if heap and full else "n/a",
         heap / full >= 3 if heap and full else None)
    sampled = {name: number(r.get("sampled")) for name, r in ratio.items()}
    over = ["%s %.2fx (paired %s)" % (n, v, fmt_ratio(paired[n].get("sampled"))) for n, v in sampled.items() if v and v > 1.10]
    known = [v for v in sampled.values() if v]
    line("sampled <= 1.10x on every workload", ("over: " + ", ".join(over)) if over else
         ("max %.2fx" % max(known) if known else "n/a"), not over if known else None)
    eight = number(ratio.get("churn-8t", {}).get("memlens"))
    line("full mode churn-8t / churn-1t <= 1.25", "%.2f" % (eight / full) if eight and full else "n/a",
         eight / full <= 1.25 if eight and full else None)
    blocks = {n: f["per_block"] for n, f in figures.items() if f.get("per_block") is not None}
    line("map <= 48 B per live block", ", ".join("%s %.1f B" % kv for kv in blocks.items()) or "n/a",
         all(v <= 48 for v in blocks.values()) if blocks else None)
    outs = figures.get("churn-1t", {}).get("out", {})
    mine, theirs = outs.get("memlens"), outs.get("heaptrack")
    line("output <= 1/20 of heaptrack's (churn-1t)", "1/%.0f" % (theirs / mine) if mine and theirs else "n/a",
         theirs >= 20 * mine if mine and theirs else None)
    # A workload whose plain runs spread widely ran while the machine changed speed (a VM sharing its
    # host): its medians moved with that, its paired ratios less.
    for name, f in figures.items():
        lo, hi = f.get("plain_spread") or (0, 0)
        if lo > 0 and hi / lo > NOISY_SPREAD:
            print("noise: %s plain runs %.3f..%.3f s (%.2fx apart): the machine changed speed during this workload; "
                  "its paired ratios are the steadier figures" % (name, lo, hi, hi / lo))


def paired_ratio(rs, plain):
    """Median over the rounds of (this run / the plain run of the same round): the runs of a round
    follow each other, so a machine whose speed drifts (a VM's CPU shared with others) moves both."""
    base = {r.round_no: r.seconds for r in plain}
    pairs = [r.seconds / base[r.round_no] for r in rs if base.get(r.round_no)]
    return statistics.median(pairs) if pairs else None


def dir_bytes(path):
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(root, f)).st_size
            except OSError:
                pass
    return total


# heaptrack_interpret has been seen to grow past 18 GiB on the `sites` workload (24 GiB machine,
# shared with others): heaptrack's runs get an address-space limit and fail instead.
HEAPTRACK_AS_LIMIT = 4 << 30
LIB_COPIES = 3
GNU_TIME = "/usr/bin/time" if os.access("/usr/bin/time", os.X_OK) else None


def run_once(argv, env, timeout, log_path, as_limit=None, cpus=None):
    """Wall time of argv from fork to reaping, its peak RSS in KiB, its exit code (negative: the
    signal that killed it), user+system CPU seconds of the whole tree, and whether it ran past timeout (then its process group is killed).

    Peak RSS comes from /usr/bin/time -f %M when present: rusage's maxrss of a child includes the
    high-water mark of the process it was forked from before exec, so wait4 on a child of this
    python would report at least python's own RSS. Without GNU time, wait4 is used (an upper bound).
    Either way it is the largest process of the tree that was waited for.
    as_limit: RLIMIT_AS in bytes for the whole tree (heaptrack's runs: see HEAPTRACK_AS_LIMIT).
    cpus: the CPUs the whole tree may run on (--pin), or None."""
    rss_file = log_path + ".rss"
    if GNU_TIME:
        argv = [GNU_TIME, "-f", "%M", "-o", rss_file] + argv
    with open(log_path, "wb") as log:
        start = time.perf_counter()
        def limit():
            if as_limit:
                resource.setrlimit(resource.RLIMIT_AS, (as_limit, as_limit))
            if cpus:
                os.sched_setaffinity(0, cpus)
        proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                start_new_session=True, preexec_fn=limit if as_limit or cpus else None)
        fired = threading.Event()

        def kill():
            fired.set()
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

        timer = threading.Timer(timeout, kill)
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        seconds = time.perf_counter() - start
    rc, rss = os.waitstatus_to_exitcode(status), usage.ru_maxrss
    cpu = usage.ru_utime + usage.ru_stime
    if GNU_TIME and not fired.is_set():
        try:
            with open(rss_file) as f:
                lines = f.read().strip().splitlines()
            rss = int(lines[-1])
            for line in lines[:-1]:
                if line.startswith("Command terminated by signal"):
                    rc = -int(line.split()[-1])
        except (OSError, ValueError, IndexError):
            rss = None
    return seconds, cpu, rc, rss, fired.is_set()


def memlens_stream_figures(outdir):
    """(allocations, map bytes per live block) from the streams of outdir. Allocations: the sum of
    `sites` deltas, None if unreadable (a check that the tracker saw the work it was timed on; in
    sampled mode in 1/256 units, so not shown). Map bytes per block: the map's largest size
    (tracker_bytes) over the largest number of live blocks (heap_blocks) of the stream, when that
    reached 100k, else None (the tables are sized for the peak and do not shrink)."""
    total, seen, per_block = 0, False, None
    peak_bytes, peak_blocks = {}, {}
    for name in os.listdir(outdir):
        if not name.endswith(".jsonl"):
            continue
        with open(os.path.join(outdir, name), "rb") as f:
            for line in f:
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue
                if rec.get("type") == "sites":
                    seen = True
                    total += sum(row[1] for row in rec.get("d", []))
                elif rec.get("type") == "snapshot" and "tracker_bytes" in rec:
                    peak_bytes[name] = max(peak_bytes.get(name, 0), rec["tracker_bytes"])
                    peak_blocks[name] = max(peak_blocks.get(name, 0), rec.get("heap_blocks", 0))
    for name, blocks in peak_blocks.items():
        if blocks >= 100000:
            b = peak_bytes[name] / blocks
            per_block = b if per_block is None else max(per_block, b)
    return (total if seen else None), per_block


# ---------------------------------------------------------------- table

ROW = "%-14s %-10s %9s %8s %8s %15s %9s %10s %10s  %s"


def human_bytes(n):
    if n is None:
        return "-"
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return "%.1f %s" % (n / size, unit)
    return "%d B" % n


def median_or_none(values, scale=1):
    values = [v for v in values if v is not None]
    return scale * statistics.median(values) if values else None


def fmt_count(n):
    if n is None:
        return "-"
    return "%.2fM" % (n / 1e6) if n >= 1e5 else str(n)


INSTR_RE = re.compile(r"I\s+refs:\s+([\d,]+)")


def count_instructions(chosen, bins, lib, args, memlens_env):
    """--instructions: every workload at its --quick size under valgrind's cachegrind without cache
    simulation, plain, memlens and sampled. The counts are the same on every run whatever else the
    machine does, so two libraries compare exactly (run twice with MEMLENS_LIB), where timed ratios
    drift with a shared host. They are not times: cache misses and system calls do not show."""
    if not shutil.which("valgrind"):
        sys.exit("bench: --instructions needs valgrind")
    scratch = tempfile.mkdtemp(prefix="memlens-bench-instr-")
    print("# memlens bench --instructions  %s  library: %s" % (datetime.datetime.now().strftime("%Y-%m-%d %H:%M"), lib))
    print("# instructions of the whole process tree (valgrind --tool=cachegrind --cache-sim=no --trace-children=yes), "
          "--quick work sizes; sampled = MEMLENS_SAMPLE=%s; extra = tool minus plain" % args.sample)
    row = "%-14s %-8s %15s %8s %15s"
    print(row % ("workload", "tool", "instructions", "ratio", "extra"))
    print("-" * 64)
    failed = False
    try:
        for w in chosen:
            base = None
            for t in ("plain", "memlens", "sampled"):
                if t == "sampled" and args.no_sampled:
                    continue
                outdir = tempfile.mkdtemp(prefix=t + "-", dir=scratch)
                argv, env = tool_command(t, w, bins, lib, outdir, True, memlens_env, args.sample)
                env["PYTHONHASHSEED"] = "0"   # python3's count otherwise moves by ~1 % with its hash seed
                cmd = ["valgrind", "--tool=cachegrind", "--cache-sim=no", "--trace-children=yes",
                       "--cachegrind-out-file=/dev/null"] + argv
                try:
                    p = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                       timeout=max(600.0, args.timeout * 20))
                    err = p.stderr.decode(errors="replace")
                    counts = [int(m.group(1).replace(",", "")) for m in INSTR_RE.finditer(err)]
                    why = None if p.returncode == 0 and counts else "exit %d" % p.returncode if p.returncode else "no count"
                except subprocess.TimeoutExpired:
                    why, counts = "TIMEOUT", []
                shutil.rmtree(outdir, ignore_errors=True)
                if why:
                    print(row % (w.name, t, "FAIL", "", why))
                    failed = True
                    continue
                n = sum(counts)
                if t == "plain":
                    base = n
                print(row % (w.name, t, "{:,}".format(n), "%.3fx" % (n / base) if base else "?",
                             "{:,}".format(n - base) if base and t != "plain" else "-"))
                sys.stdout.flush()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return 1 if failed else 0


def measure_startup(bins, libs, scratch, memlens_env, sample, rounds, timeout, log_path, cpus, tools):
    """Median per-round extra wall time (ms) of each memlens tool over the plain run of bench/empty.c."""
    if not tools:
        return None
    w = Workload("empty", "an empty program", "empty", [], [])
    times = {t: [] for t in ["plain"] + tools}
    for i in range(rounds):
        for t in times:
            outdir = tempfile.mkdtemp(prefix="startup-" + t + "-", dir=scratch)
            argv, env = tool_command(t, w, bins, libs[i % len(libs)], outdir, False, memlens_env, sample)
            seconds, _cpu, rc, _rss, timed_out = run_once(argv, env, timeout, log_path, cpus=cpus)
            shutil.rmtree(outdir, ignore_errors=True)
            if rc != 0 or timed_out:
                return None
            times[t].append(seconds)
    plain = times.pop("plain")
    return (statistics.median(plain) * 1000,
            {t: statistics.median(x - p for x, p in zip(v, plain)) * 1000 for t, v in times.items()})


def main():
    ap = argparse.ArgumentParser(prog="bench/run", description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, help="runs per tool and workload (default 5; 3 with --quick)")
    ap.add_argument("--quick", action="store_true", help="smoke check: about 1/5 of the work, 3 runs")
    ap.add_argument("--workload", action="append", metavar="NAME",
                    help="only these workloads (name, prefix such as churn, or a comma list); repeatable")
    ap.add_argument("--no-heaptrack", action="store_true", help="do not run heaptrack")
    ap.add_argument("--no-lsan", action="store_true", help="do not run LeakSanitizer")
    ap.add_argument("--no-sampled", action="store_true", help="do not run memlens in sampled mode")
    ap.add_argument("--sample", default="512KiB", metavar="SIZE",
                    help="MEMLENS_SAMPLE of the sampled runs (default 512KiB)")
    ap.add_argument("--pin", metavar="CPUS",
                    help="run every program on these CPUs only (e.g. 1 or 0,1): on a VM whose CPUs run at "
                         "different speeds, an unpinned run's median depends on where each run lands")
    ap.add_argument("--timeout", type=float, default=60, help="seconds per run before it is killed (default 60)")
    ap.add_argument("--memlens-env", action="append", default=[], metavar="VAR=VALUE",
                    help="extra environment for the memlens runs, e.g. MEMLENS_DEPTH=16; repeatable")
    ap.add_argument("--instructions", action="store_true",
                    help="count instructions under valgrind (cachegrind) instead of timing: exact and repeatable, "
                         "for comparing two libraries on a noisy machine; --quick work sizes, plain/memlens/sampled")
    ap.add_argument("--list", action="store_true", help="list the workloads and exit")
    ap.add_argument("--cache", default=os.environ.get("BENCH_CACHE", "/tmp/memlens-bench-cache"),
                    help="where workloads and the default library build are kept (env BENCH_CACHE)")
    args = ap.parse_args()
    if args.list:
        for w in workloads():
            print("%-14s %s" % (w.name, w.what))
        return 0
    runs = args.runs or (3 if args.quick else 5)
    if runs < 1:
        sys.exit("bench: --runs must be >= 1")
    memlens_env = {}
    for kv in args.memlens_env:
        k, sep, v = kv.partition("=")
        if not sep or not k.startswith("MEMLENS_"):
            sys.exit("bench: --memlens-env wants MEMLENS_VAR=VALUE, got %r" % kv)
        memlens_env[k] = v
    chosen = select(workloads(), args.workload)
    try:
        cpus = {int(c) for c in args.pin.split(",")} if args.pin else None
    except ValueError:
        sys.exit("bench: --pin wants CPU numbers such as 1 or 0,1, got %r" % args.pin)

    os.makedirs(args.cache, exist_ok=True)
    lib, lib_kind = find_library(args)
    if args.instructions:
        return count_instructions(chosen, build_workloads(args.cache, False), lib, args, memlens_env)
    missing = {}
    if args.no_heaptrack:
        missing["heaptrack"] = "--no-heaptrack"
    elif not shutil.which("heaptrack"):
        missing["heaptrack"] = "heaptrack not installed"
    if args.no_sampled:
        missing["sampled"] = "--no-sampled"
    if args.no_lsan:
        missing["lsan"] = "--no-lsan"
    else:
        reason = probe_lsan(args.cache)
        if reason:
            missing["lsan"] = reason
    bins = build_workloads(args.cache, "lsan" not in missing)
    tools = [t for t in TOOLS if t not in missing]

    scratch = tempfile.mkdtemp(prefix="memlens-bench-")
    # The library is run from LIB_COPIES copies, one after the other round by round: on the VMs this
    # was measured on, one file of a library ran a malloc/free loop 50 % slower than byte-identical
    # copies of it (and as fast once its pages were evicted and read again): where a file's pages sit
    # in memory changes its speed. Rotating copies spreads that over the rounds instead of drawing once.
    libs = []
    for k in range(LIB_COPIES):
        copy = os.path.join(scratch, "libmemlens.%d.so" % k)
        shutil.copyfile(lib, copy)
        libs.append(copy)
    log_path = os.path.join(scratch, "programs.log")
    print("# memlens bench  %s  %s, %d cores, %s"
          % (datetime.datetime.now().strftime("%Y-%m-%d %H:%M"), platform.node(), os.cpu_count(), platform.release()))
    print("# sampled = memlens with MEMLENS_SAMPLE=%s%s" % (args.sample, "; every run pinned to CPUs " + args.pin if args.pin else ""))
    print("# library: %s (%s; run from %d copies, rotated by round)%s" % (lib, lib_kind, LIB_COPIES,
                                    "  env: " + " ".join("%s=%s" % kv for kv in memlens_env.items()) if memlens_env else ""))
    print("# median of %d interleaved runs%s; ratio = tool median / plain median; paired = median of each round's "
          "tool run / plain run (the two run back to back); "
          "cpu ratio = same for user+system CPU of the whole process tree; output = bytes written; RSS = peak (%s)" % (runs, ", --quick" if args.quick else "",
                                                  "GNU time %M" if GNU_TIME else "wait4, includes the driver's own RSS"))
    for t, why in missing.items():
        print("# %s: n/a (%s)" % (t, why))
    header = ROW % ("workload", "tool", "median s", "ratio", "paired", "min..max s", "cpu ratio", "output", "peak RSS", "note")
    print(header)
    print("-" * len(header))
    sys.stdout.flush()

    summary = []
    plain_seconds = {}
    startup = None
    figures = {}   # per workload: median output bytes per tool, memlens map bytes per live block
    failures = []
    started = time.perf_counter()
    try:
        for w in chosen:
            active = [t for t in tools if t != "lsan" or w.lsan]
            # One untimed plain run: page cache, python's .pyc files.
            argv, env = tool_command("plain", w, bins, lib, scratch, args.quick, memlens_env, args.sample)
            run_once(argv, env, args.timeout, log_path, cpus=cpus)
            res = {t: [] for t in active}
            broken = {}
            for i in range(runs):
                for t in active:
                    if t in broken:
                        continue
                    outdir = tempfile.mkdtemp(prefix=t + "-", dir=scratch)
                    argv, env = tool_command(t, w, bins, libs[i % len(libs)], outdir, args.quick, memlens_env, args.sample)
                    seconds, cpu, rc, rss, timed_out = run_once(argv, env, args.timeout, log_path,
                                                           HEAPTRACK_AS_LIMIT if t == "heaptrack" else None, cpus)
                    out = dir_bytes(outdir)
                    if t == "memlens" and i == 0 and not timed_out:
                        res.setdefault("memlens-figures", memlens_stream_figures(outdir))
                    shutil.rmtree(outdir, ignore_errors=True)
                    if timed_out:
                        broken[t] = "TIMEOUT after %gs (run %d)" % (args.timeout, i + 1)
                    elif rc != 0:
                        broken[t] = ("killed by signal %d" % -rc if rc < 0 else "exit %d" % rc) + " (run %d)" % (i + 1)
                    if t in broken:
                        with open(log_path, "rb") as f:
                            tail = f.read()[-600:].decode(errors="replace").strip()
                        if t == "heaptrack" and "std::bad_alloc" in tail:
                            broken[t] += ", heaptrack_interpret out of memory (limit %d GiB)" % (HEAPTRACK_AS_LIMIT >> 30)
                        print("bench: %s under %s: %s; its output ends:\n%s" % (w.name, t, broken[t], tail),
                              file=sys.stderr)
                        continue
                    res[t].append(Result(seconds, cpu, rss, out if t != "plain" else None, i))
            base = statistics.median(r.seconds for r in res["plain"]) if res.get("plain") else None
            base_cpu = statistics.median(r.cpu for r in res["plain"]) if res.get("plain") else None
            ratios, paired = {}, {}
            figures[w.name] = {"out": {}, "per_block": res.get("memlens-figures", (None, None))[1],
                               "plain_spread": (min(r.seconds for r in res["plain"]), max(r.seconds for r in res["plain"]))
                               if res.get("plain") else None}
            for t in TOOLS:
                if t == "lsan" and not w.lsan and t not in missing:
                    print(ROW % (w.name, t, "n/a", "n/a", "", "", "", "", "", "python3 is not built with -fsanitize=leak"))
                    continue
                if t in missing:
                    print(ROW % (w.name, t, "n/a", "n/a", "", "", "", "", "", missing[t]))
                    continue
                rs = res.get(t, [])
                if t in broken:
                    failures.append("%s under %s: %s" % (w.name, t, broken[t]))
                if not rs:
                    print(ROW % (w.name, t, "FAIL", "FAIL", "", "", "", "", "", broken.get(t, "")))
                    ratios[t] = paired[t] = "FAIL"
                    continue
                med = statistics.median(r.seconds for r in rs)
                ratio = med / base if base else None
                ratios[t] = ratio
                paired[t] = paired_ratio(rs, res.get("plain", []))
                note = []
                if t in broken:
                    note.append("then " + broken[t])
                if t == "memlens":
                    seen, per_block = res.get("memlens-figures", (None, None))
                    note.append("allocations seen %s" % fmt_count(seen) if seen is not None
                                else "NO STREAM WITH COUNTS WRITTEN")
                    if per_block is not None:
                        note.append("map %.1f B/live block" % per_block)
                if t == "heaptrack":
                    note.append("RSS: largest of heaptrack's processes")
                cpu = statistics.median(r.cpu for r in rs)
                if t != "plain":
                    figures[w.name]["out"][t] = statistics.median(r.out_bytes for r in rs)
                print(ROW % (
                    w.name, t, "%.3f" % med, fmt_ratio(ratios[t]), fmt_ratio(paired[t]),
                    "%.3f..%.3f" % (min(r.seconds for r in rs), max(r.seconds for r in rs)),
                    "%.2fx" % (cpu / base_cpu) if base_cpu else "?",
                    human_bytes(statistics.median(r.out_bytes for r in rs)) if t != "plain" else "-",
                    human_bytes(median_or_none([r.maxrss_kib for r in rs], 1024)), "; ".join(note)))
            summary.append((w.name, ratios, paired))
            plain_seconds[w.name] = base
            sys.stdout.flush()
        startup = measure_startup(bins, libs, scratch, memlens_env, args.sample, max(runs, 21), args.timeout, log_path,
                                  cpus, [t for t in ("memlens", "sampled") if t in tools])
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    if startup:
        plain_ms, extra = startup
        print("startup: an empty program (bench/empty.c), %d interleaved rounds: plain %.2f ms; %s (medians of "
              "each round's difference): the fixed cost of a traced process, apart from any allocation" % (
                  max(runs, 21), plain_ms, ", ".join("%s +%.2f ms" % (t, ms) for t, ms in extra.items())))
        for name, secs in plain_seconds.items():
            if secs and secs < 0.1 and extra:
                print("startup: %s runs %.0f ms plain; the fixed cost alone is %s of it" % (
                    name, secs * 1000, ", ".join("%.1f %% (%s)" % (100 * ms / 1000 / secs, t) for t, ms in extra.items())))
    print()
    print("%-14s %8s %8s %10s %8s   %8s %8s   (wall-time ratios: medians | paired)"
          % ("summary", "memlens", "sampled", "heaptrack", "lsan", "memlens", "sampled"))
    def cell(r, tool):
        return fmt_ratio(r[tool]) if tool in r else "n/a"
    for name, r, pr in summary:
        print("%-14s %8s %8s %10s %8s   %8s %8s" % (name, cell(r, "memlens"), cell(r, "sampled"), cell(r, "heaptrack"),
                                                   cell(r, "lsan"), cell(pr, "memlens"), cell(pr, "sampled")))
    by_name = {name: r for name, r, _ in summary}
    one, eight = number(by_name.get("churn-1t", {}).get("memlens")), number(by_name.get("churn-8t", {}).get("memlens"))
    if one and eight:
        print("threads: full-mode ratio churn-8t / churn-1t = %.2f (target <= 1.25)" % (eight / one))
    print_targets(summary, figures)
    print("total %.0fs" % (time.perf_counter() - started))
    for f in failures:
        print("FAILED: " + f)
    # A peer tool failing (heaptrack on `sites`) is reported, not an error of this benchmark.
    return 1 if any(f.split(": ")[0].endswith((" under plain", " under memlens", " under sampled")) for f in failures) else 0


if __name__ == "__main__":
    sys.exit(main())
