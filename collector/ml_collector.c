/* ml_collector.c — the collector: a thread inside the traced process that, every interval, merges the
 * per-thread counters and writes the stream (new modules, new sites, large operations, per-site
 * deltas, a process snapshot). It blocks every signal, never uses stdio, allocates nothing through the
 * host's malloc (its TLS guard is held for its whole life) and is never joined: the final flush runs
 * from an exit handler registered with on_exit (no DSO handle) so it runs after the program's own
 * handlers and destructors, and from the _exit and exec interposers.
 *
 * `flush_lock` serialises every writer of the stream (collector thread, exit, exec, dlclose, fork).
 * The arrays `last` (what was already written per site) and `peak` (running maximum of live bytes
 * per site) are protected by it, and so is the state of the live analysis (ml_trends.c, ml_alerts.c):
 * after each snapshot the trends of the process metrics and of the largest sites are analysed and the
 * alert rules evaluated. */
#define _GNU_SOURCE
#include "ml_collector.h"
#include "ml_alerts.h"
#include "ml_control.h"
#include "ml.h"
#include "ml_modules.h"
#include "ml_out.h"
#include "ml_prim.h"
#include "ml_trends.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <sys/syscall.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <unistd.h>


static pthread_mutex_t flush_lock = PTHREAD_MUTEX_INITIALIZER;
static struct ml_counters *totals, *last;  /* [ML_MAX_SITES] */
static uint64_t *peak;                     /* [ML_MAX_SITES] */
static uint32_t emitted_sites = 1;         /* sites [1, emitted_sites) have a site record in this stream */
static bool finished;
static _Atomic bool thread_running;
static char out_dir[4096];
static char parent_stream[96];
static bool is_fork_child;
static _Atomic int init_state;             /* 0 not yet, 1 running, 2 done */
static pid_t stream_pid;                   /* the process that owns the stream */

/* A vfork child shares our memory but is another process: it must not finish the parent's stream. */
static bool foreign_process(void) { return stream_pid && getpid() != stream_pid; }

static void write_header(void) {
    char argv_buf[16384], exe[4096];
    ssize_t n = ml_read_file("/proc/self/cmdline", argv_buf, sizeof argv_buf);
    ssize_t e = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[e > 0 ? e : 0] = 0;
    ml_out_begin("header");
    ml_out_str("format", "memlens");
    ml_out_u64("version", 1);
    ml_out_u64("pid", (uint64_t)getpid());
    ml_out_u64("ppid", (uint64_t)getppid());
    ml_out_str("exe", exe);
    ml_out_key("argv");
    ml_out_raw("[");
    for (ssize_t i = 0, first = 1; n > 0 && i < n; first = 0) {
        size_t len = strnlen(argv_buf + i, (size_t)(n - i));
        if (!first) ml_out_raw(",");
        ml_out_string(argv_buf + i, len);
        i += (ssize_t)len + 1;
    }
    ml_out_raw("]");
    ml_out_u64("t", ml_now_ns());
    ml_out_str("mode", ml_config.sample_rate ? "sampled" : "full");
    if (ml_config.sample_rate) {
        ml_out_u64("sample_rate", ml_config.sample_rate);
        ml_out_u64("count_scale", ML_COUNT_SCALE);
    }
    ml_out_u64("depth", ml_config.depth);
    ml_out_u64("interval_ms", ml_config.interval_ns / 1000000);
    ml_out_u64("op_min", ml_config.op_min);
    ml_out_u64("seq", ml_out_seq());
    if (parent_stream[0]) ml_out_str("parent", parent_stream);
    ml_out_key("fork");
    ml_out_raw(is_fork_child ? "true" : "false");
    ml_out_end();
    ml_out_flush();
}

static bool open_stream(void) {
    if (ml_out_open(out_dir)) return true;
    stream_pid = getpid();
    if (!parent_stream[0] && ml_out_seq() > 0) {   /* a new image after exec: the previous stream of this pid */
        size_t n = ml_strlcpy(parent_stream, "memlens.", sizeof parent_stream);
        n += ml_fmt_u64(parent_stream + n, (uint64_t)stream_pid);
        parent_stream[n++] = '.';
        n += ml_fmt_u64(parent_stream + n, ml_out_seq() - 1);
        ml_strlcpy(parent_stream + n, ".jsonl", sizeof parent_stream - n);
    }
    write_header();
    ml_trends_reset(ml_config.window);
    ml_alerts_reset();
    ml_modules_reset_emitted();
    ml_modules_refresh(true);
    return false;
}

