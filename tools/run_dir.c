/* run_dir.c — a run directory (or one stream file) into ml_run: its streams, each read by stream.c,
 * ordered by pid and image; and the newest ./memlens-* directory when none is named. */
#define _GNU_SOURCE
#include "fmt.h"
#include "stream.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static bool has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

char *ml_find_newest_run(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return NULL;
    char *best = NULL;
    struct timespec best_t = {0};
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, "memlens-", 8) != 0)
            continue;
        char *p = NULL;
        if (asprintf(&p, "%s/%s", dir, e->d_name) < 0)
            break;
        struct stat st;
        if (stat(p, &st) == 0 && S_ISDIR(st.st_mode) &&
            (!best || st.st_mtim.tv_sec > best_t.tv_sec ||
             (st.st_mtim.tv_sec == best_t.tv_sec && st.st_mtim.tv_nsec > best_t.tv_nsec))) {
            free(best);
            best = p;
            best_t = st.st_mtim;
        } else {
            free(p);
        }
    }
    closedir(d);
    return best;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int cmp_streams(const void *a, const void *b)
{
    const ml_stream *x = *(ml_stream *const *)a, *y = *(ml_stream *const *)b;
    if (x->t != y->t)
        return x->t < y->t ? -1 : 1;
    if (x->pid != y->pid)
        return x->pid < y->pid ? -1 : 1;
    if (x->seq != y->seq)
        return x->seq < y->seq ? -1 : 1;
    return strcmp(x->name, y->name);
}

static bool add_stream(ml_run *run, const char *path, char *err, size_t errlen)
{
    ml_stream *s = ml_stream_load(path, err, errlen);
    if (!s)
        return false;
    ml_stream **v = realloc(run->streams, (run->nstreams + 1) * sizeof *v);
    if (!v) {
        ml_stream_free(s);
        snprintf(err, errlen, "%s: out of memory", path);
        return false;
    }
    run->streams = v;
    run->streams[run->nstreams++] = s;
    return true;
}

static bool load_dir(ml_run *run, const char *dir, char *err, size_t errlen)
{
    DIR *d = opendir(dir);
    if (!d) {
        snprintf(err, errlen, "%s: cannot open run directory: %s", dir, strerror(errno));
        return false;
    }
    char **names = NULL;
    size_t n = 0, compressed = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        if (has_suffix(e->d_name, ".jsonl.zst"))
            compressed++;
        if (!has_suffix(e->d_name, ".jsonl"))
            continue;
        char **v = realloc(names, (n + 1) * sizeof *v);
        if (!v) {
            fputs("memlens: out of memory\n", stderr);
            exit(2);
        }
        names = v;
        names[n++] = ml_xstrdup(e->d_name);
    }
    closedir(d);
    if (n > 1)
        qsort(names, n, sizeof *names, cmp_names);
    bool ok = true;
    for (size_t i = 0; i < n && ok; i++) {
        char *p = NULL;
        if (asprintf(&p, "%s/%s", dir, names[i]) < 0) {
            snprintf(err, errlen, "%s: out of memory", dir);
            ok = false;
            break;
        }
        ok = add_stream(run, p, err, errlen);
        free(p);
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    if (ok && run->nstreams == 0) {
        snprintf(err, errlen, "%s: no *.jsonl streams in this directory%s", dir,
                 compressed ? " (compressed .jsonl.zst streams must be decompressed first)" : "");
        ok = false;
    }
    return ok;
}

bool ml_run_load(const char *arg, ml_run *run, char *err, size_t errlen)
{
    memset(run, 0, sizeof *run);
    char *found = NULL;
    if (!arg) {
        found = ml_find_newest_run(".");
        if (!found) {
            snprintf(err, errlen, "no memlens-* run directory in the current directory "
                                  "(give RUN: a run directory or a .jsonl stream)");
            return false;
        }
        arg = found;
    }
    struct stat st;
    bool ok;
    if (stat(arg, &st) != 0) {
        snprintf(err, errlen, "%s: %s", arg, strerror(errno));
        ok = false;
    } else if (S_ISDIR(st.st_mode)) {
        run->dir = found ? found : ml_xstrdup(arg);
        found = NULL;
        ok = load_dir(run, run->dir, err, errlen);
    } else {
        char *dir = ml_xstrdup(arg);
        char *slash = strrchr(dir, '/');
        if (slash)
            slash[slash == dir ? 1 : 0] = '\0';
        else
            strcpy(dir, ".");
        run->dir = dir;
        ok = add_stream(run, arg, err, errlen);
    }
    free(found);
    if (!ok) {
        ml_run_free(run);
        return false;
    }
    if (run->nstreams > 1)
        qsort(run->streams, run->nstreams, sizeof *run->streams, cmp_streams);
    return true;
}

void ml_run_free(ml_run *run)
{
    for (size_t i = 0; i < run->nstreams; i++)
        ml_stream_free(run->streams[i]);
    free(run->streams);
    free(run->dir);
    memset(run, 0, sizeof *run);
}
