/* ml.h — the core of memlens: the data model shared by the shim, the tables and the collector.
 *
 * Data model (all of it lives in memory obtained with raw mmap, never from the traced program's malloc):
 *   site    — an interned (call stack, operation kind) pair with a dense id (ml_sites.c);
 *   thread  — a registered thread slot holding per-site counters written only by its owner (ml_sites.c);
 *   live    — the sharded live-pointer map: block address -> (size, site) (ml_live.c);
 *   maps    — the interval table of tracked mmap ranges (ml_maps.c);
 *   ops     — a bounded ring of large operations waiting for the collector (ml_track.c).
 * Public entry points for the shim are ml_track_*; the collector reads the tables through the
 * iteration functions declared here. */
#ifndef ML_H
#define ML_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "ml_parse.h"
#include "ml_unwind.h"

#define ML_MAX_DEPTH 128
#define ML_MAX_SITES (1u << 20)      /* site ids fit in 20 bits of a live-map entry */
#define ML_MAX_THREADS 1024          /* concurrently registered threads; more share one atomic slot */
#define ML_SITE_OVERFLOW 0u          /* site 0: "too many sites", never a real stack */

enum ml_kind {
    ML_KIND_MALLOC, ML_KIND_CALLOC, ML_KIND_REALLOC, ML_KIND_REALLOCARRAY, ML_KIND_POSIX_MEMALIGN,
    ML_KIND_ALIGNED_ALLOC, ML_KIND_MEMALIGN, ML_KIND_VALLOC, ML_KIND_PVALLOC, ML_KIND_NEW,
    ML_KIND_NEW_ARRAY, ML_KIND_STRDUP, ML_KIND_STRNDUP, ML_KIND_ASPRINTF, ML_KIND_VASPRINTF,
    ML_KIND_GETLINE, ML_KIND_GETDELIM, ML_KIND_REALPATH, ML_KIND_OPEN_MEMSTREAM,
    ML_KIND_MMAP_ANON, ML_KIND_MMAP_FILE, ML_KIND_COUNT
};
const char *ml_kind_name(enum ml_kind kind);
static inline bool ml_kind_is_mmap(unsigned kind) { return kind == ML_KIND_MMAP_ANON || kind == ML_KIND_MMAP_FILE; }

/* ---- configuration (ml_config.c) ---- */
struct ml_config {
    unsigned depth;          /* frames kept per stack */
    uint64_t interval_ns;    /* collector period */
    uint64_t op_min;         /* allocations at or above this are logged one by one */
    bool follow_exec;
    uint64_t sample_rate;    /* MEMLENS_SAMPLE: mean bytes between samples; 0 = full mode */
    bool check;              /* MEMLENS_CHECK=1: exit 1 when more than max_leaked bytes are lost */
    uint64_t max_leaked;
    char out_dir[4096];      /* empty: default ./memlens-<prog>-<pid> */
    /* live analysis (collector/ml_trends.c, collector/ml_alerts.c) */
    unsigned window;         /* MEMLENS_WINDOW: samples per trend window, 5..256 (default 20) */
    struct ml_level { uint64_t value; bool percent; } levels[3];
                             /* MEMLENS_WARN / _CRIT / _EMERG: bytes of RSS, or percent of the cgroup
                                limit (default 60/75/90 %); value 0 = level off */
    uint64_t growth_alert_bytes_per_min;   /* MEMLENS_GROWTH_ALERT (default 5 MiB/min); 0 = off */
    uint64_t site_max;       /* MEMLENS_SITE_MAX: live bytes of one site (default 100 MiB); 0 = off */
    unsigned alert_limit;    /* MEMLENS_ALERT_LIMIT: alerts per rule per hour (default 10); 0 = unlimited */
    int alert_fd;            /* MEMLENS_ALERT_FD: also write each alert line here; -1 = none */
    bool alert_fd_id;        /* MEMLENS_ALERT_FD_ID given: the file alert_fd must be (st_dev:st_ino) */
    uint64_t alert_fd_dev, alert_fd_ino;
};
extern struct ml_config ml_config __attribute__((aligned(64)));   /* op_min and sample_rate: first line */
/* Parses MEMLENS_* from the environment; on a bad value writes one line to stderr and returns true. */
bool ml_config_load(struct ml_config *config);
/* Its parsers (sizes, durations, bounded integers) are in ml_parse.h, shared with the CLI. */

/* ---- tracking state ---- */
enum ml_state { ML_STATE_OFF = 0, ML_STATE_ON = 1, ML_STATE_DISABLED = 2 };
extern _Atomic int ml_state;   /* OFF until ml_track_init succeeds; DISABLED after a failure or at the end */

