/* stream.c — reads memlens JSONL streams into ml_stream (run directories: run_dir.c).
 *
 * One pass per file with getline(); each line is parsed with jansson and dispatched on its
 * "type". Known records are checked for the fields the tools need (wrong types are errors);
 * unknown records and fields are skipped. Errors carry "FILE:LINE: reason". A line that is not
 * valid JSON is tolerated only when it is the last line of the file (a write cut by a kill).
 */
#define _GNU_SOURCE
#include "stream.h"
#include "fmt.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct parse_ctx {
    const char *path;
    size_t line;
    char *err;
    size_t errlen;
} parse_ctx;

static bool fail(parse_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool fail(parse_ctx *c, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (c->line)
        snprintf(c->err, c->errlen, "%s:%zu: %s", c->path, c->line, msg);
    else
        snprintf(c->err, c->errlen, "%s: %s", c->path, msg);
    return false;
}

bool ml_kind_is_mmap(const char *kind)
{
    return kind && strncmp(kind, "mmap_", 5) == 0;
}

/* Field getters: absent → keep *out and return true (unless required); wrong type → error. */
static bool get_int(parse_ctx *c, json_t *o, const char *key, int64_t *out, bool required)
{
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) {
        if (required)
            return fail(c, "missing integer field \"%s\"", key);
        return true;
    }
    if (!json_is_integer(v))
        return fail(c, "field \"%s\": expected an integer", key);
    *out = (int64_t)json_integer_value(v);
    return true;
}

/* *out is set to a malloc'd copy, or left untouched when absent/null. */
static bool get_str(parse_ctx *c, json_t *o, const char *key, char **out, bool required)
{
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) {
        if (required)
            return fail(c, "missing string field \"%s\"", key);
        return true;
    }
    if (!json_is_string(v))
        return fail(c, "field \"%s\": expected a string", key);
    free(*out);
    *out = ml_xstrdup(json_string_value(v));
    return true;
}

static bool parse_header(parse_ctx *c, ml_stream *s, json_t *o)
{
    json_t *fmt = json_object_get(o, "format");
    if (!json_is_string(fmt) || strcmp(json_string_value(fmt), "memlens") != 0)
        return fail(c, "not a memlens stream (header \"format\" is not \"memlens\")");
    int64_t version = 0;
    if (!get_int(c, o, "version", &version, true))
        return false;
    if (version != ML_FORMAT_VERSION)
        return fail(c, "unsupported stream format version %lld (this memlens reads version %d)",
                    (long long)version, ML_FORMAT_VERSION);
    s->ppid = -1;
    if (!get_int(c, o, "pid", &s->pid, true) || !get_int(c, o, "ppid", &s->ppid, false) ||
        !get_int(c, o, "t", &s->t, false) || !get_int(c, o, "depth", &s->depth, false) ||
        !get_int(c, o, "interval_ms", &s->interval_ms, false) ||
        !get_int(c, o, "op_min", &s->op_min, false) || !get_int(c, o, "seq", &s->seq, false) ||
        !get_str(c, o, "exe", &s->exe, false) || !get_str(c, o, "mode", &s->mode, false) ||
        !get_str(c, o, "parent", &s->parent, false))
        return false;
    s->sampled = s->mode && strcmp(s->mode, "sampled") == 0;
    s->count_scale = s->sampled ? 256 : 1;
    if (!get_int(c, o, "sample_rate", &s->sample_rate, false) ||
        !get_int(c, o, "count_scale", &s->count_scale, false))
        return false;
    if (s->count_scale <= 0)
        return fail(c, "field \"count_scale\": expected a positive integer");
    if (s->sample_rate < 0)
        return fail(c, "field \"sample_rate\": expected a non-negative integer");
    json_t *fork = json_object_get(o, "fork");
    if (fork && !json_is_boolean(fork) && !json_is_null(fork))
        return fail(c, "field \"fork\": expected a boolean");
    s->fork = json_is_true(fork);
    json_t *argv = json_object_get(o, "argv");
    if (argv && !json_is_null(argv)) {
        if (!json_is_array(argv))
            return fail(c, "field \"argv\": expected an array of strings");
        size_t n = json_array_size(argv);
        s->argv = ml_xcalloc(n + 1, sizeof *s->argv);
        for (size_t i = 0; i < n; i++) {
            json_t *a = json_array_get(argv, i);
            if (!json_is_string(a))
                return fail(c, "field \"argv\": expected an array of strings");
            s->argv[s->argc++] = ml_xstrdup(json_string_value(a));
        }
    }
    return true;
}

