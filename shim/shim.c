/* shim.c — the interposers of libmemlens.so and nothing else: each one calls the real function found
 * with dlsym(RTLD_NEXT) and reports what happened to the core (ml_track_*). Bodies are generated from
 * a few macros, one per shape of function. Before the real symbols are known, allocations come from a
 * small bootstrap arena; while memlens itself runs on a thread (ml_tls.guard), nothing is tracked, so
 * libunwind, dlsym and the collector can allocate without recursion. errno is preserved. */
#undef _FILE_OFFSET_BITS   /* keep mmap and mmap64 distinct names */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <link.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ml.h"
#include "ml_collector.h"
#include "ml_prim.h"
#include "ml_spin.h"
#include "ml_unwind.h"

#define EXPORT __attribute__((visibility("default")))
#define LIKELY(x) __builtin_expect(!!(x), 1)
#define UNLIKELY(x) __builtin_expect(!!(x), 0)
#define CALLER ((uintptr_t)__builtin_return_address(0))
/* The exported function's caller, where its stack capture starts (the shim keeps frame pointers). */
#define ORIGIN (&(struct ml_origin)ML_ORIGIN_INIT)

/* ---- bootstrap arena: bump allocation by CAS, 16-byte size header, never freed ---- */
#define BOOT_BYTES (1u << 20)   /* bss: pages are touched only as blocks are handed out, one a block */
static char boot_arena[BOOT_BYTES] __attribute__((aligned(ML_SAMPLE_ALIGN)));   /* so blocks at aligned offsets are */
static _Atomic size_t boot_used;

/* Blocks are aligned to at least ML_SAMPLE_ALIGN (the arena too: it was only 64-aligned before 2026-12,
 * so in sampled mode a free of a boot block could have reached glibc), so that ml_sample_placed sends
 * every free of one to free's slow path, which knows them (the fast path has no test of its own). */
static __attribute__((noinline, cold)) void *boot_alloc(size_t size, size_t align) {
    if (align < ML_SAMPLE_ALIGN) align = ML_SAMPLE_ALIGN;
    size_t used = atomic_load(&boot_used), start, end;
    do {
        start = (used + 16 + align - 1) & ~(align - 1);
        end = start + size;
        if (end > BOOT_BYTES || end < start) return NULL;
    } while (!atomic_compare_exchange_weak(&boot_used, &used, end));
    memcpy(boot_arena + start - sizeof size, &size, sizeof size);
    return boot_arena + start;   /* static storage is zeroed and never reused: calloc-clean */
}
static inline bool is_boot(const void *p) { return (const char *)p >= boot_arena && (const char *)p < boot_arena + BOOT_BYTES; }
static size_t boot_size(const void *p) { size_t n; memcpy(&n, (const char *)p - sizeof n, sizeof n); return n; }

/* ---- real functions ---- */
#define REAL_FUNCTIONS(X) \
    X(malloc, void *, (size_t)) X(calloc, void *, (size_t, size_t)) X(realloc, void *, (void *, size_t)) \
    X(reallocarray, void *, (void *, size_t, size_t)) X(free, void, (void *)) \
    X(malloc_usable_size, size_t, (void *)) \
    X(posix_memalign, int, (void **, size_t, size_t)) X(aligned_alloc, void *, (size_t, size_t)) \
    X(memalign, void *, (size_t, size_t)) X(valloc, void *, (size_t)) X(pvalloc, void *, (size_t)) \
    X(mmap, void *, (void *, size_t, int, int, int, off_t)) X(munmap, int, (void *, size_t)) \
    X(mremap, void *, (void *, size_t, size_t, int, ...)) X(dlclose, int, (void *)) \
    X(execve, int, (const char *, char *const[], char *const[])) \
    X(execvpe, int, (const char *, char *const[], char *const[])) \
    X(_exit, void, (int)) X(_Exit, void, (int)) X(exit, void, (int)) \
    X(pthread_create, int, (pthread_t *, const pthread_attr_t *, void *(*)(void *), void *))

/* The real functions, the malloc family first, after free's gate: what free reads shares one cache line
 * with the pointers every call reads. The gate is 0 when a free of a block that is not
 * ml_sample_placed can go straight to glibc: sampled mode is on (GATE_CLOSED is cleared once tracking
 * starts in sampled mode) and no recorded block lives outside the placed ones (the low bits count
 * those: large samples left in place). */
#define GATE_CLOSED (1u << 31)
#define DECLARE_REAL(name, ret, params) ret(*name) params;
static struct {
    _Atomic unsigned gate;
    REAL_FUNCTIONS(DECLARE_REAL)
} real __attribute__((aligned(64))) = { .gate = GATE_CLOSED };
static _Atomic bool resolving;

static void drop_kept(const struct ml_thread *thread);

static void resolve(void) {
    if (atomic_exchange(&resolving, true)) return;
    ml_tls.guard++;
#define RESOLVE_REAL(name, ret, params) real.name = (ret(*) params)dlsym(RTLD_NEXT, #name);
    REAL_FUNCTIONS(RESOLVE_REAL)
    ml_tls.guard--;
    ml_thread_exit_hook = drop_kept;   /* before any sample can be kept */
    if (!real.malloc || !real.free || !real.calloc || !real.realloc) {
        static const char msg[] = "memlens: cannot find the real malloc; the program runs untracked\n";
        write(2, msg, sizeof msg - 1);
        atomic_store(&ml_state, ML_STATE_DISABLED);
    }
}

