#!/usr/bin/env python3
"""e2e-real: real programs run unchanged under memlens, without crash or hang.

Cases: python3 (an allocating script), node -e, git (init, add, commit, log in a temp repo,
fixed dates so hashes match), sqlite3 (queries on a temp database), bash -c with a loop, gcc
compiling a small file.  Each runs plainly and under memlens in identical fresh directories.
Asserted: same exit status and stdout; every stream parses, has a header and an end record;
at least one stream; nonzero allocations in the report.  A tool that is not installed is a
SKIP for its case, not a failure."""
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import memlens_test as mt  # noqa: E402

GIT_ENV = {
    "GIT_AUTHOR_NAME": "memlens", "GIT_AUTHOR_EMAIL": "memlens@example.invalid",
    "GIT_COMMITTER_NAME": "memlens", "GIT_COMMITTER_EMAIL": "memlens@example.invalid",
    "GIT_AUTHOR_DATE": "2024-01-01T00:00:00Z", "GIT_COMMITTER_DATE": "2024-01-01T00:00:00Z",
    "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_PAGER": "cat",
}


def need(tool):
    path = shutil.which(tool)
    if path is None:
        mt.skip(f"{tool} is not installed")
    return path


def check_run_dir(suite, outdir, label):
    streams = mt.read_streams(outdir)
    suite.require(streams, f"{label}: no stream in {outdir}")
    for stream in streams:
        mt.check_stream_basics(suite, stream)
    report = mt.cli_json(suite, "report", outdir)
    allocations = sum(int((p.get("totals") or {}).get("allocations") or 0) for p in report["processes"])
    suite.check(allocations > 0, f"{label}: report shows no allocations in "
                                 f"{len(report['processes'])} processes")
    mt.cli_json(suite, "leaks", outdir)
    print(f"    {label}: {len(streams)} streams, {allocations} allocations")


def simple(suite, label, argv, timeout=120, env_extra=None):
    mt.require_tools(suite)
    outdir, _ = mt.traced_run(suite, argv, label, timeout=timeout, env_extra=env_extra)
    check_run_dir(suite, outdir, label)


def python3(suite):
    interpreter = os.path.realpath(sys.executable)  # the real binary, not a pyenv shim
    script = ("import json\n"
              "rows = [{'i': i, 's': str(i) * 3, 'l': list(range(i % 7))} for i in range(20000)]\n"
              "text = json.dumps(rows)\n"
              "print(len(text), sum(len(r['l']) for r in json.loads(text)))\n")
    simple(suite, "python3", [interpreter, "-c", script])


def node(suite):
    node_path = need("node")
    script = ("const a = []; for (let i = 0; i < 100000; i++) a.push({i, s: 'x' + i});"
              "console.log(a.length, a[99999].s, JSON.stringify(a).length)")
    simple(suite, "node", [node_path, "-e", script], timeout=180)


def bash(suite):
    bash_path = need("bash")
    script = ('x=; for i in $(seq 1 300); do x="$x$i,"; done; echo ${#x}; '
              'a=(); for i in {1..500}; do a+=("item$i"); done; echo ${#a[@]} ${a[499]}')
    simple(suite, "bash", [bash_path, "-c", script])


def sqlite3(suite):
    sqlite = need("sqlite3")
    sql = ("create table t(a integer, b text); "
           "insert into t values (1, 'one'), (2, 'two'), (3, 'three'); "
           "insert into t select a + 3, b || '!' from t; "
           "create index t_b on t(b); "
           "select count(*), sum(a) from t; select group_concat(b, ',') from t where a > 2;")
    simple(suite, "sqlite3", [sqlite, "test.db", sql])


def git(suite):
    """Each git command runs plainly in one repo and under memlens in another, step by step."""
    mt.require_tools(suite)
    git_path = need("git")
    base = mt.new_dir("git")
    repos = {"plain": os.path.join(base, "plain"), "traced": os.path.join(base, "traced")}
    env = dict(GIT_ENV, HOME=base)
    steps = [["init", "-q", "-b", "main", "repo"], ["add", "file.txt"],
             ["commit", "-q", "-m", "first commit"], ["log", "--format=%H %an %s"],
             ["status", "--short"]]
    for name, path in repos.items():
        os.mkdir(path)
    for number, step in enumerate(steps):
        results = {}
        for name, path in repos.items():
            cwd = path if number == 0 else os.path.join(path, "repo")
            if number == 1:
                with open(os.path.join(cwd, "file.txt"), "w") as handle:
                    handle.write("hello from memlens\n" * 50)
            argv = [git_path, *step]
            if name == "plain":
                results[name] = mt.run_plain(argv, cwd, timeout=120, env_extra=env)
            else:
                outdir = os.path.join(base, f"run-{number}")
                results[name] = mt.run_memlens(argv, outdir, cwd, timeout=120, env_extra=env)
                check_run_dir(suite, outdir, f"git {step[0]}")
        plain, traced = results["plain"], results["traced"]
        suite.eq(f"git {step[0]}: exit status under memlens (vs plain)", plain.returncode,
                 traced.returncode)
        suite.eq(f"git {step[0]}: stdout under memlens (vs plain)", plain.stdout, traced.stdout)
        suite.require(plain.returncode == 0, f"git {step[0]} failed even without memlens: "
                      + plain.describe())


def gcc(suite):
    mt.require_tools(suite)
    compiler = need("gcc")
    source = ("#include <stdio.h>\n#include <stdlib.h>\n"
              "struct node { struct node *next; int value; };\n"
              "int main(void) { struct node *head = NULL;\n"
              "  for (int i = 0; i < 10; i++) { struct node *n = malloc(sizeof *n);\n"
              "    n->next = head; n->value = i; head = n; }\n"
              "  printf(\"%d\\n\", head->value); return 0; }\n")
    base = mt.new_dir("gcc")
    outdir = os.path.join(base, "run")
    results = {}
    for name in ("plain", "traced"):
        cwd = os.path.join(base, name)
        os.mkdir(cwd)
        with open(os.path.join(cwd, "hello.c"), "w") as handle:
            handle.write(source)
        argv = [compiler, "-O1", "-Wall", "-o", "hello", "hello.c"]
        if name == "plain":
            results[name] = mt.run_plain(argv, cwd, timeout=180)
        else:
            results[name] = mt.run_memlens(argv, outdir, cwd, timeout=180)
        suite.check(os.path.exists(os.path.join(cwd, "hello")), f"gcc ({name}) produced no binary: "
                    + results[name].describe())
    suite.eq("gcc: exit status under memlens (vs plain)", results["plain"].returncode,
             results["traced"].returncode)
    suite.eq("gcc: stdout under memlens (vs plain)", results["plain"].stdout, results["traced"].stdout)
    suite.eq("gcc: stderr (diagnostics) under memlens (vs plain), memlens lines removed",
             results["plain"].stderr,
             "".join(l for l in results["traced"].stderr.splitlines(True) if not l.startswith("memlens")))
    check_run_dir(suite, outdir, "gcc")
    ran = mt.run([os.path.join(base, "traced", "hello")], timeout=30)
    suite.eq("binary compiled under memlens prints", "9\n", ran.stdout)


def main():
    suite = mt.Suite("e2e-real")
    suite.case("python3", python3)
    suite.case("node -e", node)
    suite.case("git init/add/commit/log/status", git)
    suite.case("sqlite3", sqlite3)
    suite.case("bash -c loop", bash)
    suite.case("gcc compile", gcc)
    suite.finish()


if __name__ == "__main__":
    main()
