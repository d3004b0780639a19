/* solo_handoff: the live map's solo mode (core/ml_live.c) taken by one thread and ended by another
 * with blocks in flight, both ways. Expected numbers: solo_handoff.expect.json.
 *   main: solo_alloc(i) for i < 60000, 16 + 8*(i % 32) bytes: 1875 cycles of 32 sizes (16..264,
 *         sum 4480 per cycle) = 8,400,000 bytes. Main alone works on the map for 60000 operations,
 *         so it takes solo mode; then it frees the even blocks itself (solo mode's frees give the
 *         block to glibc before the map removal).
 *   helper thread: frees the 30000 odd blocks, which ends solo mode, while main allocates and
 *         frees 20000 blocks of 24 bytes from churn_alloc() (480,000 bytes), a ring of 64 at a
 *         time, through the handoffs; main frees the last 64 after the join.
 *   pthread_create: one DTV calloc from ld.so, never freed (see threads.c): 1 block live.
 * Totals: 80001 allocations, 80000 frees, 1 block live. */
#include <pthread.h>
#include <stdlib.h>
#include "common.h"

#define SOLO_N 60000
#define CHURN_N 20000
#define RING 64

static void *blocks[SOLO_N];

static NOINLINE void *solo_alloc(size_t bytes)
{
    char *p = malloc(bytes);
    p[0] = 1;
    return p;
}

static NOINLINE void *churn_alloc(void)
{
    char *p = malloc(24);
    p[0] = 2;
    return p;
}

static void *free_odd(void *arg)
{
    (void)arg;
    for (int i = 1; i < SOLO_N; i += 2)
        free(blocks[i]);
    return NULL;
}

int main(void)
{
    for (int i = 0; i < SOLO_N; i++)
        blocks[i] = solo_alloc(16 + 8 * (size_t)(i % 32));
    for (int i = 0; i < SOLO_N; i += 2)
        free(blocks[i]);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 * 1024);   /* stays in glibc's stack cache: its DTV lives */
    pthread_t helper;
    if (pthread_create(&helper, &attr, free_odd, NULL) != 0)
        return 1;
    void *ring[RING] = {0};
    for (int k = 0; k < CHURN_N; k++) {
        free(ring[k % RING]);
        ring[k % RING] = churn_alloc();
    }
    pthread_join(helper, NULL);
    for (int k = 0; k < RING; k++)
        free(ring[k]);
    say("solo_handoff: done\n");
    return 0;
}
