/* ml_sites.c — interned call sites and per-thread counters.
 *
 * Sites: an open-addressing set of pointers to immutable site records (hash, kind, frames), allocated
 * from a bump arena. Lookups take no lock. A stack not found is inserted under `insert_lock`, after a
 * second lookup there: the record is written, its id published in `by_id` (release), then its slot
 * (release); readers load the table pointer and slots with acquire, so a visible record is complete.
 * The table starts small (4 KiB, one page) and doubles under the same lock at 3/4 load: the new table
 * is filled, then published; old tables stay (a reader may still probe one: it then misses a newer
 * site, takes the lock and finds it; together they are smaller than the last one). A large table
 * costs a page fault for nearly every new site while it is sparse. Each thread first looks in a
 * private direct-mapped cache keyed by the 64-bit stack hash.
 *
 * Counters: every registered thread owns a slot with a counters array indexed by site id (lazily
 * backed address space). Only the owner writes it, with relaxed stores; the collector reads with
 * relaxed loads and sums. When a thread exits its slot is marked DEAD; the collector folds its
 * counters into `dead_base` and frees the slot for reuse. Threads beyond ML_MAX_THREADS share the
 * `shared` slot through atomic adds. */
#define _GNU_SOURCE
#include "ml.h"
#include "ml_prim.h"
#include "ml_spin.h"

#include <pthread.h>
#include <string.h>
#include <unistd.h>

#define TABLE_FIRST_BITS 9
#define TABLE_MAX_BITS 21
#define ARENA_BYTES (512ull << 20)
#define CACHE_SIZE 1024

enum { SLOT_FREE, SLOT_LIVE, SLOT_DEAD };

struct cache_entry { uint64_t hash; uint32_t site; };

struct ml_thread {
    _Atomic int state;
    pid_t tid;
    _Atomic uint32_t max_site;        /* highest site id counted here + 1: bounds folding work */
    _Atomic int64_t heap_pending;     /* heap bytes not yet added to ml_heap_live (owner writes) */
    struct ml_thread_roots roots;     /* where the leak scan looks for this thread's pointers */
    struct ml_counters *counters;     /* [ML_MAX_SITES], owner writes */
    struct cache_entry cache[CACHE_SIZE];
};

struct site_table { unsigned bits; struct ml_site *_Atomic slots[]; };
static struct site_table *_Atomic table;       /* the current table: release/acquire */
static ml_spin insert_lock;                    /* new sites, growth, table_used, arena_used */
static struct ml_site *_Atomic *by_id;         /* [ML_MAX_SITES] */
static char *arena;
static uint64_t arena_used;                    /* protected by insert_lock */
static _Atomic uint32_t next_id = 1;           /* id 0 is ML_SITE_OVERFLOW */
static uint32_t table_used;                    /* protected by insert_lock */

static struct ml_thread *threads;               /* [ML_MAX_THREADS] */
/* Slots [0, slots_used) have been taken at least once; registration takes the lowest free slot, so the
 * loops over slots stop here instead of touching ML_MAX_THREADS slots 16 KiB apart (a page each). */
static _Atomic unsigned slots_used;
static inline unsigned slots_in_use(void) { return atomic_load_explicit(&slots_used, memory_order_acquire); }
static struct ml_thread shared_thread;          /* overflow slot, updated with atomics */
static struct ml_counters *dead_base;           /* collector only */
static pthread_key_t exit_key;
static _Atomic unsigned registrations;   /* > 1: the process has had several allocating threads */

/* Heap totals. While one thread allocates, every change goes straight to the shared atomics, so the
 * peak is exact. Once several threads allocate, each batches up to ML_HEAP_BATCH bytes before
 * touching the shared line (so threads do not contend on it): the peak is then exact to within
 * ML_HEAP_BATCH per thread, and the collector adds the pending amounts when it reads. */
#define ML_HEAP_BATCH (256 << 10)

