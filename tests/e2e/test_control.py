#!/usr/bin/env python3
"""e2e-control: the control socket of a running traced program, and cgroup figures in snapshots.

`steady` allocates 1000 bytes every 10 ms. While it runs under the real preload: `status` and
`top 3` answer with numbers that agree with what the program has done, `dump` writes a dump record
whose sites are in the stream, `trim` reports RSS, `reset-peak` is acknowledged, unknown commands are
refused; the socket is 0600 and a client with another uid is turned away; the socket is gone after
the program ends. A fake cgroup v2 tree (MEMLENS_CGROUP_ROOT) shows up in snapshots."""
import json
import os
import socket
import stat
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import memlens_test as mt  # noqa: E402


def ask(path, line, timeout=5.0):
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(timeout)
        s.connect(path)
        s.sendall(line.encode() + b"\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    return json.loads(data)


def start_steady(outdir, extra_env=None):
    env = mt.clean_env(extra_env)
    env.update({"LD_PRELOAD": mt.LIB, "MEMLENS_OUT": outdir, "MEMLENS_INTERVAL": "100ms"})
    proc = subprocess.Popen([mt.program("steady")], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 10
    sock = os.path.join(outdir, f"memlens.{proc.pid}.sock")
    while time.time() < deadline and not os.path.exists(sock):
        time.sleep(0.05)
    return proc, sock


def commands(suite):
    outdir = os.path.join(mt.new_dir("control"), "run")
    proc, sock = start_steady(outdir)
    try:
        suite.require(os.path.exists(sock), f"no control socket {sock}")
        mode = stat.S_IMODE(os.stat(sock).st_mode)
        suite.eq("socket mode", 0o600, mode)
        time.sleep(0.5)
        status = ask(sock, "status")
        suite.eq("status ok", True, status.get("ok"))
        suite.eq("status pid", proc.pid, status.get("pid"))
        suite.check(status.get("heap_live", 0) >= 10 * 1000 and status["heap_live"] % 1000 < 1000,
                    f"status heap_live {status.get('heap_live')} should be at least 10 blocks of 1000")
        suite.ge("status rss", 1, status.get("rss"))
        top = ask(sock, "top 3")
        sites = top.get("sites") or []
        suite.check(sites and sites[0].get("live_bytes", 0) >= 10000 and sites[0]["live_bytes"] % 1000 == 0,
                    f"top: the steady_alloc site first with a multiple of 1000 live bytes: {sites[:1]}")
        suite.check(len(sites) <= 3, f"top 3 returned {len(sites)} sites")
        if sites:
            suite.eq("top: allocated_bytes = 1000 x allocations", sites[0]["allocations"] * 1000,
                     sites[0]["allocated_bytes"])
        dump = ask(sock, "dump")
        suite.check(dump.get("ok") and dump.get("dump") == 1 and dump.get("blocks", 0) >= 10,
                    f"dump answer: {dump}")
        trim = ask(sock, "trim")
        suite.check(trim.get("ok") and trim.get("rss_before", 0) > 0 and "rss_after" in trim, f"trim: {trim}")
        reset = ask(sock, "reset-peak")
        suite.eq("reset-peak ok", True, reset.get("ok"))
        bad = ask(sock, "bogus")
        suite.eq("unknown command refused", False, bad.get("ok"))
        bad_top = ask(sock, "top 0")
        suite.eq("top 0 refused", False, bad_top.get("ok"))
        if os.geteuid() == 0:   # a client of another uid is turned away (the mode alone stops it too)
            code = ("import socket,sys\ns=socket.socket(socket.AF_UNIX)\n"
                    "try:\n s.connect(sys.argv[1]); s.sendall(b'status\\n'); d=s.recv(100)\n"
                    " sys.exit(3 if d else 0)\nexcept OSError: sys.exit(0)\n")
            os.chmod(outdir, 0o755)
            os.chmod(sock, 0o666)   # even with the file opened up, the peer uid check refuses
            other = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                                    sys.executable, "-c", code, sock], timeout=20)
            suite.eq("another uid gets no answer", 0, other.returncode)
    finally:
        proc.kill()
        proc.wait(timeout=10)
    streams = mt.read_streams(outdir)
    suite.require(streams, "no stream")
    records = streams[0].records
    dumps = [r for r in records if r.get("type") == "dump"]
    suite.eq("dump records", 1, len(dumps))
    site_ids = {r["id"] for r in records if r.get("type") == "site"}
    if dumps:
        missing = [row[0] for row in dumps[0]["live"] if row[0] not in site_ids]
        suite.check(not missing, f"dump names sites without a site record before it: {missing}")
    suite.eq("trim records", 1, len([r for r in records if r.get("type") == "trim"]))
    suite.eq("reset_peak records", 1, len([r for r in records if r.get("type") == "reset_peak"]))


