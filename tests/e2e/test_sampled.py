#!/usr/bin/env python3
"""e2e-sampled: sampled mode (`memlens run --sample SIZE`, MEMLENS_SAMPLE) gives unbiased
estimates, and the CLI says they are estimates.

The program tests/programs/sampled_workload.c makes 200 000 malloc calls of pseudo-random sizes
(16..4111 bytes) from three functions with different size ranges and frees every other block; its
generator (splitmix64, fixed seed) is re-implemented here, so the truth of every site is known —
and cross-checked against the program's own stdout and a full-mode run. The sampling theory
(Poisson sampling by bytes at mean rate R: an allocation of s bytes is recorded with probability
p = 1 - exp(-s/R) and weighs 1/p) gives each estimate's standard deviation:
  bytes:  Var = sum s_i^2 (1/p_i - 1)        counts: Var = sum (1/p_i - 1)
over the allocations concerned (all of a site for allocated bytes and calls, the freed ones for
frees, the live ones for live bytes and blocks). Under --sample 64KiB, RUNS runs each must be
within K sigma of the truth per site and in total (allocations, frees, allocated, live bytes and
blocks), and the mean over the runs within K sigma / sqrt(RUNS) (a bias check). The estimates
and their errors in sigma are printed.

Also: the stream header (mode, sample_rate, count_scale); the CLI's counts are the stream's
1/count_scale units summed per site and then rounded; `report` and `leaks` agree on live bytes and
blocks; --json says mode sampled / sample_rate / estimated true, and full mode says full / 0 /
false with exact numbers; text output marks estimates; `check` exits 2 with one line for leak
budgets on a sampled run and gates --max-peak alone; `run --sample` validates its value.
"""
import json
import math
import os
import re
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import memlens_test as mt  # noqa: E402

PROGRAM = "sampled_workload"
FUNCTIONS = ("alloc_small", "alloc_medium", "alloc_large")
RATE = 64 * 1024          # --sample 64KiB
COUNT_SCALE = 256
RUNS = 5
K = 5.0                   # sigmas allowed per run; the mean over RUNS gets K / sqrt(RUNS)
CALLS = 200000
MASK = (1 << 64) - 1
# (allocations, frees, allocated_bytes, live_bytes, live_blocks): the fields checked
FIELDS = ("allocations", "frees", "allocated_bytes", "live_bytes", "live_blocks")


# ---------------------------------------------------------------------------------------------
# the truth, from the program's generator


class Truth:
    def __init__(self):
        self.value = {f: 0 for f in FIELDS}
        self.var = {f: 0.0 for f in FIELDS}

    def add(self, size, keep):
        q = 1.0 / -math.expm1(-size / RATE) - 1.0   # 1/p - 1
        self.value["allocations"] += 1
        self.value["allocated_bytes"] += size
        self.var["allocations"] += q
        self.var["allocated_bytes"] += size * size * q
        if keep:
            self.value["live_blocks"] += 1
            self.value["live_bytes"] += size
            self.var["live_blocks"] += q
            self.var["live_bytes"] += size * size * q
        else:
            self.value["frees"] += 1
            self.var["frees"] += q

    def merge(self, other):
        for f in FIELDS:
            self.value[f] += other.value[f]
            self.var[f] += other.var[f]

    def sigma(self, field):
        return math.sqrt(self.var[field])


def workload_truth():
    """Per function and in total, as sampled_workload.c computes them (same splitmix64)."""
    state = 0x6D656D6C656E73
    truth = {name: Truth() for name in FUNCTIONS}
    for _ in range(CALLS):
        state = (state + 0x9E3779B97F4A7C15) & MASK
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        r = z ^ (z >> 31)
        pick = r % 10
        bits = r >> 8
        if pick < 5:
            name, size = "alloc_small", 16 + bits % 112
        elif pick < 8:
            name, size = "alloc_medium", 128 + bits % 896
        else:
            name, size = "alloc_large", 1024 + bits % 3088
        truth[name].add(size, r >> 63)
    total = Truth()
    for name in FUNCTIONS:
        total.merge(truth[name])
    truth["total"] = total
    return truth


