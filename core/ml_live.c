/* ml_live.c — the live-pointer map: every tracked heap block, address -> (size, site).
 *
 * ML_LIVE_SHARDS independent cuckoo hash tables of 4-slot buckets (below, at place), each behind its
 * own spinlock, so any thread can free what another allocated, with no global lock; shards are grouped
 * by address region so that threads working in their own malloc arenas do not even share cache lines
 * (see shard_of). An entry is 16 bytes: the address and a packed word (size: 44 bits, site: 20 bits);
 * tables grow at 7/8 load, so the map costs 18–37 bytes per live block (a table is between 7/16 and
 * 7/8 full once it has grown). Table memory comes from ml_os_alloc, never from the host's malloc.
 * Each shard's fields are protected by its `lock`, except in solo mode (below).
 *
 * Solo mode: while one thread does all the work on the map, it works without the shard locks, whose
 * locked exchanges were ~3 % of full-mode churn's time (a cpu-clock profile, churn 1M 1 12: the map's
 * insert 19 ms less of 685 ms a run) and 10-18 % of a bare malloc/free loop's. A thread takes solo
 * mode when its sampled locked operations show no other thread at work (after_locked; exponential
 * backoff each time solo mode ends), under every shard lock so that no locked operation is in flight. Anything else that touches the map (another thread's
 * allocation or free, the collector's walks at exit or for `dump`, fork's handlers) first ends it:
 * sets solo_revoked, runs membarrier(2) (PRIVATE_EXPEDITED: every running thread of the process
 * passes a full barrier), waits until the solo thread is out of any unlocked operation, and only then
 * clears solo_on, which locked operations read; the solo thread sets solo_busy before it reads
 * solo_revoked and clears it after (the asymmetric form of Dekker's protocol: its side needs no
 * barrier). Without membarrier (an old kernel, a seccomp filter) solo mode never starts. Stress-tested
 * in tests/unit/test_live.c (a freer and two walkers against the solo thread, thousands of
 * takeovers and ends). */
#include "ml.h"
#include "ml_prim.h"
#include "ml_spin.h"

#include <emmintrin.h>
#include <linux/membarrier.h>
#include <sched.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define SIZE_BITS 44
#define SITE_MASK ((1ull << 20) - 1)
#define MAX_SIZE ((1ull << SIZE_BITS) - 1)

/* A bucket is one cache line: four addresses (0: free) and their packed words. */
#define BUCKET_SLOTS 4
struct bucket { uintptr_t ptr[BUCKET_SLOTS]; uint64_t packed[BUCKET_SLOTS]; } __attribute__((aligned(64)));

struct shard {
    ml_spin lock;
    uint32_t count;
    uint32_t mask;           /* buckets - 1 */
    uint32_t limit;          /* count that makes the table grow: 7/8 of its slots */
    struct bucket *buckets;  /* NULL: no table yet */
} __attribute__((aligned(64)));

static struct shard shards[ML_LIVE_SHARDS];
/* Shards that ever had a table (bit set, release, before their first entry), and the bytes of all
 * tables: what walks the map and what reports its size look only here and at used shards, so a small
 * map does not cost a page fault per 64 shards. */
static _Atomic uint64_t used_shards[ML_LIVE_SHARDS / 64];
static _Atomic uint64_t table_bytes;
/* First tables of every shard, contiguous so that a small heap touches few pages. */
#define FIRST_BUCKETS 4
static struct bucket first_tables[ML_LIVE_SHARDS][FIRST_BUCKETS];

/* A shard is chosen by the 64 MiB region of the address (glibc gives each thread's arena its own
 * regions) and then by the address: blocks that one thread allocates and frees stay in a group of
 * 16 shards that other threads' blocks rarely share, so threads do not pass cache lines back and
 * forth. Within a shard the slot comes from other bits of the hash. */
#define GROUP_SHARDS 16
static inline struct shard *shard_of(uintptr_t ptr, uint64_t h) {
    uint64_t region = ((uint64_t)(ptr >> 26) * 0x9E3779B97F4A7C15ull) >> 58;          /* 64 groups */
    return &shards[region * GROUP_SHARDS + (h >> 60)];                                /* 16 in a group */
}