/* Per-thread state in initial-exec TLS, so that reading it never calls into the allocator. */
struct ml_thread;
/* One cache line: every interposed call reads it. */
struct ml_tls {
    int guard;               /* >0 while memlens itself runs on this thread: nested allocations are not tracked */
    int kind;                /* kind forced by a buffer-like wrapper (strdup, getline…), 0 = none, else kind+1 */
    int64_t sample_left;     /* sampled mode: bytes until the next sample point */
    uint64_t sample_below;   /* sampled mode, once this thread is seeded: op_min (smaller allocations may be
                                skipped); 0 before that and in full mode, where nothing is skipped */
    uint64_t rng;            /* sampled mode: xorshift state, 0 until seeded */
    uintptr_t kind_caller;   /* with kind: the return address into the program's call of that wrapper */
    struct ml_thread *thread;
    int *errno_at;           /* this thread's errno, asked of libc once (shim.c, errno_at) */
    int kind_depth;          /* wrapper scopes open on this thread (shim.c, kind_push); kind is the outermost's */
};
_Static_assert(sizeof(struct ml_tls) <= 64, "struct ml_tls is one cache line");
extern __thread struct ml_tls ml_tls __attribute__((tls_model("initial-exec"), aligned(64)));

/* ---- site table (ml_sites.c) ---- */
struct ml_site {
    uint64_t hash;
    uint32_t id;
    uint16_t kind;
    uint16_t depth;
    uintptr_t frames[];
};
struct ml_counters { uint64_t allocations, frees, allocated_bytes, freed_bytes; };

bool ml_sites_init(void);
/* Interns (frames, kind); returns the site id, or ML_SITE_OVERFLOW when the table is full. */
uint32_t ml_site_intern(struct ml_thread *thread, const uintptr_t *frames, unsigned depth, unsigned kind);
/* The same, given ml_stack_chain(frames, depth). */
uint32_t ml_site_intern_chained(struct ml_thread *thread, const uintptr_t *frames, unsigned depth, unsigned kind,
                                uint64_t chain);
uint32_t ml_sites_count(void);                 /* ids [1, count) may be in use */
void ml_sites_lock(void);                      /* fork: no thread is inserting a site */
void ml_sites_unlock(void);
const struct ml_site *ml_site_get(uint32_t id); /* NULL while the id is being published */

/* Thread slots. Counters are written only by the owning thread (relaxed stores) and read by the collector. */
struct ml_thread *ml_thread_self(void);        /* registers the calling thread on first use */
bool ml_thread_is_shared(const struct ml_thread *t);   /* the overflow slot that several threads share */
/* Called on a registered thread as it exits, with its ml_thread (set once, by the shim, before any
 * thread can exit registered). */
extern void (*ml_thread_exit_hook)(const struct ml_thread *thread);
void ml_thread_count_alloc(struct ml_thread *thread, uint32_t site, uint64_t count, uint64_t bytes);
void ml_thread_count_free(struct ml_thread *thread, uint32_t site, uint64_t count, uint64_t bytes);
/* Collector side: out[s] = counters of site s summed over dead and live threads, for s < count. */
void ml_sites_totals(struct ml_counters *out, uint32_t count);
/* Folds the counters of exited threads into the global base; collector only. */
void ml_threads_reap(void);
unsigned ml_threads_live(void);
void ml_threads_after_fork_child(struct ml_thread *self);

/* Per registered thread: where its pointers may be (ml_scan.c reads it). */
struct ml_thread_roots { pid_t tid; uintptr_t thread_pointer, stack_lo, stack_hi; };
typedef void ml_roots_visit(const struct ml_thread_roots *roots, void *arg);
void ml_threads_roots(ml_roots_visit *visit, void *arg);        /* live slots */
void ml_dead_threads_roots(ml_roots_visit *visit, void *arg);   /* threads that have exited */

/* ---- leak scan (ml_scan.c) ---- */
enum ml_class { ML_CLASS_DEFINITE, ML_CLASS_INDIRECT, ML_CLASS_POSSIBLE, ML_CLASS_REACHABLE, ML_CLASS_COUNT };
const char *ml_class_name(enum ml_class c);
struct ml_leak_row { uint32_t site; uint8_t class_; uint64_t bytes, blocks, indirect_bytes, indirect_blocks; };
struct ml_scan_result {
    uint64_t bytes[ML_CLASS_COUNT], blocks[ML_CLASS_COUNT];
    uint64_t scan_ns, root_bytes;
    unsigned threads;
    bool complete;
    const char *message;
};
typedef void ml_leak_emit(const struct ml_leak_row *row, void *arg);
/* Classifies every live heap block and anonymous mapping by reachability from the roots; calls
 * emit once per (site, class). Runs at exit with tracking off; other threads may still run. */
bool ml_scan_leaks(ml_leak_emit *emit, void *arg, struct ml_scan_result *result);

