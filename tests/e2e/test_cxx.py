#!/usr/bin/env python3
"""e2e-cxx: C++ new/new[]/aligned new/nothrow new with sized and aligned deletes (cxx_new).

Asserts kind new vs new[] per helper, bytes including the array cookie, the libstdc++
emergency pool as a live malloc block, totals and leaks.  cxx_plugin_host: a C program that dlopens a
C++ library with RTLD_LOCAL (operator new found outside the global scope; a std::bad_alloc thrown
through the wrapper leaves the next malloc's kind alone).  Skips (77) without a C++ compiler."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import memlens_test as mt  # noqa: E402


def cxx_new(suite):
    if not mt.have_cpp():
        mt.skip("no C++ compiler: cxx_new not built")
    mt.check_program(suite, "cxx_new")


def cxx_plugin(suite):
    if not mt.have_cpp():
        mt.skip("no C++ compiler: cxx_plugin not built")
    plugin = os.path.join(mt.PROGRAMS_DIR, "cxx_plugin.so")
    suite.require(os.path.exists(plugin), f"plugin not built: {plugin}")
    mt.check_program(suite, "cxx_plugin_host", args=[plugin])


def main():
    suite = mt.Suite("e2e-cxx")
    suite.case("cxx_new", cxx_new)
    suite.case("cxx_plugin_host + cxx_plugin.so (RTLD_LOCAL)", cxx_plugin)
    suite.finish()


if __name__ == "__main__":
    main()