static bool parse_module(parse_ctx *c, ml_stream *s, json_t *o)
{
    int64_t id = 0, base = 0, size = 0;
    char *path = NULL, *build_id = NULL;
    if (!get_int(c, o, "id", &id, true) || !get_int(c, o, "base", &base, false) ||
        !get_int(c, o, "size", &size, false) || !get_str(c, o, "path", &path, false) ||
        !get_str(c, o, "build_id", &build_id, false)) {
        free(path);
        free(build_id);
        return false;
    }
    ml_module *m = ml_stream_module(s, id);
    if (m) { /* re-reported id: the latest description wins */
        free(m->path);
        free(m->build_id);
    } else {
        m = ml_xcalloc(1, sizeof *m);
        m->id = id;
        HASH_ADD(hh, s->modules, id, sizeof m->id, m);
    }
    m->path = path ? path : ml_xstrdup("");
    m->build_id = build_id;
    for (char *p = m->build_id; p && *p; p++)
        if (*p >= 'A' && *p <= 'F')
            *p = (char)(*p - 'A' + 'a');
    m->base = (uint64_t)base;
    m->size = (uint64_t)size;
    return true;
}

static bool parse_site(parse_ctx *c, ml_stream *s, json_t *o)
{
    int64_t id = 0;
    if (!get_int(c, o, "id", &id, true))
        return false;
    json_t *kind = json_object_get(o, "kind");
    if (!json_is_string(kind))
        return fail(c, "site %lld: missing string field \"kind\"", (long long)id);
    json_t *frames = json_object_get(o, "frames");
    if (!json_is_array(frames))
        return fail(c, "site %lld: missing array field \"frames\"", (long long)id);
    if (ml_stream_site(s, id))
        return true; /* duplicate: keep the first definition */
    size_t n = json_array_size(frames);
    ml_site *site = ml_xcalloc(1, sizeof *site);
    site->frames = ml_xcalloc(n, sizeof *site->frames);
    for (size_t i = 0; i < n; i++) {
        json_t *f = json_array_get(frames, i);
        json_t *mod = json_array_get(f, 0), *off = json_array_get(f, 1);
        if (!json_is_array(f) || !json_is_integer(mod) || !json_is_integer(off)) {
            free(site->frames);
            free(site);
            return fail(c, "site %lld: frame %zu is not [module, offset]", (long long)id, i);
        }
        site->frames[i].module = (int64_t)json_integer_value(mod);
        site->frames[i].offset = (uint64_t)json_integer_value(off);
    }
    site->nframes = n;
    site->id = id;
    site->kind = ml_xstrdup(json_string_value(kind));
    site->is_mmap = ml_kind_is_mmap(site->kind);
    HASH_ADD(hh, s->sites, id, sizeof site->id, site);
    s->nsites++;
    return true;
}

static bool parse_sites(parse_ctx *c, ml_stream *s, json_t *o)
{
    json_t *d = json_object_get(o, "d");
    if (!json_is_array(d))
        return fail(c, "sites: missing array field \"d\"");
    size_t n = json_array_size(d);
    for (size_t i = 0; i < n; i++) {
        json_t *row = json_array_get(d, i);
        int64_t v[6];
        if (!json_is_array(row) || json_array_size(row) < 6)
            return fail(c, "sites: row %zu is not an array of 6 integers", i);
        for (size_t k = 0; k < 6; k++) {
            json_t *x = json_array_get(row, k);
            if (!json_is_integer(x))
                return fail(c, "sites: row %zu is not an array of 6 integers", i);
            v[k] = (int64_t)json_integer_value(x);
        }
        ml_site *site = ml_stream_site(s, v[0]);
        if (!site)
            return fail(c, "sites: row %zu refers to undefined site %lld", i, (long long)v[0]);
        site->scaled_allocations += v[1]; /* rounded once, in finish_sites */
        site->scaled_frees += v[2];
        site->allocated_bytes += v[3];
        site->freed_bytes += v[4];
        if (v[5] > site->peak_live_bytes)
            site->peak_live_bytes = v[5];
    }
    return true;
}

