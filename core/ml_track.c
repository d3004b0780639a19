/* ml_track.c — what happens on each tracked operation: capture the stack, intern the site, update the
 * live map or the mmap table, count on the calling thread's slot, keep exact heap totals, and queue
 * large operations for the collector. Called by the shim with the thread's guard held. */
#define _GNU_SOURCE
#include "ml.h"
#include "ml_prim.h"
#include "ml_spin.h"

#include "ml_math.h"
#include <stdlib.h>

__thread struct ml_tls ml_tls __attribute__((tls_model("initial-exec"), aligned(64)));
_Atomic int ml_state;
_Atomic int64_t ml_heap_live, ml_heap_peak;
_Atomic uint64_t ml_ops_dropped;
_Atomic int ml_internal_threads;
const char *_Atomic ml_fail_reason;

static const char *const kind_names[ML_KIND_COUNT] = {
    "malloc", "calloc", "realloc", "reallocarray", "posix_memalign", "aligned_alloc", "memalign", "valloc",
    "pvalloc", "new", "new[]", "strdup", "strndup", "asprintf", "vasprintf", "getline", "getdelim",
    "realpath", "open_memstream", "mmap_anon", "mmap_file",
};

const char *ml_kind_name(enum ml_kind kind) { return (unsigned)kind < ML_KIND_COUNT ? kind_names[kind] : "unknown"; }

void ml_fail(const char *why) {
    const char *expected = NULL;
    if (atomic_compare_exchange_strong(&ml_fail_reason, &expected, why)) ml_stderr("internal error, tracking disabled:", why, NULL);
    atomic_store(&ml_state, ML_STATE_DISABLED);
}

/* ---- large operations: a bounded ring behind a spinlock (they are rare by definition) ---- */
#define OPS_CAP 4096
static struct ml_op ops[OPS_CAP];
static uint32_t ops_head, ops_tail;   /* protected by ops_lock */
static ml_spin ops_lock;

static void ops_push(const struct ml_op *op) {
    ml_spin_lock(&ops_lock);
    if (ops_tail - ops_head < OPS_CAP) ops[ops_tail++ % OPS_CAP] = *op;
    else atomic_fetch_add(&ml_ops_dropped, 1);
    ml_spin_unlock(&ops_lock);
}

bool ml_ops_pop(struct ml_op *op) {
    ml_spin_lock(&ops_lock);
    bool have = ops_head != ops_tail;
    if (have) *op = ops[ops_head++ % OPS_CAP];
    ml_spin_unlock(&ops_lock);
    return have;
}

static void queue_op(unsigned kind, uint32_t site, uint64_t size, uintptr_t addr, bool release) {
    struct ml_op op = { .time_ns = ml_now_ns(), .size = size, .addr = addr, .site = site,
                        .tid = ml_tls.thread ? ml_gettid() : 0, .kind = (uint8_t)kind, .release = release };
    ops_push(&op);
}

/* ---- heap ---- */

/* ---- sampled mode ---- */

static uint64_t next_random(void) {
    uint64_t x = ml_tls.rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return ml_tls.rng = x;
}

static int64_t exponential_gap(void) {
    double u = (double)((next_random() >> 11) + 1) * (1.0 / 9007199254740993.0);   /* (0, 1] */
    double gap = -ml_log(u) * (double)ml_config.sample_rate;
    return gap < 1 ? 1 : gap > 9.0e18 ? INT64_MAX : (int64_t)gap;
}

bool ml_sample_slow(uint64_t size) {
    if (!ml_tls.rng) {   /* first allocation on this thread: seed, then place the first sample point */
        ml_tls.rng = (ml_now_ns() ^ ((uint64_t)ml_gettid() << 32) ^ (uintptr_t)&ml_tls) | 1;
        ml_tls.sample_below = ml_config.op_min;
        ml_tls.sample_left = exponential_gap() - (int64_t)size;
        if (ml_tls.sample_left > 0 && size < ml_config.op_min) return false;
    }
    if (size >= ml_config.op_min) {
        if (ml_tls.sample_left <= 0) ml_tls.sample_left = exponential_gap();
        return true;     /* large: always recorded (weight 1, see ml_sample_weights) */
    }
    ml_tls.sample_left = exponential_gap();   /* memoryless: the next point counts from here */
    return true;
}

void ml_sample_weights_slow(uint64_t size, uint64_t *count, uint64_t *bytes) {
    if (size >= ml_config.op_min || size == 0) { *count = ML_COUNT_SCALE; *bytes = size; return; }
    double p = -ml_expm1(-(double)size / (double)ml_config.sample_rate);   /* 1 - exp(-size/rate) */
    *count = (uint64_t)((double)ML_COUNT_SCALE / p + 0.5);
    *bytes = (uint64_t)((double)size / p + 0.5);
}

static uint32_t site_here(struct ml_thread *t, unsigned kind, const struct ml_origin *origin, uintptr_t trim_at) {
    uintptr_t frames[ML_MAX_DEPTH];
    uint64_t chain;
    unsigned depth = ml_capture(frames, origin, trim_at, &chain);
    return ml_site_intern_chained(t, frames, depth, kind, chain);
}