TRUTH = workload_truth()
STATE = {}  # "full": run dir; "sampled": [run dirs]


# ---------------------------------------------------------------------------------------------
# helpers


def sites_of(suite, proc, label):
    """{function: report site} for the three workload functions (one site each)."""
    out = {}
    for name in FUNCTIONS:
        matched = mt.entries_of_function(suite, proc.get("sites") or [], name, f"{label} {name}")
        suite.require(len(matched) == 1, f"{label}: expected 1 site for {name}, got {len(matched)}")
        out[name] = matched[0]
    return out


def numbers(site_or_totals):
    return {f: int(site_or_totals.get(f) or 0) for f in FIELDS}


def full_run(suite):
    if "full" not in STATE:
        outdir, traced = mt.traced_run(suite, [mt.program(PROGRAM)], "sampled-full")
        suite.require(traced.returncode == 0, "full-mode run failed: " + traced.describe())
        STATE["full"] = outdir
        STATE["stdout"] = traced.stdout
    return STATE["full"]


def sampled_runs(suite):
    if "sampled" not in STATE:
        dirs = []
        for i in range(RUNS):
            outdir, traced = mt.traced_run(suite, [mt.program(PROGRAM)], f"sampled-{i}",
                                           options=("--sample", "64KiB"), compare_plain=(i == 0))
            suite.require(traced.returncode == 0, "sampled run failed: " + traced.describe())
            dirs.append(outdir)
        STATE["sampled"] = dirs
    return STATE["sampled"]


def cli(args, timeout=120):
    return mt.run([mt.CLI, *args], timeout=timeout, env=mt.clean_env())


# ---------------------------------------------------------------------------------------------
# cases


def case_truth(suite):
    """The generator here, the program's own totals and a full-mode run agree exactly."""
    mt.require_tools(suite)
    outdir = full_run(suite)
    printed = {}
    for line in STATE["stdout"].splitlines():
        match = re.match(r"(\w+) allocations=(\d+) bytes=(\d+) live_blocks=(\d+) live_bytes=(\d+)$",
                         line)
        if match:
            printed[match.group(1)] = tuple(int(x) for x in match.groups()[1:])
    for name in FUNCTIONS:
        t = TRUTH[name].value
        suite.eq(f"{name}: program's totals vs this test's generator",
                 (t["allocations"], t["allocated_bytes"], t["live_blocks"], t["live_bytes"]),
                 printed.get(name))
    report = mt.cli_json(suite, "report", outdir)
    proc = mt.one_process(suite, report, PROGRAM, "full report")
    suite.eq("full mode: mode", "full", proc.get("mode"))
    suite.eq("full mode: estimated", False, proc.get("estimated"))
    suite.eq("full mode: sample_rate", 0, proc.get("sample_rate"))
    for name, site in sites_of(suite, proc, "full report").items():
        suite.eq(f"full mode {name}: exact numbers", TRUTH[name].value, numbers(site))
    suite.eq("full mode totals: exact numbers", TRUTH["total"].value, numbers(proc["totals"]))
    suite.eq("full mode totals.peak_exact", True, proc["totals"].get("peak_exact"))
    leaks = mt.cli_json(suite, "leaks", outdir)
    lproc = mt.one_process(suite, leaks, PROGRAM, "full leaks")
    suite.eq("full mode leaks: estimated", False, lproc.get("estimated"))
    suite.eq("full mode leaks: verdict", True, (lproc.get("summary") or {}).get("leak_verdict"))
    text = cli(["report", outdir])
    suite.check("sampled mode" not in text.stdout and "~" not in text.stdout,
                f"full-mode report text should not mark estimates: {mt.tail(text.stdout, 600)}")


