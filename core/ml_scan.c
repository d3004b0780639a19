/* ml_scan.c — the leak scan: classifies every live block by reachability, as valgrind memcheck and
 * LeakSanitizer do, without ptrace (so it works where attaching is refused).
 *
 * Data model: `blocks`, a snapshot of the live map and of the anonymous mappings, sorted by address;
 * per block a state (unreached, reachable, possible, indirect) and the bytes/blocks it leads as a
 * clique. Algorithm (valgrind's):
 *   1. roots — writable segments of every loaded object but memlens, each registered thread's stack
 *      (from its stack pointer when /proc/self/task/TID/syscall shows it, else the whole stack), its
 *      static TLS, thread descriptor and DTV, and the exiting thread's spilled registers — are read
 *      word by word; a word equal to a block's start marks it reachable, a word inside it possible;
 *      blocks are scanned in turn (a possible block passes on only "possible").
 *   2. every block still unreached, in address order, leads a clique: what it reaches (start or
 *      interior pointer) and nothing else did becomes indirect, charged to the leader; an earlier
 *      leader reached this way joins with its clique. So a lost cycle has one definite block.
 * All memory is read with process_vm_readv on our own pid (allowed without ptrace rights: same
 * thread group), so a block unmapped by a still-running thread gives EFAULT, not a crash. */
#define _GNU_SOURCE
#include "ml.h"
#include "ml_prim.h"

#include <dlfcn.h>
#include <errno.h>
#include <link.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

enum { UNREACHED, REACHABLE, POSSIBLE, INDIRECT };

struct block { uintptr_t start; uint64_t size; uint32_t site; uint32_t heap; };
/* Blocks [first, end) covering [lo, hi); page_first + page_base indexes its pages, or no index
 * (page_base == SIZE_MAX) when it would be much larger than the blocks themselves. */
struct cluster { uintptr_t lo, hi; uint32_t first, end; size_t page_base; };
#define CLUSTER_GAP (16u << 20)

struct scan {
    struct block *blocks;
    uint8_t *state;
    uint64_t *lead_bytes, *lead_blocks;   /* what a clique leader drags with it */
    uint32_t *stack;                      /* work list of block indexes */
    struct cluster *clusters;             /* runs of blocks without big gaps, each with a page index */
    size_t cluster_count;
    uint32_t *page_first;                 /* per 4 KiB page of a cluster: last block starting at or before it */
    size_t pages;
    size_t count, cap, depth, stack_cap;
    uintptr_t lowest, highest;            /* bounds of all blocks: a quick filter */
    uint32_t leader;                      /* clique phase: the current leader */
    bool clique;
    bool failed_read, overflow;
    bool direct;                          /* no other program thread runs: read memory in place */
    pid_t pid;
    uint64_t root_bytes;
    char buf[64 << 10];
};

/* True when this thread and memlens's own (which free nothing of the program's) are all that run. */
static bool only_thread_left(void) {
    char status[4096];
    if (ml_read_file("/proc/self/status", status, sizeof status) <= 0) return false;
    uint64_t threads = ml_proc_status_kb(status, "Threads") / 1024;
    return threads >= 1 && threads <= 1 + (uint64_t)atomic_load(&ml_internal_threads);
}

static void *grab(size_t bytes) { return ml_os_alloc(bytes ? bytes : 1); }

const char *ml_class_name(enum ml_class c) {
    static const char *const names[] = { "definite", "indirect", "possible", "reachable" };
    return (unsigned)c < ML_CLASS_COUNT ? names[c] : "unknown";
}

static void add_block(uintptr_t ptr, uint64_t size, uint32_t site, void *arg) {
    struct scan *s = arg;
    if (s->count < s->cap) s->blocks[s->count++] = (struct block){ ptr, size, site, 1 };
}

static void add_mapping(uintptr_t start, uint64_t len, uint32_t site, unsigned kind, void *arg) {
    struct scan *s = arg;
    if (kind == ML_KIND_MMAP_ANON && s->count < s->cap) s->blocks[s->count++] = (struct block){ start, len, site, 0 };
}

