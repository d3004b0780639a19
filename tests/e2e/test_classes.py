#!/usr/bin/env python3
"""e2e-classes: the exit-time reachability scan classifies leaks as valgrind memcheck does.

Programs (tests/programs/class_*.c, numbers in their .expect.json, derived from the code and
confirmed with valgrind --leak-check=full --show-leak-kinds=all --run-libc-freeres=no
--run-cxx-freeres=no):
  class_simple       a lost block next to a block held by a global    definite 40/1, reachable 56/1
  class_list_lost    5-node list, head dropped                         definite 48/1, indirect 192/4
  class_list_held    3-node list held by a global                      reachable 144/3
  class_cycle        two blocks pointing at each other                 definite 32/1, indirect 32/1
  class_interior     only an interior pointer (block + 16) in a global possible 64/1
  class_thread_exit  leak made in a thread that has exited             definite 72/1
  class_thread_live  block only on a live thread's stack at exit       reachable 88/1
  class_tls          blocks only in a __thread variable (main + thread) reachable 248/3
  class_simple tail  the lost block is the last allocation: glibc's top chunk starts inside it
                     (main_arena.top is allocator metadata)             definite 64/2, reachable 56/1

For each program, asserted:
  * the stream's `leak_summary` (docs/format.md): each class {bytes, blocks} as expected,
    `complete: true`; the `leak` records add up to it; every block live at exit is classified
    exactly once (sum of `leak` == sum of `live`); the `definite` record carries valgrind's
    "(D direct, I indirect)" numbers in indirect_bytes / indirect_blocks;
  * `memlens leaks --json`: summary.definitely_lost / indirectly_lost / possibly_lost /
    still_reachable as expected and adding up to summary.heap; every entry has a `class` in
    {definite, indirect, possible, reachable}; per-function entries by class;
  * `memlens leaks` (text): valgrind-like totals ("definitely lost: 48 bytes in 1 blocks"),
    "240 (48 direct, 192 indirect) bytes in 1 blocks"; still reachable blocks' stacks hidden
    unless `--show reachable`;
  * valgrind (when installed) gives the expect file's numbers, and memlens's equal valgrind's.
Threads: each thread's DTV (glibc's calloc in pthread_create) is live at exit; glibc keeps
dtv+1 in the thread descriptor, so valgrind calls it *possibly lost*; under memlens it is 32 bytes
larger (README: two more TLS modules), so for that class blocks are exact and bytes may exceed
valgrind's by up to 32 per DTV.  Skips the valgrind part without valgrind."""
import os
import re
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import memlens_test as mt  # noqa: E402

CLASSES = ("definitely_lost", "indirectly_lost", "possibly_lost", "still_reachable")
# summary field -> `class` value of leak entries and stream records (docs/format.md)
CLASS_NAME = {"definitely_lost": "definite", "indirectly_lost": "indirect",
              "possibly_lost": "possible", "still_reachable": "reachable"}
# summary field -> valgrind's LEAK SUMMARY label
VALGRIND_LABEL = {"definitely_lost": "definitely lost", "indirectly_lost": "indirectly lost",
                  "possibly_lost": "possibly lost", "still_reachable": "still reachable"}
VALGRIND_OPTIONS = ["--leak-check=full", "--show-leak-kinds=all", "--run-libc-freeres=no",
                    "--run-cxx-freeres=no", "--error-exitcode=0"]

PROGRAMS = ("class_simple", "class_list_lost", "class_list_held", "class_cycle", "class_interior",
            "class_thread_exit", "class_thread_live", "class_tls")


def number(text):
    return int(text.replace(",", ""))


def compare_classes(suite, label, expected, got, dtv=None):
    """expected/got: {class: {bytes, blocks}}.  `dtv` (from the expect file): the class holding
    the threads' DTVs, whose bytes may exceed the expected ones by the documented difference."""
    for cls in CLASSES:
        want = expected.get(cls) or {}
        have = got.get(cls) or {}
        suite.eq(f"{label} {cls}.blocks", want.get("blocks"), have.get("blocks"))
        if dtv and dtv.get("class") == cls:
            extra = dtv.get("memlens_extra_bytes_per_block", 32) * dtv.get("blocks", 0)
            low, high = want.get("bytes", 0), want.get("bytes", 0) + extra
            suite.check(isinstance(have.get("bytes"), int) and low <= have["bytes"] <= high,
                        f"{label} {cls}.bytes (holds {dtv.get('blocks')} thread DTV(s), up to "
                        f"{extra} bytes larger under memlens): expected {low}..{high}, "
                        f"got {have.get('bytes')!r}")
        else:
            suite.eq(f"{label} {cls}.bytes", want.get("bytes"), have.get("bytes"))