static _Atomic int exit_status = -1;
void ml_collector_note_exit_status(int status) { atomic_store(&exit_status, status & 0xff); }

/* Registered with on_exit, which passes the status also when main returns. */
static void at_exit(int status, void *arg) {
    (void)arg;
    int noted = atomic_load(&exit_status);
    ml_collector_finish("exit", noted >= 0 ? noted : status & 0xff, NULL);
}

void ml_runtime_init(void) {
    int expected = 0;
    if (!atomic_compare_exchange_strong(&init_state, &expected, 1)) return;
    ml_tls.guard++;
    int saved_errno = errno;
    bool off = getauxval(AT_SECURE) != 0;   /* setuid/setgid: never traced */
    if (!off && ml_config_load(&ml_config)) off = true;
    if (!off && ml_track_init()) { ml_stderr("cannot reserve memory for tracking; the program runs untracked", NULL, NULL); off = true; }
    if (!off) {
        totals = ml_os_alloc(ML_MAX_SITES * sizeof *totals);
        last = ml_os_alloc(ML_MAX_SITES * sizeof *last);
        peak = ml_os_alloc(ML_MAX_SITES * sizeof *peak);
        if (!totals || !last || !peak) off = true;
    }
    if (!off) {
        if (ml_config.out_dir[0]) ml_strlcpy(out_dir, ml_config.out_dir, sizeof out_dir);
        else {
            size_t n = ml_strlcpy(out_dir, "./memlens-", sizeof out_dir);
            n += ml_strlcpy(out_dir + n, program_invocation_short_name, 256);
            out_dir[n++] = '-';
            ml_fmt_u64(out_dir + n, (uint64_t)getpid());
        }
        ml_cgroup_init();
        pthread_mutex_lock(&flush_lock);
        off = open_stream();
        pthread_mutex_unlock(&flush_lock);
    }
    /* on_exit has no DSO handle: it runs at exit, after the handlers the program registers later */
    if (!off) on_exit(at_exit, NULL);
    atomic_store(&ml_state, off ? ML_STATE_DISABLED : ML_STATE_ON);
    atomic_store(&init_state, 2);
    errno = saved_errno;
    ml_tls.guard--;
}

/* ---- flushing ---- */

static void write_site(const struct ml_site *s) {
    ml_out_begin("site");
    ml_out_u64("id", s->id);
    ml_out_str("kind", ml_kind_name(s->kind));
    ml_out_key("frames");
    ml_out_raw("[");
    bool first = true;
    for (unsigned i = 0; i < s->depth; i++) {
        int id;
        uint64_t offset;
        bool self = false;
        if (!ml_modules_lookup(s->frames[i], &id, &offset, &self)) {
            ml_modules_refresh(false);
            if (!ml_modules_lookup(s->frames[i], &id, &offset, &self)) { id = -1; offset = s->frames[i]; }
        }
        if (self) continue;   /* memlens's own frames (operator new wrappers) are not the user's */
        ml_out_raw(first ? "[" : ",[");
        ml_out_inum(id);
        ml_out_raw(",");
        ml_out_num(offset);
        ml_out_raw("]");
        first = false;
    }
    ml_out_raw("]");
    ml_out_end();
}

static void write_new_sites(void) {
    uint32_t count = ml_sites_count();
    while (emitted_sites < count) {
        const struct ml_site *s = ml_site_get(emitted_sites);
        if (!s) break;   /* being published right now: next flush */
        write_site(s);
        emitted_sites++;
    }
}

static void write_op(const struct ml_op *op) {
    ml_out_begin("op");
    ml_out_u64("t", op->time_ns);
    ml_out_u64("tid", (uint64_t)op->tid);
    ml_out_str("kind", op->release ? (ml_kind_is_mmap(op->kind) ? "munmap" : "free") : ml_kind_name(op->kind));
    ml_out_u64("site", op->site);
    ml_out_u64("size", op->size);
    ml_out_u64("addr", op->addr);
    ml_out_end();
}

