#!/usr/bin/env python3
"""e2e-run_alerts: alerts through `memlens run` — printed on stderr as they happen, delivered by
`--alert-exec CMD` and `--alert-webhook URL` (README, `memlens run --help`).

`churn` (constant live set for 3 s) runs under `memlens run --interval 100ms` with a fake cgroup v2
tree (MEMLENS_CGROUP_ROOT, test_alerts.fake_cgroup) at 80 % of memory.max: the warning (60 %) and
critical (75 %) levels fire, emergency (90 %) does not. The alert records of the run's stream are
the reference: stderr has one human line for each, the --alert-exec command receives each JSON
line on stdin (appended to a file) with MEMLENS_ALERT_LEVEL/RULE/PID, and a local http.server
receives each as a POST with Content-Type application/json. MEMLENS_ALERT_LIMIT=2 with a flapping
cgroup usage limits what memlens run prints and delivers too. An unreachable webhook prints one
error line and the run keeps the program's status; malformed and over-long lines on the alert pipe
(written by a traced shell) are skipped with one warning each; at most 4 commands run at once (the
rest dropped and counted) and those still running after the 5 s at the end are stopped; bad flags
exit 2."""
import http.server
import json
import os
import socket
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import memlens_test as mt  # noqa: E402
from test_alerts import MAX, fake_cgroup, set_file  # noqa: E402

LEVELS_80 = {"MEMLENS_WARN": "60%", "MEMLENS_CRIT": "75%", "MEMLENS_EMERG": "90%",
             "MEMLENS_GROWTH_ALERT": "0"}


def memlens_run(suite, argv, env_extra, options=(), during=None):
    """`memlens run --out DIR --interval 100ms [options] -- argv`; returns (result, stream records)."""
    outdir = os.path.join(mt.new_dir("run-alerts"), "run")
    stop = threading.Event()
    worker = threading.Thread(target=during, args=(stop,)) if during else None
    if worker:
        worker.start()
    try:
        res = mt.run([mt.CLI, "run", "--out", outdir, "--interval", "100ms", *options, "--", *argv],
                     env=mt.clean_env(env_extra), timeout=90)
    finally:
        stop.set()
        if worker:
            worker.join()
    streams = mt.read_streams(outdir) if os.path.isdir(outdir) else []
    suite.require(streams, f"no stream: {res.describe()}")
    return res, streams


def alert_lines(stderr):
    return [ln for ln in stderr.splitlines() if ln.startswith("memlens: ALERT ")]


def by_time(records):
    return sorted(records, key=lambda r: (r.get("pid", 0), r.get("t", 0), r.get("level", ""), r.get("rule", "")))


def exec_command(base):
    """A command that appends its stdin and its MEMLENS_ALERT_* variables to two files."""
    out, env = os.path.join(base, "exec.jsonl"), os.path.join(base, "exec.env")
    cmd = (f'cat >> "{out}"; '
           f'echo "$MEMLENS_ALERT_LEVEL $MEMLENS_ALERT_RULE $MEMLENS_ALERT_PID" >> "{env}"')
    return cmd, out, env


def read_lines(path):
    if not os.path.exists(path):
        return []
    with open(path) as handle:
        return [ln for ln in handle.read().splitlines() if ln.strip()]


