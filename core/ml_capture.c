/* ml_capture.c — call-stack capture for the hot path: the fast cached-CFI unwinder (ml_unwind.c) when
 * every frame has a simple rule, else libunwind's unw_backtrace (its fast trace path with a per-thread
 * cache of unwind information); either way the stack starts at the interposer's caller, or at
 * `trim_at` (the program's call of a buffer-like function whose allocation happens deeper, in glibc
 * or libstdc++). */
#define UNW_LOCAL_ONLY
#include <libunwind.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>

#include "ml.h"
#include "ml_prim.h"
#include "ml_unwind.h"

/* libunwind is loaded with dlopen(RTLD_LOCAL), not linked. Linked, it sat in the program's global scope,
 * where its _Unwind_* functions (a libgcc-compatible layer) came before libgcc_s's in a C program,
 * libgcc_s's own calls to them included: glibc's unwinding of a cancelled thread (and a C++ library's
 * exceptions) then found no cleanup to run, so a thread cancelled inside getline left its FILE locked
 * and the next fclose hung. Loaded locally, it serves only this file; the object is never closed.
 *
 * And it is loaded only when a stack first needs it (most processes never do: an empty traced program
 * took 3.52 ms before, 3.39 after, 61 interleaved rounds on the benchmark VM), by the collector thread: dlopen is not safe everywhere an allocation
 * can be made (inside the dynamic loader, whose lock the allocating thread may hold, a nested dlopen
 * breaks it), the collector's own loop always is. The capture that needs it asks (unw_load: NONE ->
 * ASKED), wakes the collector (ml_collector_wake) and waits for DONE, a bounded time: if this thread
 * holds the loader's lock, the collector's dlopen waits for it, so the wait ends after WAIT_NS, this
 * stack is its first frame only, and later captures do not wait again until the load is done. The
 * same for a capture with no collector to ask (before memlens's constructor) or a load that failed. */
#define ML_LIBUNWIND "libunwind.so.8"   /* libunwind's SONAME since 1.1 (2012) */
#define ML_STR(x) #x
#define ML_NAME(x) ML_STR(x)            /* the symbol behind libunwind.h's macro, e.g. _ULx86_64_step */
#define WAIT_NS 200000000ull
enum { UNW_NONE, UNW_ASKED, UNW_DONE };
static _Atomic int unw_load;
static _Atomic bool wait_gave_up;
static int (*_Atomic backtrace_fn)(void **, int);
static int (*set_caching_policy_fn)(unw_addr_space_t, unw_caching_policy_t);
static unw_addr_space_t local_space;

void ml_capture_load(void) {
    if (atomic_load(&unw_load) == UNW_DONE) return;
    void *lib = dlopen(ML_LIBUNWIND, RTLD_NOW | RTLD_LOCAL);
    if (lib) {
        unw_addr_space_t *space = dlsym(lib, ML_NAME(unw_local_addr_space));
        set_caching_policy_fn = (int (*)(unw_addr_space_t, unw_caching_policy_t))dlsym(lib, ML_NAME(unw_set_caching_policy));
        int (*backtrace)(void **, int) = (int (*)(void **, int))dlsym(lib, ML_NAME(unw_backtrace));
        if (space && set_caching_policy_fn && backtrace) {
            local_space = *space;
            atomic_store(&backtrace_fn, backtrace);
        }
    }
    atomic_store(&unw_load, UNW_DONE);
}

void ml_capture_serve_load(void) {
    if (atomic_load(&unw_load) == UNW_ASKED) ml_capture_load();
}

static __attribute__((noinline, cold)) int (*await_load(void))(void **, int) {
    int state = UNW_NONE;
    if (!atomic_compare_exchange_strong(&unw_load, &state, UNW_ASKED) && state == UNW_DONE)
        return atomic_load(&backtrace_fn);
    if (atomic_load(&wait_gave_up) || !ml_collector_wake()) return NULL;
    uint64_t deadline = ml_monotonic_ns() + WAIT_NS;
    while (atomic_load(&unw_load) != UNW_DONE) {
        if (ml_monotonic_ns() >= deadline) {
            atomic_store(&wait_gave_up, true);
            return NULL;
        }
        ml_sleep_ns(50000);   /* a raw nanosleep: not a cancellation point */
    }
    return atomic_load(&backtrace_fn);
}

/* libunwind sets itself up on its first call (a pipe to validate addresses, mincore, its caches):
 * about 0.2 ms, paid only by a process one of whose stacks needs the fallback, at its first use.
 * pthread_once allocates nothing and is restarted in a child forked during it. */
static pthread_once_t unw_once = PTHREAD_ONCE_INIT;
static void unw_setup(void) { set_caching_policy_fn(local_space, UNW_CACHE_PER_THREAD); }
static int fallback_backtrace(uintptr_t *raw, unsigned want) {
    int (*backtrace)(void **, int) = atomic_load_explicit(&backtrace_fn, memory_order_acquire);
    if (!backtrace && !(backtrace = await_load())) return 0;
    pthread_once(&unw_once, unw_setup);
    return backtrace((void **)raw, (int)want);
}

unsigned ml_capture(uintptr_t *frames, const struct ml_origin *origin, uintptr_t trim_at, uint64_t *chain) {
    enum { SKIP_MAX = 16 };   /* memlens frames, plus glibc/libstdc++ frames of a buffer-like call */
    if (!trim_at) {           /* the common case: the stack starts at the origin, written in place */
        unsigned n = ml_unwind_from(frames, ml_config.depth, origin, chain);
        if (n) return n;
        trim_at = origin->ip;
    }
    uintptr_t raw[ML_MAX_DEPTH + SKIP_MAX];
    unsigned want = ml_config.depth + SKIP_MAX;
    int n = trim_at != origin->ip ? (int)ml_unwind_from(raw, want, origin, NULL) : 0;
    if (n == 0) n = fallback_backtrace(raw, want);
    if (n <= 0) {
        frames[0] = trim_at;
        *chain = ml_stack_chain(frames, 1);
        return 1;
    }
    unsigned start = 0;
    for (unsigned i = 0; i < (unsigned)n && i < SKIP_MAX; i++)
        if (raw[i] == trim_at) { start = i; break; }
    unsigned depth = 0;
    for (unsigned i = start; i < (unsigned)n && depth < ml_config.depth; i++) frames[depth++] = raw[i];
    *chain = ml_stack_chain(frames, depth);
    return depth;
}