static int by_start(const void *a, const void *b) {
    uintptr_t x = ((const struct block *)a)->start, y = ((const struct block *)b)->start;
    return x < y ? -1 : x > y;
}

/* Sorts blocks by start address: an LSD radix sort, 11 bits a pass over the bits in which the
 * addresses differ (three passes for blocks within 8 GiB), in memory of its own; qsort (which may
 * use the program's malloc) only if that memory cannot be had. */
static void sort_blocks(struct block *blocks, size_t n) {
    enum { DIGIT = 11, BUCKETS = 1 << DIGIT };
    if (n < 2) return;
    uintptr_t lo = UINTPTR_MAX, hi = 0;
    for (size_t i = 0; i < n; i++) {
        if (blocks[i].start < lo) lo = blocks[i].start;
        if (blocks[i].start > hi) hi = blocks[i].start;
    }
    unsigned bits = hi > lo ? 64 - (unsigned)__builtin_clzll((unsigned long long)(hi - lo)) : 0;
    struct block *tmp = bits ? grab(n * sizeof *tmp) : NULL;
    if (!tmp) {
        if (bits) qsort(blocks, n, sizeof *blocks, by_start);
        return;
    }
    static size_t offset[BUCKETS];   /* only the exit scan sorts, once */
    struct block *src = blocks, *dst = tmp;
    for (unsigned shift = 0; shift < bits; shift += DIGIT) {
        memset(offset, 0, sizeof offset);
        for (size_t i = 0; i < n; i++) offset[((src[i].start - lo) >> shift) & (BUCKETS - 1)]++;
        size_t sum = 0;
        for (unsigned d = 0; d < BUCKETS; d++) {
            size_t c = offset[d];
            offset[d] = sum;
            sum += c;
        }
        for (size_t i = 0; i < n; i++) dst[offset[((src[i].start - lo) >> shift) & (BUCKETS - 1)]++] = src[i];
        struct block *t = src;
        src = dst;
        dst = t;
    }
    if (src != blocks) memcpy(blocks, src, n * sizeof *blocks);
    ml_os_free(tmp, n * sizeof *tmp);
}

/* The block containing addr (a zero-sized block only at its start), or -1. */
/* The block containing addr (a zero-sized block only at its start), or -1: find the cluster, then
 * its page index gives the last block starting at or before addr's page; a few steps reach addr. */
static ssize_t find(const struct scan *s, uintptr_t addr) {
    size_t lo = 0, hi = s->cluster_count;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (s->clusters[mid].hi <= addr) lo = mid + 1; else hi = mid;
    }
    if (lo == s->cluster_count || s->clusters[lo].lo > addr) return -1;
    const struct cluster *c = &s->clusters[lo];
    uint32_t i;
    if (c->page_base != SIZE_MAX) {
        i = s->page_first[c->page_base + ((addr - (c->lo & ~(uintptr_t)4095)) >> 12)];
        while (i + 1 < c->end && s->blocks[i + 1].start <= addr) i++;
    } else {
        uint32_t a = c->first, b = c->end;   /* first block with start > addr, minus one */
        while (a < b) {
            uint32_t mid = a + (b - a) / 2;
            if (s->blocks[mid].start <= addr) a = mid + 1; else b = mid;
        }
        i = a - 1;
    }
    const struct block *blk = &s->blocks[i];
    if (blk->start > addr) return -1;
    if (addr < blk->start + blk->size || addr == blk->start) return (ssize_t)i;
    return -1;
}

/* Splits the sorted blocks where they are more than CLUSTER_GAP apart and indexes each cluster's
 * pages when that costs at most 16 index entries per block. Returns true when out of memory. */