static bool parse_snapshot(parse_ctx *c, ml_stream *s, json_t *o)
{
    ml_snapshot x = {0};
    if (!get_int(c, o, "t", &x.t, false) || !get_int(c, o, "rss", &x.rss, false) ||
        !get_int(c, o, "rss_peak", &x.rss_peak, false) ||
        !get_int(c, o, "heap_live", &x.heap_live, false) ||
        !get_int(c, o, "heap_peak", &x.heap_peak, false) ||
        !get_int(c, o, "heap_blocks", &x.heap_blocks, false) ||
        !get_int(c, o, "mmap_live", &x.mmap_live, false) ||
        !get_int(c, o, "mmap_anon_live", &x.mmap_anon_live, false) ||
        !get_int(c, o, "mmap_file_live", &x.mmap_file_live, false) ||
        !get_int(c, o, "threads", &x.threads, false) ||
        !get_int(c, o, "dropped_ops", &x.dropped_ops, false))
        return false;
    x.cgroup_current = x.cgroup_max = -1;
    if (!get_int(c, o, "cgroup_current", &x.cgroup_current, false) ||
        !get_int(c, o, "cgroup_max", &x.cgroup_max, false))
        return false;
    s->last = x;
    if (!s->has_snapshot || x.heap_peak > s->heap_peak)
        s->heap_peak = x.heap_peak;
    s->has_snapshot = true;
    return true;
}

static bool parse_op(parse_ctx *c, ml_stream *s, json_t *o)
{
    ml_op op = {0};
    int64_t addr = 0;
    op.site = -1;
    if (!get_int(c, o, "t", &op.t, false) || !get_int(c, o, "tid", &op.tid, false) ||
        !get_int(c, o, "site", &op.site, false) || !get_int(c, o, "size", &op.size, false) ||
        !get_int(c, o, "addr", &addr, false) || !get_str(c, o, "kind", &op.kind, true))
        return false;
    op.addr = (uint64_t)addr;
    if (s->nops == s->ops_cap) {
        size_t cap = s->ops_cap ? s->ops_cap * 2 : 64;
        ml_op *ops = realloc(s->ops, cap * sizeof *ops);
        if (!ops) {
            free(op.kind);
            return fail(c, "out of memory");
        }
        s->ops = ops;
        s->ops_cap = cap;
    }
    s->ops[s->nops++] = op;
    return true;
}

/* {"type":"live","site":7,"bytes":24576,"blocks":6} (+ "scaled_blocks" in sampled mode) */
static bool parse_live(parse_ctx *c, ml_stream *s, json_t *o)
{
    int64_t id = 0, bytes = 0, blocks = 0, scaled = -1;
    if (!get_int(c, o, "site", &id, true) || !get_int(c, o, "bytes", &bytes, true) ||
        !get_int(c, o, "blocks", &blocks, false) ||
        !get_int(c, o, "scaled_blocks", &scaled, false))
        return false;
    ml_site *site = ml_stream_site(s, id);
    if (!site)
        return fail(c, "live: refers to undefined site %lld", (long long)id);
    site->has_exit_live = true;
    site->exit_live_bytes += bytes;
    /* the exact weights when given; `blocks` is already rounded (rounded again in finish) */
    site->scaled_exit_live_blocks += scaled >= 0 ? scaled : blocks * s->count_scale;
    s->has_live = true;
    return true;
}

static const char *const leak_class_names[ML_LEAK_NCLASS] = {"definite", "indirect", "possible",
                                                             "reachable"};

const char *ml_leak_class_name(int cls)
{
    return cls >= 0 && cls < ML_LEAK_NCLASS ? leak_class_names[cls] : "unclassified";
}

int ml_leak_class_parse(const char *name)
{
    for (int i = 0; name && i < ML_LEAK_NCLASS; i++)
        if (strcmp(name, leak_class_names[i]) == 0)
            return i;
    return -1;
}

