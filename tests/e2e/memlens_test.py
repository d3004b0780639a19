"""Shared helpers for the memlens end-to-end tests (python3 standard library only).

Each tests/e2e/test_<area>.py is one meson test: it runs programs from tests/programs (or real
tools) under the real preload through `memlens run`, reads `memlens report --json` and
`memlens leaks --json` and compares them with the numbers in tests/programs/<name>.expect.json,
which were derived from the program sources and confirmed with valgrind (never copied from
memlens output).

Environment (set by tests/meson.build): MEMLENS_CLI, MEMLENS_LIB, PROGRAMS_DIR (built programs),
PROGRAMS_SRC (sources and expect files), HAVE_CPP; by hand: MEMLENS_BUILD=<build dir> is enough,
and MEMLENS_KEEP_TMP=1 keeps the temporary run directories for inspection.

Conventions: every subprocess has a timeout; all failures of a case are collected and printed
as "expected X, got Y" lines, and the process exits 1 if any case failed, 77 (meson's skip) if
every case was skipped, else 0.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback

SKIP_EXIT = 77

# Outside meson, MEMLENS_BUILD (a build directory, default ./build) gives the other paths.
_HERE = os.path.dirname(os.path.abspath(__file__))
_BUILD = os.environ.get("MEMLENS_BUILD", "build")
CLI = os.environ.get("MEMLENS_CLI") or os.path.join(_BUILD, "tools", "memlens")
LIB = os.environ.get("MEMLENS_LIB") or os.path.join(_BUILD, "shim", "libmemlens.so")
PROGRAMS_DIR = os.environ.get("PROGRAMS_DIR") or os.path.join(_BUILD, "tests", "programs")
PROGRAMS_SRC = os.environ.get("PROGRAMS_SRC") or os.path.join(_HERE, "..", "programs")
CLI, LIB, PROGRAMS_DIR = (os.path.abspath(p) for p in (CLI, LIB, PROGRAMS_DIR))

HEAP_FIELDS = ("allocations", "frees", "allocated_bytes", "live_bytes", "live_blocks")


# ---------------------------------------------------------------------------------------------
# Failure collection


class CaseFailed(Exception):
    """Stops the current case (a precondition failed; later checks would be noise)."""


class CaseSkipped(Exception):
    """The current case cannot run here (tool not installed, …)."""


class Suite:
    """Runs named cases, collects every failed check, prints a summary and exits."""

    def __init__(self, name):
        self.name = name
        self.results = []  # (case, "PASS"|"FAIL"|"SKIP", [messages])
        self._case = None
        self._messages = None

    # -- checks (record and continue) --------------------------------------------------------

    def fail(self, message):
        self._messages.append(message)

    def check(self, condition, message):
        if not condition:
            self.fail(message)
        return bool(condition)

    def eq(self, what, expected, got):
        if expected != got:
            self.fail(f"{what}: expected {expected!r}, got {got!r}")
            return False
        return True

    def ge(self, what, bound, got):
        if got is None or got < bound:
            self.fail(f"{what}: expected >= {bound!r}, got {got!r}")
            return False
        return True

    def le(self, what, bound, got):
        if got is None or got > bound:
            self.fail(f"{what}: expected <= {bound!r}, got {got!r}")
            return False
        return True

    def require(self, condition, message):
        """Like check, but stops the case when it fails."""
        if not condition:
            raise CaseFailed(message)

    # -- running ------------------------------------------------------------------------------

    def case(self, name, function, *args, **kwargs):
        self._case = name
        self._messages = []
        status = "PASS"
        print(f"--- {self.name}: {name}", flush=True)
        try:
            function(self, *args, **kwargs)
        except CaseSkipped as skipped:
            status = "SKIP"
            self._messages.append(f"skipped: {skipped}")
        except CaseFailed as failed:
            self._messages.append(str(failed))
        except Exception:  # a bug in the test or unexpected output: report, keep going
            self._messages.append("exception in test:\n" + traceback.format_exc())
        if status != "SKIP" and self._messages:
            status = "FAIL"
        for message in self._messages:
            print(f"    {message}", flush=True)
        print(f"{status} {name}", flush=True)
        self.results.append((name, status, list(self._messages)))

    def finish(self):
        print(f"\n=== {self.name}: summary", flush=True)
        for name, status, messages in self.results:
            print(f"{status:4} {name}")
            if status == "FAIL":
                for message in messages:
                    first = message.splitlines()[0] if message else ""
                    print(f"       {first}")
        failed = [r for r in self.results if r[1] == "FAIL"]
        skipped = [r for r in self.results if r[1] == "SKIP"]
        sys.stdout.flush()
        if failed:
            sys.exit(1)
        if self.results and len(skipped) == len(self.results):
            sys.exit(SKIP_EXIT)
        sys.exit(0)


def have_cpp():
    """C++ test program available (meson says so through HAVE_CPP; by hand: it was built)."""
    if "HAVE_CPP" in os.environ:
        return os.environ["HAVE_CPP"] == "1"
    return os.path.exists(os.path.join(PROGRAMS_DIR, "cxx_new"))


def skip(reason):
    raise CaseSkipped(reason)


def require_tools(suite):
    """The CLI, the library and the programs must exist: a missing one is a failure, not a skip."""
    missing = [f"{var}={path!r}" for var, path in
               (("MEMLENS_CLI", CLI), ("MEMLENS_LIB", LIB), ("PROGRAMS_DIR", PROGRAMS_DIR))
               if not path or not os.path.exists(path)]
    suite.require(not missing, "not built or not set: " + ", ".join(missing))


# ---------------------------------------------------------------------------------------------
# Subprocesses


class Result:
    def __init__(self, argv, returncode, stdout, stderr, elapsed):
        self.argv = argv
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        self.elapsed = elapsed

    def describe(self):
        return (f"command {' '.join(map(str, self.argv))!r} exited {self.returncode}\n"
                f"      stdout: {tail(self.stdout)}\n      stderr: {tail(self.stderr)}")


def tail(text, limit=1500):
    text = text if isinstance(text, str) else text.decode("utf-8", "replace")
    return text if len(text) <= limit else "…" + text[-limit:]


def clean_env(extra=None):
    """The caller's environment without any memlens/preload settings, plus `extra`."""
    env = {k: v for k, v in os.environ.items()
           if k != "LD_PRELOAD" and not (k.startswith("MEMLENS_") and k != "MEMLENS_LIB")}
    env.setdefault("LC_ALL", "C")
    if extra:
        env.update(extra)
    return env