def levels_exec(suite):
    root, _ = fake_cgroup(MAX * 8 // 10)
    base = mt.new_dir("run-alerts-exec")
    cmd, out, env_file = exec_command(base)
    res, streams = memlens_run(suite, [mt.program("churn")], {"MEMLENS_CGROUP_ROOT": root, **LEVELS_80},
                               options=("--alert-exec", cmd))
    suite.eq("exit status", 0, res.returncode)
    records = streams[0].of_type("alert")
    pid = streams[0].header["pid"]
    suite.eq("stream alert levels", ["warning", "critical"], [r["level"] for r in records])
    lines = alert_lines(res.stderr)
    suite.eq("one stderr line per alert", len(records), len(lines))
    for line, pct, level in zip(lines, (60, 75), ("warning", "critical")):
        suite.check(line.startswith(f"memlens: ALERT {level}: cgroup memory 819.2 MiB >= {pct}% of limit "
                                    "1.0 GiB"), f"{level} line: {line!r}")
        suite.check(f"(pid {pid})" in line, f"{level} line names pid {pid}: {line!r}")
        suite.check("top: " in line and "churn_alloc (churn.c:" in line,
                    f"{level} line: top site symbolized as churn_alloc (churn.c:N): {line!r}")
    suite.check("emergency" not in res.stderr, f"no emergency alert: {res.stderr!r}")
    got = [json.loads(ln) for ln in read_lines(out)]
    suite.eq("--alert-exec stdin = the stream's alert records", by_time(records), by_time(got))
    envs = sorted(read_lines(env_file))
    suite.eq("--alert-exec environment", sorted(f"{r['level']} threshold {pid}" for r in records), envs)
    suite.check("alert-exec" not in res.stderr, f"no delivery message: {res.stderr!r}")


class Receiver(http.server.BaseHTTPRequestHandler):
    received = []   # (method, path, content type, body) of every request

    def do_POST(self):   # noqa: N802 (http.server naming)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        Receiver.received.append(("POST", self.path, self.headers.get("Content-Type"), body))
        self.send_response(204)
        self.end_headers()

    def do_GET(self):   # noqa: N802
        Receiver.received.append(("GET", self.path, None, b""))
        self.send_response(405)
        self.end_headers()

    def log_message(self, *args):
        pass


def webhook(suite):
    root, _ = fake_cgroup(MAX * 8 // 10)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    Receiver.received = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/hook"
        res, streams = memlens_run(suite, [mt.program("churn")], {"MEMLENS_CGROUP_ROOT": root, **LEVELS_80},
                                   options=("--alert-webhook", url))
    finally:
        server.shutdown()
        server.server_close()
    suite.eq("exit status", 0, res.returncode)
    records = streams[0].of_type("alert")
    suite.eq("stream alert levels", ["warning", "critical"], [r["level"] for r in records])
    got = Receiver.received
    suite.eq("requests: methods and paths", [("POST", "/hook")] * len(records), [(m, p) for m, p, _, _ in got])
    suite.eq("content types", ["application/json"] * len(records), [c for _, _, c, _ in got])
    bodies = [json.loads(b) for _, _, _, b in got]
    suite.eq("POST bodies = the stream's alert records", by_time(records), by_time(bodies))
    suite.eq("stderr alert lines", len(records), len(alert_lines(res.stderr)))
    suite.check("alert-webhook" not in res.stderr, f"no delivery error: {res.stderr!r}")


def rate_limit(suite):
    root, group = fake_cgroup(MAX // 10)
    base = mt.new_dir("run-alerts-limit")
    cmd, out, _ = exec_command(base)
    res, streams = memlens_run(suite, [mt.program("churn")],
                               {"MEMLENS_CGROUP_ROOT": root, "MEMLENS_ALERT_LIMIT": "2", "MEMLENS_WARN": "60%",
                                "MEMLENS_CRIT": "0", "MEMLENS_EMERG": "0"},
                               options=("--alert-exec", cmd), during=flapping(group))
    suite.eq("exit status", 0, res.returncode)
    records = streams[0].of_type("alert")
    suite.eq("stream: alerts sent under MEMLENS_ALERT_LIMIT=2", 2, len(records))
    suite.eq("stderr: alert lines", 2, len(alert_lines(res.stderr)))
    suite.eq("--alert-exec: alerts received", by_time(records), by_time(json.loads(ln) for ln in read_lines(out)))
    summary = streams[0].of_type("alert_summary")
    suite.require(summary, "no alert_summary record")
    suite.ge("alerts suppressed by the limit", 1, summary[-1]["rules"]["threshold"]["suppressed"])


def free_port():
    """A local port nothing listens on (bound, then closed: connections are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def webhook_unreachable(suite):
    root, _ = fake_cgroup(MAX * 8 // 10)
    url = f"http://127.0.0.1:{free_port()}/hook"
    res, streams = memlens_run(suite, [mt.program("churn")],
                               {"MEMLENS_CGROUP_ROOT": root, "MEMLENS_WARN": "60%", "MEMLENS_CRIT": "0",
                                "MEMLENS_EMERG": "0", "MEMLENS_GROWTH_ALERT": "0"},
                               options=("--alert-webhook", url))
    suite.eq("exit status (churn's)", 0, res.returncode)
    suite.eq("one alert", 1, len(streams[0].of_type("alert")))
    errors = [ln for ln in res.stderr.splitlines() if "alert-webhook" in ln]
    suite.eq("one webhook error line", 1, len(errors))
    suite.check(errors and errors[0].startswith(f"memlens: alert-webhook: POST {url} failed: "),
                f"webhook error line: {errors}")
    suite.check("memlens: run directory" in res.stderr, f"the summary still follows: {res.stderr!r}")


def no_alerts(suite):
    """Every rule off: no alert, so the command is never run and nothing is posted."""
    base = mt.new_dir("run-alerts-none")
    cmd, out, _ = exec_command(base)
    url = f"http://127.0.0.1:{free_port()}/hook"
    res, streams = memlens_run(suite, [mt.program("churn")],
                               {"MEMLENS_WARN": "0", "MEMLENS_CRIT": "0", "MEMLENS_EMERG": "0",
                                "MEMLENS_GROWTH_ALERT": "0", "MEMLENS_SITE_MAX": "0"},
                               options=("--alert-exec", cmd, "--alert-webhook", url))
    suite.eq("exit status", 0, res.returncode)
    suite.eq("stream alerts", [], streams[0].of_type("alert"))
    suite.check(streams[0].of_type("snapshot"), "the run had snapshots (rules were evaluated)")
    suite.check(not os.path.exists(out), "--alert-exec command never ran")
    suite.check("ALERT" not in res.stderr and "alert-" not in res.stderr, f"nothing on stderr: {res.stderr!r}")


def flapping(group):
    """A `during` function: cgroup usage 80 % / 10 % every 150 ms, so the warning level is entered
    again and again."""
    def flap(stop):
        high = False
        while not stop.wait(0.15):
            high = not high
            set_file(os.path.join(group, "memory.current"), MAX * 8 // 10 if high else MAX // 10)
    return flap


def exec_bounded(suite):
    """Unlimited flapping alerts to a command that never ends: 4 run at once, the others are
    dropped and counted in one line; those still running when the deliveries' time is up are
    stopped with everything they started, so memlens exits and nothing holds its stderr open
    (communicate returns)."""
    root, group = fake_cgroup(MAX // 10)
    res, streams = memlens_run(suite, [mt.program("churn")],
                               {"MEMLENS_CGROUP_ROOT": root, "MEMLENS_ALERT_LIMIT": "0", "MEMLENS_WARN": "60%",
                                "MEMLENS_CRIT": "0", "MEMLENS_EMERG": "0", "MEMLENS_GROWTH_ALERT": "0"},
                               options=("--alert-exec", "sleep 300; echo never"), during=flapping(group))
    suite.eq("exit status", 0, res.returncode)
    sent = len(streams[0].of_type("alert"))
    suite.require(sent > 4, f"more alerts than commands allowed at once: {sent}")
    suite.eq("stderr alert lines", sent, len(alert_lines(res.stderr)))
    lines = [ln for ln in res.stderr.splitlines() if "alert-exec" in ln]
    suite.eq("delivery lines", ["memlens: alert-exec: 4 commands still running after 5 s: stopped (SIGTERM)",
                                f"memlens: alert-exec: {sent - 4} alert{'s' if sent - 4 > 1 else ''} dropped "
                                "(4 commands already running)"], lines)
    suite.check("never" not in res.stdout, "the commands did not go on")


def bad_pipe_lines(suite):
    """A traced shell writes a malformed line, a line over 64 KiB and a non-alert record to
    MEMLENS_ALERT_FD, then exits 3: one warning each, the run goes on and keeps status 3."""
    script = ('printf "not json\\n" >&"$MEMLENS_ALERT_FD"; '
              'head -c 70000 /dev/zero | tr "\\000" x >&"$MEMLENS_ALERT_FD"; echo >&"$MEMLENS_ALERT_FD"; '
              'printf "{\\"type\\":\\"trend\\"}\\n" >&"$MEMLENS_ALERT_FD"; exit 3')
    res, _ = memlens_run(suite, ["/bin/sh", "-c", script], {})
    suite.eq("exit status (the program's)", 3, res.returncode)
    warnings = [ln for ln in res.stderr.splitlines() if "alert line" in ln]
    suite.eq("warnings", 3, len(warnings))
    suite.check(any("malformed alert line skipped" in w for w in warnings), f"malformed: {warnings}")
    suite.check(any("longer than 64 KiB dropped" in w for w in warnings), f"too long: {warnings}")
    suite.check(all(w.startswith("memlens: warning: ") for w in warnings), f"warning lines: {warnings}")
    suite.eq("no alert printed", [], alert_lines(res.stderr))


def reused_descriptor(suite):
    """The traced shell closes the alert descriptor, opens a file of its own under the same number
    and execs churn, whose RSS crosses MEMLENS_WARN=1M: the alert is in churn's stream but not in the
    file (MEMLENS_ALERT_FD_ID names memlens's pipe, not whatever has the number now)."""
    target = os.path.join(mt.new_dir("run-alerts-reuse"), "program-file")
    script = 'fd=$MEMLENS_ALERT_FD; eval "exec $fd>&-"; eval "exec $fd>\\"\\$TARGET\\""; exec "$PROG"'
    res, streams = memlens_run(suite, ["/bin/sh", "-c", script],
                               {"TARGET": target, "PROG": mt.program("churn"), "MEMLENS_WARN": "1M",
                                "MEMLENS_CRIT": "0", "MEMLENS_EMERG": "0", "MEMLENS_GROWTH_ALERT": "0"})
    suite.eq("exit status", 0, res.returncode)
    churn = [st for st in streams if st.header.get("seq") == 1]
    suite.require(churn, f"no stream of the exec'd image: {[st.header for st in streams]}")
    alerts = churn[0].of_type("alert")
    suite.check(alerts and alerts[0].get("level") == "warning", f"churn's stream has its alert: {alerts}")
    suite.require(os.path.exists(target), "the shell opened its file")
    with open(target) as handle:
        suite.eq("nothing written to the program's own file", "", handle.read())


def bad_flags(suite):
    for options, word in ((("--alert-webhook", "ftp://example.invalid/x"), "--alert-webhook"),
                          (("--alert-exec", ""), "--alert-exec"), (("--alert-exec",), "--alert-exec")):
        res = mt.run([mt.CLI, "run", *options, "--", "true"] if len(options) == 2 else [mt.CLI, "run", *options],
                     timeout=30)
        suite.eq(f"{options}: exit", 2, res.returncode)
        first = res.stderr.splitlines()[0] if res.stderr else ""
        suite.check(word in first, f"{options}: error names {word}: {res.stderr!r}")
    helptext = mt.run([mt.CLI, "run", "--help"], timeout=30)
    for flag in ("--live", "--alert-exec", "--alert-webhook"):
        suite.check(flag in helptext.stdout, f"memlens run --help documents {flag}")


def main():
    suite = mt.Suite("e2e-run_alerts")
    mt.require_tools(suite)
    suite.case("cgroup levels on stderr and through --alert-exec", levels_exec)
    suite.case("--alert-webhook to a local receiver", webhook)
    suite.case("MEMLENS_ALERT_LIMIT through memlens run", rate_limit)
    suite.case("unreachable webhook", webhook_unreachable)
    suite.case("no alert: nothing run or sent", no_alerts)
    suite.case("--alert-exec: 4 at once, the rest dropped; stopped at the end", exec_bounded)
    suite.case("malformed and over-long alert pipe lines", bad_pipe_lines)
    suite.case("a descriptor number reused by the program", reused_descriptor)
    suite.case("bad flags and --help", bad_flags)
    suite.finish()


if __name__ == "__main__":
    main()
