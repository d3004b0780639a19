#!/usr/bin/env python3
"""e2e-check: `memlens check`, `memlens run --check` and MEMLENS_CHECK=1 as a CI gate.

Runs the leak-class programs (tests/programs/class_*.c; numbers in their .expect.json) under the
preload once each, then asserts:
  * exit codes: 0 clean, 1 findings, 2 usage or input error; definitely+indirectly lost counted by
    --max-leaked (default 0), possibly lost by --max-possibly, still reachable never a finding;
  * budgets at the exact boundary: --max-leaked 39/40 (class_simple, 40 lost), 239/240
    (class_list_lost: 48 direct + 192 indirect), --max-peak 95/96 (class_simple's heap peak);
  * suppressions (LSan `leak:` lines, `*` wildcards on function, file and object, `#` comments):
    matching ones pass, non-matching ones (a reachable block's function, an unknown function)
    still fail, a suppression does not hide another leak;
  * baseline: --write-baseline from one run, a second run of the same program passes (matched by
    symbolized stack, not addresses), a run with one more leak fails and reports only that leak;
  * formats, each read by a real consumer: JUnit XML validated by xmllint against
    tests/schemas/junit-10.xsd and parsed; SARIF validated with python3-jsonschema against the
    SARIF 2.1.0 JSON schema (tests/schemas/sarif-schema-2.1.0.json) and its result located at
    class_simple.c:<leak line>; GitHub annotation lines parsed as the runner does
    (`::error file=…,line=…::message`, escaping); same exit code in every format;
  * bad suppression / baseline files, truncated or missing runs: exit 2 and one error line;
  * `memlens run --check -- prog` exits 1 on findings although the program exited 0;
  * MEMLENS_CHECK=1 (the shim itself): exit 1 and one summary line on stderr when definitely+
    indirectly lost > MEMLENS_MAX_LEAKED (default 0) and the program exited 0; the program's own
    non-zero status is kept.
Parts that need xmllint or jsonschema skip when those are missing."""
import json
import os
import re
import shutil
import sys
import xml.etree.ElementTree as ElementTree

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import memlens_test as mt  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
SCHEMAS = os.path.join(HERE, "..", "schemas")
JUNIT_XSD = os.path.join(SCHEMAS, "junit-10.xsd")
SARIF_SCHEMA = os.path.join(SCHEMAS, "sarif-schema-2.1.0.json")
HUGE = "1000000000"  # a budget nothing here reaches

RUNS = {}  # key -> run directory (each program is run once under the preload)
RUN_SPECS = {
    "simple": ("class_simple", ()),
    "simple_again": ("class_simple", ()),   # a second run: other pid, other addresses
    "simple_extra": ("class_simple", ("extra",)),
    "list_lost": ("class_list_lost", ()),
    "list_held": ("class_list_held", ()),
    "cycle": ("class_cycle", ()),
    "interior": ("class_interior", ()),
    "thread_exit": ("class_thread_exit", ()),
    "thread_live": ("class_thread_live", ()),
    "tls": ("class_tls", ()),
}


# ---------------------------------------------------------------------------------------------
# helpers


def run_dir(suite, key):
    if key not in RUNS:
        name, args = RUN_SPECS[key]
        outdir, traced = mt.traced_run(suite, [mt.program(name), *args], f"check-{key}",
                                       compare_plain=False)
        suite.require(traced.returncode == 0,
                      f"memlens run of {name} {' '.join(args)} should exit 0: " + traced.describe())
        RUNS[key] = outdir
    return RUNS[key]


def check(args, outdir=None, cwd=None):
    argv = [mt.CLI, "check", *args] + ([outdir] if outdir else [])
    return mt.run(argv, env=mt.clean_env(), cwd=cwd)


def expect_exit(suite, label, expected, result):
    if result.returncode != expected:
        suite.fail(f"{label}: exit status: expected {expected}, got {result.returncode}; "
                   + result.describe())
        return False
    return True


def error_lines(result):
    """stderr lines that are not notes (`memlens: note: …`)."""
    return [line for line in result.stderr.splitlines()
            if line.strip() and not re.match(r"^memlens[^:]*: note:", line)]