/* Sampled mode: most frees are of blocks that were never recorded, and a shard holding a few sampled
 * blocks would send each of them through its lock. A counting filter answers "surely not here" first:
 * one byte per bucket of the address hash (8 KiB, small enough to stay cached; with B recorded blocks
 * live about B/8192 of the other frees still go on to the shard), counting the live recorded blocks
 * of that bucket, updated with atomics (inserts and removes are rare in sampled mode); a count that
 * reaches 255 stays there (the bucket then always says "maybe"). Its visibility argument is the empty
 * shard's, below. The shim asks it (ml_live_may_hold) on a free that the pointer test
 * (ml_sample_placed) did not rule out. Full mode does not use it: nearly every free is of a recorded
 * block. */
_Atomic uint8_t ml_live_filter[1u << ML_LIVE_FILTER_BITS];
static inline _Atomic uint8_t *filter_of(uint64_t h) { return &ml_live_filter[ml_live_filter_index(h)]; }
static void filter_add(uint64_t h, int delta) {
    _Atomic uint8_t *f = filter_of(h);
    uint8_t v = atomic_load_explicit(f, memory_order_relaxed);
    while (v != 255 && !atomic_compare_exchange_weak_explicit(f, &v, (uint8_t)(v + delta), memory_order_relaxed,
                                                              memory_order_relaxed)) {}
}

static bool solo_possible;                            /* membarrier registered (ml_live_init) */
static const struct ml_thread *_Atomic solo_thread;   /* who may work unlocked while solo_on */
static _Atomic bool solo_on;          /* read by locked operations under their shard lock */
static _Atomic bool solo_revoked;     /* read by the solo thread: set first when solo mode ends */
/* solo_thread is inside an unlocked operation; written on every operation in solo mode, so it has its
 * cache line to itself */
static struct { _Atomic unsigned v; } solo_busy_line __attribute__((aligned(64)));
#define solo_busy (solo_busy_line.v)
static ml_spin mode_lock;                             /* solo_on changes; taken before any shard lock */
static _Atomic unsigned solo_ends;                    /* times solo mode was ended: the takeover's backoff */
static const struct ml_thread *_Atomic last_locker;   /* written at every TAKEOVER_CHECK-th locked operation */
static __thread unsigned locked_run __attribute__((tls_model("initial-exec")));
#define TAKEOVER_CHECK 256u
static unsigned takeover_base = 4096, takeover_max_shift = 12;   /* ml_live_solo_tune: tests */

bool ml_live_init(void) {
    solo_possible = syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0;
    return false;
}

static void lock_shards(void) {
    for (unsigned k = 0; k < ML_LIVE_SHARDS; k++) ml_spin_lock(&shards[k].lock);
}
static void unlock_shards(void) {
    for (unsigned k = 0; k < ML_LIVE_SHARDS; k++) ml_spin_unlock(&shards[k].lock);
}

/* Ends solo mode (the caller holds no shard lock): revokes it, so that the solo thread starts no other
 * unlocked operation, waits for the one it may be in, and only then lets locked operations see it off
 * (solo_on false), so that none of them can run beside the solo thread's last operation. */
static __attribute__((noinline, cold)) void solo_end(void) {
    ml_spin_lock(&mode_lock);
    if (atomic_load_explicit(&solo_on, memory_order_relaxed)) {
        atomic_store(&solo_revoked, true);
        atomic_fetch_add_explicit(&solo_ends, 1, memory_order_relaxed);
        if (syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) != 0)
            ml_fail("membarrier failed after it was registered");   /* tracking stops; the solo thread's
                                                                       operation in flight finishes alone */
        for (unsigned spins = 0; atomic_load_explicit(&solo_busy, memory_order_acquire); spins++) {
            if (spins % 64 == 63) sched_yield();
            else __builtin_ia32_pause();
        }
        atomic_store(&solo_on, false);
    }
    ml_spin_unlock(&mode_lock);
}
/* A shard's lock, with solo mode off: solo_on is read under the lock, which solo_take also holds when
 * it sets it (it holds them all), so it cannot start before the lock is released. */
static inline void lock_shard(struct shard *s) {
    for (;;) {
        ml_spin_lock(&s->lock);
        if (__builtin_expect(!atomic_load_explicit(&solo_on, memory_order_relaxed), 1)) return;
        ml_spin_unlock(&s->lock);
        solo_end();
    }
}

/* The solo thread's way in: true when it may work unlocked, until solo_leave. Both fields are read
 * again after solo_busy is set: solo mode may have ended and been taken by another thread meanwhile. */
