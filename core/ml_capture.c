/* ml_capture.c — call-stack capture for the hot path: libunwind's unw_backtrace (its fast trace path
 * with a per-thread cache of unwind information), trimmed to start at the interposer's caller. */
#define UNW_LOCAL_ONLY
#include <libunwind.h>

#include "ml.h"

bool ml_capture_init(void) {
    unw_set_caching_policy(unw_local_addr_space, UNW_CACHE_PER_THREAD);
    return false;
}

unsigned ml_capture(uintptr_t *frames, uintptr_t caller) {
    enum { SKIP_MAX = 16 };   /* memlens frames, plus glibc/libstdc++ frames of a buffer-like call */
    void *raw[ML_MAX_DEPTH + SKIP_MAX];
    unsigned want = ml_config.depth + SKIP_MAX;
    int n = unw_backtrace(raw, (int)want);
    if (n <= 0) {
        frames[0] = caller;
        return 1;
    }
    unsigned start = 0;
    for (unsigned i = 0; i < (unsigned)n && i < SKIP_MAX; i++)
        if ((uintptr_t)raw[i] == caller) { start = i; break; }
    unsigned depth = 0;
    for (unsigned i = start; i < (unsigned)n && depth < ml_config.depth; i++) frames[depth++] = (uintptr_t)raw[i];
    return depth;
}