static bool build_index(struct scan *s) {
    size_t n = s->count, clusters = 0, pages = 0;
    s->clusters = grab(n * sizeof *s->clusters);
    if (!s->clusters) return true;
    for (uint32_t i = 0; i < n; i++) {
        uintptr_t end = s->blocks[i].start + s->blocks[i].size + 1;
        struct cluster *c = clusters ? &s->clusters[clusters - 1] : NULL;
        if (c && s->blocks[i].start < c->hi + CLUSTER_GAP) {
            if (end > c->hi) c->hi = end;
            c->end = i + 1;
        } else {
            s->clusters[clusters++] = (struct cluster){ s->blocks[i].start, end, i, i + 1, SIZE_MAX };
        }
    }
    for (size_t k = 0; k < clusters; k++) {
        struct cluster *c = &s->clusters[k];
        size_t span = ((c->hi - (c->lo & ~(uintptr_t)4095)) >> 12) + 1;
        if (span <= 16 * (size_t)(c->end - c->first) + 1024) { c->page_base = pages; pages += span; }
    }
    s->cluster_count = clusters;
    s->pages = pages;
    s->page_first = grab(pages * sizeof *s->page_first);
    if (!s->page_first) return true;
    for (size_t k = 0; k < clusters; k++) {
        struct cluster *c = &s->clusters[k];
        if (c->page_base == SIZE_MAX) continue;
        size_t span = ((c->hi - (c->lo & ~(uintptr_t)4095)) >> 12) + 1;
        uint32_t i = c->first;
        for (size_t page = 0; page < span; page++) {
            uintptr_t at = (c->lo & ~(uintptr_t)4095) + (page << 12);
            while (i + 1 < c->end && s->blocks[i + 1].start <= at) i++;
            s->page_first[c->page_base + page] = i;   /* blocks[i] starts at or before `at`, or is the first */
        }
    }
    return false;
}

/* glibc keeps a pointer to every chunk boundary it manages (the top chunk, free lists): for a block
 * whose request reaches into its last 8 usable bytes, the next chunk's header lies inside it. Such
 * a word is the allocator's, not the program's (valgrind, which replaces malloc, never sees it). */
static bool allocator_boundary(const struct block *b, uintptr_t word) {
    if (!b->heap) return false;
    uint64_t chunk = (b->size + 8 + 15) & ~15ull;
    if (chunk < 32) chunk = 32;
    return word == b->start + chunk - 16;
}

static void push(struct scan *s, uint32_t i) {
    if (s->depth < s->stack_cap) s->stack[s->depth++] = i;
    else s->overflow = true;
}

static void found(struct scan *s, uintptr_t word, bool definite_source) {
    ssize_t i = find(s, word);
    if (i < 0) return;
    uint8_t *st = &s->state[i];
    if (s->clique) {
        if (*st != UNREACHED || (uint32_t)i == s->leader) return;
        *st = INDIRECT;
        s->lead_bytes[s->leader] += s->blocks[i].size + s->lead_bytes[i];
        s->lead_blocks[s->leader] += 1 + s->lead_blocks[i];
        s->lead_bytes[i] = s->lead_blocks[i] = 0;
        push(s, (uint32_t)i);
        return;
    }
    bool at_start = word == s->blocks[i].start;
    if (!at_start && allocator_boundary(&s->blocks[i], word)) return;
    if (at_start && definite_source) {
        if (*st != REACHABLE) { *st = REACHABLE; push(s, (uint32_t)i); }
    } else if (*st == UNREACHED) {
        *st = POSSIBLE;
        push(s, (uint32_t)i);
    }
}

/* Reads [addr, addr+len) of our own memory and looks at every aligned word. */
static void scan_words(struct scan *s, const uintptr_t *w, size_t count, bool definite_source) {
    for (size_t k = 0; k < count; k++)
        if (w[k] >= s->lowest && w[k] < s->highest) found(s, w[k], definite_source);
}

/* Looks at every aligned word of [addr, addr+len) of our own memory. `direct`: the range cannot go
 * away under us (no other thread of the program runs), so it is read in place; otherwise it is copied
 * with process_vm_readv, which fails on an unmapped page instead of faulting. */