def expect_input_error(suite, label, result, mentions=()):
    """Exit 2 with exactly one error line, which names each of `mentions` (any one of the
    alternatives when an item is a tuple)."""
    if not expect_exit(suite, label, 2, result):
        return
    lines = error_lines(result)
    if not suite.check(len(lines) == 1, f"{label}: expected one error line on stderr, got "
                                        f"{len(lines)}: {lines!r}"):
        return
    for item in mentions:
        options = item if isinstance(item, tuple) else (item,)
        suite.check(any(option in lines[0] for option in options),
                    f"{label}: the error line should name {' or '.join(map(repr, options))}: "
                    f"{lines[0]!r}")


def write(path, text):
    with open(path, "w") as handle:
        handle.write(text)
    return path


def leak_line():
    return mt.marker_line("class_simple.c", "LEAK-SITE leak_simple")


def extra_line():
    return mt.marker_line("class_simple.c", "LEAK-SITE leak_extra")


# ---------------------------------------------------------------------------------------------
# cases


def exit_codes(suite):
    mt.require_tools(suite)
    for key, args, expected, why in (
            ("simple", [], 1, "40 bytes definitely lost"),
            ("list_held", [], 0, "only still reachable blocks"),
            ("list_lost", [], 1, "48 definitely + 192 indirectly lost"),
            ("cycle", [], 1, "an unreachable cycle"),
            ("thread_exit", ["--max-possibly", HUGE], 1, "72 bytes lost by an exited thread"),
            ("interior", ["--max-possibly", "0"], 1, "64 bytes possibly lost, --max-possibly 0"),
            ("interior", ["--max-possibly", "64"], 0, "64 bytes possibly lost, --max-possibly 64"),
            ("interior", ["--max-leaked", "0", "--max-possibly", HUGE], 0,
             "possibly lost is not counted by --max-leaked"),
            ("thread_live", ["--max-possibly", HUGE], 0,
             "a block on a live thread's stack is reachable (the DTV is possibly lost)"),
            ("tls", ["--max-possibly", HUGE], 0, "blocks held in __thread variables are reachable")):
        result = check(args, run_dir(suite, key))
        if expect_exit(suite, f"check {' '.join(args)} {key} ({why})", expected, result) and expected == 1:
            suite.check(result.stdout.strip(), f"check {key}: findings but nothing on stdout")
    result = check([], run_dir(suite, "simple"))
    suite.check("leak_simple" in result.stdout,
                f"check class_simple (text): the finding should name leak_simple: {mt.tail(result.stdout)}")


def budgets(suite):
    mt.require_tools(suite)
    for key, args, expected in (
            ("simple", ["--max-leaked", "39"], 1),
            ("simple", ["--max-leaked", "40"], 0),
            ("list_lost", ["--max-leaked", "48"], 1),   # indirectly lost counts too
            ("list_lost", ["--max-leaked", "239"], 1),
            ("list_lost", ["--max-leaked", "240"], 0),
            ("cycle", ["--max-leaked", "63"], 1),
            ("cycle", ["--max-leaked", "64"], 0),
            ("simple", ["--max-leaked", HUGE, "--max-peak", "95"], 1),
            ("simple", ["--max-leaked", HUGE, "--max-peak", "96"], 0)):
        expect_exit(suite, f"check {' '.join(args)} {key}", expected, check(args, run_dir(suite, key)))


def suppressions(suite):
    mt.require_tools(suite)
    base = mt.new_dir("check-supp")
    simple = run_dir(suite, "simple")
    for text, key, expected, why in (
            ("leak:leak_simple\n", "simple", 0, "function name"),
            ("leak:leak_sim*\n", "simple", 0, "function with a * wildcard"),
            ("leak:*class_simple.c\n", "simple", 0, "file with a * wildcard"),
            ("leak:*/class_simple\n", "simple", 0, "object (the executable) with a * wildcard"),
            ("# a comment\n\n   # an indented comment\nleak:leak_simple\n# trailing\n", "simple", 0,
             "comments and blank lines"),
            ("leak:list_node\n", "list_lost", 0, "definite and indirect blocks of one site"),
            ("leak:hold_global\n", "simple", 1, "matches only the still reachable block"),
            ("leak:no_such_function\n", "simple", 1, "matches nothing"),
            ("leak:leak_simple_not\n", "simple", 1, "a longer name does not match"),
            ("leak:leak_simple\n", "simple_extra", 1, "leak_extra is not suppressed")):
        path = write(os.path.join(base, f"supp-{len(os.listdir(base))}.txt"), text)
        result = check(["--suppressions", path], run_dir(suite, key) if key != "simple" else simple)
        expect_exit(suite, f"check --suppressions {text.strip()!r} {key} ({why})", expected, result)
        if key == "simple_extra" and result.returncode == 1:
            suite.check("leak_extra" in result.stdout,
                        f"check with leak_simple suppressed: leak_extra should be reported: "
                        f"{mt.tail(result.stdout)}")