/* Returns the number of heap blocks live. */
static uint64_t write_site_deltas(uint64_t now) {
    ml_threads_reap();
    ml_sites_totals(totals, emitted_sites);
    bool any = false;
    uint64_t heap_blocks = 0;
    for (uint32_t s = 1; s < emitted_sites; s++) {
        struct ml_counters *t = &totals[s], *l = &last[s];
        const struct ml_site *site = ml_site_get(s);
        if (site && !ml_kind_is_mmap(site->kind)) heap_blocks += t->allocations - t->frees;
        uint64_t live = t->allocated_bytes - t->freed_bytes;
        bool peak_up = live > peak[s] && live < (1ull << 62);
        if (peak_up) peak[s] = live;
        if (!peak_up && t->allocations == l->allocations && t->frees == l->frees &&
            t->allocated_bytes == l->allocated_bytes && t->freed_bytes == l->freed_bytes) continue;
        if (!any) { ml_out_begin("sites"); ml_out_u64("t", now); ml_out_key("d"); ml_out_raw("["); }
        else ml_out_raw(",");
        any = true;
        ml_out_raw("[");
        ml_out_num(s); ml_out_raw(",");
        ml_out_num(t->allocations - l->allocations); ml_out_raw(",");
        ml_out_num(t->frees - l->frees); ml_out_raw(",");
        ml_out_num(t->allocated_bytes - l->allocated_bytes); ml_out_raw(",");
        ml_out_num(t->freed_bytes - l->freed_bytes); ml_out_raw(",");
        ml_out_num(peak[s]);
        ml_out_raw("]");
        *l = *t;
    }
    if (any) { ml_out_raw("]"); ml_out_end(); }
    return ml_config.sample_rate ? (heap_blocks + ML_COUNT_SCALE / 2) / ML_COUNT_SCALE : heap_blocks;
}

struct snapshot_values { uint64_t rss, mmap_live, cgroup_current, cgroup_limit; int64_t heap_live; bool cgroup_known; };

static void write_snapshot(uint64_t now, uint64_t heap_blocks, struct snapshot_values *values) {
    char status[8192];
    if (ml_read_file("/proc/self/status", status, sizeof status) < 0) status[0] = 0;
    uint64_t anon, file;
    ml_maps_live(&anon, &file);
    ml_out_begin("snapshot");
    ml_out_u64("t", now);
    values->rss = ml_proc_status_kb(status, "VmRSS");
    ml_out_u64("rss", values->rss);
    ml_out_u64("rss_peak", ml_proc_status_kb(status, "VmHWM"));
    ml_out_u64("rss_anon", ml_proc_status_kb(status, "RssAnon"));
    ml_out_u64("rss_file", ml_proc_status_kb(status, "RssFile"));
    ml_out_u64("rss_shmem", ml_proc_status_kb(status, "RssShmem"));
    int64_t heap_live = atomic_load(&ml_heap_live) + ml_heap_pending();
    int64_t heap_peak = atomic_load(&ml_heap_peak);
    ml_out_i64("heap_live", heap_live);
    ml_out_i64("heap_peak", heap_live > heap_peak ? heap_live : heap_peak);
    ml_out_i64("heap_blocks", (int64_t)heap_blocks);
    values->heap_live = heap_live;
    values->mmap_live = anon + file;
    ml_out_u64("mmap_live", anon + file);
    ml_out_u64("mmap_anon_live", anon);
    ml_out_u64("mmap_file_live", file);
    ml_out_u64("threads", ml_proc_status_kb(status, "Threads") / 1024);
    int fds = ml_open_fds();
    if (fds >= 0) ml_out_u64("fds", (uint64_t)fds);
    uint64_t cg_current = 0, cg_limit = 0;
    values->cgroup_known = ml_cgroup_memory(&cg_current, &cg_limit);
    values->cgroup_current = values->cgroup_known ? cg_current : 0;
    values->cgroup_limit = values->cgroup_known ? cg_limit : 0;
    if (values->cgroup_known) {
        ml_out_u64("cgroup_current", cg_current);
        if (cg_limit) ml_out_u64("cgroup_max", cg_limit);
    }
    ml_out_u64("tracker_bytes", ml_live_memory_bytes());
    ml_out_u64("dropped_ops", atomic_load(&ml_ops_dropped));
    ml_out_end();
}

static uint64_t site_live(uint32_t site, void *arg) {
    (void)arg;
    if (site >= emitted_sites) return 0;
    uint64_t live = totals[site].allocated_bytes - totals[site].freed_bytes;
    return live < (1ull << 62) ? live : 0;
}

static void site_sample(uint32_t site, void *arg, struct ml_trends_site_sample *out) {
    const struct ml_site *s = site < emitted_sites ? ml_site_get(site) : NULL;
    out->live_bytes = site_live(site, arg);
    out->allocated_bytes = site < emitted_sites ? totals[site].allocated_bytes : 0;
    out->is_mmap = s && ml_kind_is_mmap(s->kind);
}