static void scan_range(struct scan *s, uintptr_t addr, uint64_t len, bool definite_source, bool direct) {
    uintptr_t p = (addr + 7) & ~(uintptr_t)7, end = addr + len;
    if (direct) {
        if (end > p) scan_words(s, (const uintptr_t *)p, (end - p) / 8, definite_source);
        return;
    }
    while (p + 8 <= end) {
        size_t chunk = end - p > sizeof s->buf ? sizeof s->buf : (size_t)((end - p) & ~(uintptr_t)7);
        struct iovec local = { s->buf, chunk }, remote = { (void *)p, chunk };
        ssize_t got = process_vm_readv(s->pid, &local, 1, &remote, 1, 0);
        if (got <= 0) {                   /* unmapped page: skip it */
            if (got < 0 && errno != EFAULT) s->failed_read = true;
            p = (p | 4095) + 1;
            continue;
        }
        scan_words(s, (const uintptr_t *)s->buf, (size_t)got / 8, definite_source);
        p += (size_t)got;
    }
}

static void drain(struct scan *s) {
    while (s->depth) {
        uint32_t i = s->stack[--s->depth];
        scan_range(s, s->blocks[i].start, s->blocks[i].size, s->clique || s->state[i] == REACHABLE, s->direct);
    }
}

static void root(struct scan *s, uintptr_t addr, uint64_t len, bool direct) {
    s->root_bytes += len;
    scan_range(s, addr, len, true, direct);
    drain(s);
}

static int segment_roots(struct dl_phdr_info *info, size_t size, void *arg) {
    (void)size;
    struct scan *s = arg;
    uintptr_t me = (uintptr_t)&ml_scan_leaks;
    for (int i = 0; i < info->dlpi_phnum; i++) {   /* skip memlens itself: its tables are not the program's */
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
        if (ph->p_type == PT_LOAD && me >= lo && me < lo + ph->p_memsz) return 0;
    }
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type == PT_LOAD && (ph->p_flags & PF_W)) root(s, info->dlpi_addr + ph->p_vaddr, ph->p_memsz, s->direct);
    }
    return 0;
}

/* The stack pointer of a thread blocked in a system call ("nr a1..a6 sp pc"), or 0. */
static uintptr_t blocked_sp(pid_t tid) {
    char path[64], text[256];
    size_t n = ml_strlcpy(path, "/proc/self/task/", sizeof path);
    n += ml_fmt_u64(path + n, (uint64_t)tid);
    ml_strlcpy(path + n, "/syscall", sizeof path - n);
    /* "running" while the thread is on a CPU: look again a few times before scanning its whole stack */
    for (int attempt = 0;; attempt++) {
        if (ml_read_file(path, text, sizeof text) <= 0) return 0;
        if (text[0] >= '0' && text[0] <= '9') break;
        if (attempt == 4) return 0;
        ml_sleep_ns(200000);
    }
    const char *p = text;
    for (int field = 0; field < 7 && p; field++) { p = strchr(p, ' '); if (p) p++; }
    return p ? (uintptr_t)strtoull(p, NULL, 16) : 0;
}

/* The main thread's stack: [sp, __libc_stack_end]. */
extern void *__libc_stack_end;

struct thread_ctx { struct scan *s; pid_t self_tid; uintptr_t self_sp; unsigned threads; };

