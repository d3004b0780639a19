#!/usr/bin/env python3
"""e2e-kinds: every heap entry point (kinds) and pvalloc (pvalloc_leak).

Asserts per helper function (first frame): kind, allocations, frees, allocated/live bytes, live
blocks; per kind sums; report totals; leaks summary and leaked block per kind."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import memlens_test as mt  # noqa: E402


def kinds(suite):
    mt.check_program(suite, "kinds")


def pvalloc(suite):
    mt.check_program(suite, "pvalloc_leak")


def main():
    suite = mt.Suite("e2e-kinds")
    suite.case("kinds (malloc family and buffer calls)", kinds)
    suite.case("pvalloc (page-rounded size)", pvalloc)
    suite.finish()


if __name__ == "__main__":
    main()