/* ---- live-pointer map (ml_live.c) ---- */
#define ML_LIVE_SHARDS 1024
bool ml_live_init(void);
bool ml_live_insert(uintptr_t ptr, uint64_t size, uint32_t site);   /* true on error (out of memory) */
bool ml_live_insert_hashed(uintptr_t ptr, uint64_t hash, uint64_t size, uint32_t site);   /* hash: ml_live_hash(ptr) */
bool ml_live_remove(uintptr_t ptr, uint64_t *size, uint32_t *site); /* true if it was there */
/* ml_live_remove, and release(ptr) (glibc's free) called once, before or after the removal, so that no
 * other thread can insert ptr before it is removed; the table operation runs under ml_tls.guard. */
bool ml_live_remove_then(uintptr_t ptr, void (*release)(void *), uint64_t *size, uint32_t *site);
typedef void ml_live_visit(uintptr_t ptr, uint64_t size, uint32_t site, void *arg);
void ml_live_foreach(ml_live_visit *visit, void *arg);                /* locks one shard at a time */
void ml_live_lock_all(void);                                          /* fork: every shard, solo mode ended */
void ml_live_unlock_all(void);
bool ml_live_solo_active(void);   /* for tests: whether one thread now works on the map unlocked (ml_live.c) */
void ml_live_solo_tune(unsigned base, unsigned max_shift);   /* for tests: locked operations before a takeover */
uint64_t ml_live_memory_bytes(void);                                  /* tracker memory used by the map */
/* A hint, given before other work: starts loading the slot ml_live_insert(ptr) will probe first.
 * Returns ml_live_hash(ptr), for ml_live_insert_hashed. */
uint64_t ml_live_prefetch(uintptr_t ptr);
static inline uint64_t ml_live_hash(uintptr_t ptr) {
    uint64_t h = (uint64_t)ptr * 0x9E3779B97F4A7C15ull;
    return h ^ (h >> 29);
}
/* Sampled mode's counting filter of recorded blocks (ml_live.c): false when ptr is surely not one, so
 * that a free of an unrecorded block that the pointer test below lets through costs a hash and one
 * byte read, not a lock. */
#define ML_LIVE_FILTER_BITS 13
extern _Atomic uint8_t ml_live_filter[1u << ML_LIVE_FILTER_BITS];
static inline unsigned ml_live_filter_index(uint64_t hash) { return (unsigned)(hash >> 32) & ((1u << ML_LIVE_FILTER_BITS) - 1); }
/* Sampled mode: the shim moves a sample that is not at a page boundary, or 16 bytes past one (where glibc
 * puts mmapped chunks), to a page-aligned block of its own, as jemalloc promotes its samples to a
 * page-aligned size class; a free then rules out 255 in 256 unrecorded blocks with one test of the
 * pointer, before touching any memory, and the rest with the filter. The moved block costs up to a page
 * of heap while it lives (glibc's memalign returns the rest in front of it to its free lists), and
 * moves are rare (freed samples are kept for the next, see shim.c). It was 256 until 2026-12: on the
 * `sites` benchmark 1 in 16 frees then went on to the filter, whose byte, cold in a program whose
 * working set fills the cache, cost ~2 ms of a 45 ms run; at 4096, ~0.35 ms. (Large samples that are
 * not placed are recorded where they are: the shim counts them, and while any is live every free asks
 * the filter.) */
#define ML_SAMPLE_ALIGN 4096u
static inline bool ml_sample_placed(uintptr_t ptr) {
    return (ptr & (ML_SAMPLE_ALIGN - 1) & ~(uintptr_t)16) == 0;   /* 0 or 16 past a page */
}
static inline bool ml_live_may_hold(uintptr_t ptr) {
    return !ml_config.sample_rate ||
           atomic_load_explicit(&ml_live_filter[ml_live_filter_index(ml_live_hash(ptr))], memory_order_relaxed);
}

/* ---- mmap intervals (ml_maps.c) ---- */
bool ml_maps_init(void);
void ml_maps_lock(void);
void ml_maps_unlock(void);
/* Callers hold the maps lock. add: a new range of a site; remove: unmaps [start,start+len), calling
 * `removed` for each piece that was tracked. */
typedef void ml_maps_removed(uint32_t site, unsigned kind, uint64_t bytes, void *arg);
bool ml_maps_add(uintptr_t start, uint64_t len, uint32_t site, unsigned kind);
void ml_maps_remove(uintptr_t start, uint64_t len, ml_maps_removed *removed, void *arg);
bool ml_maps_find(uintptr_t addr, uint32_t *site, unsigned *kind, uint64_t *len);
typedef void ml_maps_visit(uintptr_t start, uint64_t len, uint32_t site, unsigned kind, void *arg);
void ml_maps_foreach(ml_maps_visit *visit, void *arg);
void ml_maps_live(uint64_t *anon_bytes, uint64_t *file_bytes);