/* The ML_ALERT_SITES sites holding the most live bytes (from `totals`), descending. */
static unsigned largest_sites(uint32_t *ids, uint64_t *live) {
    unsigned n = 0;
    for (uint32_t s = 1; s < emitted_sites; s++) {
        uint64_t v = site_live(s, NULL);
        if (!v || (n == ML_ALERT_SITES && v <= live[n - 1])) continue;
        unsigned i = n < ML_ALERT_SITES ? n++ : n - 1;
        while (i > 0 && live[i - 1] < v) { ids[i] = ids[i - 1]; live[i] = live[i - 1]; i--; }
        ids[i] = s;
        live[i] = v;
    }
    return n;
}

/* Live analysis after a snapshot: trend records, then the alert rules. Caller holds flush_lock. */
static void analyse(uint64_t now, const struct snapshot_values *values) {
    uint32_t ids[ML_ALERT_SITES];
    uint64_t live[ML_ALERT_SITES];
    unsigned n = largest_sites(ids, live);
    ml_trends_sites(now, ids, n < ML_TRENDS_TOP_SITES ? n : ML_TRENDS_TOP_SITES, site_sample, NULL);
    ml_trends_process(now, values->rss, values->heap_live, values->mmap_live);
    struct ml_alert_input input = {
        .t_ns = now, .rss = values->rss, .cgroup_known = values->cgroup_known,
        .cgroup_current = values->cgroup_current, .cgroup_limit = values->cgroup_limit,
        .top_sites = ids, .top_live = live, .top_count = n,
    };
    ml_alerts_evaluate(&input);
}

/* Caller holds flush_lock. */
static void flush_locked(void) {
    if (!ml_out_ok()) return;
    uint64_t now = ml_now_ns();
    ml_modules_refresh(false);
    struct ml_op ops[256];
    unsigned nops = 0;
    while (nops < 256 && ml_ops_pop(&ops[nops])) nops++;
    write_new_sites();
    for (unsigned i = 0; i < nops; i++) {
        if (ops[i].site >= emitted_sites) write_new_sites();
        write_op(&ops[i]);
    }
    struct snapshot_values values;
    write_snapshot(now, write_site_deltas(now), &values);
    analyse(now, &values);
    ml_out_flush();
}

struct live_sum { uint64_t *bytes; uint64_t *blocks; };
static void sum_live(uintptr_t ptr, uint64_t size, uint32_t site, void *arg);
static void sum_maps(uintptr_t start, uint64_t len, uint32_t site, unsigned kind, void *arg);

static void live_sum_release(struct live_sum *sum, uint32_t count) {
    ml_os_free(sum->bytes, count * sizeof(uint64_t));
    ml_os_free(sum->blocks, count * sizeof(uint64_t));
}

/* Every block and mapping live now, summed per site (sites < count). True when out of memory. */
static bool live_sum_collect(struct live_sum *sum, uint32_t count) {
    sum->bytes = ml_os_alloc(count * sizeof(uint64_t));
    sum->blocks = ml_os_alloc(count * sizeof(uint64_t));
    if (!sum->bytes || !sum->blocks) { live_sum_release(sum, count); return true; }
    ml_live_foreach(sum_live, sum);
    ml_maps_lock();
    ml_maps_foreach(sum_maps, sum);
    ml_maps_unlock();
    return false;
}

/* ---- control socket commands (collector thread) ---- */

static uint64_t rss_now(void) {
    char status[8192];
    return ml_read_file("/proc/self/status", status, sizeof status) > 0 ? ml_proc_status_kb(status, "VmRSS") : 0;
}

struct top_entry { uint32_t site; uint64_t live; };

/* top N: the N sites holding the most live bytes (selection into a small sorted array). */
static void control_top(struct ml_reply *r, unsigned limit) {
    enum { TOP_MAX = 100 };
    struct top_entry top[TOP_MAX];
    unsigned n = 0;
    if (limit == 0 || limit > TOP_MAX) limit = limit ? TOP_MAX : 10;
    for (uint32_t s = 1; s < emitted_sites; s++) {
        uint64_t live = totals[s].allocated_bytes - totals[s].freed_bytes;
        if (!live || live >= (1ull << 62)) continue;
        if (n == limit && live <= top[n - 1].live) continue;
        unsigned i = n < limit ? n++ : n - 1;
        while (i > 0 && top[i - 1].live < live) { top[i] = top[i - 1]; i--; }
        top[i] = (struct top_entry){ s, live };
    }
    ml_reply_raw(r, ",\"sites\":[");
    for (unsigned i = 0; i < n; i++) {
        const struct ml_site *site = ml_site_get(top[i].site);
        const struct ml_counters *c = &totals[top[i].site];
        ml_reply_raw(r, i ? ",{\"site\":" : "{\"site\":");
        ml_reply_u64(r, NULL, top[i].site);
        ml_reply_raw(r, ",\"kind\":\"");
        ml_reply_raw(r, site ? ml_kind_name(site->kind) : "unknown");
        ml_reply_raw(r, "\"");
        ml_reply_u64(r, "live_bytes", top[i].live);
        ml_reply_u64(r, "allocations", c->allocations);
        ml_reply_u64(r, "frees", c->frees);
        ml_reply_u64(r, "allocated_bytes", c->allocated_bytes);
        ml_reply_u64(r, "peak_live_bytes", peak[top[i].site]);
        ml_reply_raw(r, "}");
    }
    ml_reply_raw(r, "]");
}

