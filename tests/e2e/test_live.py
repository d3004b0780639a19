#!/usr/bin/env python3
"""e2e-live: `memlens run --live` (README, `memlens run --help`).

On a terminal: `grow_linear` (2,500,000 bytes/s for 3 s) runs under `memlens run --live --interval
200ms` in a detached tmux session (a private tmux server whose panes stay after their command ends,
so the final screen can be read). `tmux capture-pane` shows the view's labels and a heap figure that
changes between two captures; after the program ends the normal screen is back with the summary and
the note naming <run dir>/output.<pid>.log, which holds the program's output (0600). Ctrl-C in the
pane ends `steady` (the parent ignores SIGINT, the child dies of it): exit 130 and the terminal
restored; in an interactive bash, Ctrl-Z leaves the alternate screen before the job stops, and `fg`
brings the view back. Without a terminal (stdout piped): plain `t=… rss=… heap=…` lines with a growing heap, and
the program's own output untouched. Skipped (with the reason printed) only when tmux is missing."""
import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import memlens_test as mt  # noqa: E402

HEAP_RE = re.compile(r"^\s*heap\s+(~?[\d.]+ (?:B|KiB|MiB|GiB))\s+peak", re.M)
UNITS = {"B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30}


def size_bytes(text):
    number, unit = text.lstrip("~").split()
    return float(number) * UNITS[unit]


class Tmux:
    """A private tmux server (its own socket) with remain-on-exit, so a finished pane is kept."""

    def __init__(self, suite):
        if not shutil.which("tmux"):
            mt.skip("tmux is not installed (apt-get install tmux)")
        self.suite = suite
        self.base = mt.new_dir("live-tmux")
        self.conf = os.path.join(self.base, "tmux.conf")
        with open(self.conf, "w") as handle:
            handle.write("set -g remain-on-exit on\nset -g history-limit 1000\n")
        self.socket = os.path.join(self.base, "sock")
        self.env = mt.clean_env({"TERM": os.environ.get("TERM") or "xterm"})

    def cmd(self, *args, check=True):
        res = subprocess.run(["tmux", "-S", self.socket, "-f", self.conf, *args], env=self.env,
                             capture_output=True, text=True, timeout=30)
        if check and res.returncode != 0:
            raise mt.CaseFailed(f"tmux {' '.join(args)}: exit {res.returncode}: {res.stderr}")
        return res.stdout

    def start(self, name, command, width=120):
        self.cmd("new-session", "-d", "-x", str(width), "-y", "40", "-s", name, command)

    def capture(self, name):
        return self.cmd("capture-pane", "-p", "-t", name)

    def dead(self, name):
        return self.cmd("display-message", "-p", "-t", name, "#{pane_dead}").strip() == "1"

    def wait_for(self, name, predicate, what, timeout=60):
        """Capture until predicate(screen) is true; the case fails after `timeout` s (a hang guard,
        not a measurement)."""
        deadline = time.monotonic() + timeout
        screen = ""
        while time.monotonic() < deadline:
            screen = self.capture(name)
            if predicate(screen):
                return screen
            time.sleep(0.1)
        raise mt.CaseFailed(f"{what}: not seen within {timeout} s; screen:\n{screen}")

    def wait_dead(self, name, timeout=60):
        """Wait for the pane's shell to end; returns (memlens's exit status, final screen)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.dead(name):
                screen = self.capture(name)
                match = re.search(r"memlens exit status (\d+)", screen)
                if not match:
                    raise mt.CaseFailed(f"no exit status on the final screen:\n{screen}")
                return int(match.group(1)), screen
            time.sleep(0.1)
        raise mt.CaseFailed(f"pane {name} still running after {timeout} s:\n{self.capture(name)}")

    def close(self):
        self.cmd("kill-server", check=False)


def live_command(outdir, program):
    """The pane runs sh (not traced) that runs memlens, then prints memlens's exit status."""
    run = shlex.join([mt.CLI, "run", "--live", "--interval", "200ms", "--out", outdir, "--", program])
    return f'{run}; echo "memlens exit status $?"'



def tty_view(suite):
    tmux = Tmux(suite)
    outdir = os.path.join(mt.new_dir("live-tty"), "run")
    name = "memlens-live"
    try:
        tmux.start(name, live_command(outdir, mt.program("grow_linear")))
        first = tmux.wait_for(name, lambda s: HEAP_RE.search(s) and "top sites" in s, "the view with a heap figure")
        for label in ("memlens live", "grow_linear", "RSS", "heap", "mmap", "cgroup", "growth", "alerts",
                      "top sites", "program output (stdout, stderr): " + outdir + "/output."):
            suite.check(label in first, f"view shows {label!r}:\n{first}")
        heap1 = HEAP_RE.search(first).group(1)
        second = tmux.wait_for(name, lambda s: HEAP_RE.search(s) and HEAP_RE.search(s).group(1) != heap1,
                               "a second frame with another heap figure")
        heap2 = HEAP_RE.search(second).group(1)
        suite.check(size_bytes(heap2) > size_bytes(heap1), f"heap grows between frames: {heap1} -> {heap2}")
        suite.check("grow_alloc (grow_linear.c:" in second, f"top site symbolized:\n{second}")
        status, final = tmux.wait_dead(name)
    finally:
        tmux.close()
    suite.eq("memlens exit status (grow_linear's)", 0, status)
    suite.check("memlens live" not in final, f"the view is gone after the run:\n{final}")
    suite.check("memlens: run directory " + outdir in final, f"summary shown:\n{final}")
    logs = [n for n in os.listdir(outdir) if re.fullmatch(r"output\.\d+\.log", n)]
    suite.require(len(logs) == 1, f"one output.<pid>.log in {os.listdir(outdir)}")
    log = os.path.join(outdir, logs[0])
    suite.check(f"is in {log}" in final.replace("\n", ""), f"summary names {log}:\n{final}")
    with open(log) as handle:
        suite.eq("program output in the log", "grow_linear: done\n", handle.read())
    suite.eq("log mode", 0o600, stat.S_IMODE(os.stat(log).st_mode))
    pid = int(logs[0].split(".")[1])
    suite.check(os.path.exists(os.path.join(outdir, f"memlens.{pid}.0.jsonl")), "log named after the traced pid")


def narrow_view(suite):
    """In a 40-column pane the bold title line is cut at 40 visible characters: its colour escapes
    do not count (and the cut line ends its bold, so the next line is plain)."""
    tmux = Tmux(suite)
    outdir = os.path.join(mt.new_dir("live-narrow"), "run")
    name = "memlens-narrow"
    try:
        tmux.start(name, live_command(outdir, mt.program("steady")), width=40)
        screen = tmux.wait_for(name, lambda s: "memlens live" in s and HEAP_RE.search(s), "the narrow view")
        tmux.cmd("send-keys", "-t", name, "C-c")
        tmux.wait_dead(name)
    finally:
        tmux.close()
    title = screen.splitlines()[0]
    suite.check(title.startswith("memlens live"), f"title first: {title!r}")
    suite.eq("title cut at the width (40), escapes not counted", 40, len(title))


def ctrl_c(suite):
    tmux = Tmux(suite)
    outdir = os.path.join(mt.new_dir("live-int"), "run")
    name = "memlens-int"
    try:
        tmux.start(name, live_command(outdir, mt.program("steady")))
        tmux.wait_for(name, lambda s: HEAP_RE.search(s) and "steady_alloc" in s, "the view of steady")
        tmux.cmd("send-keys", "-t", name, "C-c")
        status, final = tmux.wait_dead(name)
    finally:
        tmux.close()
    suite.eq("exit status after Ctrl-C (128+SIGINT)", 130, status)
    suite.check("memlens live" not in final and "memlens: run directory" in final,
                f"terminal restored, summary shown:\n{final}")


def ctrl_z(suite):
    """Ctrl-Z in an interactive shell (job control: memlens and the program are a job of their own):
    memlens leaves the alternate screen and the job stops; `fg` brings the view back, updating;
    Ctrl-C then ends the run as usual (exit 130)."""
    if not shutil.which("bash"):
        mt.skip("bash is not installed")
    tmux = Tmux(suite)
    outdir = os.path.join(mt.new_dir("live-tstp"), "run")
    name = "memlens-tstp"
    try:
        tmux.start(name, "bash --norc --noprofile -i")
        run = shlex.join([mt.CLI, "run", "--live", "--interval", "200ms", "--out", outdir, "--",
                          mt.program("steady")])
        tmux.cmd("send-keys", "-t", name, run, "Enter")
        tmux.wait_for(name, lambda s: HEAP_RE.search(s) and "steady_alloc" in s, "the view of steady")
        tmux.cmd("send-keys", "-t", name, "C-z")
        stopped = tmux.wait_for(name, lambda s: "Stopped" in s, "the job stopped after Ctrl-Z")
        suite.check("memlens live" not in stopped, f"alternate screen left before stopping:\n{stopped}")
        tmux.cmd("send-keys", "-t", name, "fg", "Enter")
        back = tmux.wait_for(name, lambda s: HEAP_RE.search(s) and "memlens live" in s, "the view after fg")
        heap1 = HEAP_RE.search(back).group(1)
        tmux.wait_for(name, lambda s: HEAP_RE.search(s) and HEAP_RE.search(s).group(1) != heap1,
                      "the view updating after fg")
        tmux.cmd("send-keys", "-t", name, "C-c")
        tmux.wait_for(name, lambda s: "memlens: run directory" in s, "the summary after Ctrl-C")
        tmux.cmd("send-keys", "-t", name, 'echo "memlens exit status $?"', "Enter")   # fg's status: the job's
        final = tmux.wait_for(name, lambda s: re.search(r"^memlens exit status \d+", s, re.M), "memlens's exit status")
    finally:
        tmux.close()
    suite.eq("exit status after Ctrl-C (128+SIGINT)", 130,
             int(re.search(r"^memlens exit status (\d+)", final, re.M).group(1)))
    suite.check("memlens live" not in final and "memlens: run directory" in final,
                f"terminal restored, summary shown:\n{final}")


def plain_lines(suite):
    outdir = os.path.join(mt.new_dir("live-plain"), "run")
    res = mt.run([mt.CLI, "run", "--live", "--interval", "200ms", "--out", outdir, "--",
                  mt.program("grow_linear")], timeout=90)
    suite.eq("exit status", 0, res.returncode)
    lines = [ln for ln in res.stdout.splitlines() if ln.startswith("t=")]
    suite.require(len(lines) >= 2, f"at least 2 plain lines: {res.describe()}")
    heaps = []
    for line in lines:
        match = re.search(r" heap=([\d.]+ (?:B|KiB|MiB|GiB)) ", line)
        suite.require(match and " rss=" in line and " mmap=" in line and " cgroup=" in line,
                      f"plain line fields: {line!r}")
        heaps.append(size_bytes(match.group(1)))
    suite.check(all(b >= a for a, b in zip(heaps, heaps[1:])) and heaps[-1] > heaps[0],
                f"heap increases: {lines}")
    suite.check(re.search(r"heap:linear \+[\d.]+ MB/min conf \d+", lines[-1]),
                f"last line has the heap trend: {lines[-1]!r}")
    suite.check("grow_linear: done" in res.stdout, f"program output untouched: {res.stdout[-300:]!r}")
    suite.check("\033[" not in res.stdout, "no escape sequences without a terminal")
    suite.check(not [n for n in os.listdir(outdir) if n.startswith("output.")], "no output log without a terminal")


def plain_after_exec(suite):
    """The traced program execs grow_linear: the lines follow the pid's new image."""
    outdir = os.path.join(mt.new_dir("live-exec"), "run")
    res = mt.run([mt.CLI, "run", "--live", "--interval", "200ms", "--out", outdir, "--", "/bin/sh", "-c",
                  f"exec {shlex.quote(mt.program('grow_linear'))}"], timeout=90)
    suite.eq("exit status", 0, res.returncode)
    lines = [ln for ln in res.stdout.splitlines() if ln.startswith("t=")]
    pids = {re.search(r" pid=(\d+) ", ln).group(1) for ln in lines}
    suite.eq("one pid in the lines", 1, len(pids))
    heaps = [size_bytes(re.search(r" heap=([\d.]+ (?:B|KiB|MiB|GiB)) ", ln).group(1)) for ln in lines]
    suite.check(len(heaps) >= 2 and heaps[-1] >= 4 * (1 << 20),
                f"the last lines show grow_linear's heap (MiBs), not the shell's (KiBs): {lines[-3:]}")
    streams = mt.read_streams(outdir)
    suite.eq("stream images of the pid", [0, 1], sorted(s.header["seq"] for s in streams))


def main():
    suite = mt.Suite("e2e-live")
    mt.require_tools(suite)
    suite.case("tty view in tmux", tty_view)
    suite.case("narrow terminal", narrow_view)
    suite.case("Ctrl-C in the view", ctrl_c)
    suite.case("Ctrl-Z and continue", ctrl_z)
    suite.case("plain lines without a terminal", plain_lines)
    suite.case("plain lines follow exec", plain_after_exec)
    suite.finish()


if __name__ == "__main__":
    main()