def valgrind_leak_summary(suite, argv, workdir):
    """valgrind's LEAK SUMMARY as {class: {bytes, blocks}}, and its log text."""
    log = os.path.join(workdir, "valgrind.log")
    result = mt.run(["valgrind", f"--log-file={log}", *VALGRIND_OPTIONS, *argv], timeout=300,
                    cwd=workdir)
    with open(log, errors="replace") as handle:
        text = handle.read()
    summary = {}
    for cls, label in VALGRIND_LABEL.items():
        match = re.search(label + r": ([\d,]+) bytes in ([\d,]+) blocks", text)
        suite.require(match, f"valgrind LEAK SUMMARY line '{label}' not found in its log:\n"
                             f"{mt.tail(text)}")
        summary[cls] = {"bytes": number(match.group(1)), "blocks": number(match.group(2))}
    return result, summary


def stream_classes(suite, name, stream, expect):
    """Checks of the stream's own `leak` / `leak_summary` records."""
    summaries = stream.of_type("leak_summary")
    suite.require(len(summaries) == 1,
                  f"{name}: expected 1 leak_summary record in {stream.name}, got {len(summaries)} "
                  f"(record types: {sorted({r.get('type') for r in stream.records}, key=str)})")
    summary = summaries[0]
    got = {cls: summary.get(CLASS_NAME[cls]) or {} for cls in CLASSES}
    compare_classes(suite, f"{name} stream leak_summary", expect["classes"], got, expect.get("dtv"))
    suite.eq(f"{name} stream leak_summary.complete", True, summary.get("complete"))
    if summary.get("complete") is not True:
        suite.fail(f"{name} stream leak_summary.message: {summary.get('message')!r}")

    leaks = stream.of_type("leak")
    for record in leaks:
        suite.check(record.get("class") in CLASS_NAME.values(),
                    f"{name} stream leak record class: expected one of {sorted(CLASS_NAME.values())},"
                    f" got {record.get('class')!r}")
    for cls in CLASSES:
        records = [r for r in leaks if r.get("class") == CLASS_NAME[cls]]
        for field in ("bytes", "blocks"):
            suite.eq(f"{name} stream: sum of `leak` {CLASS_NAME[cls]} {field} vs leak_summary",
                     (summary.get(CLASS_NAME[cls]) or {}).get(field), mt.total(records, field))
    lives = stream.of_type("live")
    for field in ("bytes", "blocks"):
        suite.eq(f"{name} stream: every live block classified once (sum of `leak` {field} vs sum "
                 f"of `live` {field})", mt.total(lives, field), mt.total(leaks, field))
    # valgrind's "N (D direct, I indirect) bytes": the definite record's indirect_* fields.
    for entry in expect.get("entries", []):
        if "indirect_bytes" not in entry:
            continue
        records = [r for r in leaks if r.get("class") == entry["class"]
                   and r.get("bytes") == entry["bytes"] and r.get("blocks") == entry["blocks"]]
        if suite.check(records, f"{name} stream: no `leak` record {entry['class']} "
                                f"{entry['bytes']} bytes in {entry['blocks']} blocks ({entry['function']}); "
                                f"records: {[(r.get('class'), r.get('bytes'), r.get('blocks')) for r in leaks]}"):
            for field in ("indirect_bytes", "indirect_blocks"):
                suite.eq(f"{name} stream leak record {entry['function']} {entry['class']} {field}",
                         entry[field], records[0].get(field, 0))
    return got


def json_classes(suite, name, proc, expect):
    """Checks of `memlens leaks --json` for one process; returns its class summary."""
    summary = proc.get("summary") or {}
    got = {cls: summary.get(cls) or {} for cls in CLASSES}
    missing = [cls for cls in CLASSES if cls not in summary]
    suite.check(not missing, f"{name} leaks --json summary: missing {missing} "
                             f"(fields present: {sorted(summary)})")
    compare_classes(suite, f"{name} leaks --json summary", expect["classes"], got, expect.get("dtv"))
    heap = summary.get("heap") or {}
    for field in ("bytes", "blocks"):
        suite.eq(f"{name} leaks --json: summary.heap.{field} = sum of the four classes",
                 heap.get(field), sum(int((got[c] or {}).get(field) or 0) for c in CLASSES))
    entries = proc.get("leaks") or []
    classes_seen = sorted({str(e.get("class")) for e in entries})
    bad = [c for c in classes_seen if c not in CLASS_NAME.values()]
    suite.check(not bad, f"{name} leaks --json: entry `class` values must be one of "
                         f"{sorted(CLASS_NAME.values())} (docs/format.md), got {classes_seen}")
    wanted = {}
    for entry in expect.get("entries", []):
        wanted.setdefault((entry["function"], entry["class"]), []).append(entry)
    for (function, cls), group in wanted.items():
        of_class = [e for e in entries if e.get("class") == cls]
        label = f"{name} leaks --json {cls} entries of {function}"
        matched = mt.entries_of_function(suite, of_class, function, label) if of_class else []
        if not of_class:
            suite.fail(f"{label}: no entry of class {cls} (classes seen: {classes_seen})")
        if matched:
            suite.eq(f"{label}: bytes", sum(e["bytes"] for e in group), mt.total(matched, "bytes"))
            suite.eq(f"{label}: blocks", sum(e["blocks"] for e in group), mt.total(matched, "blocks"))
    return got


