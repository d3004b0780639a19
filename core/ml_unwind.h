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

/* Where a walk starts: a return address into a frame's function and the stack and frame pointers as
 * that frame sees them (after the return). An interposer compiled with frame pointers describes its
 * caller with ML_ORIGIN_HERE(): its frame pointer points at the saved caller RBP, above which are the
 * return address and then the caller's stack. */
struct ml_origin { uintptr_t ip, sp, bp; };
#define ML_ORIGIN_INIT { (uintptr_t)__builtin_return_address(0), (uintptr_t)__builtin_frame_address(0) + 16, \
                        *(const uintptr_t *)__builtin_frame_address(0) }
#define ML_ORIGIN_HERE() ((struct ml_origin)ML_ORIGIN_INIT)

/* As ml_unwind, from `origin` (frames[0] = origin->ip); the origin must lie on the calling thread's
 * stack, above the caller's own frame. */
unsigned ml_unwind_from(uintptr_t *frames, unsigned max, const struct ml_origin *origin);

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