static unsigned dump_count;

/* dump: every live block, summed per site, as one record in the stream (the heap-dump analog). */
static void control_dump(struct ml_reply *r) {
    uint32_t count = emitted_sites;
    struct live_sum sum;
    if (live_sum_collect(&sum, count)) { ml_reply_raw(r, ",\"error\":\"out of memory\""); return; }
    uint64_t bytes = 0, blocks = 0;
    ml_out_begin("dump");
    ml_out_u64("t", ml_now_ns());
    ml_out_u64("id", ++dump_count);
    ml_out_key("live");
    ml_out_raw("[");
    bool first = true;
    for (uint32_t s = 0; s < count; s++) {
        if (!sum.blocks[s]) continue;
        ml_out_raw(first ? "[" : ",[");
        ml_out_num(s); ml_out_raw(",");
        ml_out_num(sum.bytes[s]); ml_out_raw(",");
        ml_out_num(sum.blocks[s]); ml_out_raw("]");
        first = false;
        bytes += sum.bytes[s];
        blocks += sum.blocks[s];
    }
    ml_out_raw("]");
    ml_out_end();
    ml_out_flush();
    live_sum_release(&sum, count);
    ml_reply_u64(r, "dump", dump_count);
    ml_reply_u64(r, "bytes", bytes);
    ml_reply_u64(r, "blocks", blocks);
}

/* Caller holds flush_lock. */
static void control_command(const char *command, struct ml_reply *r) {
    ml_reply_raw(r, "{\"ok\":true");
    ml_reply_u64(r, "pid", (uint64_t)getpid());
    ml_reply_raw(r, ",\"stream\":\"");
    ml_reply_raw(r, ml_out_name());
    ml_reply_raw(r, "\"");
    if (strcmp(command, "status") == 0) {
        flush_locked();
        uint64_t anon, file;
        ml_maps_live(&anon, &file);
        ml_reply_u64(r, "rss", rss_now());
        ml_reply_i64(r, "heap_live", atomic_load(&ml_heap_live) + ml_heap_pending());
        ml_reply_i64(r, "heap_peak", atomic_load(&ml_heap_peak));
        ml_reply_u64(r, "mmap_live", anon + file);
        ml_reply_u64(r, "sites", emitted_sites - 1);
        ml_reply_u64(r, "threads", ml_threads_live());
    } else if (strncmp(command, "top", 3) == 0 && (command[3] == 0 || command[3] == ' ')) {
        uint64_t limit = 10;
        if (command[3] == ' ' && ml_parse_uint(command + 4, 1, 100, &limit)) { r->len = 0; ml_reply_raw(r, "{\"ok\":false,\"error\":\"top takes a count 1..100\"}"); return; }
        flush_locked();   /* totals fresh, and every site named has its record in the stream */
        control_top(r, (unsigned)limit);
    } else if (strcmp(command, "dump") == 0) {
        flush_locked();
        control_dump(r);
    } else if (strcmp(command, "trim") == 0) {
        uint64_t before = rss_now();
        int released = malloc_trim(0);
        uint64_t after = rss_now();
        ml_out_begin("trim");
        ml_out_u64("t", ml_now_ns());
        ml_out_u64("rss_before", before);
        ml_out_u64("rss_after", after);
        ml_out_end();
        ml_trends_note_trim(before, after);
        ml_out_flush();
        ml_reply_u64(r, "rss_before", before);
        ml_reply_u64(r, "rss_after", after);
        ml_reply_raw(r, released ? ",\"released\":true" : ",\"released\":false");
    } else if (strcmp(command, "reset-peak") == 0) {
        atomic_store(&ml_heap_peak, atomic_load(&ml_heap_live) + ml_heap_pending());
        for (uint32_t s = 1; s < emitted_sites; s++) peak[s] = totals[s].allocated_bytes - totals[s].freed_bytes;
        int fd = (int)syscall(SYS_openat, AT_FDCWD, "/proc/self/clear_refs", O_WRONLY | O_CLOEXEC);
        if (fd >= 0) { ml_write_all(fd, "5", 1); close(fd); }   /* 5: reset the peak RSS (VmHWM) */
        ml_out_begin("reset_peak");
        ml_out_u64("t", ml_now_ns());
        ml_out_end();
        ml_out_flush();
    } else {
        r->len = 0;
        ml_reply_raw(r, "{\"ok\":false,\"error\":\"unknown command; try status, top [N], dump, trim, reset-peak\"}");
        return;
    }
    ml_reply_raw(r, "}");
}