/* Lazily resolves symbols the first time a wrapper of this family runs. */
#define NEED(name) do { if (UNLIKELY(!real.name)) resolve(); } while (0)

/* After the runtime is set up (first allocation or constructor, whichever comes first): true if on. */
static bool started(void) {
    if (atomic_load(&ml_state) != ML_STATE_ON) return false;
    if (ml_config.sample_rate) atomic_fetch_and_explicit(&real.gate, ~GATE_CLOSED, memory_order_relaxed);
    return true;
}

/* Tracking is off for good (bad configuration, setuid, an internal failure, or the process is ending):
 * this thread's allocations skip the slow path from now on, and frees go straight to glibc unless
 * their pointer may be memlens's (boot arena, kept samples: page-aligned, see ml_sample_placed): the
 * gate opens at the first call of any thread that gets here. */
static __attribute__((noinline, cold)) void untracked_from_now(void) {
    ml_tls.sample_left = INT64_MAX;
    ml_tls.sample_below = UINT64_MAX;
    atomic_store_explicit(&real.gate, 0, memory_order_relaxed);
}

static inline bool tracking(void) {
    if (UNLIKELY(ml_tls.guard)) return false;
    int state = atomic_load_explicit(&ml_state, memory_order_relaxed);
    if (LIKELY(state == ML_STATE_ON)) return true;
    if (state == ML_STATE_OFF && real.malloc) {
        ml_runtime_init();
        return started();
    }
    if (state == ML_STATE_DISABLED) untracked_from_now();
    return false;
}

/* What a block moved by place_sample must hold: nothing yet (malloc), zeroes (calloc), or the bytes of
 * the block it replaces (realloc). */
enum fill { FILL_NONE, FILL_ZERO, FILL_COPY };

#define PLACE_MAX (128u << 10)   /* glibc's default mmap threshold: larger blocks are rarely on the heap */

/* A few freed placed blocks (aligned glibc chunks, still allocated) kept for the next samples, so that
 * a placement is rarely a memalign: glibc's memalign skips its caches and sorts the unsorted bin, which
 * disturbs the program's heap and costs more than all the rest of a sample (about 8 us each on
 * `sites`, where 226 memaligns became 6-21). A block is taken again only by the thread that kept it:
 * blocks passed between threads moved chunks between glibc's arenas, whose locks both threads then
 * take (churn-8t sampled went from 1.04x to 1.08x); a thread's blocks are freed by it as it exits.
 * Try-locked: a thread that finds the lock busy does as without it. At most PLACED_KEEP blocks of up
 * to PLACED_KEEP_MAX usable bytes: 32 KiB at most held from glibc. `count` is read unlocked only as
 * a hint; `owner` is the keeping thread's ml_tls.thread. */
#define PLACED_KEEP 8
#define PLACED_KEEP_MAX 4096u
static struct {
    ml_spin lock;
    unsigned count;
    void *block[PLACED_KEEP];
    size_t usable[PLACED_KEEP];
    const struct ml_thread *owner[PLACED_KEEP];
} placed_kept;

/* Removes entry i; the caller holds the lock. */
static void *unkeep_at(unsigned i) {
    void *p = placed_kept.block[i];
    unsigned last = placed_kept.count - 1;
    placed_kept.block[i] = placed_kept.block[last];
    placed_kept.usable[i] = placed_kept.usable[last];
    placed_kept.owner[i] = placed_kept.owner[last];
    __atomic_store_n(&placed_kept.count, last, __ATOMIC_RELAXED);
    return p;
}

/* ml_thread_exit_hook: the exiting thread frees the blocks it kept (into its own arena). */
static void drop_kept(const struct ml_thread *thread) {
    if (!__atomic_load_n(&placed_kept.count, __ATOMIC_RELAXED)) return;
    ml_spin_lock(&placed_kept.lock);
    for (unsigned i = placed_kept.count; i-- > 0;)
        if (placed_kept.owner[i] == thread) real.free(unkeep_at(i));
    ml_spin_unlock(&placed_kept.lock);
}

/* A block this thread kept for `size` bytes: the smallest that holds them, if it wastes at most about
 * size + 256. */
static void *take_kept(size_t size) {
    const struct ml_thread *self = ml_tls.thread;
    if (!self || !__atomic_load_n(&placed_kept.count, __ATOMIC_RELAXED) || !ml_spin_trylock(&placed_kept.lock))
        return NULL;
    unsigned best = PLACED_KEEP;
    for (unsigned i = 0; i < placed_kept.count; i++)
        if (placed_kept.owner[i] == self && placed_kept.usable[i] >= size &&
            placed_kept.usable[i] <= 2 * size + 256 &&
            (best == PLACED_KEEP || placed_kept.usable[i] < placed_kept.usable[best]))
            best = i;
    void *q = best < PLACED_KEEP ? unkeep_at(best) : NULL;
    ml_spin_unlock(&placed_kept.lock);
    if (q) memset(q, 0, sizeof(uint64_t));   /* its mark: not to be copied on by a realloc, see free_unrecorded */
    return q;
}

/* The first word of a kept block, which the program has freed: a free of it that gets past the live
 * map (the program freeing it again) is found by it, see free_unrecorded. */
#define KEPT_MARK 0x6b736e656c6d656dull   /* "memlensk" */

/* Sampled mode: keeps p, a recorded block being freed, for take_kept if it is a small placed one
 * (true), else the caller frees it (false). */
