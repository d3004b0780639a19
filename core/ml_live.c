/* ml_live.c — the live-pointer map: every tracked heap block, address -> (size, site).
 *
 * ML_LIVE_SHARDS independent open-addressing tables (linear probing, backward-shift deletion, no
 * tombstones), each behind its own spinlock, so any thread can free what another allocated, with no
 * global lock; shards are grouped by address region so that threads working in their own malloc
 * arenas do not even share cache lines (see shard_of). An entry is 16 bytes:
 * the address and a packed word (size: 44 bits, site: 20 bits); tables grow at 3/4 load, so the map
 * costs 21–43 bytes per live block (a table is between 3/8 and 3/4 full once it has grown). Table memory
 * comes from ml_os_alloc, never from the host's malloc.
 * Each shard's fields are protected by its `lock`. */
#include "ml.h"
#include "ml_prim.h"
#include "ml_spin.h"

#include <string.h>

#define SIZE_BITS 44
#define SITE_MASK ((1ull << 20) - 1)
#define MAX_SIZE ((1ull << SIZE_BITS) - 1)

struct entry { uintptr_t ptr; uint64_t packed; };

struct shard {
    ml_spin lock;
    uint32_t count;
    uint32_t mask;           /* capacity - 1; 0 when no table yet */
    struct entry *slots;
} __attribute__((aligned(64)));

static struct shard shards[ML_LIVE_SHARDS];
/* Shards that ever had a table (bit set, release, before their first entry), and the bytes of all
 * tables: what walks the map and what reports its size look only here and at used shards, so a small
 * map does not cost a page fault per 64 shards. */
static _Atomic uint64_t used_shards[ML_LIVE_SHARDS / 64];
static _Atomic uint64_t table_bytes;
/* First tables of every shard, contiguous so that a small heap touches few pages. */
#define FIRST_CAP 16
static struct entry first_tables[ML_LIVE_SHARDS][FIRST_CAP];

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

bool ml_live_init(void) { return false; }

static bool grow(struct shard *s) {
    uint32_t old_cap = s->mask ? s->mask + 1 : 0;
    if (!old_cap) {
        size_t k = (size_t)(s - shards);
        __atomic_store_n(&s->slots, first_tables[k], __ATOMIC_RELAXED);
        __atomic_store_n(&s->mask, FIRST_CAP - 1, __ATOMIC_RELAXED);
        atomic_fetch_add_explicit(&table_bytes, FIRST_CAP * sizeof(struct entry), memory_order_relaxed);
        atomic_fetch_or_explicit(&used_shards[k / 64], 1ull << (k % 64), memory_order_release);
        return false;
    }
    uint32_t cap = old_cap * 2;
    if (cap > (1u << 30)) return true;
    struct entry *slots = ml_os_alloc((size_t)cap * sizeof *slots);
    if (!slots) return true;
    for (uint32_t i = 0; i < old_cap; i++) {
        struct entry e = s->slots[i];
        if (!e.ptr) continue;
        uint32_t j = (uint32_t)ml_live_hash(e.ptr) & (cap - 1);
        while (slots[j].ptr) j = (j + 1) & (cap - 1);
        slots[j] = e;
    }
    if (old_cap != FIRST_CAP) ml_os_free(s->slots, (size_t)old_cap * sizeof *s->slots);
    atomic_fetch_add_explicit(&table_bytes, (uint64_t)(cap - old_cap) * sizeof(struct entry), memory_order_relaxed);
    __atomic_store_n(&s->slots, slots, __ATOMIC_RELAXED);   /* ml_live_prefetch reads them unlocked */
    __atomic_store_n(&s->mask, cap - 1, __ATOMIC_RELAXED);
    return false;
}

uint64_t ml_live_prefetch(uintptr_t ptr) {
    uint64_t h = ml_live_hash(ptr);
    struct shard *s = shard_of(ptr, h);
    /* unlocked, so maybe a table being replaced, or its mask with the other table: a prefetch never
     * faults, and a wrong line only costs the hint */
    const struct entry *slots = __atomic_load_n(&s->slots, __ATOMIC_RELAXED);
    uint32_t mask = __atomic_load_n(&s->mask, __ATOMIC_RELAXED);
    if (slots) __builtin_prefetch(&slots[(uint32_t)h & mask], 1);
    return h;
}

