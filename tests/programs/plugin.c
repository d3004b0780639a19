/* plugin: loaded by dlopen_host with dlopen, used, then dlclose'd (really unloaded: no TLS,
 * no unique symbols, no RTLD_NODELETE).  Expected numbers: dlopen_host.expect.json.
 *   plugin_leak():  malloc(4321) leaked — must still be symbolized as plugin_leak in plugin.c
 *                   after the object is gone
 *   plugin_churn(): 5 x malloc(99), each freed */
#include <stdlib.h>
#include <string.h>

#define NOINLINE __attribute__((noinline, noclone))

void *volatile plugin_sink;

NOINLINE void plugin_leak(void)
{
    char *p = malloc(4321); /* LEAK-SITE plugin_leak */
    memset(p, 7, 4321);
    plugin_sink = NULL;
}

NOINLINE void plugin_churn(void)
{
    for (int i = 0; i < 5; i++)
        free(malloc(99));
}