static bool keep_placed(void *p) {
    const struct ml_thread *self = ml_tls.thread;
    if (!ml_config.sample_rate || ((uintptr_t)p & (ML_SAMPLE_ALIGN - 1)) || !self || !real.malloc_usable_size ||
        __atomic_load_n(&placed_kept.count, __ATOMIC_RELAXED) == PLACED_KEEP)
        return false;
    size_t usable = real.malloc_usable_size(p);
    if (usable > PLACED_KEEP_MAX || !ml_spin_trylock(&placed_kept.lock)) return false;
    bool kept = placed_kept.count < PLACED_KEEP;
    if (kept) {
        const uint64_t mark = KEPT_MARK;
        memcpy(p, &mark, sizeof mark);
        placed_kept.block[placed_kept.count] = p;
        placed_kept.usable[placed_kept.count] = usable;
        placed_kept.owner[placed_kept.count] = self;
        __atomic_store_n(&placed_kept.count, placed_kept.count + 1, __ATOMIC_RELAXED);
    }
    ml_spin_unlock(&placed_kept.lock);
    return kept;
}

/* A free of p that is not of a recorded block: if p is a block memlens keeps, the program frees it a
 * second time. The kept block goes back to glibc first, so that the program's free then meets glibc
 * as it would have without memlens (glibc may report the double free and abort, as it would have).
 * Costs a look at the block's first word, for the 1 in 256 blocks that are page-aligned, while blocks
 * are kept. */
static __attribute__((noinline, cold)) void unkeep_slow(void *p) {
    /* bounded: a free in a signal handler that interrupted this thread's keep or take would wait on
     * itself forever; another thread holds the lock for a few dozen instructions, unless preempted */
    for (unsigned tries = 0; !ml_spin_trylock(&placed_kept.lock); tries++) {
        if (tries == 1000) return;
        if (tries % 64 == 63) sched_yield();
        else __builtin_ia32_pause();
    }
    bool found = false;
    for (unsigned i = 0; i < placed_kept.count && !found; i++)
        if (placed_kept.block[i] == p) {
            unkeep_at(i);
            found = true;
        }
    ml_spin_unlock(&placed_kept.lock);
    if (found) real.free(p);
}
/* The free of a block memlens has no record of (glibc's, or a second free of a kept one). */
static inline void free_unrecorded(void *p) {
    uint64_t first;
    if (UNLIKELY(ml_config.sample_rate && !((uintptr_t)p & (ML_SAMPLE_ALIGN - 1)) &&
                 __atomic_load_n(&placed_kept.count, __ATOMIC_RELAXED) && (memcpy(&first, p, sizeof first), first == KEPT_MARK)))
        unkeep_slow(p);
    real.free(p);
}

/* Sampled mode: a block chosen as a sample should be one the free path looks up (ml_sample_placed).
 * One found elsewhere is replaced by a block aligned to ML_SAMPLE_ALIGN, filled as `fill` says; blocks
 * mmapped by glibc (16 bytes past a page) and aligned ones stay where they are. Once per sample, so
 * about once per MEMLENS_SAMPLE bytes: a kept block (above) or else a memalign, and a copy only for
 * realloc. A large block stays where it is too (counted in real.gate, which sends every free to the
 * filter while it lives): zeroing a fresh copy of a large calloc would touch pages glibc leaves
 * untouched. NULL: leave p as it is, untracked. */
static void *place_sample(void *p, size_t size, enum fill fill) {
    if (!ml_config.sample_rate || ml_sample_placed((uintptr_t)p)) return p;
    if (size >= PLACE_MAX) {
        atomic_fetch_add_explicit(&real.gate, 1, memory_order_relaxed);
        return p;
    }
    void *q = take_kept(size);
    if (!q && real.memalign) q = real.memalign(ML_SAMPLE_ALIGN, size ? size : 1);
    if (!q) return NULL;
    if (fill == FILL_ZERO) memset(q, 0, size);
    else if (fill == FILL_COPY) memcpy(q, p, size);
    real.free(p);
    return q;
}

/* errno's address on this thread: `errno` is a call into libc each time it is named. */
static inline int *errno_at(void) {
    int *e = ml_tls.errno_at;
    if (UNLIKELY(!e)) e = ml_tls.errno_at = &errno;
    return e;
}

/* Returns the block the program gets: p, or in sampled mode its aligned replacement. The recording
 * is out of line, so that what every call runs (and, in sampled mode, nearly all of it) stays a few
 * instructions in the interposer: programs with large code footprints pay for every cache line of
 * ours they touch. */
static __attribute__((noinline)) void *record_alloc(void *p, size_t size, unsigned kind, const struct ml_origin *origin,
                                                    enum fill fill) {
    int *e = errno_at(), saved = *e;
    ml_tls.guard++;
    void *placed = place_sample(p, size, fill);
    if (placed) {
        p = placed;
        ml_track_alloc(p, size, kind, origin);
    }
    ml_tls.guard--;
    *e = saved;
    return p;
}
/* An allocation (p: the block it got, not NULL) that ml_sample_skip did not skip: recorded if this
 * call may be tracked and, in sampled mode, is a sample. */
static inline void *track_due(void *p, size_t size, unsigned kind, const struct ml_origin *origin, enum fill fill) {
    if (!tracking()) return p;
    if (ml_config.sample_rate && !ml_sample_slow(size)) return p;
    return record_alloc(p, size, kind, origin, fill);
}
static inline void *track_alloc(void *p, size_t size, unsigned kind, const struct ml_origin *origin, enum fill fill) {
    return ml_sample_skip(size) ? p : track_due(p, size, kind, origin, fill);
}