static inline bool solo_enter(void) {
    const struct ml_thread *me = ml_tls.thread;
    if (!atomic_load_explicit(&solo_on, memory_order_acquire) || atomic_load_explicit(&solo_thread, memory_order_relaxed) != me)
        return false;
    atomic_store_explicit(&solo_busy, 1, memory_order_relaxed);
    atomic_signal_fence(memory_order_seq_cst);   /* the other side's membarrier orders the rest */
    if (!atomic_load_explicit(&solo_revoked, memory_order_acquire) && atomic_load_explicit(&solo_on, memory_order_relaxed) &&
        atomic_load_explicit(&solo_thread, memory_order_relaxed) == me)
        return true;
    atomic_store_explicit(&solo_busy, 0, memory_order_release);
    return false;
}
static inline void solo_leave(void) { atomic_store_explicit(&solo_busy, 0, memory_order_release); }

/* Takes solo mode for this thread, under every shard lock: no locked operation is in flight. */
static __attribute__((noinline, cold)) void solo_take(const struct ml_thread *me) {
    ml_spin_lock(&mode_lock);
    if (!atomic_load(&solo_on)) {
        lock_shards();
        atomic_store(&solo_thread, me);
        atomic_store(&solo_revoked, false);
        atomic_store(&solo_on, true);
        unlock_shards();
    }
    ml_spin_unlock(&mode_lock);
}

/* After a locked operation: a thread that has done all of the last locked operations that it sampled
 * (every TAKEOVER_CHECK-th of its own, writing last_locker) takes solo mode after takeover_base of them,
 * twice as many after each time solo mode was ended, so threads that share the map do not take it
 * back and forth. A thread of ml_sites.c's shared overflow slot never does (several threads share it). */
static inline void after_locked(void) {
    if (__builtin_expect(++locked_run % TAKEOVER_CHECK, 1)) return;
    const struct ml_thread *me = ml_tls.thread;
    if (!solo_possible || !me || ml_thread_is_shared(me)) return;
    if (atomic_load_explicit(&last_locker, memory_order_relaxed) != me) {
        atomic_store_explicit(&last_locker, me, memory_order_relaxed);
        locked_run = 0;
        return;
    }
    unsigned ends = atomic_load_explicit(&solo_ends, memory_order_relaxed);
    if (locked_run >= takeover_base << (ends < takeover_max_shift ? ends : takeover_max_shift)) {
        locked_run = 0;
        solo_take(me);
    }
}

bool ml_live_solo_active(void) { return atomic_load(&solo_on); }
void ml_live_solo_tune(unsigned base, unsigned max_shift) {
    takeover_base = base;
    takeover_max_shift = max_shift;
}

/* Bucketed cuckoo hashing: an address lives in one of two buckets chosen by its hash, so a lookup
 * reads at most two cache lines (both prefetched ahead on the hot paths) and a removal only clears
 * its slot. An insert takes a free slot of either bucket, or moves an occupant to its other bucket,
 * and so on (a bounded walk); the table doubles at 7/8 load or when the walk fails. Linear probing
 * with backward-shift deletion, before, walked and shifted clusters at up to 3/4 load (churn 1M, 41
 * interleaved rounds: 5 % less time in all now; live-1m's map 33.6 -> 19.4 bytes a block). */
/* An entry's buckets are b and b ^ other_of(h): either one gives the other; they differ unless the table
 * has one bucket. */
static inline uint32_t bucket_one(uint64_t h, uint32_t mask) { return (uint32_t)h & mask; }
static inline uint32_t other_of(uint64_t h, uint32_t mask) { return ((uint32_t)(h >> 20) | 1) & mask; }
static inline uint32_t bucket_two(uint64_t h, uint32_t mask) { return bucket_one(h, mask) ^ other_of(h, mask); }
#define MAX_KICKS 128

/* Bit i set: slot i of the bucket holds `ptr` (0: is free), from two SSE2 compares and no branch, so
 * that the slot an operation takes (any of the four) costs no mispredicted loop exit. Loops over the
 * slots ran 10M fewer instructions on churn, and took 5 % more of its time (31 interleaved rounds:
 * 1.93x the plain run with them, 1.83x with this). */