bool ml_live_insert(uintptr_t ptr, uint64_t size, uint32_t site) {
    return ml_live_insert_hashed(ptr, ml_live_hash(ptr), size, site);
}

bool ml_live_insert_hashed(uintptr_t ptr, uint64_t h, uint64_t size, uint32_t site) {
    struct shard *s = shard_of(ptr, h);
    uint64_t packed = (size > MAX_SIZE ? MAX_SIZE : size) << 20 | (site & SITE_MASK);
    ml_spin_lock(&s->lock);
    if ((uint64_t)(s->count + 1) * 4 > (uint64_t)(s->mask + 1) * 3 && grow(s)) {
        ml_spin_unlock(&s->lock);
        return true;
    }
    uint32_t i = (uint32_t)h & s->mask;
    while (s->slots[i].ptr && s->slots[i].ptr != ptr) i = (i + 1) & s->mask;
    if (!s->slots[i].ptr) {
        __atomic_store_n(&s->count, s->count + 1, __ATOMIC_RELAXED);
        if (ml_config.sample_rate) filter_add(h, 1);
    }
    s->slots[i].ptr = ptr;
    s->slots[i].packed = packed;
    ml_spin_unlock(&s->lock);
    return false;
}

bool ml_live_remove(uintptr_t ptr, uint64_t *size, uint32_t *site) {
    uint64_t h = ml_live_hash(ptr);
    struct shard *s = shard_of(ptr, h);
    /* An empty shard cannot hold ptr: the block was inserted before its owner could free it, and that
     * insert's count is visible to whoever was handed the pointer. Sampled mode lives on this. */
    if (!__atomic_load_n(&s->count, __ATOMIC_RELAXED)) return false;
    ml_spin_lock(&s->lock);
    if (!s->count) { ml_spin_unlock(&s->lock); return false; }
    uint32_t i = (uint32_t)h & s->mask;
    while (s->slots[i].ptr != ptr) {
        if (!s->slots[i].ptr) { ml_spin_unlock(&s->lock); return false; }
        i = (i + 1) & s->mask;
    }
    *size = s->slots[i].packed >> 20;
    *site = (uint32_t)(s->slots[i].packed & SITE_MASK);
    /* backward-shift deletion: move later members of the probe run into the hole */
    uint32_t hole = i;
    for (uint32_t j = (i + 1) & s->mask; s->slots[j].ptr; j = (j + 1) & s->mask) {
        uint32_t home = (uint32_t)ml_live_hash(s->slots[j].ptr) & s->mask;
        /* entry j may move to hole iff home is not cyclically within (hole, j] */
        if (((j - home) & s->mask) >= ((j - hole) & s->mask)) {
            s->slots[hole] = s->slots[j];
            hole = j;
        }
    }
    s->slots[hole].ptr = 0;
    s->slots[hole].packed = 0;
    __atomic_store_n(&s->count, s->count - 1, __ATOMIC_RELAXED);
    if (ml_config.sample_rate) filter_add(h, -1);
    ml_spin_unlock(&s->lock);
    return true;
}

void ml_live_foreach(ml_live_visit *visit, void *arg) {
    for (unsigned w = 0; w < ML_LIVE_SHARDS / 64; w++) {
        for (uint64_t bits = atomic_load_explicit(&used_shards[w], memory_order_acquire); bits; bits &= bits - 1) {
            struct shard *s = &shards[w * 64 + (unsigned)__builtin_ctzll(bits)];
            ml_spin_lock(&s->lock);
            for (uint32_t i = 0; s->count && i <= s->mask; i++)
                if (s->slots[i].ptr)
                    visit(s->slots[i].ptr, s->slots[i].packed >> 20, (uint32_t)(s->slots[i].packed & SITE_MASK), arg);
            ml_spin_unlock(&s->lock);
        }
    }
}

void ml_live_lock_all(void) {
    for (unsigned k = 0; k < ML_LIVE_SHARDS; k++) ml_spin_lock(&shards[k].lock);
}
void ml_live_unlock_all(void) {
    for (unsigned k = 0; k < ML_LIVE_SHARDS; k++) ml_spin_unlock(&shards[k].lock);
}

uint64_t ml_live_memory_bytes(void) { return atomic_load_explicit(&table_bytes, memory_order_relaxed); }