static void heap_publish(int64_t bytes) {
    int64_t live = atomic_fetch_add_explicit(&ml_heap_live, bytes, memory_order_relaxed) + bytes;
    int64_t peak = atomic_load_explicit(&ml_heap_peak, memory_order_relaxed);
    while (live > peak && !atomic_compare_exchange_weak_explicit(&ml_heap_peak, &peak, live, memory_order_relaxed,
                                                                 memory_order_relaxed)) {}
}

void ml_thread_heap(struct ml_thread *t, int64_t bytes) {
    if (atomic_load_explicit(&registrations, memory_order_relaxed) <= 1 || t == &shared_thread) {
        heap_publish(bytes);
        return;
    }
    int64_t pending = atomic_load_explicit(&t->heap_pending, memory_order_relaxed) + bytes;
    if (pending >= ML_HEAP_BATCH || pending <= -ML_HEAP_BATCH) {
        heap_publish(pending);
        pending = 0;
    }
    atomic_store_explicit(&t->heap_pending, pending, memory_order_relaxed);
}

int64_t ml_heap_pending(void) {
    int64_t sum = 0;
    for (unsigned i = 0, used = slots_in_use(); i < used; i++)
        if (atomic_load_explicit(&threads[i].state, memory_order_acquire) != SLOT_FREE)
            sum += atomic_load_explicit(&threads[i].heap_pending, memory_order_relaxed);
    return sum;
}

bool ml_sites_init(void) {
    table = ml_os_alloc(sizeof(struct site_table) + (sizeof(struct ml_site *) << TABLE_FIRST_BITS));
    if (table) table->bits = TABLE_FIRST_BITS;
    by_id = ml_os_alloc(ML_MAX_SITES * sizeof *by_id);
    arena = ml_os_alloc(ARENA_BYTES);
    threads = ml_os_alloc(ML_MAX_THREADS * sizeof *threads);
    dead_base = ml_os_alloc(ML_MAX_SITES * sizeof *dead_base);
    shared_thread.counters = ml_os_alloc(ML_MAX_SITES * sizeof(struct ml_counters));
    if (!table || !by_id || !arena || !threads || !dead_base || !shared_thread.counters) return true;
    atomic_store(&shared_thread.state, SLOT_LIVE);
    return false;
}

/* A site's hash: the chain of its frames (ml_stack_chain, which the unwinder mostly has already),
 * finished with the depth and the kind. */
static inline uint64_t site_hash(uint64_t chain, unsigned depth, unsigned kind) {
    uint64_t h = (chain ^ ((uint64_t)kind << 56) ^ depth) * 0xC2B2AE3D27D4EB4Full;
    h ^= h >> 29;
    h *= 0x165667B19E3779F9ull;
    return (h ^ (h >> 32)) | 1;
}

static bool same(const struct ml_site *s, uint64_t hash, const uintptr_t *frames, unsigned depth, unsigned kind) {
    return s->hash == hash && s->kind == kind && s->depth == depth &&
           memcmp(s->frames, frames, depth * sizeof *frames) == 0;
}

static const struct ml_site *lookup(const struct site_table *t, uint64_t hash, const uintptr_t *frames,
                                    unsigned depth, unsigned kind) {
    uint32_t mask = (1u << t->bits) - 1;
    for (uint32_t i = (uint32_t)hash & mask;; i = (i + 1) & mask) {
        const struct ml_site *s = atomic_load_explicit(&t->slots[i], memory_order_acquire);
        if (!s) return NULL;
        if (same(s, hash, frames, depth, kind)) return s;
    }
}

static void place(struct site_table *t, struct ml_site *site) {
    uint32_t mask = (1u << t->bits) - 1, i = (uint32_t)site->hash & mask;
    while (atomic_load_explicit(&t->slots[i], memory_order_relaxed)) i = (i + 1) & mask;
    atomic_store_explicit(&t->slots[i], site, memory_order_release);
}

