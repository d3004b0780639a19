/* Unit tests of the live-pointer map (core/ml_live.c): exact sizes and sites through growth,
 * cuckoo displacement and removal in every order; solo mode (one registered thread working unlocked)
 * against visitors that end it and let it resume, thousands of times. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#include "ml.h"

TestSuite(live);

Test(live, insert_find_remove) {
    cr_assert_not(ml_live_insert(0x1000, 24, 7));
    uint64_t size = 0;
    uint32_t site = 0;
    cr_assert(ml_live_remove(0x1000, &size, &site));
    cr_assert_eq(size, 24);
    cr_assert_eq(site, 7);
    cr_assert_not(ml_live_remove(0x1000, &size, &site), "a removed block must be gone");
    cr_assert_not(ml_live_remove(0x2000, &size, &site), "an unknown block is not found");
}

Test(live, reinsert_overwrites) {
    ml_live_insert(0x5000, 10, 1);
    ml_live_insert(0x5000, 20, 2);
    uint64_t size;
    uint32_t site;
    cr_assert(ml_live_remove(0x5000, &size, &site));
    cr_assert_eq(size, 20);
    cr_assert_eq(site, 2);
    cr_assert_not(ml_live_remove(0x5000, &size, &site));
}

struct tally { uint64_t blocks, bytes; };
static void count(uintptr_t ptr, uint64_t size, uint32_t site, void *arg) {
    struct tally *t = arg;
    cr_assert_eq(site, (uint32_t)(ptr >> 4) % 1000, "site of %#lx", (unsigned long)ptr);
    t->blocks++;
    t->bytes += size;
}

Test(live, many_blocks_grow_and_shrink) {
    enum { N = 200000 };
    uintptr_t *ptrs = malloc(N * sizeof *ptrs);
    for (uintptr_t i = 0; i < N; i++) {
        ptrs[i] = 0x100000 + i * 16;   /* dense, like a real heap: stresses clustering */
        cr_assert_not(ml_live_insert(ptrs[i], i % 977, (uint32_t)(ptrs[i] >> 4) % 1000));
    }
    struct tally t = { 0, 0 };
    ml_live_foreach(count, &t);
    uint64_t expect_bytes = 0;
    for (uintptr_t i = 0; i < N; i++) expect_bytes += i % 977;
    cr_assert_eq(t.blocks, N);
    cr_assert_eq(t.bytes, expect_bytes);
    /* remove every third block in a scrambled order, then check the rest are intact */
    for (uintptr_t k = 0; k < N; k++) {
        uintptr_t i = (k * 7919) % N;
        if (i % 3) continue;
        uint64_t size;
        uint32_t site;
        cr_assert(ml_live_remove(ptrs[i], &size, &site), "block %lu", (unsigned long)i);
        cr_assert_eq(size, i % 977);
        expect_bytes -= size;
    }
    for (uintptr_t i = 1; i < N; i += 3) {
        uint64_t size;
        uint32_t site;
        cr_assert(ml_live_remove(ptrs[i], &size, &site), "survivor %lu", (unsigned long)i);
        cr_assert_eq(size, i % 977);
        cr_assert(ml_live_insert(ptrs[i], size, site) == false);
    }
    t = (struct tally){ 0, 0 };
    ml_live_foreach(count, &t);
    cr_assert_eq(t.blocks, N - (N + 2) / 3);
    cr_assert_eq(t.bytes, expect_bytes);
    cr_assert_lt(ml_live_memory_bytes(), (uint64_t)N * 64, "map memory per block stays bounded");
    free(ptrs);
}

/* Twelve addresses of one shard whose two buckets, in a shard's first table (4 buckets), are the same
 * two: the ninth cannot be placed by any walk, so the table must be rebuilt with the entry in hand
 * (a lost or doubled entry shows in the removals and the walk). The bucket choice is the map's:
 * h & 3 and (h & 3) ^ (((h >> 20) | 1) & 3), the shard by the 64 MiB region and h >> 60. */
Test(live, colliding_addresses_force_a_rebuild) {
    enum { N = 12 };
    uintptr_t ptrs[N];
    unsigned n = 0;
    uint64_t first = 0;
    for (uintptr_t p = 0x7000000000; n < N; p += 16) {
        uint64_t h = ml_live_hash(p);
        if ((h & 3) != 0 || (((h >> 20) | 1) & 3) != 1) continue;
        if (n == 0) first = h >> 60;
        else if (h >> 60 != first) continue;
        ptrs[n++] = p;
    }
    cr_assert_lt(ptrs[N - 1] - ptrs[0], (uintptr_t)1 << 26, "one region");
    for (unsigned i = 0; i < N; i++) cr_assert_not(ml_live_insert(ptrs[i], 100 + i, (uint32_t)(ptrs[i] >> 4) % 1000));
    struct tally t = { 0, 0 };
    ml_live_foreach(count, &t);
    cr_assert_eq(t.blocks, N);
    for (unsigned i = 0; i < N; i++) {
        uint64_t size;
        uint32_t site;
        cr_assert(ml_live_remove(ptrs[i], &size, &site), "address %u", i);
        cr_assert_eq(size, 100 + i);
        cr_assert_not(ml_live_remove(ptrs[i], &size, &site), "once only: %u", i);
    }
}