/* Removes `p` from the live map; the caller frees it, then commits. */
struct release { bool tracked; uint64_t size; uint32_t site; };
static inline struct release release_begin(void *p) {
    struct release r = { false, 0, 0 };
    if (p && ml_live_may_hold((uintptr_t)p) && tracking()) {
        ml_tls.guard++;
        r.tracked = ml_track_free_begin(p, &r.size, &r.site);
        ml_tls.guard--;
    }
    return r;
}
static inline void release_commit(struct release r, void *p) {
    if (!r.tracked) return;
    if (ml_config.sample_rate && !ml_sample_placed((uintptr_t)p))
        atomic_fetch_sub_explicit(&real.gate, 1, memory_order_relaxed);
    int *e = errno_at(), saved = *e;
    ml_tls.guard++;
    ml_track_free_commit(r.size, r.site, p);
    ml_tls.guard--;
    *e = saved;
}

/* ---- the malloc family ---- */

/* The first call resolves the real functions; false while they are unknown (dlsym's own
 * allocations, which the bootstrap arena serves). */
static __attribute__((noinline, cold)) bool resolved(void) {
    resolve();
    return real.malloc != NULL;
}

/* The interposers every allocation goes through are `hot`: placed together, they share cache lines
 * (programs with large code footprints pay for each line of ours). */
#define HOT __attribute__((hot))

/* Each interposer of the malloc family is a fast path and a slow one. The fast path is what sampled
 * mode runs for nearly every call: one test of the thread's counter (or, for free, of the pointer and
 * the gate) and a tail call to glibc, with no frame of ours. Everything else is in the slow function,
 * which the fast path enters by a tail jump too: its return address is the program's, as ORIGIN needs
 * (shim.c is always compiled with sibling calls on; see shim/meson.build). */
#define SLOW static __attribute__((noinline, hot))

SLOW void *malloc_slow(size_t size) {
    if (UNLIKELY(!real.malloc) && !resolved()) return boot_alloc(size, 16);
    void *p = real.malloc(size);
    if (LIKELY(p != NULL)) p = track_due(p, size, ML_KIND_MALLOC, ORIGIN, FILL_NONE);
    return p;
}
EXPORT HOT void *malloc(size_t size) {
    if (LIKELY(ml_sample_skip(size))) return real.malloc(size);
    return malloc_slow(size);
}

SLOW void *calloc_slow(size_t count, size_t size, size_t total) {
    if (UNLIKELY(!real.calloc)) {
        resolve();
        if (!real.calloc)   /* dlsym itself may calloc while we resolve */
            return total == SIZE_MAX ? NULL : boot_alloc(total, 16);
    }
    void *p = real.calloc(count, size);
    if (LIKELY(p != NULL)) p = track_due(p, total, ML_KIND_CALLOC, ORIGIN, FILL_ZERO);
    return p;
}
EXPORT HOT void *calloc(size_t count, size_t size) {
    size_t total;
    if (UNLIKELY(__builtin_mul_overflow(count, size, &total))) total = SIZE_MAX;   /* fails below */
    if (LIKELY(ml_sample_skip(total))) return real.calloc(count, size);
    return calloc_slow(count, size, total);
}

/* Sampled mode: p (NULL included) is surely not a recorded block, known from the pointer and the gate
 * alone: not where a sample is placed (ml_sample_placed; NULL and the bootstrap arena's blocks are)
 * while no unplaced sample lives. free and realloc then go straight to glibc. */
static inline bool surely_unrecorded(const void *p) {
    return !ml_sample_placed((uintptr_t)p) && !atomic_load_explicit(&real.gate, memory_order_relaxed);
}

static void free_real(void *p) { real.free(p); }
SLOW void free_recorded(void *p) {
    __builtin_prefetch((const char *)p - 16);   /* glibc's chunk header, which its free reads after our lookup */
    if (!ml_config.sample_rate) {   /* full mode: a block the map does not hold is glibc's own */
        struct release r = { false, 0, 0 };
        if (tracking()) r.tracked = ml_live_remove_then((uintptr_t)p, free_real, &r.size, &r.site);
        else real.free(p);
        release_commit(r, p);
        return;
    }
    struct release r = release_begin(p);
    if (!r.tracked) free_unrecorded(p);
    else if (!keep_placed(p)) real.free(p);
    release_commit(r, p);
}
SLOW void free_slow(void *p);
static __attribute__((noinline, cold)) void free_unresolved(void *p) {
    resolve();
    if (real.free) free_slow(p);
}
/* Small, so that a sampled free the filter rules out (1 in 256 by their address) tail-calls glibc
 * without setting up free_recorded's frame. */
SLOW void free_slow(void *p) {
    if (UNLIKELY(!p || is_boot(p))) return;
    if (UNLIKELY(!real.free)) free_unresolved(p);
    else if (ml_live_may_hold((uintptr_t)p)) free_recorded(p);   /* full mode: always */
    else free_unrecorded(p);
}
EXPORT HOT void free(void *p) {
    if (LIKELY(surely_unrecorded(p))) {
        real.free(p);
        return;
    }
    free_slow(p);
}