static void tls_roots(struct scan *s, const struct ml_thread_roots *r) {
    uintptr_t tp = r->thread_pointer;
    static size_t static_size;
    if (!static_size) {
        void (*info)(size_t *, size_t *) = (void (*)(size_t *, size_t *))dlsym(RTLD_DEFAULT, "_dl_get_tls_static_info");
        size_t align = 0;
        if (info) info(&static_size, &align);
        if (!static_size) static_size = 64 << 10;
    }
    /* Static TLS lies below the thread pointer, the descriptor above it. glibc's static size counts the
     * descriptor too: on a thread whose block ends at stack_hi, the part of the descriptor above tp is
     * not below it, and what is below that is the stack's (dead, for an exited thread) top. */
    size_t below = static_size, above = 4096;
    if (r->tid != getpid() && r->stack_hi > tp) {
        size_t descriptor = r->stack_hi - tp;
        below = descriptor < static_size ? static_size - descriptor : 0;
        above = descriptor;
    }
    root(s, tp - below, below + above, false);
    uintptr_t dtv = 0;                               /* tcbhead_t: tcb, dtv, self, … */
    struct iovec local = { &dtv, sizeof dtv }, remote = { (void *)(tp + sizeof(void *)), sizeof dtv };
    if (process_vm_readv(s->pid, &local, 1, &remote, 1, 0) != sizeof dtv || !dtv) return;
    uint64_t entries = 0;                            /* dtv[-1].counter: the vector's length */
    struct iovec l2 = { &entries, sizeof entries }, r2 = { (void *)(dtv - 16), sizeof entries };
    if (process_vm_readv(s->pid, &l2, 1, &r2, 1, 0) == sizeof entries && entries < (1u << 20))
        root(s, dtv - 16, (entries + 2) * 16, false);
}

static void thread_roots(const struct ml_thread_roots *r, void *arg) {
    struct thread_ctx *ctx = arg;
    struct scan *s = ctx->s;
    bool main_thread = r->tid == getpid();
    uintptr_t lo = r->stack_lo, hi = main_thread ? (uintptr_t)__libc_stack_end + sizeof(void *) : r->stack_hi;
    uintptr_t sp = r->tid == ctx->self_tid ? ctx->self_sp : blocked_sp(r->tid);
    if (sp && hi && sp < hi && (sp >= lo || main_thread)) lo = sp > 128 ? sp - 128 : sp;   /* red zone */
    else if (main_thread) lo = 0;
    if (lo && hi > lo) root(s, lo, hi - lo, s->direct && r->tid == ctx->self_tid);
    else if (main_thread) {
        s->failed_read = true;           /* main thread's stack not located: scanned only its TLS */
    }
    if (r->thread_pointer) tls_roots(s, r);
    ctx->threads++;
}

/* An exited thread whose descriptor glibc keeps cached: its DTV and TLS blocks are still pointed to
 * from there (valgrind sees them through the cached stack); its dead stack frames are not roots. */
static void dead_thread_roots(const struct ml_thread_roots *r, void *arg) {
    struct thread_ctx *ctx = arg;
    if (r->thread_pointer) tls_roots(ctx->s, r);
}


