/* exec_target: the image exec'd by exec_leaker.  Expected numbers: exec_leaker.expect.json.
 *   leak_in_target(): malloc(5000) + malloc(50) leaked, malloc(60) freed
 *                     -> 3 allocs, 1 free, 5110 bytes, live 5050 in 2 blocks
 * Exits with status 3 so the test also sees a non-zero status pass through memlens run. */
#include <stdlib.h>
#include "common.h"

static void *volatile sink;

static NOINLINE void leak_in_target(void)
{
    sink = malloc(5000);
    sink = malloc(50);
    free(malloc(60));
    sink = NULL;
}

int main(int argc, char **argv)
{
    leak_in_target();
    scrub_stack();
    sayf("exec_target: ran with %s\n", argc > 1 ? argv[1] : "(none)");
    return 3;
}
