/* stream_follow.c — following the streams of a run directory as they grow (see stream_follow.h). */
#define _GNU_SOURCE
#include "stream_follow.h"
#include "cli.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const metric_names[ML_FOLLOW_NMETRICS] = {"rss", "heap", "mmap"};

void ml_follow_run_init(ml_follow_run *r, const char *dir)
{
    *r = (ml_follow_run){.dir = strdup(dir)};
    if (!r->dir)
        ml_die("out of memory");
}

void ml_follow_run_free(ml_follow_run *r)
{
    for (size_t i = 0; i < r->n; i++) {
        ml_followed *f = r->streams[i];
        if (f->fd >= 0)
            close(f->fd);
        ml_linebuf_free(&f->lines);
        ml_stream_free(f->s);
        free(f->path);
        free(f);
    }
    free(r->streams);
    free(r->dir);
    *r = (ml_follow_run){0};
}

/* memlens.<pid>.<seq>.jsonl */
static bool is_stream_name(const char *name)
{
    const char *p = name;
    if (strncmp(p, "memlens.", 8) != 0)
        return false;
    p += 8;
    for (int part = 0; part < 2; part++) {
        const char *digits = p;
        while (*p >= '0' && *p <= '9')
            p++;
        if (p == digits || *p != '.')
            return false;
        p++;
    }
    return strcmp(p, "jsonl") == 0;
}

static bool known(const ml_follow_run *r, const char *path)
{
    for (size_t i = 0; i < r->n; i++)
        if (strcmp(r->streams[i]->path, path) == 0)
            return true;
    return false;
}

static void add_stream(ml_follow_run *r, const char *path, const char *name)
{
    ml_followed *f = calloc(1, sizeof *f);
    if (!f || !(f->path = strdup(path)))
        ml_die("out of memory");
    f->name_pid = strtoll(name + 8, NULL, 10);
    f->fd = -1;
    ml_linebuf_init(&f->lines, ML_FOLLOW_LINE_MAX);
    if (r->n == r->cap) {
        r->cap = r->cap ? 2 * r->cap : 8;
        r->streams = realloc(r->streams, r->cap * sizeof *r->streams);
        if (!r->streams)
            ml_die("out of memory");
    }
    r->streams[r->n++] = f;
}

static void scan_dir(ml_follow_run *r)
{
    DIR *d = opendir(r->dir);
    if (!d)
        return; /* not created yet */
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!is_stream_name(e->d_name))
            continue;
        char *path = NULL;
        if (asprintf(&path, "%s/%s", r->dir, e->d_name) < 0)
            ml_die("out of memory");
        if (!known(r, path))
            add_stream(r, path, e->d_name);
        free(path);
    }
    closedir(d);
}

static void take_trend(ml_followed *f, json_t *o)
{
    const char *metric = json_string_value(json_object_get(o, "metric"));
    const char *pattern = json_string_value(json_object_get(o, "pattern"));
    if (!metric || !pattern)
        return;
    for (int m = 0; m < ML_FOLLOW_NMETRICS; m++) {
        if (strcmp(metric, metric_names[m]) != 0)
            continue;
        ml_trend_now *t = &f->trend[m];
        t->has = true;
        snprintf(t->pattern, sizeof t->pattern, "%s", pattern);
        t->mb_per_min = json_number_value(json_object_get(o, "mb_per_min"));
        t->confidence = json_integer_value(json_object_get(o, "confidence"));
    }
}

/* One complete line of f. */
static void take_line(ml_followed *f, const char *text, size_t len)
{
    f->line++;
    json_error_t jerr;
    json_t *o = json_loadb(text, len, 0, &jerr);
    char err[512];
    if (!o) {
        f->bad_lines++;
    } else if (f->line == 1) {
        f->s = ml_stream_new(f->path);
        if (!ml_stream_add_record(f->s, o, 1, err, sizeof err)) {
            ml_stream_free(f->s); /* not a stream: stop reading it */
            f->s = NULL;
            f->done = true;
        }
    } else if (f->s) {
        if (!ml_stream_add_record(f->s, o, f->line, err, sizeof err))
            f->bad_lines++;
        const char *type = json_string_value(json_object_get(o, "type"));
        if (type && strcmp(type, "trend") == 0)
            take_trend(f, o);
        else if (type && strcmp(type, "snapshot") == 0)
            f->snapshots++;
    }
    json_decref(o);
}

static void read_stream(ml_followed *f)
{
    if (f->done)
        return;
    if (f->fd < 0 && (f->fd = open(f->path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0)
        return;
    bool any = false;
    while (!f->done) {
        ssize_t n = ml_linebuf_read(&f->lines, f->fd);
        if (n <= 0)
            break; /* end of what was written so far (or an error: tried again next poll) */
        const char *text;
        size_t len;
        while (!f->done && (text = ml_linebuf_next(&f->lines, &len))) {
            take_line(f, text, len);
            any = true;
        }
        f->bad_lines += f->lines.dropped;
        f->lines.dropped = 0;
    }
    if (any && f->s)
        ml_stream_finish(f->s);
    if (f->s && f->s->has_end)
        f->done = true; /* nothing follows an `end` record */
    if (f->done) {
        close(f->fd);
        f->fd = -1;
        ml_linebuf_free(&f->lines);
    }
}

void ml_follow_run_poll(ml_follow_run *r, int64_t pid)
{
    scan_dir(r);
    for (size_t i = 0; i < r->n; i++)
        if (pid <= 0 || r->streams[i]->name_pid == pid)
            read_stream(r->streams[i]);
}

ml_followed *ml_follow_run_pid(const ml_follow_run *r, int64_t pid)
{
    ml_followed *best = NULL;
    for (size_t i = 0; i < r->n; i++) {
        ml_followed *f = r->streams[i];
        if (f->s && f->s->pid == pid && (!best || f->s->seq > best->s->seq))
            best = f;
    }
    return best;
}

const char *ml_follow_site_where(ml_symbolizer *sym, const ml_stream *s, int64_t id, char *buf,
                                 size_t len)
{
    const ml_site *site = s ? ml_stream_site(s, id) : NULL;
    size_t f = site ? ml_site_user_frame(sym, s, site) : 0;
    if (!site || f >= site->nframes) {
        snprintf(buf, len, "site %" PRId64, id);
        return buf;
    }
    return ml_frame_short(ml_sym_frame(sym, s, &site->frames[f]), &site->frames[f], buf, len);
}
