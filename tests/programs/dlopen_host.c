/* dlopen_host: dlopen argv[1] (the plugin module), call plugin_leak and plugin_churn, dlclose.
 * ld.so's own allocations for dlopen/dlclose are not asserted (their sizes depend on every
 * loaded object); only the plugin's sites are.  Expected numbers: dlopen_host.expect.json. */
#include <dlfcn.h>
#include <stdlib.h>
#include "common.h"

int main(int argc, char **argv)
{
    if (argc < 2) {
        say("usage: dlopen_host PATH-OF-plugin.so\n");
        return 2;
    }
    void *handle = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (handle == NULL) {
        say("dlopen_host: dlopen failed\n");
        return 1;
    }
    void (*leak)(void) = (void (*)(void))dlsym(handle, "plugin_leak");
    void (*churn)(void) = (void (*)(void))dlsym(handle, "plugin_churn");
    if (leak == NULL || churn == NULL) {
        say("dlopen_host: dlsym failed\n");
        return 1;
    }
    leak();
    churn();
    if (dlclose(handle) != 0) {
        say("dlopen_host: dlclose failed\n");
        return 1;
    }
    scrub_stack();
    say("dlopen_host: done\n");
    return 0;
}