/* {"type":"leak","site":7,"class":"definite","bytes":48,"blocks":1,"indirect_bytes":192,…} */
static bool parse_leak(parse_ctx *c, ml_stream *s, json_t *o)
{
    int64_t id = 0, bytes = 0, blocks = 0, ibytes = 0, iblocks = 0;
    char *cls_name = NULL;
    if (!get_int(c, o, "site", &id, true) || !get_int(c, o, "bytes", &bytes, true) ||
        !get_int(c, o, "blocks", &blocks, false) ||
        !get_int(c, o, "indirect_bytes", &ibytes, false) ||
        !get_int(c, o, "indirect_blocks", &iblocks, false) ||
        !get_str(c, o, "class", &cls_name, true))
        return false;
    int cls = ml_leak_class_parse(cls_name);
    free(cls_name);
    if (cls < 0)
        return true; /* a class this reader does not know: ignored like an unknown field */
    ml_site *site = ml_stream_site(s, id);
    if (!site)
        return fail(c, "leak: refers to undefined site %lld", (long long)id);
    site->has_leak[cls] = true;
    site->leak[cls].bytes += bytes;
    site->leak[cls].blocks += blocks;
    site->leak_indirect[cls].bytes += ibytes;
    site->leak_indirect[cls].blocks += iblocks;
    s->nleak_records++;
    return true;
}

static bool parse_leak_summary(parse_ctx *c, ml_stream *s, json_t *o)
{
    for (int cls = 0; cls < ML_LEAK_NCLASS; cls++) {
        json_t *a = json_object_get(o, leak_class_names[cls]);
        ml_amount x = {0, 0};
        if (a && !json_is_null(a)) {
            if (!json_is_object(a))
                return fail(c, "leak_summary: field \"%s\": expected {bytes, blocks}",
                            leak_class_names[cls]);
            if (!get_int(c, a, "bytes", &x.bytes, false) ||
                !get_int(c, a, "blocks", &x.blocks, false))
                return false;
        }
        s->leak_total[cls] = x;
    }
    json_t *complete = json_object_get(o, "complete");
    if (complete && !json_is_boolean(complete) && !json_is_null(complete))
        return fail(c, "leak_summary: field \"complete\": expected a boolean");
    s->leak_complete = !json_is_false(complete);
    s->has_leak_summary = true;
    return get_str(c, o, "message", &s->leak_message, false) &&
           get_int(c, o, "scan_ns", &s->leak_scan_ns, false);
}

static bool parse_end(parse_ctx *c, ml_stream *s, json_t *o)
{
    s->has_end = true;
    s->end_status = ML_STATUS_UNKNOWN;
    return get_str(c, o, "reason", &s->end_reason, false) &&
           get_str(c, o, "message", &s->end_message, false) &&
           get_int(c, o, "status", &s->end_status, false) && get_int(c, o, "t", &s->end_t, false);
}

static bool parse_record(parse_ctx *c, ml_stream *s, json_t *o, bool first)
{
    if (!json_is_object(o))
        return fail(c, "record is not a JSON object");
    json_t *type = json_object_get(o, "type");
    if (!json_is_string(type))
        return fail(c, "record has no string \"type\"");
    const char *t = json_string_value(type);
    if (first) {
        if (strcmp(t, "header") != 0)
            return fail(c, "first record is \"%s\", expected a \"header\"", t);
        return parse_header(c, s, o);
    }
    if (strcmp(t, "header") == 0)
        return fail(c, "second \"header\" record");
    if (strcmp(t, "module") == 0)
        return parse_module(c, s, o);
    if (strcmp(t, "site") == 0)
        return parse_site(c, s, o);
    if (strcmp(t, "sites") == 0)
        return parse_sites(c, s, o);
    if (strcmp(t, "snapshot") == 0)
        return parse_snapshot(c, s, o);
    if (strcmp(t, "op") == 0)
        return parse_op(c, s, o);
    if (strcmp(t, "live") == 0)
        return parse_live(c, s, o);
    if (strcmp(t, "leak") == 0)
        return parse_leak(c, s, o);
    if (strcmp(t, "leak_summary") == 0)
        return parse_leak_summary(c, s, o);
    if (strcmp(t, "exec") == 0)
        return get_str(c, o, "path", &s->exec_path, false);
    if (strcmp(t, "end") == 0)
        return parse_end(c, s, o);
    return true; /* unknown record type */
}

