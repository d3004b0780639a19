/* Unit tests of the live-pointer map (core/ml_live.c): exact sizes and sites through growth,
 * clustered probing and removal in every order. */
#include <criterion/criterion.h>
#include <stdlib.h>

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

Test(live, huge_size_saturates_not_wraps) {
    ml_live_insert(0x9000, 1ull << 50, 3);
    uint64_t size;
    uint32_t site;
    cr_assert(ml_live_remove(0x9000, &size, &site));
    cr_assert_eq(size, (1ull << 44) - 1);
    cr_assert_eq(site, 3);
}
