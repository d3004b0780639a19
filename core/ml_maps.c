/* ml_maps.c — tracked mmap ranges: a sorted array of disjoint [start, end) intervals, each with the
 * site that mapped it and its kind (anonymous or file-backed). munmap and MAP_FIXED may cut any part
 * of a range, so a removal trims, splits or drops intervals. All fields are protected by `lock`, which
 * callers hold across the real system call so that the table and the address space never disagree.
 * Mappings are few and each costs a system call, so O(n) inserts are fine. */
#include "ml.h"
#include "ml_prim.h"
#include "ml_spin.h"

#include <string.h>

struct range { uintptr_t start, end; uint32_t site; uint32_t kind; };

static ml_spin lock;
static struct range *ranges;   /* sorted by start */
static size_t count, capacity;
static uint64_t live_bytes[2]; /* [0] anonymous, [1] file-backed */

bool ml_maps_init(void) { return false; }
void ml_maps_lock(void) { ml_spin_lock(&lock); }
void ml_maps_unlock(void) { ml_spin_unlock(&lock); }

static size_t lower_bound(uintptr_t addr) { /* first range with end > addr */
    size_t lo = 0, hi = count;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (ranges[mid].end <= addr) lo = mid + 1; else hi = mid;
    }
    return lo;
}

static bool reserve(size_t need) {
    if (need <= capacity) return false;
    size_t cap = capacity ? capacity * 2 : 1024;
    while (cap < need) cap *= 2;
    struct range *grown = ml_os_alloc(cap * sizeof *grown);
    if (!grown) return true;
    if (count) memcpy(grown, ranges, count * sizeof *ranges);
    ml_os_free(ranges, capacity * sizeof *ranges);
    ranges = grown;
    capacity = cap;
    return false;
}

static void insert_at(size_t i, struct range r) {
    memmove(&ranges[i + 1], &ranges[i], (count - i) * sizeof *ranges);
    ranges[i] = r;
    count++;
    live_bytes[r.kind == ML_KIND_MMAP_FILE] += r.end - r.start;
}

bool ml_maps_add(uintptr_t start, uint64_t len, uint32_t site, unsigned kind) {
    if (!len || reserve(count + 1)) return true;
    insert_at(lower_bound(start), (struct range){ start, start + len, site, kind });
    return false;
}

void ml_maps_remove(uintptr_t start, uint64_t len, ml_maps_removed *removed, void *arg) {
    uintptr_t end = start + len;
    size_t i = lower_bound(start);
    while (i < count && ranges[i].start < end) {
        struct range *r = &ranges[i];
        uintptr_t cut_from = r->start > start ? r->start : start;
        uintptr_t cut_to = r->end < end ? r->end : end;
        uint64_t cut = cut_to - cut_from;
        live_bytes[r->kind == ML_KIND_MMAP_FILE] -= cut;
        if (removed) removed(r->site, r->kind, cut, arg);
        if (cut_from > r->start && cut_to < r->end) {          /* hole in the middle: split */
            struct range tail = { cut_to, r->end, r->site, r->kind };
            r->end = cut_from;
            if (reserve(count + 1)) return;                     /* cannot split: keep the head only */
            live_bytes[tail.kind == ML_KIND_MMAP_FILE] -= tail.end - tail.start; /* insert_at adds it back */
            insert_at(i + 1, tail);
            return;
        }
        if (cut_from > r->start) { r->end = cut_from; i++; continue; }   /* tail cut */
        if (cut_to < r->end) { r->start = cut_to; i++; continue; }       /* head cut */
        memmove(&ranges[i], &ranges[i + 1], (count - i - 1) * sizeof *ranges);   /* whole range gone */
        count--;
    }
}

bool ml_maps_find(uintptr_t addr, uint32_t *site, unsigned *kind, uint64_t *len) {
    size_t i = lower_bound(addr);
    if (i >= count || ranges[i].start > addr) return false;
    *site = ranges[i].site;
    *kind = ranges[i].kind;
    *len = ranges[i].end - ranges[i].start;
    return true;
}

void ml_maps_foreach(ml_maps_visit *visit, void *arg) {
    for (size_t i = 0; i < count; i++) visit(ranges[i].start, ranges[i].end - ranges[i].start, ranges[i].site, ranges[i].kind, arg);
}

void ml_maps_live(uint64_t *anon_bytes, uint64_t *file_bytes) {
    *anon_bytes = live_bytes[0];
    *file_bytes = live_bytes[1];
}