def active_sarif_results(doc):
    """Results that are findings: not suppressed, not 'unchanged'/'absent' against a baseline."""
    results = []
    for run in doc.get("runs") or []:
        for result in run.get("results") or []:
            if result.get("suppressions"):
                continue
            if result.get("baselineState") in ("unchanged", "absent"):
                continue
            if result.get("kind") not in (None, "fail"):
                continue
            results.append(result)
    return results


def result_lines(result):
    lines = set()
    for location in result.get("locations") or []:
        region = ((location.get("physicalLocation") or {}).get("region") or {})
        if "startLine" in region:
            lines.add(region["startLine"])
    return lines


def baseline(suite):
    mt.require_tools(suite)
    base = mt.new_dir("check-baseline")
    path = os.path.join(base, "baseline.json")
    written = check(["--write-baseline", path], run_dir(suite, "simple"))
    suite.require(written.returncode in (0, 1),
                  "check --write-baseline: expected exit 0 or 1, got " + written.describe())
    suite.require(os.path.isfile(path) and os.path.getsize(path) > 0,
                  f"check --write-baseline wrote nothing at {path}: " + written.describe())
    expect_exit(suite, "check --baseline (baseline of the same run)", 0,
                check(["--baseline", path], run_dir(suite, "simple")))
    expect_exit(suite, "check --baseline (a second run of the same program: old leak passes)", 0,
                check(["--baseline", path], run_dir(suite, "simple_again")))
    new = check(["--baseline", path], run_dir(suite, "simple_extra"))
    if expect_exit(suite, "check --baseline (a run with a new leak fails)", 1, new):
        suite.check("leak_extra" in new.stdout,
                    f"check --baseline: the new leak leak_extra should be reported: {mt.tail(new.stdout)}")
    expect_exit(suite, "check --baseline of class_simple on class_list_lost (other stacks)", 1,
                check(["--baseline", path], run_dir(suite, "list_lost")))
    sarif = check(["--baseline", path, "--format", "sarif"], run_dir(suite, "simple_extra"))
    if expect_exit(suite, "check --baseline --format sarif (new leak)", 1, sarif):
        try:
            doc = json.loads(sarif.stdout)
        except ValueError as error:
            raise mt.CaseFailed(f"check --format sarif printed invalid JSON ({error}): "
                                f"{mt.tail(sarif.stdout)}")
        active = active_sarif_results(doc)
        lines = sorted(line for result in active for line in result_lines(result))
        suite.eq("check --baseline --format sarif: lines of the new findings (leak_extra only)",
                 [extra_line()], lines)


# -- formats -----------------------------------------------------------------------------------


def junit_format(suite):
    mt.require_tools(suite)
    if shutil.which("xmllint") is None:
        mt.skip("xmllint not installed (Debian: libxml2-utils)")
    base = mt.new_dir("check-junit")
    for key, expected in (("simple", 1), ("list_held", 0)):
        result = check(["--format", "junit"], run_dir(suite, key))
        if not expect_exit(suite, f"check --format junit {key}", expected, result):
            continue
        path = write(os.path.join(base, f"{key}.xml"), result.stdout)
        lint = mt.run(["xmllint", "--noout", "--schema", JUNIT_XSD, path])
        suite.check(lint.returncode == 0, f"check --format junit {key}: not valid against "
                                          f"junit-10.xsd: {mt.tail(lint.stderr)}\n"
                                          f"      document: {mt.tail(result.stdout)}")
        try:
            root = ElementTree.fromstring(result.stdout)
        except ElementTree.ParseError as error:
            suite.fail(f"check --format junit {key}: XML does not parse: {error}")
            continue
        suite.check(root.tag in ("testsuites", "testsuite"),
                    f"check --format junit {key}: root element: expected testsuites or testsuite, "
                    f"got {root.tag}")
        testcases = root.findall(".//testcase")
        failures = root.findall(".//testcase/failure") + root.findall(".//testcase/error")
        suite.check(testcases, f"check --format junit {key}: no testcase element")
        if expected == 1:
            suite.check(failures, f"check --format junit {key}: findings but no failure element")
            text = " ".join((f.get("message") or "") + " " + (f.text or "") for f in failures)
            suite.check("leak_simple" in text,
                        f"check --format junit {key}: the failure should name leak_simple: {text[:500]!r}")
            declared = [int(s.get("failures") or 0) + int(s.get("errors") or 0)
                        for s in root.iter("testsuite")]
            suite.check(sum(declared) >= 1,
                        f"check --format junit {key}: testsuite failures/errors attributes are 0")
        else:
            suite.eq(f"check --format junit {key}: failure/error elements", 0, len(failures))