def text_report(suite, name, outdir, expect):
    """`memlens leaks RUN` (text) and `memlens leaks --show reachable RUN`."""
    result = mt.run([mt.CLI, "leaks", outdir], env=mt.clean_env())
    suite.require(result.returncode == 0, f"{name}: memlens leaks (text) failed: " + result.describe())
    text = result.stdout
    dtv = expect.get("dtv") or {}
    for cls in CLASSES:
        want = expect["classes"][cls]
        label = VALGRIND_LABEL[cls]
        if dtv.get("class") == cls:
            pattern = label + r":\s+[\d,]+ bytes in " + str(want["blocks"]) + r" blocks?"
        else:
            pattern = (label + r":\s+" + f"{want['bytes']:,}".replace(",", ",?") + r" bytes in "
                       + str(want["blocks"]) + r" blocks?")
        suite.check(re.search(pattern, text),
                    f"{name} leaks text: expected a valgrind-like total /{pattern}/, got:\n"
                    f"{mt.tail(text, 2500)}")
    for line in expect.get("text", []):
        pattern = re.escape(line).replace("blocks", "blocks?")
        suite.check(re.search(pattern, text), f"{name} leaks text: expected {line!r} in:\n"
                                              f"{mt.tail(text, 2500)}")
    reachable_only = {e["function"] for e in expect.get("entries", []) if e["class"] == "reachable"}
    reachable_only -= {e["function"] for e in expect.get("entries", []) if e["class"] != "reachable"}
    for function in sorted(reachable_only):
        suite.check(not re.search(r"\b" + re.escape(function) + r"\b", text),
                    f"{name} leaks text: still reachable {function} must be hidden without "
                    f"--show reachable, got:\n{mt.tail(text, 2500)}")
    if reachable_only:
        shown = mt.run([mt.CLI, "leaks", "--show", "reachable", outdir], env=mt.clean_env())
        if suite.check(shown.returncode == 0,
                       f"{name}: memlens leaks --show reachable failed: " + shown.describe()):
            for function in sorted(reachable_only):
                suite.check(re.search(r"\b" + re.escape(function) + r"\b", shown.stdout),
                            f"{name} leaks --show reachable: expected {function}'s stack, got:\n"
                            f"{mt.tail(shown.stdout, 2500)}")


def classes_case(suite, name, variant=None):
    """One program (or one `variants` entry of its expect file: other arguments, other numbers)."""
    mt.require_tools(suite)
    expect = mt.load_expect(name)
    expect.pop("variants", None)
    expect.update(variant or {})
    argv = [mt.program(name), *expect.get("args", [])]
    label = " ".join([name, *expect.get("args", [])])
    outdir, _ = mt.traced_run(suite, argv, name, expect_status=expect.get("exit_status", 0))
    if "stdout" in expect:
        plain = mt.run_plain(argv, mt.new_dir(name + "-stdout"))
        suite.eq(f"{name} stdout (plain run)", expect["stdout"], plain.stdout)
    streams = mt.read_streams(outdir)
    suite.require(len(streams) == 1, f"{name}: expected 1 stream, got {[s.name for s in streams]}")
    mt.check_stream_basics(suite, streams[0])
    stream_classes(suite, label, streams[0], expect)
    doc = mt.cli_json(suite, "leaks", outdir)
    proc = mt.one_process(suite, doc, name, "leaks")
    memlens_summary = json_classes(suite, label, proc, expect)
    text_report(suite, label, outdir, expect)

    if shutil.which("valgrind") is None:
        print("    note: valgrind not installed: memlens not compared with valgrind")
        return
    workdir = mt.new_dir(f"classes-valgrind-{name}")
    result, vg = valgrind_leak_summary(suite, argv, workdir)
    suite.eq(f"{name}: exit status under valgrind", expect.get("exit_status", 0), result.returncode)
    compare_classes(suite, f"{label}: valgrind LEAK SUMMARY vs expect file (derivation check)",
                    expect["valgrind_leak_summary"], vg)
    compare_classes(suite, f"{label}: memlens leaks --json vs valgrind LEAK SUMMARY", vg,
                    memlens_summary, expect.get("dtv"))


def main():
    suite = mt.Suite("e2e-classes")
    for name in PROGRAMS:
        suite.case(name, classes_case, name)
        for variant in mt.load_expect(name).get("variants", []):
            suite.case(f"{name} {' '.join(variant['args'])}", classes_case, name, variant)
    suite.finish()


if __name__ == "__main__":
    main()
