// cxx_plugin: a C++ library that cxx_plugin_host (a C program) dlopens with RTLD_LOCAL, so that
// libstdc++ is loaded outside the global scope (as when python3 imports a C++ extension module).
// Expected numbers: cxx_plugin_host.expect.json.  extern "C" so frames carry plain names.
//   plugin_new()        new int (4) + delete                                          kind new
//   plugin_new_array()  new char[48], leaked (kept in plugin_sink)                      kind new[]
//   plugin_throw()      new char[2^62] fails: operator new[] throws std::bad_alloc through memlens's
//                       wrapper, caught here; returns 1 if it was caught
#include <cstddef>
#include <new>

#define NOINLINE __attribute__((noinline, noclone))

static volatile std::size_t huge = std::size_t(1) << 62;
void *volatile plugin_sink;

extern "C" {

NOINLINE void plugin_new(void)
{
    int *freed = new int(1);
    delete freed;
}

NOINLINE void plugin_new_array(void)
{
    plugin_sink = new char[48];
}

NOINLINE int plugin_throw(void)
{
    try {
        plugin_sink = new char[huge];
    } catch (const std::bad_alloc &) {
        return 1;
    }
    return 0;
}

}