/* realloc-like: the old block is released only if the call succeeds. */
static void *resize(void *old, size_t size, void *fresh, unsigned kind, const struct ml_origin *origin, struct release r,
                    bool skip) {
    if (!fresh) {
        if (r.tracked && size != 0) { ml_tls.guard++; ml_track_free_abort(old, r.size, r.site); ml_tls.guard--; }
        else release_commit(r, old);   /* realloc(p, 0) freed p */
        return NULL;
    }
    release_commit(r, old);
    return skip ? fresh : track_due(fresh, size, kind, origin, FILL_COPY);
}

SLOW void *realloc_slow(void *old, size_t size, bool skip) {
    if (UNLIKELY(is_boot(old))) {
        void *p = malloc(size);
        if (p) memcpy(p, old, boot_size(old) < size ? boot_size(old) : size);
        return p;
    }
    NEED(realloc);
    if (old) __builtin_prefetch((const char *)old - 16);   /* as in free_recorded */
    struct release r = release_begin(old);
    ml_tls.guard++;   /* realloc(NULL, n) calls malloc inside glibc: that is this call, not another */
    void *fresh = real.realloc(old, size);
    ml_tls.guard--;
    return resize(old, size, fresh, ML_KIND_REALLOC, ORIGIN, r, skip);
}
EXPORT HOT void *realloc(void *old, size_t size) {
    bool skip = ml_sample_skip(size);   /* true only in sampled mode */
    if (LIKELY(skip) && surely_unrecorded(old)) return real.realloc(old, size);
    return realloc_slow(old, size, skip);
}

EXPORT void *reallocarray(void *old, size_t count, size_t size) {
    size_t total;
    if (__builtin_mul_overflow(count, size, &total)) { errno = ENOMEM; return NULL; }
    if (UNLIKELY(is_boot(old))) return realloc(old, total);
    bool skip = ml_sample_skip(total);
    NEED(reallocarray);
    struct release r = release_begin(old);
    ml_tls.guard++;   /* glibc's reallocarray calls realloc: count the call once */
    void *fresh = real.reallocarray(old, count, size);
    ml_tls.guard--;
    return resize(old, total, fresh, ML_KIND_REALLOCARRAY, ORIGIN, r, skip);
}

/* Functions that return a fresh block of a computed size. */
#define ALLOC_WRAPPER(name, kind, params, args, size_expr) \
    EXPORT void *name params { \
        NEED(name); \
        void *p = real.name args; \
        if (LIKELY(p != NULL)) p = track_alloc(p, size_expr, kind, ORIGIN, FILL_NONE); \
        return p; \
    }

static size_t page_rounded(size_t size) {
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    return size ? (size + page - 1) & ~(page - 1) : page;
}

ALLOC_WRAPPER(aligned_alloc, ML_KIND_ALIGNED_ALLOC, (size_t align, size_t size), (align, size), size)
ALLOC_WRAPPER(memalign, ML_KIND_MEMALIGN, (size_t align, size_t size), (align, size), size)
ALLOC_WRAPPER(valloc, ML_KIND_VALLOC, (size_t size), (size), size)
ALLOC_WRAPPER(pvalloc, ML_KIND_PVALLOC, (size_t size), (size), page_rounded(size))

EXPORT int posix_memalign(void **out, size_t align, size_t size) {
    NEED(posix_memalign);
    int rc = real.posix_memalign(out, align, size);
    if (rc == 0 && *out) *out = track_alloc(*out, size, ML_KIND_POSIX_MEMALIGN, ORIGIN, FILL_NONE);
    return rc;
}

/* ---- calls that allocate for their caller: the allocations they make carry their kind ---- */

/* The outermost buffer-like call on a thread names the kind and where the stack starts: the
 * allocation made inside glibc or libstdc++ is reported at the program's call of strdup, new, …
 * ml_tls.kind_depth counts the scopes open on this thread, one per frame of ours (a wrapper calls the
 * real function, never another wrapper), so that __gcc_personality_v0 below can close one for a
 * frame that an exception or a thread cancellation unwinds. */
static inline int kind_push(unsigned kind, uintptr_t caller) {
    if (!ml_tls.kind_depth++) {
        ml_tls.kind = (int)kind + 1;
        ml_tls.kind_caller = caller;
    }
    return 0;
}
static inline void kind_close(void) {
    if (ml_tls.kind_depth > 0 && !--ml_tls.kind_depth) ml_tls.kind = 0;
}
static inline void kind_pop(int *unused) { (void)unused; kind_close(); }
#define KIND_SCOPE_AT(kind, caller) int kind_scope __attribute__((cleanup(kind_pop), unused)) = kind_push(kind, caller)
#define KIND_SCOPE(kind) KIND_SCOPE_AT(kind, CALLER)

/* A defined function `name` in the dynamic symbol table (DT_GNU_HASH) of a loaded object other than
 * memlens: for next_function, when RTLD_NEXT finds none. Read inside dl_iterate_phdr's callback, so the
 * object stays mapped; first object in load order wins. */