static inline unsigned slots_holding(const struct bucket *bk, uintptr_t ptr) {
    __m128i key = _mm_set1_epi64x((long long)ptr);
    __m128i lo = _mm_cmpeq_epi32(_mm_load_si128((const __m128i *)&bk->ptr[0]), key);
    __m128i hi = _mm_cmpeq_epi32(_mm_load_si128((const __m128i *)&bk->ptr[2]), key);
    lo = _mm_and_si128(lo, _mm_shuffle_epi32(lo, _MM_SHUFFLE(2, 3, 0, 1)));   /* both halves of a slot equal */
    hi = _mm_and_si128(hi, _mm_shuffle_epi32(hi, _MM_SHUFFLE(2, 3, 0, 1)));
    return (unsigned)_mm_movemask_pd(_mm_castsi128_pd(lo)) | (unsigned)_mm_movemask_pd(_mm_castsi128_pd(hi)) << 2;
}

static inline bool put_free(struct bucket *bk, uintptr_t ptr, uint64_t packed) {
    unsigned free_slots = slots_holding(bk, 0);
    if (!free_slots) return false;
    unsigned i = (unsigned)__builtin_ctz(free_slots);
    bk->ptr[i] = ptr;
    bk->packed[i] = packed;
    return true;
}

/* place's walk, when both buckets of the entry in hand are full: it puts that entry into a full bucket
 * in place of one of its entries (a different slot each step), which then goes to its other bucket. */
static __attribute__((noinline)) bool place_walk(struct bucket *buckets, uint32_t mask, uint64_t h, uintptr_t *ptr,
                                                  uint64_t *packed) {
    uint32_t b = bucket_one(h, mask);
    for (unsigned kick = 0; kick < MAX_KICKS; kick++) {
        struct bucket *bk = &buckets[b];
        unsigned i = kick % BUCKET_SLOTS;
        uintptr_t p = bk->ptr[i];
        uint64_t v = bk->packed[i];
        bk->ptr[i] = *ptr;
        bk->packed[i] = *packed;
        *ptr = p;
        *packed = v;
        b ^= other_of(ml_live_hash(p), mask);
        if (put_free(&buckets[b], p, v)) return true;
    }
    return false;
}
/* Places an address known not to be in the table (h: its hash): in a free slot of either bucket (in
 * line), else by the walk (out of line); false when the walk failed: (*ptr, *packed) is then an entry
 * (maybe another) still to be placed. */
static inline bool place(struct bucket *buckets, uint32_t mask, uint64_t h, uintptr_t *ptr, uint64_t *packed) {
    return put_free(&buckets[bucket_one(h, mask)], *ptr, *packed) || put_free(&buckets[bucket_two(h, mask)], *ptr, *packed) ||
           place_walk(buckets, mask, h, ptr, packed);
}

/* Makes `buckets` (n of them) the shard's table; ml_live_prefetch reads the first two unlocked. */
static void set_table(struct shard *s, struct bucket *buckets, uint32_t n) {
    __atomic_store_n(&s->buckets, buckets, __ATOMIC_RELAXED);
    __atomic_store_n(&s->mask, n - 1, __ATOMIC_RELAXED);
    s->limit = n * BUCKET_SLOTS / 8 * 7;   /* n >= 2, a power of two */
}

/* Rebuilds the shard's table with at least `want` buckets, holding its entries and (extra_ptr,
 * extra_packed) when extra_ptr is not 0. true when out of memory (the table is then unchanged, and the
 * extra entry not placed). */
static bool rebuild(struct shard *s, uint32_t want, uintptr_t extra_ptr, uint64_t extra_packed) {
    uint32_t old_n = s->buckets ? s->mask + 1 : 0;
    for (uint32_t n = want; n <= (1u << 28); n *= 2) {
        struct bucket *t = ml_os_alloc((size_t)n * sizeof *t);
        if (!t) return true;
        bool ok = true;
        for (uint32_t b = 0; ok && b < old_n; b++)
            for (unsigned i = 0; ok && i < BUCKET_SLOTS; i++) {
                uintptr_t p = s->buckets[b].ptr[i];
                uint64_t v = s->buckets[b].packed[i];
                if (p) ok = place(t, n - 1, ml_live_hash(p), &p, &v);
            }
        uintptr_t xp = extra_ptr;   /* a failed walk leaves another entry in hand */
        uint64_t xv = extra_packed;
        if (ok && xp) ok = place(t, n - 1, ml_live_hash(xp), &xp, &xv);
        if (!ok) {   /* very unlikely: twice as many buckets */
            ml_os_free(t, (size_t)n * sizeof *t);
            continue;
        }
        if (s->buckets && s->buckets != first_tables[s - shards]) ml_os_free(s->buckets, (size_t)old_n * sizeof *s->buckets);
        atomic_fetch_add_explicit(&table_bytes, (uint64_t)(n - old_n) * sizeof(struct bucket), memory_order_relaxed);
        set_table(s, t, n);
        return false;
    }
    return true;
}