def run(argv, timeout=60, env=None, cwd=None, stdin_text=None):
    """Run argv to completion with a timeout (the whole process group is killed on timeout)."""
    start = time.monotonic()
    proc = subprocess.Popen([str(a) for a in argv], cwd=cwd, env=env if env is not None else clean_env(),
                            stdin=subprocess.PIPE if stdin_text is not None else subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        out, err = proc.communicate(stdin_text.encode() if stdin_text is not None else None,
                                    timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_group(proc)
        out, err = proc.communicate()
        raise CaseFailed(f"timed out after {timeout}s: {' '.join(map(str, argv))}\n"
                         f"      stdout: {tail(out)}\n      stderr: {tail(err)}")
    return Result(argv, proc.returncode, out.decode("utf-8", "replace"),
                  err.decode("utf-8", "replace"), time.monotonic() - start)


def kill_group(proc):
    """SIGKILL the process group that `proc` leads (created by start_new_session=True)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def program(name):
    path = os.path.join(PROGRAMS_DIR, name)
    if not os.path.exists(path):
        raise CaseFailed(f"test program not built: {path}")
    return path


def new_dir(prefix):
    """A fresh temporary directory, removed at exit unless MEMLENS_KEEP_TMP is set."""
    path = tempfile.mkdtemp(prefix=f"memlens-e2e-{prefix}-")
    if not os.environ.get("MEMLENS_KEEP_TMP"):
        import atexit
        atexit.register(shutil.rmtree, path, True)
    return path


def run_plain(argv, cwd, timeout=60, env_extra=None, stdin_text=None):
    return run(argv, timeout=timeout, env=clean_env(env_extra), cwd=cwd, stdin_text=stdin_text)


def run_memlens(argv, outdir, cwd, timeout=120, options=(), env_extra=None, stdin_text=None):
    """`memlens run --out OUTDIR [options] -- argv`."""
    cmd = [CLI, "run", "--out", outdir, *options, "--", *argv]
    return run(cmd, timeout=timeout, env=clean_env(env_extra), cwd=cwd, stdin_text=stdin_text)


def cli_json(suite, command, outdir, timeout=120):
    """`memlens COMMAND --json OUTDIR` parsed; the case stops if it fails or prints bad JSON."""
    result = run([CLI, command, "--json", outdir], timeout=timeout, env=clean_env())
    suite.require(result.returncode == 0,
                  f"memlens {command} --json failed: " + result.describe())
    try:
        doc = json.loads(result.stdout)
    except ValueError as error:
        raise CaseFailed(f"memlens {command} --json printed invalid JSON ({error}): "
                         f"{tail(result.stdout)}")
    suite.require(isinstance(doc, dict) and isinstance(doc.get("processes"), list),
                  f"memlens {command} --json: no 'processes' array in {tail(result.stdout, 500)}")
    return doc


def traced_run(suite, argv, tag, timeout=120, options=(), env_extra=None, stdin_text=None,
               expect_status=None, compare_plain=True):
    """Run argv plainly and under memlens (each in its own temp dir); check exit status and
    stdout are unchanged.  Returns (outdir, memlens Result)."""
    base = new_dir(tag)
    outdir = os.path.join(base, "run")
    plain_cwd = os.path.join(base, "plain")
    traced_cwd = os.path.join(base, "traced")
    os.mkdir(plain_cwd)
    os.mkdir(traced_cwd)
    plain = None
    if compare_plain:
        plain = run_plain(argv, plain_cwd, timeout=timeout, env_extra=env_extra, stdin_text=stdin_text)
        if expect_status is not None:
            suite.eq(f"exit status of plain {os.path.basename(str(argv[0]))}", expect_status,
                     plain.returncode)
    traced = run_memlens(argv, outdir, traced_cwd, timeout=timeout, options=options,
                         env_extra=env_extra, stdin_text=stdin_text)
    if plain is not None:
        suite.eq("exit status under memlens (vs plain run)", plain.returncode, traced.returncode)
        suite.eq("stdout under memlens (vs plain run)", plain.stdout, traced.stdout)
        if plain.returncode != traced.returncode:
            suite.fail("memlens run: " + traced.describe())
    suite.require(os.path.isdir(outdir), f"no run directory {outdir}: " + traced.describe())
    return outdir, traced


# ---------------------------------------------------------------------------------------------
# Streams (read directly, per docs/format.md)


class Stream:
    def __init__(self, path):
        self.path = path
        self.name = os.path.basename(path)
        self.records = []
        self.bad_lines = []          # (line number, text) of malformed lines other than the last
        self.truncated_last = False  # last line incomplete (allowed after a kill)
        with open(path, "rb") as handle:
            data = handle.read()
        lines = data.split(b"\n")
        complete = lines[:-1]
        last = lines[-1]
        for number, raw in enumerate(complete, 1):
            try:
                self.records.append(json.loads(raw))
            except ValueError:
                self.bad_lines.append((number, raw[:200]))
        if last.strip():
            try:
                self.records.append(json.loads(last))
                self.truncated_last = False
            except ValueError:
                self.truncated_last = True
        self.header = self.records[0] if self.records and self.records[0].get("type") == "header" else None
        ends = [r for r in self.records if r.get("type") == "end"]
        self.end = ends[-1] if ends else None

    def of_type(self, kind):
        return [r for r in self.records if r.get("type") == kind]

    def __repr__(self):
        return f"<stream {self.name}>"


def read_streams(outdir):
    names = sorted(n for n in os.listdir(outdir) if re.search(r"\.\d+\.\d+\.jsonl$", n))
    return [Stream(os.path.join(outdir, n)) for n in names]


def check_stream_basics(suite, stream, must_end=True):
    """Header first, no malformed line, and (unless cut) an end record as the last record."""
    suite.check(not stream.bad_lines, f"{stream.name}: malformed lines {stream.bad_lines[:3]}")
    if not suite.check(stream.header is not None, f"{stream.name}: first record is not a header"):
        return
    suite.eq(f"{stream.name}: header format", "memlens", stream.header.get("format"))
    suite.eq(f"{stream.name}: header version", 1, stream.header.get("version"))
    header = stream.header
    expected_name = f"memlens.{header.get('pid')}.{header.get('seq')}.jsonl"
    suite.eq(f"{stream.name}: file name (memlens.<pid>.<seq>.jsonl, docs/format.md)", expected_name, stream.name)
    if must_end:
        suite.check(not stream.truncated_last, f"{stream.name}: last line truncated")
        if suite.check(stream.end is not None, f"{stream.name}: no end record"):
            suite.check(stream.records[-1] is stream.end,
                        f"{stream.name}: records after the end record")


def stream_allocations(stream):
    """Sum of heap+mmap allocation deltas over the stream's `sites` records."""
    return sum(row[1] for record in stream.of_type("sites") for row in record.get("d", []))


# ---------------------------------------------------------------------------------------------
# Report / leaks JSON


def function_name(frame):
    """Frame function without C++ parameter lists (`ns::f(int) const` -> `ns::f`)."""
    name = (frame or {}).get("function")
    if not name:
        return None
    return name.split("(")[0].strip()


def frame0(entry):
    stack = entry.get("stack") or []
    return stack[0] if stack else {}


def stack_functions(entry):
    return [function_name(f) for f in entry.get("stack") or []]


def processes_by_exe(doc, exe_name):
    return [p for p in doc["processes"]
            if os.path.basename(str(p.get("exe") or "")) == exe_name]


def one_process(suite, doc, exe_name, what):
    found = processes_by_exe(doc, exe_name)
    suite.require(len(found) == 1,
                  f"{what}: expected 1 process with exe {exe_name}, got {len(found)} "
                  f"(processes: {[(p.get('pid'), p.get('exe')) for p in doc['processes']]})")
    return found[0]


def process_by_pid(doc, pid):
    return [p for p in doc["processes"] if p.get("pid") == pid]


def entries_of_function(suite, entries, name, label):
    """Entries (sites or leaks) whose first frame is function `name`.  When none matches but
    `name` is deeper in some stacks, those are used for the numbers and the frame-0 mismatch is
    reported as a failure of its own."""
    direct = [e for e in entries if function_name(frame0(e)) == name]
    if direct:
        return direct
    deeper = [e for e in entries if name in stack_functions(e)]
    if deeper:
        suite.fail(f"{label}: first frame should be {name} (the caller of the allocation "
                   f"function), got stacks {[stack_functions(e)[:4] for e in deeper[:3]]}")
        return deeper
    seen = sorted({str(function_name(frame0(e))) for e in entries})
    suite.fail(f"{label}: no entry with {name} in its stack; first frames seen: {seen[:40]}")
    return []


def total(entries, field):
    return sum(int(e.get(field) or 0) for e in entries)


def check_numbers(suite, label, expected, entries):
    """Compare expected {field: value} (plus optional 'kind') with the sum over entries."""
    for field, value in expected.items():
        if field == "kind":
            kinds = sorted({e.get("kind") for e in entries}, key=str)
            suite.eq(f"{label}: kind", [value], kinds)
        elif field.startswith("_"):
            continue
        else:
            suite.eq(f"{label}: {field}", value, total(entries, field))


def check_report_process(suite, label, proc, expected):
    """expected: {"totals": {...}, "functions": {fn: {...}}, "kinds": {kind: {...}}}"""
    totals = proc.get("totals") or {}
    for field, value in (expected.get("totals") or {}).items():
        if not field.startswith("_"):
            suite.eq(f"{label} report totals.{field}", value, totals.get(field))
    sites = proc.get("sites") or []
    for name, numbers in (expected.get("functions") or {}).items():
        matched = entries_of_function(suite, sites, name, f"{label} report sites of {name}")
        if matched:
            check_numbers(suite, f"{label} report sites of {name}", numbers, matched)
    for kind, numbers in (expected.get("kinds") or {}).items():
        matched = [s for s in sites if s.get("kind") == kind]
        if suite.check(matched, f"{label} report: no site of kind {kind} "
                                f"(kinds seen: {sorted({s.get('kind') for s in sites}, key=str)})"):
            check_numbers(suite, f"{label} report kind {kind}", numbers, matched)


def check_leaks_process(suite, label, proc, expected):
    """expected: {"summary": {"heap": {...}, "mmap": {...}}, "functions": {fn: {...}}}"""
    summary = proc.get("summary") or {}
    for part, numbers in (expected.get("summary") or {}).items():
        for field, value in numbers.items():
            suite.eq(f"{label} leaks summary.{part}.{field}", value,
                     (summary.get(part) or {}).get(field))
    leaks = proc.get("leaks") or []
    for name, numbers in (expected.get("functions") or {}).items():
        matched = entries_of_function(suite, leaks, name, f"{label} leaks of {name}")
        if matched:
            check_numbers(suite, f"{label} leaks of {name}", numbers, matched)
    # Mappings still mapped at exit are reported apart ("mappings"); accept them in "leaks" too.
    mappings = (proc.get("mappings") or []) + [e for e in leaks
                                               if str(e.get("kind")).startswith("mmap")]
    for name, numbers in (expected.get("mapping_functions") or {}).items():
        matched = entries_of_function(suite, mappings, name, f"{label} leaked mappings of {name}")
        if matched:
            check_numbers(suite, f"{label} leaked mappings of {name}", numbers, matched)


def load_expect(name):
    path = os.path.join(PROGRAMS_SRC, f"{name}.expect.json")
    with open(path) as handle:
        return json.load(handle)


def marker_line(source, marker):
    """Line number of the line containing `marker` in tests/programs/<source>."""
    with open(os.path.join(PROGRAMS_SRC, source)) as handle:
        for number, line in enumerate(handle, 1):
            if marker in line:
                return number
    raise CaseFailed(f"marker {marker!r} not found in {source}")


def check_frame_location(suite, label, entries, function, source, line=None, obj=None):
    """The first frame of each entry names `function` in file `source` (and line / object)."""
    for entry in entries:
        top = frame0(entry)
        if function_name(top) != function:
            continue
        file_name = str(top.get("file") or "")
        suite.check(file_name.endswith(source),
                    f"{label}: frame {function} file: expected …{source}, got {top.get('file')!r}")
        if line is not None:
            suite.eq(f"{label}: frame {function} line", line, top.get("line"))
        if obj is not None:
            suite.check(str(top.get("object") or "").endswith(obj),
                        f"{label}: frame {function} object: expected …{obj}, got {top.get('object')!r}")


def check_program(suite, name, args=(), env_extra=None, options=()):
    """The common path: run program `name` with its expect file; check status/stdout, streams,
    report and leaks for its single process.  Returns (outdir, report doc, leaks doc, expect)."""
    require_tools(suite)
    expect = load_expect(name)
    argv = [program(name), *args]
    outdir, _ = traced_run(suite, argv, name, expect_status=expect.get("exit_status", 0),
                           env_extra=env_extra, options=options)
    if "stdout" in expect:
        plain = run_plain(argv, new_dir(name + "-stdout"), env_extra=env_extra)
        suite.eq(f"{name} stdout (plain run)", expect["stdout"], plain.stdout)
    streams = read_streams(outdir)
    suite.require(len(streams) == 1, f"{name}: expected 1 stream in {outdir}, got "
                                     f"{[s.name for s in streams]}")
    check_stream_basics(suite, streams[0])
    report = cli_json(suite, "report", outdir)
    leaks = cli_json(suite, "leaks", outdir)
    check_report_process(suite, name, one_process(suite, report, name, "report"), expect["report"])
    check_leaks_process(suite, name, one_process(suite, leaks, name, "leaks"), expect["leaks"])
    return outdir, report, leaks, expect
