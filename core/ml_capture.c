/* ml_capture.c — call-stack capture for the hot path: the fast cached-CFI unwinder (ml_unwind.c) when
 * every frame has a simple rule, else libunwind's unw_backtrace (its fast trace path with a per-thread
 * cache of unwind information); either way trimmed to start at the interposer's caller. */
#define UNW_LOCAL_ONLY
#include <libunwind.h>

#include "ml.h"
#include "ml_unwind.h"

bool ml_capture_init(void) {
    unw_set_caching_policy(unw_local_addr_space, UNW_CACHE_PER_THREAD);
    return false;
}

unsigned ml_capture(uintptr_t *frames, uintptr_t caller) {
    enum { SKIP_MAX = 16 };   /* memlens frames, plus glibc/libstdc++ frames of a buffer-like call */
    uintptr_t raw[ML_MAX_DEPTH + SKIP_MAX];
    unsigned want = ml_config.depth + SKIP_MAX;
    int n = (int)ml_unwind(raw, want);
    if (n == 0) n = unw_backtrace((void **)raw, (int)want);
    if (n <= 0) {
        frames[0] = caller;
        return 1;
    }
    unsigned start = 0;
    for (unsigned i = 0; i < (unsigned)n && i < SKIP_MAX; i++)
        if (raw[i] == caller) { start = i; break; }
    unsigned depth = 0;
    for (unsigned i = start; i < (unsigned)n && depth < ml_config.depth; i++) frames[depth++] = raw[i];
    return depth;
}
