/* sampled_workload.c — a deterministic allocation workload with known totals, for e2e-sampled.
 *
 * 200 000 malloc calls of pseudo-random sizes from three functions with different size ranges:
 * alloc_small 16..127 bytes (50% of the calls), alloc_medium 128..1023 (30%), alloc_large
 * 1024..4111 (20%). Every other block, chosen by the same generator, is freed at once; the rest
 * stay allocated until exit (about 70 MiB). The generator is splitmix64 with a fixed seed, so the
 * test recomputes every size (and the sampling variance of each) from the same sequence; the
 * program also prints its own totals, one line per function, through write(2) (no stdio buffer,
 * so these three sites are the program's only heap allocations):
 *   <function> allocations=N bytes=B live_blocks=L live_bytes=LB
 */
#include "common.h"

#include <stdint.h>
#include <stdlib.h>

#define CALLS 200000

static uint64_t state = 0x6d656d6c656e73ULL; /* "memlens" */

static uint64_t next_random(void)
{
    uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

struct totals {
    const char *name;
    unsigned long long allocations, bytes, live_blocks, live_bytes;
};

static struct totals totals[3] = {{"alloc_small"}, {"alloc_medium"}, {"alloc_large"}};
static void *kept[CALLS];

static NOINLINE void *alloc_small(size_t size)
{
    char *p = malloc(size);
    if (p)
        p[0] = 1;
    return p;
}

static NOINLINE void *alloc_medium(size_t size)
{
    char *p = malloc(size);
    if (p)
        p[0] = 2;
    return p;
}

static NOINLINE void *alloc_large(size_t size)
{
    char *p = malloc(size);
    if (p)
        p[0] = 3;
    return p;
}

int main(void)
{
    size_t nkept = 0;
    for (int i = 0; i < CALLS; i++) {
        uint64_t r = next_random();
        unsigned pick = (unsigned)(r % 10);           /* 0-4 small, 5-7 medium, 8-9 large */
        uint64_t bits = r >> 8;
        int which = pick < 5 ? 0 : pick < 8 ? 1 : 2;
        size_t size = which == 0   ? 16 + bits % 112
                      : which == 1 ? 128 + bits % 896
                                   : 1024 + bits % 3088;
        int keep = (int)(r >> 63);
        void *p = which == 0 ? alloc_small(size) : which == 1 ? alloc_medium(size)
                                                              : alloc_large(size);
        if (!p)
            return 1;
        totals[which].allocations++;
        totals[which].bytes += size;
        if (keep) {
            kept[nkept++] = p;
            totals[which].live_blocks++;
            totals[which].live_bytes += size;
        } else {
            free(p);
        }
    }
    for (int k = 0; k < 3; k++)
        sayf("%s allocations=%llu bytes=%llu live_blocks=%llu live_bytes=%llu\n",
               totals[k].name, totals[k].allocations, totals[k].bytes, totals[k].live_blocks,
               totals[k].live_bytes);
    return 0; /* the kept blocks stay allocated until exit */
}