/* Under insert_lock: a table twice as big holding every site of `old`, published; NULL at the limit. */
static struct site_table *grow_table(struct site_table *old) {
    if (old->bits >= TABLE_MAX_BITS) return NULL;
    unsigned bits = old->bits + 1;
    struct site_table *t = ml_os_alloc(sizeof *t + (sizeof(struct ml_site *) << bits));
    if (!t) return NULL;
    t->bits = bits;
    for (uint32_t i = 0; i < (1u << old->bits); i++) {
        struct ml_site *s = atomic_load_explicit(&old->slots[i], memory_order_relaxed);
        if (s) place(t, s);
    }
    atomic_store_explicit(&table, t, memory_order_release);
    return t;
}

static uint32_t intern_global(uint64_t hash, const uintptr_t *frames, unsigned depth, unsigned kind) {
    const struct ml_site *found = lookup(atomic_load_explicit(&table, memory_order_acquire), hash, frames, depth, kind);
    if (found) return found->id;
    ml_spin_lock(&insert_lock);
    struct site_table *t = atomic_load_explicit(&table, memory_order_relaxed);
    uint32_t id = ML_SITE_OVERFLOW;
    if ((found = lookup(t, hash, frames, depth, kind))) {
        id = found->id;
    } else if ((uint64_t)(table_used + 1) * 4 <= (3ull << t->bits) || (t = grow_table(t))) {
        uint64_t bytes = (sizeof(struct ml_site) + depth * sizeof *frames + 15) & ~15ull;
        uint64_t at = arena_used;
        uint32_t next = atomic_load_explicit(&next_id, memory_order_relaxed);
        if (at + bytes <= ARENA_BYTES && next < ML_MAX_SITES) {
            struct ml_site *mine = (struct ml_site *)(arena + at);
            arena_used = at + bytes;
            mine->hash = hash;
            mine->id = next;
            mine->kind = (uint16_t)kind;
            mine->depth = (uint16_t)depth;
            memcpy(mine->frames, frames, depth * sizeof *frames);
            atomic_store_explicit(&by_id[next], mine, memory_order_release);
            atomic_store_explicit(&next_id, next + 1, memory_order_release);
            place(t, mine);
            table_used++;
            id = next;
        }
    }
    ml_spin_unlock(&insert_lock);
    return id;
}

void ml_sites_lock(void) { ml_spin_lock(&insert_lock); }
void ml_sites_unlock(void) { ml_spin_unlock(&insert_lock); }

uint32_t ml_site_intern(struct ml_thread *thread, const uintptr_t *frames, unsigned depth, unsigned kind) {
    return ml_site_intern_chained(thread, frames, depth, kind, ml_stack_chain(frames, depth));
}

uint32_t ml_site_intern_chained(struct ml_thread *thread, const uintptr_t *frames, unsigned depth, unsigned kind,
                                uint64_t chain) {
    uint64_t hash = site_hash(chain, depth, kind);
    struct cache_entry *c = &thread->cache[(hash >> 20) & (CACHE_SIZE - 1)];
    if (c->hash == hash) return c->site;
    uint32_t site = intern_global(hash, frames, depth, kind);
    if (site != ML_SITE_OVERFLOW) { c->hash = hash; c->site = site; }
    return site;
}

uint32_t ml_sites_count(void) {
    uint32_t n = atomic_load_explicit(&next_id, memory_order_acquire);
    return n > ML_MAX_SITES ? ML_MAX_SITES : n;
}

const struct ml_site *ml_site_get(uint32_t id) {
    return id < ML_MAX_SITES ? atomic_load_explicit(&by_id[id], memory_order_acquire) : NULL;
}

/* ---- threads ---- */

/* Roots of threads that have exited, newest last; a bounded ring (oldest forgotten first). */
#define DEAD_ROOTS 4096
static struct ml_thread_roots dead_roots[DEAD_ROOTS];
static uint32_t dead_count;            /* protected by dead_lock */
static ml_spin dead_lock;

static void remember_dead(const struct ml_thread_roots *roots) {
    ml_spin_lock(&dead_lock);
    dead_roots[dead_count++ % DEAD_ROOTS] = *roots;
    ml_spin_unlock(&dead_lock);
}

void (*ml_thread_exit_hook)(const struct ml_thread *thread);