def sarif_validator(suite):
    try:
        import jsonschema
    except ImportError:
        mt.skip("python3 jsonschema module not installed (Debian: python3-jsonschema)")
    with open(SARIF_SCHEMA) as handle:
        schema = json.load(handle)
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def sarif_format(suite):
    mt.require_tools(suite)
    validator = sarif_validator(suite)
    for key, expected in (("simple", 1), ("list_held", 0)):
        result = check(["--format", "sarif"], run_dir(suite, key))
        if not expect_exit(suite, f"check --format sarif {key}", expected, result):
            continue
        try:
            doc = json.loads(result.stdout)
        except ValueError as error:
            suite.fail(f"check --format sarif {key}: invalid JSON ({error}): {mt.tail(result.stdout)}")
            continue
        errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.path))
        for error in errors[:5]:
            suite.fail(f"check --format sarif {key}: SARIF 2.1.0 schema: at "
                       f"{'/'.join(map(str, error.path)) or '(root)'}: {error.message[:300]}")
        suite.eq(f"check --format sarif {key}: version", "2.1.0", doc.get("version"))
        runs = doc.get("runs") or []
        if not suite.check(len(runs) >= 1, f"check --format sarif {key}: no run"):
            continue
        driver = ((runs[0].get("tool") or {}).get("driver") or {})
        suite.check("memlens" in str(driver.get("name", "")).lower(),
                    f"check --format sarif {key}: tool.driver.name: expected memlens, got {driver.get('name')!r}")
        rule_ids = {r.get("id") for r in driver.get("rules") or []}
        active = active_sarif_results(doc)
        for res in active:
            suite.check(res.get("ruleId"), f"check --format sarif {key}: result without ruleId: {res}")
            if rule_ids and res.get("ruleId"):
                suite.check(res["ruleId"] in rule_ids, f"check --format sarif {key}: ruleId "
                                                       f"{res['ruleId']!r} not in tool.driver.rules {sorted(rule_ids, key=str)}")
        if expected == 0:
            suite.eq(f"check --format sarif {key}: findings", [], active)
            continue
        here = [r for r in active if leak_line() in result_lines(r)]
        if suite.check(here, f"check --format sarif {key}: no result at class_simple.c:{leak_line()} "
                             f"(leak_simple); results: {json.dumps(active)[:1500]}"):
            location = here[0]["locations"][0]["physicalLocation"]
            uri = (location.get("artifactLocation") or {}).get("uri", "")
            suite.check(uri.endswith("class_simple.c"),
                        f"check --format sarif {key}: artifactLocation.uri: expected …class_simple.c, got {uri!r}")
            suite.eq(f"check --format sarif {key}: level", "error", here[0].get("level", "warning"))
            suite.check(((here[0].get("message") or {}).get("text") or "").strip(),
                        f"check --format sarif {key}: result without message.text")


# GitHub workflow commands: `::error file=F,line=L,title=T::message`.  Property values escape
# % \r \n : , as %25 %0D %0A %3A %2C; the message escapes % \r \n.
ANNOTATION = re.compile(r"^::(error|warning|notice)(?: ([^:]*))?::(.*)$")
PROPERTY_KEYS = {"file", "line", "endLine", "col", "endColumn", "title"}