def socket_removed_at_exit(suite):
    outdir, _ = mt.traced_run(suite, [mt.program("plain_leaks")], "control-exit", compare_plain=False)
    left = [n for n in os.listdir(outdir) if n.endswith(".sock")]
    suite.eq("sockets left after exit", [], left)
    # A program that exits at once, 200 times, 4 at a time: the collector thread must not create
    # its socket after the exiting thread has removed it (this left 46 of 300 before the fix).
    many = mt.new_dir("control-exit-many")
    env = mt.clean_env({"LD_PRELOAD": mt.LIB, "MEMLENS_OUT": many})
    for batch in range(50):
        procs = [subprocess.Popen([mt.program("plain_leaks")], env=env, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL) for _ in range(4)]
        for proc in procs:
            proc.wait(timeout=60)
    names = os.listdir(many)
    suite.eq("streams of 200 short runs", 200, len([n for n in names if n.endswith(".jsonl")]))
    suite.eq("sockets left after 200 short runs", [], [n for n in names if n.endswith(".sock")])


def fake_cgroup(suite):
    root = mt.new_dir("cgroup")
    with open("/proc/self/cgroup") as handle:   # the child is in our cgroup: build its v2 path
        v2 = [line.split(":", 2)[2].strip() for line in handle if line.startswith("0::")]
    rel = (v2[0] if v2 else "/").lstrip("/")
    group = os.path.join(root, rel)
    os.makedirs(group, exist_ok=True)
    with open(os.path.join(group, "memory.current"), "w") as handle:
        handle.write("123456789\n")
    with open(os.path.join(group, "memory.max"), "w") as handle:
        handle.write("268435456\n")
    outdir, _ = mt.traced_run(suite, [mt.program("plain_leaks")], "cgroup", compare_plain=False,
                              env_extra={"MEMLENS_CGROUP_ROOT": root})
    snaps = mt.read_streams(outdir)[0].of_type("snapshot")
    suite.require(snaps, "no snapshot")
    suite.eq("cgroup_current from the fake tree", 123456789, snaps[-1].get("cgroup_current"))
    suite.eq("cgroup_max from the fake tree", 268435456, snaps[-1].get("cgroup_max"))
    with open(os.path.join(group, "memory.max"), "w") as handle:
        handle.write("max\n")
    outdir, _ = mt.traced_run(suite, [mt.program("plain_leaks")], "cgroup-max", compare_plain=False,
                              env_extra={"MEMLENS_CGROUP_ROOT": root})
    snap = mt.read_streams(outdir)[0].of_type("snapshot")[-1]
    suite.check("cgroup_max" not in snap, f"unlimited memory.max must leave cgroup_max out: {snap}")


def main():
    suite = mt.Suite("e2e-control")
    mt.require_tools(suite)
    suite.case("control socket commands", commands)
    suite.case("socket removed at exit", socket_removed_at_exit)
    suite.case("cgroup figures from MEMLENS_CGROUP_ROOT", fake_cgroup)
    suite.finish()


if __name__ == "__main__":
    main()