struct defined { const char *name; uint32_t hash; void *found; };
static int find_defined(struct dl_phdr_info *info, size_t size, void *arg) {
    (void)size;
    struct defined *d = arg;
    const ElfW(Dyn) *dyn = NULL;
    for (ElfW(Half) i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type == PT_DYNAMIC) dyn = (const ElfW(Dyn) *)(info->dlpi_addr + ph->p_vaddr);
        else if (ph->p_type == PT_LOAD && (uintptr_t)find_defined - (info->dlpi_addr + ph->p_vaddr) < ph->p_memsz)
            return 0;   /* memlens itself */
    }
    if (!dyn) return 0;
    const ElfW(Sym) *symtab = NULL;
    const char *strtab = NULL;
    const uint32_t *gnu = NULL;
    for (; dyn->d_tag != DT_NULL; dyn++) {
        uintptr_t v = dyn->d_un.d_ptr;
        if (v && v < info->dlpi_addr) v += info->dlpi_addr;   /* the vDSO's are not relocated */
        if (dyn->d_tag == DT_SYMTAB) symtab = (const ElfW(Sym) *)v;
        else if (dyn->d_tag == DT_STRTAB) strtab = (const char *)v;
        else if (dyn->d_tag == DT_GNU_HASH) gnu = (const uint32_t *)v;
    }
    if (!symtab || !strtab || !gnu || !gnu[0]) return 0;
    uint32_t buckets = gnu[0], first = gnu[1];
    const uint32_t *bucket = (const uint32_t *)((const ElfW(Addr) *)(gnu + 4) + gnu[2]);
    const uint32_t *chain = bucket + buckets;
    for (uint32_t i = bucket[d->hash % buckets]; i >= first; i++) {
        const ElfW(Sym) *sym = &symtab[i];
        if ((chain[i - first] | 1) == (d->hash | 1) && sym->st_shndx != SHN_UNDEF && ELF64_ST_TYPE(sym->st_info) == STT_FUNC &&
            strcmp(strtab + sym->st_name, d->name) == 0) {
            d->found = (void *)(info->dlpi_addr + sym->st_value);
            return 1;
        }
        if (chain[i - first] & 1) break;
    }
    return 0;
}

/* The definition of `name` that ours hides. RTLD_NEXT looks in the global scope only; a C++ library
 * that a C program dlopens with RTLD_LOCAL (a Python extension module, a plugin) brings libstdc++ in
 * outside it, so operator new is then found in the loaded objects' symbol tables. (Looking it up in
 * the calling object's scope is not enough: libstdc++'s own calls, during its initialisation inside
 * dlopen, see the global scope and ours.) Not found at all: one line on stderr, and abort rather
 * than a call through NULL. */
static __attribute__((noinline, cold)) void *next_function(const char *name) {
    ml_tls.guard++;   /* a failed dlsym allocates its dlerror text: not the program's */
    void *f = dlsym(RTLD_NEXT, name);
    if (!f) {
        struct defined d = { name, 5381, NULL };
        for (const char *c = name; *c; c++) d.hash = d.hash * 33 + (unsigned char)*c;   /* the GNU hash */
        dl_iterate_phdr(find_defined, &d);
        f = d.found;
    }
    ml_tls.guard--;
    if (!f) {
        ml_stderr("cannot find the real function", name, "that the program calls");
        abort();
    }
    return f;
}

/* The personality of our frames, and the unwinder's entry point that -fexceptions code calls, without
 * linking libgcc_s. shim.c is compiled with -fexceptions so that a wrapper's kind scope is closed
 * when an exception (operator new's bad_alloc) or a thread cancellation (inside getline, say)
 * unwinds its frame; the compiler then names __gcc_personality_v0 as the personality of the frames
 * with a KIND_SCOPE, and ends their cleanup code with a call to _Unwind_Resume. Both are libgcc_s's,
 * and linking it would load it, with its constructor (cpuid: a VM exit each), into every C program:
 * 0.3 ms a process on the benchmark VM. And the cleanup code would have to end in the _Unwind_Resume
 * of the unwinder that is unwinding, which a lookup need not find (libgcc_s, libunwind and LLVM's
 * unwinder each define one; see ml_capture.c for what a mix of two did to a cancelled thread).
 * So the personality here closes the frame's scope itself, in the cleanup phase
 * (called once for each frame the unwinding leaves), and lets the unwinding go on: the cleanup code
 * never runs, and this _Unwind_Resume is never called. Itanium C++ ABI values, as in unwind.h:
 * version 1, _UA_CLEANUP_PHASE 2, _URC_CONTINUE_UNWIND 8. `used`: the compiler makes its references
 * to them after link-time optimisation would have dropped them. */
__attribute__((visibility("hidden"), used)) int __gcc_personality_v0(int version, int actions, uint64_t exception_class,
                                                                     void *exception, void *context);
int __gcc_personality_v0(int version, int actions, uint64_t exception_class, void *exception, void *context) {
    (void)exception_class; (void)exception; (void)context;
    if (version == 1 && (actions & 2)) kind_close();
    return 8;
}
__attribute__((visibility("hidden"), used, noreturn)) void _Unwind_Resume(void *exception);
void _Unwind_Resume(void *exception) {
    (void)exception;
    ml_stderr("internal error: a cleanup of memlens's ran during an unwinding", NULL, NULL);
    abort();
}