static void control_locked(const char *command, struct ml_reply *reply) {
    pthread_mutex_lock(&flush_lock);
    if (finished) {
        ml_reply_raw(reply, "{\"ok\":false,\"error\":\"the process is exiting\"}");
    } else {
        control_command(command, reply);
    }
    pthread_mutex_unlock(&flush_lock);
}

static void *collector_main(void *arg) {
    (void)arg;
    ml_tls.guard = 1;
    atomic_fetch_add(&ml_internal_threads, 1);
    /* under the lock, and only if the process is not already going: ml_collector_finish unlinks the
     * socket under it, so a program that exits at once leaves none behind */
    pthread_mutex_lock(&flush_lock);
    if (!finished) ml_control_open(out_dir);
    pthread_mutex_unlock(&flush_lock);
    for (;;) {
        uint64_t deadline = ml_monotonic_ns() + ml_config.interval_ns;
        while (ml_control_serve(deadline, control_locked)) ml_capture_serve_load();   /* woken: see ml_collector_wake */
        pthread_mutex_lock(&flush_lock);
        bool done = finished;
        if (!done) flush_locked();
        pthread_mutex_unlock(&flush_lock);
        if (done) break;
    }
    ml_control_close(true);
    atomic_fetch_sub(&ml_internal_threads, 1);
    atomic_store(&thread_running, false);
    return NULL;
}

static void start_thread(void) {
    if (atomic_load(&ml_state) != ML_STATE_ON || atomic_exchange(&thread_running, true)) return;
    sigset_t all, old;
    sigfillset(&all);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 256 << 10);
    pthread_t thread;
    ml_tls.guard++;
    ml_control_wake_open();   /* before the thread: ml_collector_wake may be asked at once */
    pthread_sigmask(SIG_SETMASK, &all, &old);   /* the new thread inherits a full mask */
    if (pthread_create(&thread, &attr, collector_main, NULL) != 0) atomic_store(&thread_running, false);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    ml_tls.guard--;
    pthread_attr_destroy(&attr);
}

/* A thread that needs the collector now (ml_capture.c: libunwind wanted): false when no collector runs
 * to be woken. */
bool ml_collector_wake(void) {
    return atomic_load(&thread_running) && ml_control_wake();
}

/* ---- live blocks at exit ---- */

/* In sampled mode a live record holds estimates: weighted bytes, and blocks in 1/ML_COUNT_SCALE. */
static void sum_live(uintptr_t ptr, uint64_t size, uint32_t site, void *arg) {
    (void)ptr;
    struct live_sum *sum = arg;
    uint64_t count, bytes;
    ml_sample_weights(size, &count, &bytes);
    sum->bytes[site] += bytes;
    sum->blocks[site] += count;
}

static void sum_maps(uintptr_t start, uint64_t len, uint32_t site, unsigned kind, void *arg) {
    (void)start; (void)kind;
    struct live_sum *sum = arg;
    sum->bytes[site] += len;
    sum->blocks[site] += ml_config.sample_rate ? ML_COUNT_SCALE : 1;
}

static void write_live(void) {
    uint32_t count = emitted_sites;
    struct live_sum sum;
    if (live_sum_collect(&sum, count)) return;
    for (uint32_t s = 0; s < count; s++) {
        if (!sum.blocks[s]) continue;
        ml_out_begin("live");
        ml_out_u64("site", s);
        ml_out_u64("bytes", sum.bytes[s]);
        if (ml_config.sample_rate) {   /* estimates, rounded; the raw weighted count for exact sums */
            ml_out_u64("blocks", (sum.blocks[s] + ML_COUNT_SCALE / 2) / ML_COUNT_SCALE);
            ml_out_u64("scaled_blocks", sum.blocks[s]);
        } else {
            ml_out_u64("blocks", sum.blocks[s]);
        }
        ml_out_end();
    }
    live_sum_release(&sum, count);
}

