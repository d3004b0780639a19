/* Unit tests of site interning and per-thread counters (core/ml_sites.c). */
#include <criterion/criterion.h>
#include <pthread.h>

#include "ml.h"

static void setup(void) { cr_assert_not(ml_sites_init()); }
TestSuite(sites, .init = setup);

Test(sites, same_stack_same_id_kind_matters) {
    struct ml_thread *t = ml_thread_self();
    uintptr_t a[3] = { 0x401000, 0x402000, 0x403000 }, b[3] = { 0x401000, 0x402000, 0x403004 };
    uint32_t s1 = ml_site_intern(t, a, 3, ML_KIND_MALLOC);
    cr_assert_neq(s1, ML_SITE_OVERFLOW);
    cr_assert_eq(ml_site_intern(t, a, 3, ML_KIND_MALLOC), s1);
    cr_assert_neq(ml_site_intern(t, a, 3, ML_KIND_CALLOC), s1, "the kind is part of the site");
    cr_assert_neq(ml_site_intern(t, b, 3, ML_KIND_MALLOC), s1);
    cr_assert_neq(ml_site_intern(t, a, 2, ML_KIND_MALLOC), s1, "a shorter stack is another site");
    const struct ml_site *s = ml_site_get(s1);
    cr_assert_not_null(s);
    cr_assert_eq(s->depth, 3);
    cr_assert_eq(s->frames[2], 0x403000);
    cr_assert_eq(s->kind, ML_KIND_MALLOC);
}

struct worker_arg { uint32_t site; };
static void *worker(void *p) {
    struct worker_arg *arg = p;
    struct ml_thread *t = ml_thread_self();
    for (int i = 0; i < 1000; i++) ml_thread_count_alloc(t, arg->site, 1, 10);
    ml_thread_count_free(t, arg->site, 400, 4000);
    return NULL;
}

Test(sites, counters_survive_thread_exit) {
    uintptr_t f[1] = { 0x7777 };
    struct worker_arg arg = { ml_site_intern(ml_thread_self(), f, 1, ML_KIND_MALLOC) };
    pthread_t th[4];
    for (int i = 0; i < 4; i++) pthread_create(&th[i], NULL, worker, &arg);
    for (int i = 0; i < 4; i++) pthread_join(th[i], NULL);
    ml_threads_reap();   /* the threads are gone: their slots fold into the base */
    struct ml_counters totals[64];
    uint32_t n = ml_sites_count();
    cr_assert_leq(n, 64);
    ml_sites_totals(totals, n);
    cr_assert_eq(totals[arg.site].allocations, 4000);
    cr_assert_eq(totals[arg.site].frees, 1600);
    cr_assert_eq(totals[arg.site].allocated_bytes, 40000);
    cr_assert_eq(totals[arg.site].freed_bytes, 16000);
    cr_assert_eq(ml_threads_live(), 1, "only the test's own thread is still registered");
}

/* Two threads intern the same 40 000 stacks in opposite orders while the table grows (it starts at
 * 16 384 slots, so it doubles twice): every stack gets one id, the same on both threads, and ids are
 * dense and distinct. */
#define MANY 40000
struct race_arg { uint32_t ids[MANY]; bool backwards; };
static void *intern_many(void *p) {
    struct race_arg *arg = p;
    struct ml_thread *t = ml_thread_self();
    for (uint32_t k = 0; k < MANY; k++) {
        uint32_t i = arg->backwards ? MANY - 1 - k : k;
        uintptr_t f[2] = { 0x500000 + i * 16, 0x600000 + (i % 7) };
        arg->ids[i] = ml_site_intern(t, f, 2, ML_KIND_MALLOC);
    }
    return NULL;
}

Test(sites, one_id_per_stack_while_the_table_grows) {
    static struct race_arg a = { .backwards = false }, b = { .backwards = true };
    pthread_t ta, tb;
    pthread_create(&ta, NULL, intern_many, &a);
    pthread_create(&tb, NULL, intern_many, &b);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    static bool seen[MANY + 2];
    for (uint32_t i = 0; i < MANY; i++) {
        cr_assert_neq(a.ids[i], ML_SITE_OVERFLOW, "stack %u", i);
        cr_assert_eq(a.ids[i], b.ids[i], "stack %u: ids %u and %u", i, a.ids[i], b.ids[i]);
        cr_assert_lt(a.ids[i], MANY + 2);
        cr_assert_not(seen[a.ids[i]], "id %u given twice", a.ids[i]);
        seen[a.ids[i]] = true;
        const struct ml_site *s = ml_site_get(a.ids[i]);
        cr_assert(s && s->depth == 2 && s->frames[0] == 0x500000 + i * 16);
    }
    cr_assert_eq(ml_sites_count(), MANY + 1, "ids 1..%u and no more", MANY);
    uintptr_t f[2] = { 0x500000 + 123 * 16, 0x600000 + (123 % 7) };
    cr_assert_eq(ml_site_intern(ml_thread_self(), f, 2, ML_KIND_MALLOC), a.ids[123], "found again after growing");
}
