/* ml_spin.h — a test-and-test-and-set spinlock that yields under contention. Used for short critical
 * sections on the hot path (one shard of the live map) where a pthread mutex would cost more. */
#ifndef ML_SPIN_H
#define ML_SPIN_H
#include <sched.h>
#include <stdbool.h>
#include <stdatomic.h>

typedef struct { atomic_int held; } ml_spin;

static __attribute__((noinline, cold)) void ml_spin_wait(ml_spin *lock) {
    for (unsigned spins = 0;; spins++) {
        while (atomic_load_explicit(&lock->held, memory_order_relaxed)) {
            if (++spins > 64) { sched_yield(); spins = 0; }
            else __builtin_ia32_pause();
        }
        if (!atomic_exchange_explicit(&lock->held, 1, memory_order_acquire)) return;
    }
}
/* The uncontended case inline (one exchange), the wait out of line. */
static inline void ml_spin_lock(ml_spin *lock) {
    if (__builtin_expect(atomic_exchange_explicit(&lock->held, 1, memory_order_acquire), 0)) ml_spin_wait(lock);
}
static inline bool ml_spin_trylock(ml_spin *lock) {
    return !atomic_load_explicit(&lock->held, memory_order_relaxed) &&
           !atomic_exchange_explicit(&lock->held, 1, memory_order_acquire);
}
static inline void ml_spin_unlock(ml_spin *lock) { atomic_store_explicit(&lock->held, 0, memory_order_release); }
static inline void ml_spin_reset(ml_spin *lock) { atomic_store_explicit(&lock->held, 0, memory_order_relaxed); }
#endif