def case_stream_and_json(suite):
    """Header fields, count_scale division (summed per site, then rounded), JSON flags."""
    mt.require_tools(suite)
    outdir = sampled_runs(suite)[0]
    streams = mt.read_streams(outdir)
    suite.require(len(streams) == 1, f"expected 1 stream, got {[s.name for s in streams]}")
    stream = streams[0]
    mt.check_stream_basics(suite, stream)
    header = stream.header or {}
    suite.eq("header mode", "sampled", header.get("mode"))
    suite.eq("header sample_rate", RATE, header.get("sample_rate"))
    suite.eq("header count_scale", COUNT_SCALE, header.get("count_scale"))
    summaries = stream.of_type("leak_summary")
    suite.check(summaries and summaries[-1].get("complete") is False,
                f"leak_summary should say complete:false in sampled mode, got {summaries}")

    # raw sums per site id from the stream
    raw = {}
    for record in stream.of_type("sites"):
        for row in record.get("d", []):
            acc = raw.setdefault(row[0], [0, 0, 0, 0])
            for k in range(4):
                acc[k] += row[1 + k]
    live = {r["site"]: r for r in stream.of_type("live")}

    def rounded(scaled):
        return (scaled + COUNT_SCALE // 2) // COUNT_SCALE

    report = mt.cli_json(suite, "report", outdir)
    proc = mt.one_process(suite, report, PROGRAM, "sampled report")
    suite.eq("report: mode", "sampled", proc.get("mode"))
    suite.eq("report: sample_rate", RATE, proc.get("sample_rate"))
    suite.eq("report: estimated", True, proc.get("estimated"))
    suite.eq("report totals.peak_exact (a sampled peak is an estimate)", False,
             proc["totals"].get("peak_exact"))
    for name, site in sites_of(suite, proc, "sampled report").items():
        acc = raw.get(site.get("site"))
        if not suite.check(acc, f"{name}: site {site.get('site')} has no sites rows"):
            continue
        suite.eq(f"{name}: allocations = round(sum of scaled counts / {COUNT_SCALE})",
                 rounded(acc[0]), site.get("allocations"))
        suite.eq(f"{name}: frees = round(sum of scaled counts / {COUNT_SCALE})",
                 rounded(acc[1]), site.get("frees"))
        suite.eq(f"{name}: live_blocks = round((allocations - frees) scaled / {COUNT_SCALE})",
                 rounded(acc[0] - acc[1]), site.get("live_blocks"))
        suite.eq(f"{name}: allocated_bytes (bytes are not scaled)", acc[2],
                 site.get("allocated_bytes"))
        rec = live.get(site.get("site")) or {}
        suite.check("scaled_blocks" in rec, f"{name}: live record without scaled_blocks: {rec}")
        suite.eq(f"{name}: live record bytes = report live_bytes", rec.get("bytes"),
                 site.get("live_bytes"))
    suite.eq("report totals = sum of sites",
             {f: sum(int(s.get(f) or 0) for s in proc["sites"] if not s["kind"].startswith("mmap"))
              for f in FIELDS}, numbers(proc["totals"]))

    leaks = mt.cli_json(suite, "leaks", outdir)
    lproc = mt.one_process(suite, leaks, PROGRAM, "sampled leaks")
    suite.eq("leaks: mode", "sampled", lproc.get("mode"))
    suite.eq("leaks: estimated", True, lproc.get("estimated"))
    summary = lproc.get("summary") or {}
    suite.eq("leaks: leak_verdict", False, summary.get("leak_verdict"))
    suite.eq("leaks: definitely_lost (no verdict)", None, summary.get("definitely_lost"))
    suite.check("sampled" in str(summary.get("no_verdict_reason")),
                f"leaks: no_verdict_reason should name sampled mode: {summary}")
    entries = lproc.get("leaks") or []
    suite.eq("leaks: classes (all unclassified)", [None], sorted({e.get("class") for e in entries},
                                                                key=str))
    report_sites = sites_of(suite, proc, "sampled report")
    for name in FUNCTIONS:
        matched = mt.entries_of_function(suite, entries, name, f"sampled leaks {name}")
        if matched:
            suite.eq(f"{name}: leaks bytes = report live_bytes", report_sites[name]["live_bytes"],
                     mt.total(matched, "bytes"))
            suite.eq(f"{name}: leaks blocks = report live_blocks",
                     report_sites[name]["live_blocks"], mt.total(matched, "blocks"))
    suite.eq("leaks summary.heap = sum of entries",
             {"bytes": mt.total(entries, "bytes"), "blocks": mt.total(entries, "blocks")},
             summary.get("heap"))


def case_estimates(suite):
    """Every estimate within K sigma per run; the mean over the runs within K sigma/sqrt(RUNS)."""
    mt.require_tools(suite)
    runs = []
    for outdir in sampled_runs(suite):
        proc = mt.one_process(suite, mt.cli_json(suite, "report", outdir), PROGRAM, "report")
        got = {name: numbers(site) for name, site in sites_of(suite, proc, outdir).items()}
        got["total"] = numbers(proc["totals"])
        runs.append(got)
    print(f"    sampled at {RATE} bytes, {RUNS} runs; error = (estimate - truth) / sigma")
    print(f"    {'site':13} {'field':16} {'truth':>11} {'sigma':>9} {'sigma %':>7}  "
          f"{'errors per run (sigma)':34} {'mean err (sigma/sqrt n)':>8}")
    worst = 0.0
    for name in (*FUNCTIONS, "total"):
        truth = TRUTH[name]
        for field in FIELDS:
            value, sigma = truth.value[field], truth.sigma(field)
            # counts are rounded to whole blocks per site: half a block per site of slack
            slack = 0.5 * (len(FUNCTIONS) if name == "total" else 1) \
                if field in ("allocations", "frees", "live_blocks") else 0.0
            errors = [(run[name][field] - value) for run in runs]
            zs = [e / sigma for e in errors]
            for i, error in enumerate(errors):
                suite.check(abs(error) <= K * sigma + slack,
                            f"run {i} {name} {field}: estimate {runs[i][name][field]} vs truth "
                            f"{value}: off by {error} = {zs[i]:+.2f} sigma (sigma {sigma:.0f}, "
                            f"allowed {K} sigma)")
            mean_error = sum(errors) / len(errors)
            mean_sigma = sigma / math.sqrt(len(errors))
            suite.check(abs(mean_error) <= K * mean_sigma + slack,
                        f"{name} {field}: mean of {len(errors)} estimates is off by {mean_error:.0f}"
                        f" = {mean_error / mean_sigma:+.2f} sigma/sqrt(n) (bias?)")
            worst = max(worst, max(abs(z) for z in zs))
            print(f"    {name:13} {field:16} {value:11d} {sigma:9.0f} {100 * sigma / value:6.1f}%  "
                  f"{' '.join(f'{z:+5.2f}' for z in zs):34} {mean_error / mean_sigma:+8.2f}")
    print(f"    largest single-run error: {worst:.2f} sigma")


def case_text_marks(suite):
    """Text output of report, leaks and run marks sampled numbers as estimates."""
    mt.require_tools(suite)
    outdir = sampled_runs(suite)[0]
    note = "sampled mode (mean 64 KiB between samples)"
    for command in ("report", "leaks"):
        result = cli([command, outdir])
        suite.eq(f"memlens {command} exit status", 0, result.returncode)
        suite.check(note in result.stdout, f"memlens {command}: no line {note!r}: "
                                           f"{mt.tail(result.stdout, 800)}")
        suite.check(re.search(r"~\d", result.stdout),
                    f"memlens {command}: no ~ on estimated numbers: {mt.tail(result.stdout, 800)}")
    report = cli(["report", outdir]).stdout
    suite.check(re.search(r"heap: ~[\d.]+ \w+ allocated in ~[\d,]+ calls", report),
                f"report heap line should mark estimates: {mt.tail(report, 800)}")
    leaks = cli(["leaks", outdir]).stdout
    suite.check("no leak verdict (sampled mode" in leaks,
                f"leaks should say there is no verdict in sampled mode: {mt.tail(leaks, 800)}")
    base = mt.new_dir("sampled-text")
    traced = mt.run_memlens([mt.program(PROGRAM)], os.path.join(base, "run"), base,
                            options=("--sample", "512KiB"))
    suite.eq("memlens run --sample 512KiB exit status", 0, traced.returncode)
    suite.check("sampled mode (mean 512 KiB between samples)" in traced.stderr
                and "peak heap ~" in traced.stderr,
                f"memlens run summary should mark estimates: {mt.tail(traced.stderr, 800)}")
    streams = mt.read_streams(os.path.join(base, "run"))
    suite.eq("--sample 512KiB: header sample_rate", [512 * 1024],
             [s.header.get("sample_rate") for s in streams])


def case_check(suite):
    """check: leak budgets on a sampled run exit 2 with one line; --max-peak alone is gated."""
    mt.require_tools(suite)
    outdir = sampled_runs(suite)[0]
    for args in (["--max-leaked", "0"], [], ["--max-peak", "1G", "--max-possibly", "0"]):
        result = cli(["check", *args, outdir])
        label = f"memlens check {' '.join(args)} on a sampled run"
        suite.eq(f"{label}: exit status", 2, result.returncode)
        lines = result.stderr.strip().splitlines()
        suite.check(len(lines) == 1 and lines[0].startswith("memlens: ") and "sampled mode" in lines[0]
                    and "leak budgets cannot be checked" in lines[0],
                    f"{label}: expected one stderr line saying leak budgets cannot be checked in "
                    f"sampled mode, got {result.stderr!r}")
        suite.eq(f"{label}: stdout", "", result.stdout)
    ok = cli(["check", "--max-peak", "1G", outdir])
    suite.eq("check --max-peak 1G on a sampled run: exit status", 0, ok.returncode)
    suite.check("estimate" in ok.stdout, f"check --max-peak should say the peak is an estimate: "
                                         f"{mt.tail(ok.stdout, 800)}")
    over = cli(["check", "--max-peak", "1M", outdir])
    suite.eq("check --max-peak 1M on a sampled run: exit status", 1, over.returncode)
    suite.check("estimated peak heap ~" in over.stdout,
                f"peak finding should say estimated: {mt.tail(over.stdout, 800)}")
    for fmt in ("junit", "sarif", "github"):
        result = cli(["check", "--max-peak", "1M", "--format", fmt, outdir])
        suite.eq(f"check --max-peak 1M --format {fmt}: exit status", 1, result.returncode)
    base = mt.new_dir("sampled-runcheck")
    traced = mt.run_memlens([mt.program(PROGRAM)], os.path.join(base, "run"), base,
                            options=("--sample", "64KiB", "--check"))
    suite.eq("memlens run --sample 64KiB --check: exit status (check cannot decide)", 2,
             traced.returncode)
    # a full-mode run of the same program is gated normally (kept blocks are still reachable)
    full = cli(["check", full_run(suite)])
    suite.eq("check on the full-mode run: exit status", 0, full.returncode)


def case_run_option(suite):
    """`memlens run --sample` validates its value like the other options."""
    mt.require_tools(suite)
    base = mt.new_dir("sampled-opt")
    for bad in ("abc", "-1", "", "64XB", "2048G"):
        result = mt.run_memlens(["true"], os.path.join(base, "never"), base,
                                options=("--sample", bad))
        suite.eq(f"memlens run --sample {bad!r}: exit status", 2, result.returncode)
        suite.check(result.stderr.startswith("memlens run: --sample:"),
                    f"--sample {bad!r}: expected an error naming --sample, got {result.stderr!r}")
    suite.check(not os.path.exists(os.path.join(base, "never")),
                "a rejected --sample should not start the program")
    helptext = cli(["run", "--help"])
    suite.check("--sample SIZE" in helptext.stdout and "MEMLENS_SAMPLE" in helptext.stdout,
                "memlens run --help should document --sample SIZE (MEMLENS_SAMPLE)")
    # 0: every allocation (full mode)
    outdir = os.path.join(base, "zero")
    result = mt.run_memlens([mt.program(PROGRAM)], outdir, base, options=("--sample", "0"))
    suite.eq("memlens run --sample 0: exit status", 0, result.returncode)
    proc = mt.one_process(suite, mt.cli_json(suite, "report", outdir), PROGRAM, "--sample 0")
    suite.eq("--sample 0: mode", "full", proc.get("mode"))
    suite.eq("--sample 0: exact totals", TRUTH["total"].value, numbers(proc["totals"]))


def case_placement(suite):
    """Under --sample 1 every allocation is a sample, and each one memlens moves to an aligned
    block (the free path's test) still behaves as its call promises (the program checks contents
    and alignment itself); every block is recorded and every free seen: the report equals a full-mode
    run's exactly (weights 1/p round to 1 at this rate)."""
    mt.require_tools(suite)
    runs = {}
    for label, options in (("full", ()), ("sampled", ("--sample", "1"))):
        outdir, traced = mt.traced_run(suite, [mt.program("sampled_place")], f"place-{label}",
                                       options=options, compare_plain=(label == "sampled"))
        suite.eq(f"sampled_place under {label} mode: its own checks", "ok\n", traced.stdout)
        proc = mt.one_process(suite, mt.cli_json(suite, "report", outdir), "sampled_place", label)
        suite.eq(f"{label}: mode", label, proc.get("mode"))
        runs[label] = proc
    full, sampled = runs["full"], runs["sampled"]
    suite.check(numbers(full["totals"])["live_blocks"] == 8 * 40 + 1,
                f"full mode: 8 calls x 40 rounds kept live, and the 16 MiB calloc, got {numbers(full['totals'])}")
    suite.eq("--sample 1 totals = full-mode totals", numbers(full["totals"]), numbers(sampled["totals"]))

    def per_kind(proc):
        out = {}
        for site in proc.get("sites") or []:
            acc = out.setdefault(site["kind"], [0, 0])
            acc[0] += int(site.get("live_blocks") or 0)
            acc[1] += int(site.get("live_bytes") or 0)
        return out
    suite.eq("--sample 1 live blocks and bytes per kind = full mode's", per_kind(full), per_kind(sampled))


def case_double_free(suite):
    """A program that frees a block twice: glibc aborts it (SIGABRT) after its first line. Under
    --sample 1 the block is a sample that memlens keeps for later samples once it is freed; the
    second free must still reach glibc, which aborts the program the same way (not a silent
    success with the block owned twice)."""
    mt.require_tools(suite)
    argv = [mt.program("double_free")]
    base = mt.new_dir("double-free")
    plain = mt.run_plain(argv, base)
    suite.eq("double_free plain: killed by SIGABRT", -signal.SIGABRT, plain.returncode)
    suite.eq("double_free plain: stdout", "double_free: before\n", plain.stdout)
    traced = mt.run_memlens(argv, os.path.join(base, "run"), base, options=("--sample", "1"))
    suite.eq("double_free under --sample 1: exit status 128+SIGABRT", 128 + signal.SIGABRT,
             traced.returncode)
    suite.eq("double_free under --sample 1: stdout", "double_free: before\n", traced.stdout)
    suite.check("double free" in traced.stderr,
                f"glibc's double-free message expected on stderr, got {traced.stderr[-400:]!r}")


def case_threads_every_sample(suite):
    """threads (4 producers, 4 consumers freeing the producers' blocks) under --sample 1: every block
    is a sample, moved, freed on another thread (which keeps it for its own later samples) and the
    threads exit (freeing what they kept). Counts and bytes must equal full mode's (the expect
    file's)."""
    mt.require_tools(suite)
    expect = mt.load_expect("threads")
    outdir, traced = mt.traced_run(suite, [mt.program("threads")], "threads-sample1", options=("--sample", "1"))
    proc = mt.one_process(suite, mt.cli_json(suite, "report", outdir), "threads", "--sample 1")
    suite.eq("threads --sample 1: mode", "sampled", proc.get("mode"))
    mt.check_report_process(suite, "threads --sample 1", proc, expect["report"])


def main():
    suite = mt.Suite("e2e-sampled")
    suite.case("truth: generator, program and full mode agree", case_truth)
    suite.case("stream header, count_scale rounding, JSON flags", case_stream_and_json)
    suite.case(f"estimates within {K:g} sigma ({RUNS} runs) and unbiased", case_estimates)
    suite.case("text output marks estimates", case_text_marks)
    suite.case("check on a sampled run", case_check)
    suite.case("run --sample option", case_run_option)
    suite.case("samples moved to aligned blocks keep their contract", case_placement)
    suite.case("a double free of a kept sample still reaches glibc", case_double_free)
    suite.case("threads under --sample 1 equal full mode", case_threads_every_sample)
    suite.finish()


if __name__ == "__main__":
    main()