static void write_leak_row(const struct ml_leak_row *row, void *arg) {
    (void)arg;
    ml_out_begin("leak");
    ml_out_u64("site", row->site);
    ml_out_str("class", ml_class_name(row->class_));
    ml_out_u64("bytes", row->bytes);
    ml_out_u64("blocks", row->blocks);
    if (row->class_ == ML_CLASS_DEFINITE || row->class_ == ML_CLASS_POSSIBLE) {
        ml_out_u64("indirect_bytes", row->indirect_bytes);
        ml_out_u64("indirect_blocks", row->indirect_blocks);
    }
    ml_out_end();
}

/* The reachability verdict; returns the bytes definitely and indirectly lost. */
static uint64_t write_leaks(void) {
    struct ml_scan_result r;
    if (ml_config.sample_rate) {   /* pointers through unsampled blocks are unknown: no verdict */
        ml_out_begin("leak_summary");
        for (int c = 0; c < ML_CLASS_COUNT; c++) {
            ml_out_key(ml_class_name((enum ml_class)c));
            ml_out_raw("{\"bytes\":0,\"blocks\":0}");
        }
        ml_out_key("complete");
        ml_out_raw("false");
        ml_out_str("message", "sampled mode: reachability is not classified");
        ml_out_end();
        return 0;
    }
    bool failed = ml_scan_leaks(write_leak_row, NULL, &r);
    ml_out_begin("leak_summary");
    for (int c = 0; c < ML_CLASS_COUNT; c++) {
        ml_out_key(ml_class_name((enum ml_class)c));
        ml_out_raw("{\"bytes\":");
        ml_out_num(r.bytes[c]);
        ml_out_raw(",\"blocks\":");
        ml_out_num(r.blocks[c]);
        ml_out_raw("}");
    }
    ml_out_u64("scan_ns", r.scan_ns);
    ml_out_u64("root_bytes", r.root_bytes);
    ml_out_u64("threads", r.threads);
    ml_out_key("complete");
    ml_out_raw(r.complete && !failed ? "true" : "false");
    if (r.message) ml_out_str("message", r.message);
    ml_out_end();
    return r.bytes[ML_CLASS_DEFINITE] + r.bytes[ML_CLASS_INDIRECT];
}

/* MEMLENS_CHECK=1: a program that exits 0 but leaks more than MEMLENS_MAX_LEAKED exits 1, as
 * LeakSanitizer's exitcode does. stdio is flushed first: exit would have done it next. */
static void check_verdict(uint64_t lost, int status) {
    if (!ml_config.check || status != 0 || lost <= ml_config.max_leaked) return;
    char line[160], num[24];
    size_t n = ml_strlcpy(line, "MEMLENS_CHECK: ", sizeof line);
    num[ml_fmt_u64(num, lost)] = 0;
    n += ml_strlcpy(line + n, num, sizeof line - n);
    n += ml_strlcpy(line + n, " bytes definitely or indirectly lost (budget ", sizeof line - n);
    num[ml_fmt_u64(num, ml_config.max_leaked)] = 0;
    n += ml_strlcpy(line + n, num, sizeof line - n);
    ml_strlcpy(line + n, "); exit status 1", sizeof line - n);
    ml_stderr(line, NULL, NULL);
    fflush(NULL);
    _exit(1);
}

void ml_collector_finish(const char *reason, int status, const char *exec_path) {
    if ((atomic_load(&ml_state) != ML_STATE_ON && !ml_out_ok()) || foreign_process()) return;
    ml_tls.guard++;
    int saved_errno = errno;
    uint64_t lost = 0;
    bool verdict = false;
    pthread_mutex_lock(&flush_lock);
    if (!finished && ml_out_ok()) {
        verdict = !exec_path;
        /* blocks freed from here on are not the program's any more: stop counting before the sums */
        if (strcmp(reason, "exec") != 0) atomic_store(&ml_state, ML_STATE_DISABLED);
        flush_locked();
        ml_alerts_write_summary(ml_now_ns());
        /* sites created by the last allocations must exist before live records name them */
        write_live();
        if (!exec_path) lost = write_leaks();
        uint64_t now = ml_now_ns();
        if (exec_path) {
            ml_out_begin("exec");
            ml_out_u64("t", now);
            ml_out_str("path", exec_path);
            ml_out_end();
        }
        ml_out_begin("end");
        ml_out_u64("t", now);
        ml_out_str("reason", reason);
        ml_out_key("status");
        if (status >= 0) ml_out_num((uint64_t)status); else ml_out_raw("null");
        const char *why = atomic_load(&ml_fail_reason);
        if (why) ml_out_str("message", why);
        ml_out_end();
        ml_out_flush();
        finished = true;
        ml_control_unlink();   /* the process is going: nobody should find a socket that no one serves */
    }
    pthread_mutex_unlock(&flush_lock);
    errno = saved_errno;
    ml_tls.guard--;
    if (verdict) check_verdict(lost, status);
}