static void finish_sites(ml_stream *s)
{
    /* A logged allocation of `size` bytes proves the site held at least that much. */
    for (size_t i = 0; i < s->nops; i++) {
        const ml_op *op = &s->ops[i];
        if (strcmp(op->kind, "free") == 0 || strcmp(op->kind, "munmap") == 0)
            continue;
        ml_site *site = ml_stream_site(s, op->site);
        if (site && op->size > site->peak_live_bytes)
            site->peak_live_bytes = op->size;
    }
    for (ml_site *site = s->sites; site; site = site->hh.next) {
        /* counts: summed scaled, rounded once per site (never per record) */
        site->allocations = ml_stream_count(s, site->scaled_allocations);
        site->frees = ml_stream_count(s, site->scaled_frees);
        site->exit_live_blocks = ml_stream_count(s, site->scaled_exit_live_blocks);
        int64_t live = site->allocated_bytes - site->freed_bytes;
        int64_t blocks = site->scaled_allocations - site->scaled_frees;
        site->live_bytes = live > 0 ? live : 0;
        site->scaled_live_blocks = blocks > 0 ? blocks : 0;
        site->live_blocks = ml_stream_count(s, site->scaled_live_blocks);
        if (site->is_mmap) {
            /* frees count munmap calls, and a partial munmap can split a mapping: the
             * counters cannot tell ranges apart, the exit `live` record can */
            if (s->has_end && site->has_exit_live)
                site->live_blocks = site->exit_live_blocks;
            else if (site->live_bytes == 0)
                site->live_blocks = 0;
            else if (site->live_blocks == 0)
                site->live_blocks = 1;
            site->scaled_live_blocks = site->live_blocks * s->count_scale;
        }
        if (site->peak_live_bytes < site->live_bytes)
            site->peak_live_bytes = site->live_bytes;
    }
    /* the shim writes a placeholder leak_summary (complete:false, all zero) in sampled mode:
     * pointers through unsampled blocks are unknown, so there is no verdict to report */
    if (s->sampled)
        s->has_leak_summary = false;
}

int64_t ml_stream_count(const ml_stream *s, int64_t scaled)
{
    int64_t scale = s->count_scale > 0 ? s->count_scale : 1;
    if (scale == 1)
        return scaled;
    int64_t half = scale / 2;
    return scaled >= 0 ? (scaled + half) / scale : -((-scaled + half) / scale);
}

ml_stream *ml_stream_new(const char *path)
{
    ml_stream *s = ml_xcalloc(1, sizeof *s);
    s->path = ml_xstrdup(path);
    const char *slash = strrchr(s->path, '/');
    s->name = slash ? slash + 1 : s->path;
    s->ppid = -1;
    return s;
}

bool ml_stream_add_record(ml_stream *s, json_t *record, size_t line, char *err, size_t errlen)
{
    parse_ctx c = {.path = s->path, .line = line, .err = err, .errlen = errlen};
    if (!parse_record(&c, s, record, line == 1))
        return false;
    s->lines++;
    return true;
}

void ml_stream_finish(ml_stream *s)
{
    finish_sites(s);
}

ml_stream *ml_stream_load(const char *path, char *err, size_t errlen)
{
    parse_ctx c = {.path = path, .line = 0, .err = err, .errlen = errlen};
    FILE *f = fopen(path, "r");
    if (!f) {
        fail(&c, "cannot open: %s", strerror(errno));
        return NULL;
    }
    ml_stream *s = ml_stream_new(path);

    char *buf = NULL;
    size_t cap = 0;
    ssize_t len;
    bool ok = true;
    while ((len = getline(&buf, &cap, f)) >= 0) {
        c.line++;
        int next = getc(f);
        bool last = next == EOF;
        if (!last)
            ungetc(next, f);
        while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
            len--;
        json_error_t jerr;
        json_t *o = json_loadb(buf, (size_t)len, 0, &jerr);
        if (!o) {
            if (last && c.line > 1) {
                s->truncated_line = true;
                break;
            }
            if (c.line == 1)
                ok = fail(&c, last ? "no complete header (stream cut before it was written?)"
                                   : "malformed JSON: %s", jerr.text);
            else
                ok = fail(&c, "malformed JSON: %s", jerr.text);
            break;
        }
        ok = ml_stream_add_record(s, o, c.line, err, errlen);
        json_decref(o);
        if (!ok)
            break;
    }
    if (ok && ferror(f))
        ok = fail(&c, "read error: %s", strerror(errno));
    if (ok && c.line == 0) {
        c.line = 0;
        ok = fail(&c, "empty stream (no header)");
    }
    free(buf);
    fclose(f);
    if (!ok) {
        ml_stream_free(s);
        return NULL;
    }
    finish_sites(s);
    return s;
}

