/* ml_unwind.h — the fast x86-64 unwinder of the calling thread (ml_unwind.c): DWARF CFI reduced to one
 * cached rule per return address, walked over the thread's own stack with every read bounded. */
#ifndef ML_UNWIND_H
#define ML_UNWIND_H

#include <stdint.h>

/* Stores up to `max` return addresses, starting with the one into ml_unwind's caller (as unw_backtrace
 * does for its caller), then outward. Returns how many were stored, or 0 when some frame has no simple
 * rule (signal frame, CFA expression, no FDE, frame leaving the stack…): the caller must then use
 * unw_backtrace for the whole stack. Async-signal-safe apart from the first call on a thread (which
 * reads the stack bounds with pthread_getattr_np, hold the reentrancy guard) and the rare cache miss
 * (dl_iterate_phdr); never allocates from the program's heap. */
unsigned ml_unwind(uintptr_t *frames, unsigned max);
/* ml_unwind that also stores ml_stack_chain of the frames in *chain (tests). */
unsigned ml_unwind_chained(uintptr_t *frames, unsigned max, uint64_t *chain);

/* Where a walk starts: a return address into a frame's function and the stack and frame pointers as
 * that frame sees them (after the return). An interposer compiled with frame pointers describes its
 * caller with ML_ORIGIN_HERE(): its frame pointer points at the saved caller RBP, above which are the
 * return address and then the caller's stack. */
struct ml_origin { uintptr_t ip, sp, bp; };
#define ML_ORIGIN_INIT { (uintptr_t)__builtin_return_address(0), (uintptr_t)__builtin_frame_address(0) + 16, \
                        *(const uintptr_t *)__builtin_frame_address(0) }
#define ML_ORIGIN_HERE() ((struct ml_origin)ML_ORIGIN_INIT)

/* The chain hash of a stack: its frames folded from the outermost inward, so that stacks sharing outer
 * frames share the start of the computation. The unwinder keeps the chain of every state of its trail
 * and so hashes only the frames it did not replay; sites are keyed by it (ml_site_intern_chained). */
#define ML_CHAIN_SEED 0x243F6A8885A308D3ull
static inline uint64_t ml_chain_step(uint64_t chain, uintptr_t ip) {
    uint64_t h = (chain ^ ip) * 0x9E3779B97F4A7C15ull;
    return h ^ (h >> 32);
}
static inline uint64_t ml_stack_chain(const uintptr_t *frames, unsigned n) {
    uint64_t h = ML_CHAIN_SEED;
    while (n > 0) h = ml_chain_step(h, frames[--n]);
    return h;
}

/* As ml_unwind, from `origin` (frames[0] = origin->ip); the origin must lie on the calling thread's
 * stack, above the caller's own frame. If `chain` is not NULL, it receives ml_stack_chain of the
 * frames returned. */
unsigned ml_unwind_from(uintptr_t *frames, unsigned max, const struct ml_origin *origin, uint64_t *chain);

/* Forgets every cached rule: to be called when code may have been unmapped (dlclose). The unwinder
 * also notices dlpi_subs changing on its own, checked every few thousand captures per thread. */
void ml_unwind_invalidate(void);

/* For tests: the rule the CFI gives for a return address, computed afresh (the cache is not used). */
struct ml_unwind_rule {
    enum { ML_RULE_NONE, ML_RULE_RSP, ML_RULE_RBP, ML_RULE_END } kind;
    uint32_t cfa_offset;     /* CFA = base register + cfa_offset; return address at CFA-8 */
    uint16_t rbp_offset;     /* 0: RBP unchanged, else the caller's RBP is at CFA-rbp_offset */
};
void ml_unwind_rule_for(uintptr_t return_address, struct ml_unwind_rule *rule);

#endif
