/* Unit tests of the mmap interval table (core/ml_maps.c): partial unmaps trim, split and drop ranges
 * and account every byte to the right site. */
#include <criterion/criterion.h>

#include "ml.h"

struct removal { uint64_t bytes[8]; unsigned calls; };
static void on_removed(uint32_t site, unsigned kind, uint64_t bytes, void *arg) {
    struct removal *r = arg;
    (void)kind;
    r->bytes[site] += bytes;
    r->calls++;
}

struct listing { uintptr_t start[8]; uint64_t len[8]; unsigned n; };
static void list(uintptr_t start, uint64_t len, uint32_t site, unsigned kind, void *arg) {
    struct listing *l = arg;
    (void)site; (void)kind;
    l->start[l->n] = start;
    l->len[l->n++] = len;
}

Test(maps, split_trim_and_drop) {
    const uint64_t P = 4096;
    cr_assert_not(ml_maps_add(10 * P, 10 * P, 1, ML_KIND_MMAP_ANON));
    cr_assert_not(ml_maps_add(30 * P, 4 * P, 2, ML_KIND_MMAP_FILE));
    uint64_t anon, file;
    ml_maps_live(&anon, &file);
    cr_assert_eq(anon, 10 * P);
    cr_assert_eq(file, 4 * P);

    struct removal r = { { 0 }, 0 };
    ml_maps_remove(13 * P, 2 * P, on_removed, &r);          /* hole in the middle */
    cr_assert_eq(r.bytes[1], 2 * P);
    struct listing l = { { 0 }, { 0 }, 0 };
    ml_maps_foreach(list, &l);
    cr_assert_eq(l.n, 3);
    cr_assert_eq(l.start[0], 10 * P); cr_assert_eq(l.len[0], 3 * P);
    cr_assert_eq(l.start[1], 15 * P); cr_assert_eq(l.len[1], 5 * P);

    ml_maps_remove(9 * P, 2 * P, on_removed, &r);            /* head cut, starting before the range */
    ml_maps_remove(19 * P, 12 * P, on_removed, &r);          /* tail of one range and head of the next */
    cr_assert_eq(r.bytes[1], 2 * P + P + P);
    cr_assert_eq(r.bytes[2], P);
    ml_maps_live(&anon, &file);
    cr_assert_eq(anon, 2 * P + 4 * P);
    cr_assert_eq(file, 3 * P);

    uint32_t site;
    unsigned kind;
    uint64_t len;
    cr_assert(ml_maps_find(31 * P, &site, &kind, &len));
    cr_assert_eq(site, 2);
    cr_assert_eq(kind, ML_KIND_MMAP_FILE);
    cr_assert_not(ml_maps_find(13 * P, &site, &kind, &len), "the hole is unmapped");

    ml_maps_remove(0, 100 * P, on_removed, &r);              /* everything */
    ml_maps_live(&anon, &file);
    cr_assert_eq(anon + file, 0);
    l.n = 0;
    ml_maps_foreach(list, &l);
    cr_assert_eq(l.n, 0);
}
