#!/usr/bin/env python3
"""e2e-schema: every line of real streams validates against docs/format.schema.json.

Runs programs that exercise every record type (header, module, site, sites, snapshot, op, live,
exec, end; fork children) under the real preload, then validates each complete line with the
jsonschema package (Debian: python3-jsonschema). Also checks the schema rejects records that break
the contract (so the test can fail)."""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import memlens_test as mt  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
SCHEMA_PATH = os.path.join(HERE, "..", "..", "docs", "format.schema.json")

try:
    import jsonschema
except ImportError:  # the README's test command installs python3-jsonschema
    print("SKIP: python3 jsonschema module not installed")
    sys.exit(mt.SKIP_EXIT)


def validator():
    with open(SCHEMA_PATH) as handle:
        schema = json.load(handle)
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def validate_run(suite, check, outdir, label):
    streams = mt.read_streams(outdir)
    suite.require(streams, f"{label}: no stream in {outdir}")
    seen = set()
    for stream in streams:
        suite.check(not stream.bad_lines, f"{label}: {stream.name}: malformed lines {stream.bad_lines[:2]}")
        for number, record in enumerate(stream.records, 1):
            seen.add(record.get("type"))
            errors = sorted(check.iter_errors(record), key=lambda e: e.path)
            if errors:
                suite.fail(f"{label}: {stream.name}:{number}: {record.get('type')}: {errors[0].message[:300]}")
    return seen


def programs(suite):
    check = validator()
    seen = set()
    for name, args in (("plain_leaks", ()), ("mmap_leaks", ()), ("fork_leaks", ()), ("kinds", ())):
        outdir, _ = mt.traced_run(suite, [mt.program(name), *args], f"schema-{name}", compare_plain=False,
                                  options=("--interval", "50ms"))
        seen |= validate_run(suite, check, outdir, name)
    outdir, _ = mt.traced_run(suite, [mt.program("exec_leaker"), mt.program("exec_target")], "schema-exec",
                              compare_plain=False)
    seen |= validate_run(suite, check, outdir, "exec_leaker")
    for kind in ("header", "module", "site", "sites", "snapshot", "op", "live", "exec", "end"):
        suite.check(kind in seen, f"no {kind!r} record was produced, so it was not validated")


def rejects_bad_records(suite):
    check = validator()
    bad = [
        {"type": "header", "format": "memlens", "version": 2},
        {"type": "site", "id": 3, "kind": "malloc", "frames": [[0]]},
        {"type": "sites", "t": 1, "d": [[1, 2, 3]]},
        {"type": "live", "site": 1, "bytes": -5, "blocks": 1},
        {"type": "end", "t": 1, "reason": "crashed"},
        {"type": "mystery"},
    ]
    for record in bad:
        suite.check(not check.is_valid(record), f"schema accepted a bad record: {record}")


def main():
    suite = mt.Suite("e2e-schema")
    mt.require_tools(suite)
    suite.case("schema rejects broken records", rejects_bad_records)
    suite.case("real streams validate", programs)
    suite.finish()


if __name__ == "__main__":
    main()