static void on_thread_exit(void *arg) {
    struct ml_thread *t = arg;
    if (ml_thread_exit_hook) ml_thread_exit_hook(t);
    /* what the exiting thread frees after this (glibc's own teardown) is counted in the shared slot,
     * so the thread does not register again and leave a slot nobody releases */
    ml_tls.thread = &shared_thread;
    if (t == &shared_thread) return;
    remember_dead(&t->roots);
    heap_publish(atomic_exchange_explicit(&t->heap_pending, 0, memory_order_relaxed));
    atomic_store_explicit(&t->state, SLOT_DEAD, memory_order_release);
}

static pthread_once_t key_once = PTHREAD_ONCE_INIT;
static bool key_ok;
static void make_key(void) { key_ok = pthread_key_create(&exit_key, on_thread_exit) == 0; }

/* The thread pointer and, except for the main thread (whose stack ends at __libc_stack_end), the
 * stack bounds; pthread_getattr_np may allocate, which the caller's guard keeps untracked. */
static void note_roots(struct ml_thread_roots *roots, pid_t tid) {
    memset(roots, 0, sizeof *roots);
    roots->tid = tid;
    roots->thread_pointer = (uintptr_t)pthread_self();
    if (tid == getpid()) return;
    pthread_attr_t attr;
    void *addr;
    size_t size;
    if (pthread_getattr_np(pthread_self(), &attr) != 0) return;
    if (pthread_attr_getstack(&attr, &addr, &size) == 0) {
        roots->stack_lo = (uintptr_t)addr;
        roots->stack_hi = (uintptr_t)addr + size;
    }
    pthread_attr_destroy(&attr);
}

void ml_dead_threads_roots(ml_roots_visit *visit, void *arg) {
    ml_spin_lock(&dead_lock);
    uint32_t n = dead_count < DEAD_ROOTS ? dead_count : DEAD_ROOTS;
    for (uint32_t i = 0; i < n; i++) visit(&dead_roots[i], arg);
    ml_spin_unlock(&dead_lock);
}

void ml_threads_roots(ml_roots_visit *visit, void *arg) {
    for (unsigned i = 0, used = slots_in_use(); i < used; i++)
        if (atomic_load_explicit(&threads[i].state, memory_order_acquire) == SLOT_LIVE) visit(&threads[i].roots, arg);
}

bool ml_thread_is_shared(const struct ml_thread *t) { return t == &shared_thread; }

struct ml_thread *ml_thread_self(void) {
    struct ml_thread *t = ml_tls.thread;
    if (__builtin_expect(t != NULL, 1)) return t;
    pthread_once(&key_once, make_key);
    t = &shared_thread;
    for (unsigned i = 0; i < ML_MAX_THREADS; i++) {
        int expected = SLOT_FREE;
        if (atomic_load_explicit(&threads[i].state, memory_order_relaxed) == SLOT_FREE &&
            atomic_compare_exchange_strong_explicit(&threads[i].state, &expected, SLOT_LIVE, memory_order_acquire,
                                                    memory_order_relaxed)) {
            struct ml_thread *slot = &threads[i];
            if (!slot->counters) slot->counters = ml_os_alloc(ML_MAX_SITES * sizeof(struct ml_counters));
            if (!slot->counters) { atomic_store(&slot->state, SLOT_FREE); break; }
            slot->tid = ml_gettid();
            note_roots(&slot->roots, slot->tid);
            unsigned used = atomic_load_explicit(&slots_used, memory_order_relaxed);
            while (used < i + 1 && !atomic_compare_exchange_weak_explicit(&slots_used, &used, i + 1, memory_order_release,
                                                                          memory_order_relaxed)) {}
            atomic_fetch_add_explicit(&registrations, 1, memory_order_relaxed);
            t = slot;
            break;
        }
    }
    ml_tls.thread = t;
    if (key_ok) pthread_setspecific(exit_key, t);
    return t;
}

static inline void add_relaxed(uint64_t *field, uint64_t v) {
    __atomic_store_n(field, __atomic_load_n(field, __ATOMIC_RELAXED) + v, __ATOMIC_RELAXED);
}

