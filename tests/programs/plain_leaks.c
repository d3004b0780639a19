/* plain_leaks: malloc/free only, no stdio.  Expected numbers: plain_leaks.expect.json.
 *
 *   leak_three()     one call site in a loop: malloc(100), malloc(200), malloc(300), all leaked
 *                    -> 3 allocations, 600 bytes, live 600 bytes in 3 blocks
 *   churn()          10 x malloc(64) all live together, then all freed -> 10 allocs, 10 frees, 640 B
 *   big_block()      malloc(2 MiB) (above MEMLENS_OP_MIN: an `op` record; glibc serves it with an
 *                    internal mmap that must not be counted again), freed -> 1 alloc, 1 free
 *   zero_and_null()  malloc(0) then free it: 1 alloc of 0 bytes, 1 free; free(NULL): nothing
 *   leak_one_more()  malloc(24) leaked
 * Totals: 16 allocations, 12 frees, 2098416 bytes allocated, live 624 bytes in 4 blocks.
 * Heap peak: 600 (leak_three) + 2097152 (big_block) = 2097752 bytes. */
#include <stdlib.h>
#include "common.h"

#define BIG_SIZE (2u * 1024u * 1024u)

static NOINLINE void leak_three(void)
{
    static const size_t sizes[3] = {100, 200, 300};
    for (int i = 0; i < 3; i++) {
        char *p = malloc(sizes[i]); /* LEAK-SITE leak_three */
        memset(p, 'a' + i, sizes[i]);
    }
}

static NOINLINE void churn(void)
{
    void *blocks[10];
    for (int i = 0; i < 10; i++)
        blocks[i] = malloc(64);
    for (int i = 0; i < 10; i++)
        free(blocks[i]);
}

static NOINLINE void big_block(void)
{
    char *p = malloc(BIG_SIZE);
    memset(p, 1, BIG_SIZE);
    free(p);
}

static NOINLINE void zero_and_null(void)
{
    void *p = malloc(0);
    free(p);
    free(NULL);
}

static NOINLINE void leak_one_more(void)
{
    char *p = malloc(24);
    strcpy(p, "still here at exit");
}

int main(void)
{
    leak_three();
    churn();
    big_block();
    zero_and_null();
    leak_one_more();
    scrub_stack();
    say("plain_leaks: done\n");
    return 0;
}