/* real_<name>, the definition ours hides, found at the first call. */
#define NEXT_FUNCTION(name) \
    do { if (UNLIKELY(!real_##name)) real_##name = (__typeof__(real_##name))next_function(#name); } while (0)

#define KIND_WRAPPER(ret, name, kind, params, args) \
    static ret(*real_##name) params; \
    EXPORT ret name params { \
        NEXT_FUNCTION(name); \
        KIND_SCOPE(kind); \
        return real_##name args; \
    }

KIND_WRAPPER(char *, strdup, ML_KIND_STRDUP, (const char *s), (s))
KIND_WRAPPER(char *, __strdup, ML_KIND_STRDUP, (const char *s), (s))
KIND_WRAPPER(char *, strndup, ML_KIND_STRNDUP, (const char *s, size_t n), (s, n))
KIND_WRAPPER(char *, __strndup, ML_KIND_STRNDUP, (const char *s, size_t n), (s, n))
KIND_WRAPPER(int, vasprintf, ML_KIND_VASPRINTF, (char **out, const char *fmt, va_list ap), (out, fmt, ap))
KIND_WRAPPER(ssize_t, getline, ML_KIND_GETLINE, (char **line, size_t *n, FILE *f), (line, n, f))
KIND_WRAPPER(ssize_t, getdelim, ML_KIND_GETDELIM, (char **line, size_t *n, int delim, FILE *f), (line, n, delim, f))
KIND_WRAPPER(ssize_t, __getdelim, ML_KIND_GETDELIM, (char **line, size_t *n, int delim, FILE *f), (line, n, delim, f))
KIND_WRAPPER(FILE *, open_memstream, ML_KIND_OPEN_MEMSTREAM, (char **buf, size_t *n), (buf, n))

EXPORT int asprintf(char **out, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int rc;
    {
        NEXT_FUNCTION(vasprintf);
        KIND_SCOPE(ML_KIND_ASPRINTF);
        rc = real_vasprintf(out, fmt, ap);   /* not our vasprintf: one scope a frame */
    }
    va_end(ap);
    return rc;
}

static char *(*real_realpath)(const char *, char *);
/* A frame of its own: every call in a frame with a kind scope is inside the scope (the personality
 * above closes it for any call the unwinding leaves). */
static __attribute__((noinline)) char *realpath_alloc(const char *path, uintptr_t caller) {
    KIND_SCOPE_AT(ML_KIND_REALPATH, caller);
    return real_realpath(path, NULL);
}
EXPORT char *realpath(const char *path, char *resolved) {
    NEXT_FUNCTION(realpath);
    if (resolved) return real_realpath(path, resolved);   /* the caller's buffer: only scratch space is allocated */
    return realpath_alloc(path, CALLER);
}

/* C++ operator new: the real one (libstdc++) calls malloc/aligned_alloc, which records the block
 * with this kind. operator delete needs nothing of its own: it frees through free(). */
#define NEW_WRAPPER(name, kind, params, args) KIND_WRAPPER(void *, name, kind, params, args)
#define NOTHROW const void *nothrow_tag
NEW_WRAPPER(_Znwm, ML_KIND_NEW, (size_t n), (n))
NEW_WRAPPER(_Znam, ML_KIND_NEW_ARRAY, (size_t n), (n))
NEW_WRAPPER(_ZnwmRKSt9nothrow_t, ML_KIND_NEW, (size_t n, NOTHROW), (n, nothrow_tag))
NEW_WRAPPER(_ZnamRKSt9nothrow_t, ML_KIND_NEW_ARRAY, (size_t n, NOTHROW), (n, nothrow_tag))
NEW_WRAPPER(_ZnwmSt11align_val_t, ML_KIND_NEW, (size_t n, size_t al), (n, al))
NEW_WRAPPER(_ZnamSt11align_val_t, ML_KIND_NEW_ARRAY, (size_t n, size_t al), (n, al))
NEW_WRAPPER(_ZnwmSt11align_val_tRKSt9nothrow_t, ML_KIND_NEW, (size_t n, size_t al, NOTHROW), (n, al, nothrow_tag))
NEW_WRAPPER(_ZnamSt11align_val_tRKSt9nothrow_t, ML_KIND_NEW_ARRAY, (size_t n, size_t al, NOTHROW), (n, al, nothrow_tag))

/* ---- mappings: the maps lock is held across the system call so the table never disagrees ---- */

static void *track_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off, const struct ml_origin *origin) {
    if (!tracking()) return real.mmap(addr, len, prot, flags, fd, off);
    ml_tls.guard++;
    ml_maps_lock();
    void *p = real.mmap(addr, len, prot, flags, fd, off);
    int saved = errno;
    if (p != MAP_FAILED) ml_track_mmap(p, len, (flags & MAP_ANONYMOUS) != 0, origin);
    ml_maps_unlock();
    ml_tls.guard--;
    errno = saved;
    return p;
}

EXPORT void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off) {
    NEED(mmap);
    return track_mmap(addr, len, prot, flags, fd, off, ORIGIN);
}
EXPORT void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off) {
    NEED(mmap);
    return track_mmap(addr, len, prot, flags, fd, off, ORIGIN);
}

EXPORT int munmap(void *addr, size_t len) {
    NEED(munmap);
    if (!tracking()) return real.munmap(addr, len);
    ml_tls.guard++;
    ml_maps_lock();
    int rc = real.munmap(addr, len);
    int saved = errno;
    if (rc == 0) ml_track_munmap(addr, len);
    ml_maps_unlock();
    ml_tls.guard--;
    errno = saved;
    return rc;
}

EXPORT void *mremap(void *old, size_t old_len, size_t new_len, int flags, ...) {
    NEED(mremap);
    void *target = NULL;
    if (flags & MREMAP_FIXED) {
        va_list ap;
        va_start(ap, flags);
        target = va_arg(ap, void *);
        va_end(ap);
    }
    if (!tracking()) return real.mremap(old, old_len, new_len, flags, target);
    ml_tls.guard++;
    ml_maps_lock();
    void *p = real.mremap(old, old_len, new_len, flags, target);
    int saved = errno;
    if (p != MAP_FAILED) ml_track_mremap(old, old_len, p, new_len);
    ml_maps_unlock();
    ml_tls.guard--;
    errno = saved;
    return p;
}

/* ---- process life cycle ---- */

EXPORT int dlclose(void *handle) {
    NEED(dlclose);
    if (!ml_tls.guard) ml_collector_before_dlclose();
    int rc = real.dlclose(handle);
    ml_unwind_invalidate();   /* the object's code may be gone: its cached unwind rules with it */
    return rc;
}

#define EXIT_WRAPPER(name) \
    EXPORT __attribute__((noreturn)) void name(int status) { \
        NEED(name); \
        if (!ml_tls.guard) ml_collector_finish("exit", status, NULL); \
        real.name(status); \
        __builtin_unreachable(); \
    }
EXIT_WRAPPER(_exit)
EXIT_WRAPPER(_Exit)

EXPORT __attribute__((noreturn)) void exit(int status) {
    NEED(exit);
    ml_collector_note_exit_status(status);
    real.exit(status);
    __builtin_unreachable();
}

/* exec: finish this image's stream; with MEMLENS_FOLLOW_EXEC=0 the new image gets no LD_PRELOAD. */
static char *const *exec_environment(char *const envp[], char **copy, size_t cap, char *preload, size_t preload_cap) {
    if (ml_config.follow_exec || !envp) return envp;
    size_t n = 0;
    for (size_t i = 0; envp[i]; i++) {
        if (n + 1 >= cap) return envp;
        if (strncmp(envp[i], "LD_PRELOAD=", 11) != 0) { copy[n++] = envp[i]; continue; }
        /* keep other preloaded objects, drop ours */
        size_t used = ml_strlcpy(preload, "LD_PRELOAD=", preload_cap);
        const char *p = envp[i] + 11;
        while (*p) {
            size_t len = strcspn(p, ": ");
            bool ours = len >= 13 && memcmp(p + len - 13, "libmemlens.so", 13) == 0;
            if (!ours && used + len + 2 < preload_cap) {
                if (used > 11) preload[used++] = ':';
                memcpy(preload + used, p, len);
                used += len;
                preload[used] = 0;
            }
            p += len;
            while (*p == ':' || *p == ' ') p++;
        }
        copy[n++] = preload;
    }
    copy[n] = NULL;
    return copy;
}

static int do_exec(const char *path, char *const argv[], char *const envp[], bool search) {
    NEED(execve);
    char *copy[4096], preload[4096];
    char *const *env = exec_environment(envp, copy, 4096, preload, sizeof preload);
    if (!ml_tls.guard) ml_collector_finish("exec", -1, path);
    int rc = search ? real.execvpe(path, argv, env) : real.execve(path, argv, env);
    int saved = errno;
    if (!ml_tls.guard) ml_collector_exec_failed();
    errno = saved;
    return rc;
}

EXPORT int execve(const char *path, char *const argv[], char *const envp[]) { return do_exec(path, argv, envp, false); }
EXPORT int execv(const char *path, char *const argv[]) { return do_exec(path, argv, environ, false); }
EXPORT int execvp(const char *file, char *const argv[]) { return do_exec(file, argv, environ, true); }
EXPORT int execvpe(const char *file, char *const argv[], char *const envp[]) { return do_exec(file, argv, envp, true); }

#define EXECL_BODY(path, envp, search) \
    va_list ap; \
    size_t argc = 1; \
    va_start(ap, arg); \
    while (va_arg(ap, char *)) argc++; \
    va_end(ap); \
    if (argc > 65536) { errno = E2BIG; return -1; } \
    char *argv[argc + 1]; \
    argv[0] = (char *)arg; \
    va_start(ap, arg); \
    for (size_t i = 1; i <= argc; i++) argv[i] = va_arg(ap, char *); \
    char *const *env = envp; \
    if (env == NULL) env = va_arg(ap, char *const *); \
    va_end(ap); \
    return do_exec(path, argv, env, search);

EXPORT int execl(const char *path, const char *arg, ...) { EXECL_BODY(path, environ, false) }
EXPORT int execlp(const char *file, const char *arg, ...) { EXECL_BODY(file, environ, true) }
EXPORT int execle(const char *path, const char *arg, ...) { EXECL_BODY(path, NULL, false) }

/* Threads: registered before they run the program's code, so the leak scan knows every stack,
 * also of threads that never allocate. */
struct thread_start { void *(*routine)(void *); void *arg; };

static void *thread_trampoline(void *p) {
    struct thread_start start = *(struct thread_start *)p;
    ml_tls.guard++;
    real.free(p);
    ml_thread_self();       /* registered, and its stack bounds read, before the program's code runs: */
    uintptr_t unused[1];    /* later, pthread_getattr_np inside an allocation could deadlock on itself */
    ml_unwind(unused, 1);
    ml_tls.guard--;
    return start.routine(start.arg);
}

EXPORT int pthread_create(pthread_t *thread, const pthread_attr_t *attr, void *(*routine)(void *), void *arg) {
    NEED(pthread_create);
    if (!tracking()) return real.pthread_create(thread, attr, routine, arg);
    ml_tls.guard++;
    struct thread_start *start = real.malloc(sizeof *start);
    ml_tls.guard--;
    if (!start) return real.pthread_create(thread, attr, routine, arg);
    start->routine = routine;
    start->arg = arg;
    int rc = real.pthread_create(thread, attr, thread_trampoline, start);
    if (rc != 0) real.free(start);
    return rc;
}

__attribute__((constructor(101))) static void shim_start(void) {
    NEED(malloc);
    ml_collector_start();
    started();
}