void ml_collector_exec_failed(void) {
    if (foreign_process()) return;
    ml_tls.guard++;
    pthread_mutex_lock(&flush_lock);
    if (finished && atomic_load(&ml_state) == ML_STATE_ON) {
        ml_strlcpy(parent_stream, ml_out_name(), sizeof parent_stream);
        ml_out_close();
        emitted_sites = 1;
        memset(last, 0, ml_sites_count() * sizeof *last);
        finished = open_stream();
    }
    pthread_mutex_unlock(&flush_lock);
    ml_tls.guard--;
    start_thread();
}

void ml_collector_before_dlclose(void) {
    if (atomic_load(&ml_state) != ML_STATE_ON) return;
    ml_tls.guard++;
    pthread_mutex_lock(&flush_lock);
    if (!finished && ml_out_ok()) {
        ml_modules_refresh(false);
        write_new_sites();
        ml_out_flush();
    }
    pthread_mutex_unlock(&flush_lock);
    ml_tls.guard--;
}

/* ---- fork: hold every lock across fork so the child never inherits one held by a vanished thread ---- */

/* A fork from a signal handler that interrupted memlens on this thread (its guard is up): the
 * interrupted code may hold any of these locks, and it cannot go on before the handler returns, so
 * waiting for them would never end. No lock is taken then; the parent goes on as it was, and the
 * child, whose tables may be half-updated and whose other threads' locks may be held by threads it
 * does not have, runs untracked (a handler's child usually calls exec or _exit at once). */
static __thread bool fork_unlocked __attribute__((tls_model("initial-exec")));

static void before_fork(void) {
    fork_unlocked = ml_tls.guard > 0;
    ml_tls.guard++;
    if (fork_unlocked) return;
    pthread_mutex_lock(&flush_lock);
    ml_maps_lock();
    ml_live_lock_all();
    ml_sites_lock();
}

static void after_fork_parent(void) {
    if (!fork_unlocked) {
        ml_sites_unlock();
        ml_live_unlock_all();
        ml_maps_unlock();
        pthread_mutex_unlock(&flush_lock);
    }
    fork_unlocked = false;
    ml_tls.guard--;
}

static void after_fork_child(void) {
    if (!fork_unlocked) {
        ml_sites_unlock();
        ml_live_unlock_all();
        ml_maps_unlock();
        pthread_mutex_init(&flush_lock, NULL);
        ml_threads_after_fork_child(ml_tls.thread);
    }
    atomic_store(&thread_running, false);
    atomic_store(&ml_internal_threads, 0);   /* the collector did not survive the fork */
    ml_control_close(false);                  /* the parent's socket: ours comes with our collector */
    if (fork_unlocked) {
        fork_unlocked = false;
        atomic_store(&ml_state, ML_STATE_DISABLED);
        ml_out_close();   /* the parent's stream, unflushed: what its buffer holds is the parent's */
        ml_tls.guard--;
        return;
    }
    if (!finished && atomic_load(&ml_state) == ML_STATE_ON) {
        /* the child inherits the parent's heap (as valgrind counts it) and gets a stream of its own */
        ml_strlcpy(parent_stream, ml_out_name(), sizeof parent_stream);
        ml_out_close();
        is_fork_child = true;
        emitted_sites = 1;
        memset(last, 0, ml_sites_count() * sizeof *last);
        memset(peak, 0, ml_sites_count() * sizeof *peak);
        if (open_stream()) atomic_store(&ml_state, ML_STATE_DISABLED);
    }
    ml_tls.guard--;
    start_thread();
}

void ml_collector_start(void) {
    static bool registered;
    ml_runtime_init();
    if (atomic_load(&ml_state) != ML_STATE_ON) return;
    if (!registered) {
        registered = true;
        pthread_atfork(before_fork, after_fork_parent, after_fork_child);
    }
    start_thread();
}
