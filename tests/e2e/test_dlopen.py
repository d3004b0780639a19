#!/usr/bin/env python3
"""e2e-dlopen: dlopen plugin.so, call a leaking function, dlclose (dlopen_host).

Asserts the plugin's sites (plugin_leak: 4321 bytes live; plugin_churn: 5 allocations all
freed) and that the leak is still symbolized after the unload: function plugin_leak, file
plugin.c, the line of the malloc call, object plugin.so; a module record for plugin.so."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import memlens_test as mt  # noqa: E402


def dlopen(suite):
    mt.require_tools(suite)
    plugin = os.path.join(mt.PROGRAMS_DIR, "plugin.so")
    suite.require(os.path.exists(plugin), f"plugin not built: {plugin}")
    outdir, report, leaks, _ = mt.check_program(suite, "dlopen_host", args=[plugin])
    line = mt.marker_line("plugin.c", "LEAK-SITE plugin_leak")
    proc = mt.one_process(suite, report, "dlopen_host", "report")
    mt.check_frame_location(suite, "report", proc.get("sites") or [], "plugin_leak", "plugin.c",
                            line=line, obj="plugin.so")
    leak_proc = mt.one_process(suite, leaks, "dlopen_host", "leaks")
    entries = [e for e in leak_proc.get("leaks") or [] if mt.function_name(mt.frame0(e)) == "plugin_leak"]
    suite.check(entries, "leaks: no entry whose first frame is plugin_leak")
    mt.check_frame_location(suite, "leaks", entries, "plugin_leak", "plugin.c", line=line,
                            obj="plugin.so")
    stream = mt.read_streams(outdir)[0]
    modules = [m for m in stream.of_type("module") if str(m.get("path")).endswith("plugin.so")]
    suite.eq("module records for plugin.so", 1, len(modules))


def main():
    suite = mt.Suite("e2e-dlopen")
    suite.case("dlopen_host + plugin.so", dlopen)
    suite.finish()


if __name__ == "__main__":
    main()