/* The shard's first table, from first_tables. */
static void first_table(struct shard *s) {
    size_t k = (size_t)(s - shards);
    set_table(s, first_tables[k], FIRST_BUCKETS);
    atomic_fetch_add_explicit(&table_bytes, sizeof first_tables[k], memory_order_relaxed);
    atomic_fetch_or_explicit(&used_shards[k / 64], 1ull << (k % 64), memory_order_release);
}

/* Both buckets of hash h in a table that may be NULL (no table yet). */
static inline void prefetch_buckets(const struct bucket *buckets, uint32_t mask, uint64_t h) {
    if (!buckets) return;
    __builtin_prefetch(&buckets[bucket_one(h, mask)], 1);
    __builtin_prefetch(&buckets[bucket_two(h, mask)], 1);
}

uint64_t ml_live_prefetch(uintptr_t ptr) {
    uint64_t h = ml_live_hash(ptr);
    struct shard *s = shard_of(ptr, h);
    /* unlocked, so maybe a table being replaced, or its mask with the other table: a prefetch never
     * faults, and a wrong line only costs the hint */
    prefetch_buckets(__atomic_load_n(&s->buckets, __ATOMIC_RELAXED), __atomic_load_n(&s->mask, __ATOMIC_RELAXED), h);
    return h;
}

bool ml_live_insert(uintptr_t ptr, uint64_t size, uint32_t site) {
    return ml_live_insert_hashed(ptr, ml_live_hash(ptr), size, site);
}

/* The slot holding ptr in its two buckets, or NULL. */
static inline uintptr_t *find_in(struct shard *s, uintptr_t ptr, uint64_t h, uint64_t **packed) {
    struct bucket *bk = &s->buckets[bucket_one(h, s->mask)];
    unsigned found = slots_holding(bk, ptr);
    if (!found) {
        bk = &s->buckets[bucket_two(h, s->mask)];
        found = slots_holding(bk, ptr);
        if (!found) return NULL;
    }
    unsigned i = (unsigned)__builtin_ctz(found);
    *packed = &bk->packed[i];
    return &bk->ptr[i];
}

/* An insert of an address the map holds already (a block freed where memlens did not see it):
 * the entry is replaced. */
static __attribute__((noinline)) void replace_in(struct shard *s, uintptr_t ptr, uint64_t h, uint64_t packed) {
    uint64_t *at;
    if (find_in(s, ptr, h, &at)) *at = packed;
}

static inline __attribute__((always_inline)) bool insert_in(struct shard *s, uintptr_t ptr, uint64_t h, uint64_t packed) {
    if (__builtin_expect(!s->buckets, 0)) first_table(s);
    const struct bucket *one = &s->buckets[bucket_one(h, s->mask)], *two = &s->buckets[bucket_two(h, s->mask)];
    if (__builtin_expect((slots_holding(one, ptr) | slots_holding(two, ptr)) != 0, 0)) {
        replace_in(s, ptr, h, packed);
        return false;
    }
    if (__builtin_expect(s->count >= s->limit, 0)) {
        if (rebuild(s, (s->mask + 1) * 2, ptr, packed)) return true;
    } else {
        uintptr_t p = ptr;
        uint64_t v = packed;
        if (!place(s->buckets, s->mask, h, &p, &v) && rebuild(s, (s->mask + 1) * 2, p, v)) return true;
    }
    __atomic_store_n(&s->count, s->count + 1, __ATOMIC_RELAXED);
    if (ml_config.sample_rate) filter_add(h, 1);
    return false;
}

bool ml_live_insert_hashed(uintptr_t ptr, uint64_t h, uint64_t size, uint32_t site) {
    struct shard *s = shard_of(ptr, h);
    uint64_t packed = (size > MAX_SIZE ? MAX_SIZE : size) << 20 | (site & SITE_MASK);
    if (solo_enter()) {
        bool failed = insert_in(s, ptr, h, packed);
        solo_leave();
        return failed;
    }
    lock_shard(s);
    bool failed = insert_in(s, ptr, h, packed);
    ml_spin_unlock(&s->lock);
    after_locked();
    return failed;
}