/* ---- stack capture (ml_capture.c) ---- */
/* Captures up to ml_config.depth return addresses of the calling thread's stack from `origin` (the
 * interposer's caller, ML_ORIGIN_HERE()), or, when trim_at is not 0, from the frame whose return
 * address is trim_at among the first few; returns the number stored, and their ml_stack_chain in
 * *chain (not NULL). */
unsigned ml_capture(uintptr_t *frames, const struct ml_origin *origin, uintptr_t trim_at, uint64_t *chain);
/* Loads libunwind (RTLD_LOCAL) for ml_capture's fallback, not tracked: the collector thread, when a
 * capture first needs it (ml_capture_serve_load), or a unit test. */
void ml_capture_load(void);
void ml_capture_serve_load(void);   /* the collector, woken: loads libunwind if a capture asked for it */
bool ml_collector_wake(void);       /* ml_collector.c: wakes the collector thread; false if none runs */

/* ---- sampled mode (ml_track.c) ----
 * Poisson sampling by bytes, as tcmalloc and jemalloc do: each thread counts allocated bytes down
 * from an exponentially distributed gap (mean ml_config.sample_rate); an allocation that crosses zero
 * is recorded, with weight 1/p where p = 1 - exp(-size/rate) is the chance it had of being sampled,
 * so sums of weights estimate bytes and counts without bias. Allocations of op_min bytes or more are
 * always recorded, with weight 1. Counts are stored in units of 1/ML_COUNT_SCALE. */
#define ML_COUNT_SCALE 256
/* The test every allocation makes first: true when it is surely not a sample (sampled mode, nearly
 * every call), touching nothing but the thread's ml_tls line. False in full mode (sample_below stays 0)
 * and when a sample point is crossed: the caller then checks that it may track this call and, in
 * sampled mode, asks ml_sample_slow, which places the next point (and seeds the thread: the counter
 * starts at 0). Bytes allocated while memlens itself runs count down too; a point that lands on one
 * is lost, which by memorylessness biases no estimate. */
static inline bool ml_sample_skip(uint64_t size) {
    int64_t left = (int64_t)((uint64_t)ml_tls.sample_left - size);
    ml_tls.sample_left = left;
    return left > 0 && size < ml_tls.sample_below;
}
bool ml_sample_slow(uint64_t size);   /* sampled mode, after ml_sample_skip said false: record it? */
/* The weights of a recorded block of `size` bytes: counts (in 1/ML_COUNT_SCALE) and bytes. */
void ml_sample_weights_slow(uint64_t size, uint64_t *count, uint64_t *bytes);   /* sampled mode */
static inline void ml_sample_weights(uint64_t size, uint64_t *count, uint64_t *bytes) {
    if (__builtin_expect(!ml_config.sample_rate, 1)) {
        *count = 1;
        *bytes = size;
        return;
    }
    ml_sample_weights_slow(size, count, bytes);
}

/* ---- tracking API used by the shim (ml_track.c) ---- */
bool ml_track_init(void);          /* true on error; idempotent */
void ml_track_alloc(void *ptr, uint64_t size, unsigned kind, const struct ml_origin *origin);
/* Removes a block before it is handed back; returns true if it was tracked. */
bool ml_track_free_begin(void *ptr, uint64_t *size, uint32_t *site);
void ml_track_free_commit(uint64_t size, uint32_t site, void *ptr);
void ml_track_free_abort(void *ptr, uint64_t size, uint32_t site);  /* the free did not happen (realloc failed) */
void ml_track_mmap(void *addr, uint64_t len, bool anonymous, const struct ml_origin *origin);
void ml_track_munmap(void *addr, uint64_t len);
void ml_track_mremap(void *old_addr, uint64_t old_len, void *new_addr, uint64_t new_len);

/* Heap totals (ml_sites.c): see ml_thread_heap for how exact they are. */
extern _Atomic int64_t ml_heap_live, ml_heap_peak;
void ml_thread_heap(struct ml_thread *thread, int64_t bytes);
int64_t ml_heap_pending(void);   /* collector: bytes batched on threads, not yet in ml_heap_live */

/* Large operations waiting for the collector. */
struct ml_op { uint64_t time_ns, size, addr; uint32_t site; int32_t tid; uint8_t kind; bool release; };
bool ml_ops_pop(struct ml_op *op);
extern _Atomic uint64_t ml_ops_dropped;

/* Threads memlens itself runs (the collector); the leak scan needs to know what else runs. */
extern _Atomic int ml_internal_threads;

/* Internal failure: disables tracking; the host continues. `why` is a static string. */
void ml_fail(const char *why);
extern const char *_Atomic ml_fail_reason;

#endif