/* Adds to one pair of a site's counters (allocations and allocated bytes, or frees and freed bytes). */
static inline void count_pair(struct ml_thread *t, uint32_t site, uint64_t *count, uint64_t n, uint64_t *bytes,
                              uint64_t b) {
    if (__builtin_expect(t == &shared_thread, 0)) {
        __atomic_fetch_add(count, n, __ATOMIC_RELAXED);
        __atomic_fetch_add(bytes, b, __ATOMIC_RELAXED);
    } else {
        add_relaxed(count, n);
        add_relaxed(bytes, b);
    }
    if (site >= atomic_load_explicit(&t->max_site, memory_order_relaxed))
        atomic_store_explicit(&t->max_site, site + 1, memory_order_relaxed);
}

void ml_thread_count_alloc(struct ml_thread *t, uint32_t site, uint64_t count, uint64_t bytes) {
    struct ml_counters *c = &t->counters[site];
    count_pair(t, site, &c->allocations, count, &c->allocated_bytes, bytes);
}

void ml_thread_count_free(struct ml_thread *t, uint32_t site, uint64_t count, uint64_t bytes) {
    struct ml_counters *c = &t->counters[site];
    count_pair(t, site, &c->frees, count, &c->freed_bytes, bytes);
}

static void add_counters(struct ml_counters *out, const struct ml_counters *c) {
    out->allocations += __atomic_load_n(&c->allocations, __ATOMIC_RELAXED);
    out->frees += __atomic_load_n(&c->frees, __ATOMIC_RELAXED);
    out->allocated_bytes += __atomic_load_n(&c->allocated_bytes, __ATOMIC_RELAXED);
    out->freed_bytes += __atomic_load_n(&c->freed_bytes, __ATOMIC_RELAXED);
}

void ml_sites_totals(struct ml_counters *out, uint32_t count) {
    memset(out, 0, count * sizeof *out);
    for (uint32_t s = 0; s < count; s++) {
        add_counters(&out[s], &dead_base[s]);
        add_counters(&out[s], &shared_thread.counters[s]);
    }
    for (unsigned i = 0, used = slots_in_use(); i < used; i++) {
        struct ml_thread *t = &threads[i];
        if (atomic_load_explicit(&t->state, memory_order_acquire) == SLOT_FREE) continue;
        uint32_t n = atomic_load_explicit(&t->max_site, memory_order_relaxed);
        for (uint32_t s = 0; s < n && s < count; s++) add_counters(&out[s], &t->counters[s]);
    }
}

void ml_threads_reap(void) {
    for (unsigned i = 0, used = slots_in_use(); i < used; i++) {
        struct ml_thread *t = &threads[i];
        if (atomic_load_explicit(&t->state, memory_order_acquire) != SLOT_DEAD) continue;
        uint32_t n = atomic_load_explicit(&t->max_site, memory_order_relaxed);
        for (uint32_t s = 0; s < n; s++) add_counters(&dead_base[s], &t->counters[s]);
        memset(t->counters, 0, n * sizeof *t->counters);
        memset(t->cache, 0, sizeof t->cache);
        atomic_store_explicit(&t->max_site, 0, memory_order_relaxed);
        atomic_store_explicit(&t->heap_pending, 0, memory_order_relaxed);
        atomic_store_explicit(&t->state, SLOT_FREE, memory_order_release);
    }
}

unsigned ml_threads_live(void) {
    unsigned n = 0;
    for (unsigned i = 0, used = slots_in_use(); i < used; i++)
        n += atomic_load_explicit(&threads[i].state, memory_order_relaxed) == SLOT_LIVE;
    return n;
}

/* After fork only the forking thread exists: every other live slot belongs to a thread that is gone. */
void ml_threads_after_fork_child(struct ml_thread *self) {
    for (unsigned i = 0, used = slots_in_use(); i < used; i++)
        if (&threads[i] != self && atomic_load(&threads[i].state) == SLOT_LIVE) atomic_store(&threads[i].state, SLOT_DEAD);
    if (self) self->tid = ml_gettid();
}