Test(live, huge_size_saturates_not_wraps) {
    ml_live_insert(0x9000, 1ull << 50, 3);
    uint64_t size;
    uint32_t site;
    cr_assert(ml_live_remove(0x9000, &size, &site));
    cr_assert_eq(size, (1ull << 44) - 1);
    cr_assert_eq(site, 3);
}

/* Solo mode. The test's thread (a fake ml_tls.thread) takes it after a run of locked operations; a
 * freer thread (ml_tls.thread NULL, as a thread that only frees) removes the odd blocks it publishes,
 * and two walkers visit the map: all end solo mode each time they come, and with the backoff turned off
 * the test's thread takes it again after 256 operations, thousands of times. Every block must come
 * out exactly once, with its size and site, and none may be left. */
#define SOLO_N 300000
static uintptr_t solo_ptr(uint32_t i) { return 0x40000000 + (uintptr_t)i * 48; }
static uint32_t solo_site(uintptr_t ptr) { return (uint32_t)(ptr >> 4) % 1000; }   /* as count() checks */
static _Atomic uint32_t solo_published;
static _Atomic bool solo_done;
static _Atomic unsigned solo_freed, solo_walks;

static void *solo_freer(void *arg) {
    (void)arg;
    uint32_t next = 1;
    while (!atomic_load(&solo_done) || next + 16 < atomic_load(&solo_published)) {
        uint32_t upto = atomic_load(&solo_published);
        for (; next + 16 < upto; next += 2) {
            uint64_t size;
            uint32_t site;
            if (!ml_live_remove(solo_ptr(next), &size, &site) || size != next % 977 || site != solo_site(solo_ptr(next)))
                return (void *)(uintptr_t)next;   /* reported by the test's thread */
            atomic_fetch_add(&solo_freed, 1);
        }
    }
    return NULL;
}

/* Counts entries whose site is not their pointer's (torn or lost): no assertion outside the test's thread. */
static _Atomic unsigned solo_torn;
static void check_entry(uintptr_t ptr, uint64_t size, uint32_t site, void *arg) {
    (void)size;
    (void)arg;
    if (site != solo_site(ptr)) atomic_fetch_add(&solo_torn, 1);
}

static void *solo_walker(void *arg) {
    (void)arg;
    while (!atomic_load(&solo_done)) {
        ml_live_foreach(check_entry, NULL);
        atomic_fetch_add(&solo_walks, 1);
        usleep(20);
    }
    return NULL;
}

/* ml_live_remove_then's release: counted, with what it was given and the guard it ran under (solo
 * mode releases first, under the guard; otherwise after the removal, outside it) */
static unsigned solo_released;
static uintptr_t released_ptr;
static int released_guard;
static void release_counted(void *p) {
    solo_released++;
    released_ptr = (uintptr_t)p;
    released_guard = ml_tls.guard;
}

Test(live, remove_then_releases_once) {
    ml_live_init();
    ml_tls.thread = NULL;   /* no solo mode for a thread the map does not know */
    cr_assert_not(ml_live_insert(0x61000, 24, 5));
    uint64_t size = 0;
    uint32_t site = 0;
    cr_assert(ml_live_remove_then(0x61000, release_counted, &size, &site));
    cr_assert_eq(size, 24);
    cr_assert_eq(site, 5);
    cr_assert_eq(solo_released, 1);
    cr_assert_eq(released_ptr, 0x61000);
    cr_assert_eq(released_guard, 0, "outside solo mode the release runs outside the guard");
    cr_assert_eq(ml_tls.guard, 0);
    cr_assert_not(ml_live_remove_then(0x61000, release_counted, &size, &site), "gone");
    cr_assert_eq(solo_released, 2, "a block the map does not hold is released too");
    cr_assert_not(ml_live_remove_then(0x7123450, release_counted, &size, &site), "an empty shard");
    cr_assert_eq(solo_released, 3);
    solo_released = 0;
}