def parse_annotation(suite, label, line):
    match = ANNOTATION.match(line)
    if not suite.check(match, f"{label}: malformed annotation line {line!r}"):
        return None
    level, props_text, message = match.groups()
    props = {}
    for part in (props_text.split(",") if props_text else []):
        key, sep, value = part.partition("=")
        if not suite.check(sep and key in PROPERTY_KEYS,
                           f"{label}: bad property {part!r} in {line!r} (keys: {sorted(PROPERTY_KEYS)})"):
            continue
        suite.check(not re.search(r"%(?!25|0D|0A|3A|2C)", value),
                    f"{label}: unescaped % in property {key} of {line!r}")
        props[key] = value.replace("%2C", ",").replace("%3A", ":").replace("%0A", "\n") \
            .replace("%0D", "\r").replace("%25", "%")
    for key in ("line", "endLine", "col", "endColumn"):
        if key in props:
            suite.check(props[key].isdigit(), f"{label}: {key} is not a number in {line!r}")
    suite.check(message.strip(), f"{label}: empty message in {line!r}")
    suite.check(not re.search(r"%(?!25|0D|0A)", message), f"{label}: unescaped % in message of {line!r}")
    return level, props, message


def github_format(suite):
    mt.require_tools(suite)
    for key, expected in (("simple", 1), ("list_held", 0)):
        result = check(["--format", "github"], run_dir(suite, key))
        if not expect_exit(suite, f"check --format github {key}", expected, result):
            continue
        label = f"check --format github {key}"
        annotations = []
        for line in result.stdout.splitlines():
            if line.startswith("::"):
                parsed = parse_annotation(suite, label, line)
                if parsed:
                    annotations.append(parsed)
        errors = [a for a in annotations if a[0] == "error"]
        if expected == 0:
            suite.eq(f"{label}: ::error lines", [], errors)
            continue
        here = [a for a in errors if a[1].get("file", "").endswith("class_simple.c")
                and a[1].get("line") == str(leak_line())]
        suite.check(here, f"{label}: expected an ::error with file=…class_simple.c,line={leak_line()}; "
                          f"got {[(a[0], a[1]) for a in annotations]}\n      stdout: {mt.tail(result.stdout)}")


def formats_agree(suite):
    mt.require_tools(suite)
    for key in ("simple", "list_held", "list_lost"):
        codes = {fmt: check(["--format", fmt], run_dir(suite, key)).returncode
                 for fmt in ("text", "junit", "sarif", "github")}
        suite.eq(f"check {key}: exit status of each --format", 1 if key != "list_held" else 0,
                 codes["text"])
        suite.check(len(set(codes.values())) == 1,
                    f"check {key}: every --format should give the same exit status, got {codes}")
    expect_exit(suite, "check --format bogus", 2,
                check(["--format", "bogus"], run_dir(suite, "simple")))


# -- bad input -------------------------------------------------------------------------------


def bad_suppressions(suite):
    mt.require_tools(suite)
    base = mt.new_dir("check-bad-supp")
    simple = run_dir(suite, "simple")
    unknown = write(os.path.join(base, "unknown.supp"), "# ok\nrace:some_function\nleak:x\n")
    expect_input_error(suite, "check --suppressions with a `race:` line", check(
        ["--suppressions", unknown], simple), mentions=["unknown.supp", ("race:some_function", "2")])
    garbage = write(os.path.join(base, "garbage.supp"), "leak:leak_simple\nthis is not a suppression\n")
    expect_input_error(suite, "check --suppressions with a garbage line", check(
        ["--suppressions", garbage], simple),
        mentions=["garbage.supp", ("this is not a suppression", "2")])
    missing = os.path.join(base, "missing.supp")
    expect_input_error(suite, "check --suppressions with a missing file",
                       check(["--suppressions", missing], simple), mentions=["missing.supp"])