void ml_track_alloc(void *ptr, uint64_t size, unsigned kind, const struct ml_origin *origin) {
    uint64_t hash = ml_live_prefetch((uintptr_t)ptr);   /* the slot loads while the stack is walked */
    uintptr_t trim_at = 0;
    if (ml_tls.kind) {   /* inside strdup, getline, operator new…: the stack starts at the program's call */
        kind = (unsigned)ml_tls.kind - 1;
        trim_at = ml_tls.kind_caller;
    }
    struct ml_thread *t = ml_thread_self();
    uint32_t site = site_here(t, kind, origin, trim_at);
    if (ml_live_insert_hashed((uintptr_t)ptr, hash, size, site)) { ml_fail("out of memory for the live-block map"); return; }
    uint64_t count, bytes;
    ml_sample_weights(size, &count, &bytes);
    ml_thread_count_alloc(t, site, count, bytes);
    ml_thread_heap(t, (int64_t)bytes);
    if (size >= ml_config.op_min) queue_op(kind, site, size, (uintptr_t)ptr, false);
}

bool ml_track_free_begin(void *ptr, uint64_t *size, uint32_t *site) {
    return ml_live_remove((uintptr_t)ptr, size, site);
}

void ml_track_free_commit(uint64_t size, uint32_t site, void *ptr) {
    struct ml_thread *t = ml_thread_self();
    uint64_t count, bytes;
    ml_sample_weights(size, &count, &bytes);
    ml_thread_count_free(t, site, count, bytes);
    ml_thread_heap(t, -(int64_t)bytes);
    if (size >= ml_config.op_min) {
        const struct ml_site *s = ml_site_get(site);
        queue_op(s ? s->kind : ML_KIND_MALLOC, site, size, (uintptr_t)ptr, true);
    }
}

void ml_track_free_abort(void *ptr, uint64_t size, uint32_t site) {
    if (ml_live_insert((uintptr_t)ptr, size, site)) ml_fail("out of memory for the live-block map");
}

/* ---- mappings (callers hold the maps lock around the system call) ---- */

static uint64_t page_round(uint64_t len) {
    static uint64_t page;
    if (!page) page = ml_os_page_size();
    return (len + page - 1) & ~(page - 1);
}

void ml_track_mmap(void *addr, uint64_t len, bool anonymous, const struct ml_origin *origin) {
    unsigned kind = anonymous ? ML_KIND_MMAP_ANON : ML_KIND_MMAP_FILE;
    struct ml_thread *t = ml_thread_self();
    uint32_t site = site_here(t, kind, origin, 0);
    len = page_round(len);
    ml_maps_remove((uintptr_t)addr, len, NULL, NULL);   /* MAP_FIXED over a tracked range replaces it */
    if (ml_maps_add((uintptr_t)addr, len, site, kind)) { ml_fail("out of memory for the mapping table"); return; }
    ml_thread_count_alloc(t, site, ml_config.sample_rate ? ML_COUNT_SCALE : 1, len);
    if (len >= ml_config.op_min) queue_op(kind, site, len, (uintptr_t)addr, false);
}

struct unmap_note { struct ml_thread *thread; uintptr_t addr; };

static void count_unmapped(uint32_t site, unsigned kind, uint64_t bytes, void *arg) {
    struct unmap_note *note = arg;
    ml_thread_count_free(note->thread, site, ml_config.sample_rate ? ML_COUNT_SCALE : 1, bytes);
    if (bytes >= ml_config.op_min) queue_op(kind, site, bytes, note->addr, true);
}

void ml_track_munmap(void *addr, uint64_t len) {
    struct unmap_note note = { ml_thread_self(), (uintptr_t)addr };
    ml_maps_remove((uintptr_t)addr, page_round(len), count_unmapped, &note);
}

void ml_track_mremap(void *old_addr, uint64_t old_len, void *new_addr, uint64_t new_len) {
    uint32_t site;
    unsigned kind;
    uint64_t range_len;
    old_len = page_round(old_len);
    new_len = page_round(new_len);
    if (!ml_maps_find((uintptr_t)old_addr, &site, &kind, &range_len)) return;
    struct ml_thread *t = ml_thread_self();
    ml_maps_remove((uintptr_t)old_addr, old_len, NULL, NULL);
    ml_maps_remove((uintptr_t)new_addr, new_len, NULL, NULL);
    if (ml_maps_add((uintptr_t)new_addr, new_len, site, kind)) { ml_fail("out of memory for the mapping table"); return; }
    /* a move keeps the bytes; growth counts as bytes allocated, shrinking as bytes freed */
    if (new_len > old_len) ml_thread_count_alloc(t, site, 0, new_len - old_len);
    else if (old_len > new_len) ml_thread_count_free(t, site, 0, old_len - new_len);
}

bool ml_track_init(void) {
    if (ml_sites_init() || ml_live_init() || ml_maps_init()) return true;
    return false;
}
