/* pvalloc_leak: pvalloc on its own, because valgrind 3.19 aborts the program on pvalloc
 * ("Program aborting because of call to pvalloc"), so this one has no valgrind comparison.
 * glibc's pvalloc rounds the size up to a whole number of pages and the caller owns all of
 * it, so memlens is expected to record the rounded size (page size 4096):
 *   use_pvalloc(): pvalloc(100) -> 4096 bytes, freed; pvalloc(5000) -> 8192 bytes, leaked
 * Totals: 2 allocations, 1 free, 12288 bytes, live 8192 bytes in 1 block. */
#include <malloc.h>
#include <stdlib.h>
#include "common.h"

#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

static NOINLINE void use_pvalloc(void)
{
    free(pvalloc(100));
    UNUSED_RESULT_OK(pvalloc(5000));
}

int main(void)
{
    if (sysconf(_SC_PAGESIZE) != 4096) {
        say("pvalloc_leak: page size is not 4096\n");
        return 1;
    }
    use_pvalloc();
    scrub_stack();
    say("pvalloc_leak: done\n");
    return 0;
}