Test(live, solo_mode_against_visitors) {
    ml_live_init();
    ml_live_solo_tune(256, 0);
    static char self;   /* any address: the map compares ml_tls.thread with the solo thread */
    ml_tls.thread = (struct ml_thread *)&self;
    for (uint32_t i = 0; i < 4096; i++) {   /* a run of locked operations: the takeover */
        cr_assert_not(ml_live_insert(0x30000000 + (uintptr_t)i * 16, 1, solo_site(0x30000000 + (uintptr_t)i * 16)));
        uint64_t size;
        uint32_t site;
        cr_assert(ml_live_remove(0x30000000 + (uintptr_t)i * 16, &size, &site));
    }
    cr_assert(ml_live_solo_active(), "one thread at work: solo (membarrier is available here)");
    {   /* in solo mode the block is released first, under the guard */
        cr_assert_not(ml_live_insert(0x62000, 8, 1));
        uint64_t size;
        uint32_t site;
        cr_assert(ml_live_remove_then(0x62000, release_counted, &size, &site));
        cr_assert_eq(released_guard, 1);
        cr_assert_eq(ml_tls.guard, 0);
        solo_released = 0;
    }
    pthread_t freer, walker, walker2;   /* two walkers: one can find solo mode ending while the other ends it */
    cr_assert_eq(pthread_create(&freer, NULL, solo_freer, NULL), 0);
    cr_assert_eq(pthread_create(&walker, NULL, solo_walker, NULL), 0);
    cr_assert_eq(pthread_create(&walker2, NULL, solo_walker, NULL), 0);
    unsigned solo_seen = 0;
    for (uint32_t i = 0; i < SOLO_N; i++) {
        cr_assert_not(ml_live_insert(solo_ptr(i), i % 977, solo_site(solo_ptr(i))));
        if (i % 2 == 0 && i >= 64) {   /* the even blocks: removed by their own thread, 32 blocks later */
            uint64_t size;
            uint32_t site;
            uint32_t j = i - 64;
            unsigned before = solo_released;
            cr_assert(ml_live_remove_then(solo_ptr(j), release_counted, &size, &site), "own block %u", j);
            cr_assert_eq(solo_released, before + 1, "released once");
            cr_assert_eq(released_ptr, solo_ptr(j));
            cr_assert_eq(size, j % 977);
            cr_assert_eq(site, solo_site(solo_ptr(j)));
        }
        atomic_store(&solo_published, i + 1);
        solo_seen += ml_live_solo_active();
    }
    atomic_store(&solo_done, true);
    void *bad = NULL, *unused;
    pthread_join(freer, &bad);
    pthread_join(walker, &unused);
    pthread_join(walker2, &unused);
    cr_assert_null(bad, "the freer's block %lu came out wrong", (unsigned long)(uintptr_t)bad);
    cr_assert_gt(solo_seen, 1000, "solo mode was taken again and again (%u operations saw it)", solo_seen);
    cr_assert_gt(atomic_load(&solo_walks), 0);
    cr_assert_eq(atomic_load(&solo_torn), 0, "the walker saw torn entries");
    /* what is left: the last even blocks, and the odd ones the freer had not reached */
    uint64_t left = 0;
    for (uint32_t i = 0; i < SOLO_N; i++) {
        uint64_t size = 0;
        uint32_t site;
        bool freed = i % 2 == 0 ? i + 64 < SOLO_N : !ml_live_remove(solo_ptr(i), &size, &site);
        if (i % 2 == 0 && !freed) {
            cr_assert(ml_live_remove(solo_ptr(i), &size, &site), "even survivor %u", i);
            cr_assert_eq(size, i % 977);
            left++;
        } else if (i % 2 == 1 && !freed) {
            cr_assert_eq(size, i % 977, "odd survivor %u", i);
            left++;
        }
    }
    cr_assert_eq(left + atomic_load(&solo_freed) + (SOLO_N - 64) / 2, SOLO_N,
                 "every block came out once: %lu left, %u freed by the freer", (unsigned long)left,
                 atomic_load(&solo_freed));
    struct tally t = { 0, 0 };
    ml_live_foreach(count, &t);
    cr_assert_eq(t.blocks, 0, "nothing left in the map");
}

Test(live, no_solo_mode_for_two_threads_at_work) {
    ml_live_init();
    static char one, two;
    for (uint32_t i = 0; i < 20000; i++) {   /* two threads' operations, interleaved by 128 */
        ml_tls.thread = (struct ml_thread *)((i / 128) % 2 ? &one : &two);
        uintptr_t p = 0x50000000 + (uintptr_t)i * 16;
        cr_assert_not(ml_live_insert(p, 3, solo_site(p)));
        uint64_t size;
        uint32_t site;
        cr_assert(ml_live_remove(p, &size, &site));
    }
    cr_assert_not(ml_live_solo_active(), "two threads at work: every operation locks");
}