void ml_stream_free(ml_stream *s)
{
    if (!s)
        return;
    ml_module *m, *mt;
    HASH_ITER(hh, s->modules, m, mt) {
        HASH_DEL(s->modules, m);
        free(m->path);
        free(m->build_id);
        free(m);
    }
    ml_site *site, *st;
    HASH_ITER(hh, s->sites, site, st) {
        HASH_DEL(s->sites, site);
        free(site->kind);
        free(site->frames);
        free(site);
    }
    for (size_t i = 0; i < s->nops; i++)
        free(s->ops[i].kind);
    free(s->ops);
    for (size_t i = 0; i < s->argc; i++)
        free(s->argv[i]);
    free(s->argv);
    free(s->exe);
    free(s->mode);
    free(s->parent);
    free(s->exec_path);
    free(s->end_reason);
    free(s->end_message);
    free(s->leak_message);
    free(s->path);
    free(s);
}

ml_module *ml_stream_module(const ml_stream *s, int64_t id)
{
    ml_module *m = NULL;
    HASH_FIND(hh, s->modules, &id, sizeof id, m);
    return m;
}

ml_site *ml_stream_site(const ml_stream *s, int64_t id)
{
    ml_site *site = NULL;
    HASH_FIND(hh, s->sites, &id, sizeof id, site);
    return site;
}

static int64_t entry_total(const ml_leak_entry *e)
{
    return e->direct.bytes + e->indirect.bytes;
}

static int cmp_entries(const void *a, const void *b)
{
    const ml_leak_entry *x = a, *y = b;
    int cx = x->cls < 0 ? ML_LEAK_NCLASS : x->cls, cy = y->cls < 0 ? ML_LEAK_NCLASS : y->cls;
    if (cx != cy)
        return cx < cy ? -1 : 1;
    if (entry_total(x) != entry_total(y))
        return entry_total(x) > entry_total(y) ? -1 : 1;
    if (x->direct.blocks != y->direct.blocks)
        return x->direct.blocks > y->direct.blocks ? -1 : 1;
    return x->site->id < y->site->id ? -1 : x->site->id > y->site->id;
}

size_t ml_stream_leak_entries(const ml_stream *s, bool mmap, ml_leak_entry **out)
{
    size_t n = 0, cap = s->nsites * (ML_LEAK_NCLASS + 1);
    ml_leak_entry *v = ml_xcalloc(cap, sizeof *v);
    for (const ml_site *site = s->sites; site; site = site->hh.next) {
        if (site->is_mmap != mmap)
            continue;
        ml_amount classified = {0, 0};
        if (s->has_leak_summary) {
            for (int cls = 0; cls < ML_LEAK_NCLASS; cls++) {
                if (!site->has_leak[cls] ||
                    (site->leak[cls].bytes <= 0 && site->leak[cls].blocks <= 0))
                    continue;
                v[n++] = (ml_leak_entry){site, cls, site->leak[cls], site->leak_indirect[cls]};
                classified.bytes += site->leak[cls].bytes;
                classified.blocks += site->leak[cls].blocks;
            }
        }
        /* live at exit but not (fully) classified: no verdict, or an mmap_file site */
        if (site->has_exit_live && (site->exit_live_bytes > classified.bytes ||
                                    site->exit_live_blocks > classified.blocks)) {
            ml_amount rest = {site->exit_live_bytes - classified.bytes,
                              site->exit_live_blocks - classified.blocks};
            if (rest.bytes < 0)
                rest.bytes = 0;
            if (rest.blocks < 0)
                rest.blocks = 0;
            v[n++] = (ml_leak_entry){site, -1, rest, {0, 0}};
        }
    }
    if (n > 1)
        qsort(v, n, sizeof *v, cmp_entries);
    *out = v;
    return n;
}