bool ml_scan_leaks(ml_leak_emit *emit, void *arg, struct ml_scan_result *result) {
    uint64_t t0 = ml_monotonic_ns();
    memset(result, 0, sizeof *result);
    struct scan *s = grab(sizeof *s);
    if (!s) return true;
    size_t cap = (size_t)atomic_load(&ml_heap_live) / 16 + 1024;   /* a first guess; grown below */
    for (;;) {
        s->cap = cap;
        s->blocks = grab(cap * sizeof *s->blocks);
        if (!s->blocks) { ml_os_free(s, sizeof *s); return true; }
        s->count = 0;
        ml_live_foreach(add_block, s);
        ml_maps_lock();
        ml_maps_foreach(add_mapping, s);
        ml_maps_unlock();
        if (s->count < s->cap) break;
        ml_os_free(s->blocks, cap * sizeof *s->blocks);
        cap *= 4;
    }
    size_t n = s->count;
    sort_blocks(s->blocks, n);
    s->pid = getpid();
    s->direct = only_thread_left();
    s->state = grab(n);
    s->lead_bytes = grab(n * sizeof *s->lead_bytes);
    s->lead_blocks = grab(n * sizeof *s->lead_blocks);
    s->stack_cap = 2 * n + 16;
    s->stack = grab(s->stack_cap * sizeof *s->stack);
    bool ok = s->state && s->lead_bytes && s->lead_blocks && s->stack;
    if (ok && n) {
        s->lowest = s->blocks[0].start;
        s->highest = 0;
        for (size_t i = 0; i < n; i++)
            if (s->blocks[i].start + s->blocks[i].size + 1 > s->highest) s->highest = s->blocks[i].start + s->blocks[i].size + 1;
        if (build_index(s)) ok = false;
    }
    if (ok && n) {
        /* 1. from the roots */
        __builtin_unwind_init();                      /* spill callee-saved registers onto this stack */
        volatile uintptr_t here = (uintptr_t)__builtin_frame_address(0);
        struct thread_ctx ctx = { s, ml_gettid(), here, 0 };
        dl_iterate_phdr(segment_roots, s);
        ml_threads_roots(thread_roots, &ctx);
        ml_dead_threads_roots(dead_thread_roots, &ctx);
        if (ctx.threads == 0 || !ml_tls.thread) {      /* the exiting thread never allocated: scan it too */
            struct ml_thread_roots me = { ctx.self_tid, (uintptr_t)pthread_self(), 0, 0 };
            if (me.tid != getpid()) {
                pthread_attr_t attr;
                void *addr;
                size_t size;
                if (pthread_getattr_np(pthread_self(), &attr) == 0) {
                    if (pthread_attr_getstack(&attr, &addr, &size) == 0) { me.stack_lo = (uintptr_t)addr; me.stack_hi = me.stack_lo + size; }
                    pthread_attr_destroy(&attr);
                }
            }
            thread_roots(&me, &ctx);
        }
        result->threads = ctx.threads;
        /* 2. cliques of what nothing reached */
        s->clique = true;
        for (size_t i = 0; i < n; i++) {
            if (s->state[i] != UNREACHED) continue;
            s->leader = (uint32_t)i;
            push(s, (uint32_t)i);
            drain(s);
        }
    }
    /* per (site, class) rows: sort indexes by site would need memory; sites are dense ids, so
     * accumulate into arrays indexed by site instead */
    uint32_t sites = ml_sites_count();
    struct ml_leak_row *rows = ok ? grab((size_t)sites * ML_CLASS_COUNT * sizeof *rows) : NULL;
    if (rows) {
        for (size_t i = 0; i < n; i++) {
            const struct block *b = &s->blocks[i];
            enum ml_class c = s->state[i] == REACHABLE ? ML_CLASS_REACHABLE : s->state[i] == POSSIBLE ? ML_CLASS_POSSIBLE
                            : s->state[i] == INDIRECT ? ML_CLASS_INDIRECT : ML_CLASS_DEFINITE;
            if (b->site >= sites) continue;
            struct ml_leak_row *r = &rows[(size_t)b->site * ML_CLASS_COUNT + c];
            r->site = b->site;
            r->class_ = (uint8_t)c;
            r->bytes += b->size;
            r->blocks++;
            r->indirect_bytes += s->lead_bytes[i];
            r->indirect_blocks += s->lead_blocks[i];
            result->bytes[c] += b->size;
            result->blocks[c]++;
        }
        for (size_t k = 0; k < (size_t)sites * ML_CLASS_COUNT; k++)
            if (rows[k].blocks) emit(&rows[k], arg);
        ml_os_free(rows, (size_t)sites * ML_CLASS_COUNT * sizeof *rows);
    }
    result->complete = ok && rows && !s->failed_read && !s->overflow;
    if (!result->complete) result->message = !ok || !rows ? "out of memory for the scan" : "some memory could not be read";
    result->root_bytes = s->root_bytes;
    ml_os_free(s->blocks, s->cap * sizeof *s->blocks);
    ml_os_free(s->state, n);
    ml_os_free(s->lead_bytes, n * sizeof *s->lead_bytes);
    ml_os_free(s->lead_blocks, n * sizeof *s->lead_blocks);
    ml_os_free(s->stack, s->stack_cap * sizeof *s->stack);
    if (s->page_first) ml_os_free(s->page_first, s->pages * sizeof *s->page_first);
    if (s->clusters) ml_os_free(s->clusters, n * sizeof *s->clusters);
    ml_os_free(s, sizeof *s);
    result->scan_ns = ml_monotonic_ns() - t0;
    return !ok;
}