def bad_baselines(suite):
    mt.require_tools(suite)
    base = mt.new_dir("check-bad-baseline")
    simple = run_dir(suite, "simple")
    good = os.path.join(base, "good.json")
    written = check(["--write-baseline", good], simple)
    suite.require(os.path.isfile(good) and os.path.getsize(good) > 2,
                  "check --write-baseline wrote nothing: " + written.describe())
    with open(good) as handle:
        content = handle.read()
    for name, text in (("not-json.json", "this is not a baseline\n"),
                       ("cut.json", content[:len(content) // 2]),
                       ("string.json", '"a json string, not a baseline"\n')):
        path = write(os.path.join(base, name), text)
        expect_input_error(suite, f"check --baseline {name}", check(["--baseline", path], simple),
                           mentions=[name])
    expect_input_error(suite, "check --baseline with a missing file",
                       check(["--baseline", os.path.join(base, "missing.json")], simple),
                       mentions=["missing.json"])


def copy_cut_run(source, dest, keep):
    """Copy run directory `source` to `dest`, keeping in each stream only the records for which
    keep(record) is true, up to the first one it rejects; returns the stream paths."""
    os.makedirs(dest)
    paths = []
    for stream in mt.read_streams(source):
        path = os.path.join(dest, stream.name)
        with open(stream.path, "rb") as handle:
            lines = handle.read().split(b"\n")
        out = []
        for raw in lines:
            if not raw.strip():
                continue
            if not keep(json.loads(raw)):
                break
            out.append(raw)
        with open(path, "wb") as handle:
            handle.write(b"\n".join(out) + b"\n")
        os.chmod(path, 0o600)
        paths.append(path)
    return paths


def truncated_runs(suite):
    mt.require_tools(suite)
    base = mt.new_dir("check-truncated")
    simple = run_dir(suite, "simple")
    # 1. cut before the exit-time verdict: no leak / leak_summary / end records
    cut = os.path.join(base, "no-verdict")
    copy_cut_run(simple, cut, lambda r: r.get("type") not in ("leak", "leak_summary", "end"))
    expect_input_error(suite, "check on a run cut before its leak records (no end)",
                       check([], cut))
    # 2. the same, ending with half a line (what SIGKILL can leave)
    half = os.path.join(base, "half-line")
    paths = copy_cut_run(simple, half, lambda r: r.get("type") not in ("leak", "leak_summary", "end"))
    with open(paths[0], "ab") as handle:
        handle.write(b'{"type":"leak","site":1,"cla')
    expect_input_error(suite, "check on a run cut in the middle of a line", check([], half))
    # 3. cut right after the header
    header_only = os.path.join(base, "header-only")
    copy_cut_run(simple, header_only, lambda r: r.get("type") == "header")
    expect_input_error(suite, "check on a run with only a header", check([], header_only))
    # 4. no run at all
    missing = os.path.join(base, "does-not-exist")
    expect_input_error(suite, "check on a missing run directory", check([], missing),
                       mentions=["does-not-exist"])
    empty = os.path.join(base, "empty")
    os.mkdir(empty)
    expect_input_error(suite, "check on an empty directory", check([], empty))
    # 5. bad option values are usage errors
    expect_exit(suite, "check --max-leaked lots", 2, check(["--max-leaked", "lots"], simple))
    expect_exit(suite, "check --max-peak -5", 2, check(["--max-peak", "-5"], simple))


# -- run --check and MEMLENS_CHECK ------------------------------------------------------------


def run_check(suite):
    mt.require_tools(suite)
    for name, args, options, expected, why in (
            ("class_simple", (), ["--check"], 1, "40 bytes lost, program exited 0"),
            ("class_simple", (), ["--check", "--max-leaked", "40"], 0, "within --max-leaked 40"),
            ("class_list_held", (), ["--check"], 0, "only reachable blocks"),
            ("class_list_lost", (), ["--check", "--max-leaked", "239"], 1, "240 lost > 239"),
            ("class_simple", (), [], 0, "without --check the program's status")):
        base = mt.new_dir("check-run")
        result = mt.run_memlens([mt.program(name), *args], os.path.join(base, "run"), base,
                                options=options)
        expect_exit(suite, f"memlens run {' '.join(options)} -- {name} ({why})", expected, result)
        suite.eq(f"memlens run {' '.join(options)} -- {name}: program stdout",
                 mt.load_expect(name)["stdout"], result.stdout)
    base = mt.new_dir("check-run-fail")
    result = mt.run_memlens([mt.program("class_simple"), "fail"], os.path.join(base, "run"), base,
                            options=["--check"])
    suite.check(result.returncode != 0, "memlens run --check -- class_simple fail (program exits 3): "
                                        "expected a non-zero status, " + result.describe())


GROW_RATE = 2_500_000.0   # bytes/s of heap: grow_linear.c, 25,000 bytes every 10 ms for 3 s


def growth(suite):
    """--max-growth: grow_linear under MEMLENS_INTERVAL=100ms (about 30 snapshots) fails a 1MiB/s
    budget with one growth-budget finding at grow_alloc whose rate is the program's within 10 %,
    and passes 10MiB/s; its SARIF and JUnit validate; a run too short for 5 snapshots is not gated
    (and says so); a bad rate is a usage error; `run --check` gates it too."""
    mt.require_tools(suite)
    outdir, traced = mt.traced_run(suite, [mt.program("grow_linear")], "check-grow", compare_plain=False,
                                   env_extra={"MEMLENS_INTERVAL": "100ms"})
    suite.require(traced.returncode == 0, "memlens run of grow_linear: " + traced.describe())
    over = check(["--max-leaked", HUGE, "--max-growth", "1MiB/s"], outdir)
    if expect_exit(suite, "check --max-growth 1MiB/s on grow_linear", 1, over):
        fails = [line for line in over.stdout.splitlines() if line.strip().startswith("FAIL ")]
        suite.eq("check --max-growth 1MiB/s: findings", 1, len(fails))
        suite.check(fails and "growth-budget: heap grows linearly" in fails[0] and "grow_alloc" in fails[0],
                    f"the finding should say the heap grows linearly, at grow_alloc: {fails!r}")
    under = check(["--max-leaked", HUGE, "--max-growth", "10MiB/s"], outdir)
    if expect_exit(suite, "check --max-growth 10MiB/s on grow_linear (2.4 MiB/s)", 0, under):
        suite.check(re.search(r"growth: heap linear \+[0-9.]+ MiB/min", under.stdout),
                    f"check text should show the heap's pattern and rate: {mt.tail(under.stdout)}")
    sarif = check(["--max-leaked", HUGE, "--max-growth", "1MiB/s", "--format", "sarif"], outdir)
    if expect_exit(suite, "check --max-growth --format sarif", 1, sarif):
        doc = json.loads(sarif.stdout)
        errors = sorted(sarif_validator(suite).iter_errors(doc), key=lambda e: list(e.path))
        suite.check(not errors, f"SARIF with a growth finding is not valid: {errors[:1]}")
        results = doc["runs"][0]["results"]
        suite.eq("SARIF results", ["growth-budget"], [r.get("ruleId") for r in results])
        props = results[0].get("properties", {}) if results else {}
        suite.eq("SARIF growth metric", "heap", props.get("metric"))
        suite.eq("SARIF budgetBytesPerMinute", 60 << 20, props.get("budgetBytesPerMinute"))
        rate = props.get("rateBytesPerSecond") or 0
        suite.check(abs(rate - GROW_RATE) <= 0.1 * GROW_RATE,
                    f"SARIF rateBytesPerSecond {rate} should be within 10 % of {GROW_RATE:.0f}")
        rules = [r["id"] for r in doc["runs"][0]["tool"]["driver"]["rules"]]
        suite.check("growth-budget" in rules, f"SARIF rules should declare growth-budget: {rules}")
    if shutil.which("xmllint"):
        junit = check(["--max-leaked", HUGE, "--max-growth", "1MiB/s", "--format", "junit"], outdir)
        if expect_exit(suite, "check --max-growth --format junit", 1, junit):
            path = write(os.path.join(mt.new_dir("check-grow-junit"), "growth.xml"), junit.stdout)
            lint = mt.run(["xmllint", "--noout", "--schema", JUNIT_XSD, path])
            suite.check(lint.returncode == 0, f"JUnit with a growth finding: {mt.tail(lint.stderr)}")
            types = [f.get("type") for f in ElementTree.fromstring(junit.stdout).iter("failure")]
            suite.eq("JUnit failure types", ["growth-budget"], types)
    short = check(["--max-growth", "1KiB/s"], run_dir(suite, "list_held"))
    if expect_exit(suite, "check --max-growth on a run with no snapshot series", 0, short):
        suite.check("heap not gated (" in short.stdout,
                    f"check should say the heap's growth is not gated: {mt.tail(short.stdout)}")
    bad = check(["--max-growth", "fast"], outdir)
    if expect_exit(suite, "check --max-growth fast (usage error)", 2, bad):
        suite.check(bad.stderr.startswith("memlens check: --max-growth:"),
                    f"check --max-growth fast: the error should name --max-growth: {bad.stderr!r}")
    base = mt.new_dir("check-run-grow")
    result = mt.run_memlens([mt.program("grow_linear")], os.path.join(base, "run"), base,
                            options=["--check", "--max-leaked", HUGE, "--max-growth", "1MiB/s"],
                            env_extra={"MEMLENS_INTERVAL": "100ms"})
    expect_exit(suite, "memlens run --check --max-growth 1MiB/s -- grow_linear", 1, result)


def shim_env(outdir, extra):
    env = {"LD_PRELOAD": mt.LIB, "MEMLENS_OUT": outdir}
    env.update(extra)
    return env


def shim_check(suite):
    mt.require_tools(suite)
    for name, args, extra, expected, why in (
            ("class_simple", (), {"MEMLENS_CHECK": "1"}, 1, "40 bytes lost > default 0"),
            ("class_simple", (), {"MEMLENS_CHECK": "1", "MEMLENS_MAX_LEAKED": "39"}, 1, "40 > 39"),
            ("class_simple", (), {"MEMLENS_CHECK": "1", "MEMLENS_MAX_LEAKED": "40"}, 0, "40 <= 40"),
            ("class_list_lost", (), {"MEMLENS_CHECK": "1", "MEMLENS_MAX_LEAKED": "239"}, 1,
             "48 direct + 192 indirect > 239"),
            ("class_list_lost", (), {"MEMLENS_CHECK": "1", "MEMLENS_MAX_LEAKED": "240"}, 0, "240 <= 240"),
            ("class_cycle", (), {"MEMLENS_CHECK": "1"}, 1, "an unreachable cycle"),
            ("class_list_held", (), {"MEMLENS_CHECK": "1"}, 0, "only reachable blocks"),
            ("class_interior", (), {"MEMLENS_CHECK": "1"}, 0, "possibly lost is not counted"),
            ("class_thread_exit", (), {"MEMLENS_CHECK": "1"}, 1, "72 bytes lost by an exited thread"),
            ("class_thread_live", (), {"MEMLENS_CHECK": "1"}, 0, "reachable from a live thread's stack"),
            ("class_tls", (), {"MEMLENS_CHECK": "1"}, 0, "reachable from __thread variables"),
            ("class_simple", ("fail",), {"MEMLENS_CHECK": "1"}, 3, "the program's own status is kept"),
            ("class_simple", (), {}, 0, "MEMLENS_CHECK unset"),
            ("class_simple", (), {"MEMLENS_CHECK": "0"}, 0, "MEMLENS_CHECK=0")):
        base = mt.new_dir("check-shim")
        label = (f"{' '.join(f'{k}={v}' for k, v in extra.items())} {name} {' '.join(args)} "
                 f"({why})").strip()
        result = mt.run_plain([mt.program(name), *args], base,
                              env_extra=shim_env(os.path.join(base, "run"), extra))
        expect_exit(suite, label, expected, result)
        suite.eq(f"{label}: program stdout", mt.load_expect(name)["stdout"], result.stdout)
        if expected == 1:
            lines = [line for line in result.stderr.splitlines() if line.strip()]
            suite.check(len(lines) == 1 and "memlens" in lines[0].lower(),
                        f"{label}: expected one memlens summary line on stderr, got {lines!r}")
    base = mt.new_dir("check-shim-bad")
    result = mt.run_plain([mt.program("class_simple")], base, env_extra=shim_env(
        os.path.join(base, "run"), {"MEMLENS_CHECK": "1", "MEMLENS_MAX_LEAKED": "lots"}))
    expect_exit(suite, "MEMLENS_MAX_LEAKED=lots (invalid: the program runs untracked)", 0, result)
    suite.check("MEMLENS_MAX_LEAKED" in result.stderr,
                f"MEMLENS_MAX_LEAKED=lots: stderr should name the variable: {result.stderr!r}")


def main():
    suite = mt.Suite("e2e-check")
    suite.case("exit codes", exit_codes)
    suite.case("budgets (--max-leaked, --max-peak)", budgets)
    suite.case("suppressions", suppressions)
    suite.case("baseline", baseline)
    suite.case("JUnit XML (xmllint + junit-10.xsd)", junit_format)
    suite.case("SARIF 2.1.0 (jsonschema)", sarif_format)
    suite.case("GitHub annotations", github_format)
    suite.case("same exit status in every format", formats_agree)
    suite.case("bad suppression files", bad_suppressions)
    suite.case("bad baseline files", bad_baselines)
    suite.case("truncated and missing runs", truncated_runs)
    suite.case("memlens run --check", run_check)
    suite.case("growth budget (--max-growth)", growth)
    suite.case("MEMLENS_CHECK=1 in the shim", shim_check)
    suite.finish()


if __name__ == "__main__":
    main()
