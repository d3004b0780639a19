#!/usr/bin/env python3
"""e2e-mmap: anonymous and file-backed mappings (mmap_leaks).

Asserts per function: a leaked anonymous mapping, one fully unmapped (via mmap64), a partial
munmap, an mremap grow, file-backed mappings kept apart (kind mmap_file); heap totals zero;
mmap_live_bytes; leaks summary mmap bytes/ranges and the leaked mappings per function."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import memlens_test as mt  # noqa: E402


def mmap_leaks(suite):
    if os.sysconf("SC_PAGE_SIZE") != 4096:
        mt.skip("page size is not 4096")
    mt.check_program(suite, "mmap_leaks")


def main():
    suite = mt.Suite("e2e-mmap")
    suite.case("mmap_leaks", mmap_leaks)
    suite.finish()


if __name__ == "__main__":
    main()
