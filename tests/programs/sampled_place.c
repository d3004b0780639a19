/* sampled_place.c — every allocating call of the malloc family, checked by the program itself, for
 * e2e-sampled's placement case. In sampled mode memlens moves a sampled block that is not aligned as
 * its free path expects to one that is (see ml_sample_placed); this program checks that the block it
 * gets back still behaves as the call promises: calloc's is zero (on a heap dirtied first, and the
 * block may be one memlens kept from a freed sample, which this program wrote to), realloc's
 * keeps the old bytes, the aligned calls' are aligned, strdup's holds the string. It keeps one block
 * in KEEP of every call live and frees the rest, and prints "ok" (exit 0) or the first failure (exit 1)
 * through write(2). Under MEMLENS_SAMPLE=1 every allocation is a sample, so the report must equal a
 * full-mode run's exactly. Some blocks are large (200 KB, and one 16 MiB calloc): mmapped by glibc in
 * the first half of the rounds, on the heap in the second (mallopt M_MMAP_THRESHOLD), where memlens
 * records them in place, and every free must then look them up. */
#include "common.h"

#include <malloc.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ROUNDS 400
#define KEEP 10
#define CALLS 8

static void *kept[ROUNDS * CALLS + 1];
static size_t nkept;

static void fail(const char *what)
{
    (void)!write(1, "FAIL ", 5);
    (void)!write(1, what, strlen(what));
    (void)!write(1, "\n", 1);
    exit(1);
}

static void keep_or_free(void *p, unsigned round)
{
    if (round % KEEP == 0)
        kept[nkept++] = p;
    else
        free(p);
}

static size_t size_of(unsigned round, unsigned salt)
{
    if (round % 97 == salt) return 200000 + round;   /* above glibc's mmap threshold */
    return 16 + (round * 131u + salt * 977u) % 4000;
}

static void dirty_heap(size_t size)
{
    void *d[4];
    for (int i = 0; i < 4; i++) {
        d[i] = malloc(size);
        if (!d[i]) fail("malloc (dirty)");
        memset(d[i], 0x5a, size);
    }
    for (int i = 0; i < 4; i++) free(d[i]);
}

static void fill(unsigned char *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++) p[i] = (unsigned char)(seed + i * 7);
}

static int same(const unsigned char *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != (unsigned char)(seed + i * 7)) return 0;
    return 1;
}

/* A large calloc from the heap: memlens records it where it is (see place_sample); zero all the same. */
static void *big_calloc(void)
{
    size_t size = 16u << 20;
    unsigned char *c = calloc(1, size);
    if (!c) fail("calloc 16 MiB");
    for (size_t i = 0; i < size; i += 4096)
        if (c[i]) fail("calloc 16 MiB: not zero");
    return c;
}

int main(void)
{
    for (unsigned r = 0; r < ROUNDS; r++) {
        if (r == ROUNDS / 2) {   /* from here on, large blocks come from the heap */
            if (!mallopt(M_MMAP_THRESHOLD, 32 << 20)) fail("mallopt");
            kept[nkept++] = big_calloc();
        }
        size_t s = size_of(r, 1), t = size_of(r, 2);

        unsigned char *m = malloc(s);
        if (!m) fail("malloc");
        fill(m, s, r);
        if (!same(m, s, r)) fail("malloc: contents");
        keep_or_free(m, r);

        dirty_heap(s);
        unsigned char *c = calloc(1, s);
        if (!c) fail("calloc");
        for (size_t i = 0; i < s; i++)
            if (c[i]) fail("calloc: not zero");
        keep_or_free(c, r);

        unsigned char *g = malloc(s);
        if (!g) fail("malloc before realloc");
        fill(g, s, r + 1);
        unsigned char *g2 = realloc(g, t);
        if (!g2) fail("realloc");
        if (!same(g2, s < t ? s : t, r + 1)) fail("realloc: old bytes lost");
        keep_or_free(g2, r);

        unsigned char *a = malloc(t);
        if (!a) fail("malloc before reallocarray");
        fill(a, t, r + 2);
        unsigned char *a2 = reallocarray(a, 3, s);
        if (!a2) fail("reallocarray");
        if (!same(a2, t < 3 * s ? t : 3 * s, r + 2)) fail("reallocarray: old bytes lost");
        keep_or_free(a2, r);

        void *pm = NULL;
        if (posix_memalign(&pm, 64, s) != 0 || !pm) fail("posix_memalign");
        if ((uintptr_t)pm % 64) fail("posix_memalign: not aligned");
        memset(pm, 1, s);
        keep_or_free(pm, r);

        void *al = aligned_alloc(256, 512);
        if (!al) fail("aligned_alloc");
        if ((uintptr_t)al % 256) fail("aligned_alloc: not aligned");
        memset(al, 2, 512);
        keep_or_free(al, r);

        void *ma = memalign(32, t);
        if (!ma) fail("memalign");
        if ((uintptr_t)ma % 32) fail("memalign: not aligned");
        memset(ma, 3, t);
        keep_or_free(ma, r);

        char *d = strdup("sampled blocks move, their contents do not");
        if (!d) fail("strdup");
        if (strcmp(d, "sampled blocks move, their contents do not")) fail("strdup: contents");
        keep_or_free(d, r);
    }
    (void)!write(1, "ok\n", 3);
    return 0;
}