static inline __attribute__((always_inline)) bool remove_from(struct shard *s, uintptr_t ptr, uint64_t h, uint64_t *size, uint32_t *site) {
    if (!s->count) return false;
    uint64_t *packed;
    uintptr_t *at = find_in(s, ptr, h, &packed);
    if (!at) return false;
    *size = *packed >> 20;
    *site = (uint32_t)(*packed & SITE_MASK);
    *at = 0;
    *packed = 0;
    __atomic_store_n(&s->count, s->count - 1, __ATOMIC_RELAXED);
    if (ml_config.sample_rate) filter_add(h, -1);
    return true;
}

/* remove_from under the shard's lock (solo mode off). */
static bool remove_locked(struct shard *s, uintptr_t ptr, uint64_t h, uint64_t *size, uint32_t *site) {
    lock_shard(s);
    bool found = remove_from(s, ptr, h, size, site);
    ml_spin_unlock(&s->lock);
    after_locked();
    return found;
}

bool ml_live_remove(uintptr_t ptr, uint64_t *size, uint32_t *site) {
    uint64_t h = ml_live_hash(ptr);
    struct shard *s = shard_of(ptr, h);
    /* An empty shard cannot hold ptr: the block was inserted before its owner could free it, and that
     * insert's count is visible to whoever was handed the pointer. Sampled mode lives on this. */
    if (!__atomic_load_n(&s->count, __ATOMIC_RELAXED)) return false;
    if (solo_enter()) {
        bool found = remove_from(s, ptr, h, size, site);
        solo_leave();
        return found;
    }
    return remove_locked(s, ptr, h, size, site);
}

/* The solo thread releases the block first, so that glibc's free runs while the block's buckets load
 * (churn 1M, 41 interleaved rounds: 3 % less time, with the linear-probing tables of then). No other
 * thread can see the block before the removal: another thread's insert of the same address, once
 * glibc hands it out again, waits for solo mode to end, that is for this operation. The release runs under the guard then, so that a signal
 * handler's allocation meanwhile is not tracked: its insert could not wait for solo mode to end (this
 * thread holds it). Otherwise the block is released after it is removed, as the order must be when
 * other threads may reuse the address at once, and outside the guard. */
bool ml_live_remove_then(uintptr_t ptr, void (*release)(void *), uint64_t *size, uint32_t *site) {
    uint64_t h = ml_live_hash(ptr);
    struct shard *s = shard_of(ptr, h);
    bool found = false;
    ml_tls.guard++;
    if (solo_enter()) {
        prefetch_buckets(s->buckets, s->mask, h);
        release((void *)ptr);
        found = remove_from(s, ptr, h, size, site);
        solo_leave();
        ml_tls.guard--;
        return found;
    }
    if (__atomic_load_n(&s->count, __ATOMIC_RELAXED))   /* an empty shard: as in ml_live_remove */
        found = remove_locked(s, ptr, h, size, site);
    ml_tls.guard--;
    release((void *)ptr);
    return found;
}

void ml_live_foreach(ml_live_visit *visit, void *arg) {
    for (unsigned w = 0; w < ML_LIVE_SHARDS / 64; w++) {
        for (uint64_t bits = atomic_load_explicit(&used_shards[w], memory_order_acquire); bits; bits &= bits - 1) {
            struct shard *s = &shards[w * 64 + (unsigned)__builtin_ctzll(bits)];
            lock_shard(s);
            for (uint32_t b = 0; s->count && b <= s->mask; b++)
                for (unsigned i = 0; i < BUCKET_SLOTS; i++)
                    if (s->buckets[b].ptr[i])
                        visit(s->buckets[b].ptr[i], s->buckets[b].packed[i] >> 20,
                              (uint32_t)(s->buckets[b].packed[i] & SITE_MASK), arg);
            ml_spin_unlock(&s->lock);
        }
    }
}

void ml_live_lock_all(void) {
    for (;;) {   /* solo mode off, and no solo_take while all is held (fork) */
        if (atomic_load(&solo_on)) solo_end();
        ml_spin_lock(&mode_lock);
        if (!atomic_load(&solo_on)) break;
        ml_spin_unlock(&mode_lock);
    }
    lock_shards();
}
void ml_live_unlock_all(void) {
    unlock_shards();
    ml_spin_unlock(&mode_lock);
}

uint64_t ml_live_memory_bytes(void) { return atomic_load_explicit(&table_bytes, memory_order_relaxed); }
