/* cxx_plugin_host: a C program (no libstdc++ of its own) that dlopens argv[1], the C++ library
 * cxx_plugin.so, with RTLD_LOCAL: memlens's operator new wrappers must find libstdc++'s outside
 * the global scope, and an exception thrown through them must leave no trace (the malloc after it
 * is kind malloc, from after_throw).  ld.so's and libstdc++'s own allocations are not asserted.
 * Expected numbers: cxx_plugin_host.expect.json. */
#include <dlfcn.h>
#include <stdlib.h>
#include "common.h"

void *volatile host_sink;

NOINLINE void after_throw(void)
{
    host_sink = malloc(77);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        say("usage: cxx_plugin_host PATH-OF-cxx_plugin.so\n");
        return 2;
    }
    void *handle = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (handle == NULL) {
        say("cxx_plugin_host: dlopen failed\n");
        return 1;
    }
    void (*plugin_new)(void) = (void (*)(void))dlsym(handle, "plugin_new");
    void (*plugin_new_array)(void) = (void (*)(void))dlsym(handle, "plugin_new_array");
    int (*plugin_throw)(void) = (int (*)(void))dlsym(handle, "plugin_throw");
    if (plugin_new == NULL || plugin_new_array == NULL || plugin_throw == NULL) {
        say("cxx_plugin_host: dlsym failed\n");
        return 1;
    }
    plugin_new_array();   /* first: libstdc++'s operator new[] calls operator new, ours too */
    plugin_new();
    if (!plugin_throw()) {
        say("cxx_plugin_host: no bad_alloc\n");
        return 1;
    }
    after_throw();
    scrub_stack();
    say("cxx_plugin_host: done\n");
    return 0;
}
