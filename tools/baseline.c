/* baseline.c — keying, reading and writing leak baselines (see baseline.h). */
#define _GNU_SOURCE
#include "baseline.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uthash.h>

struct ml_baseline_key {
    char *key;
    UT_hash_handle hh;
};

static const char *base_name(const char *path)
{
    const char *slash = path ? strrchr(path, '/') : NULL;
    return slash ? slash + 1 : path;
}

bool ml_object_is_self(const char *object)
{
    const char *b = base_name(object);
    return b && strncmp(b, "libmemlens", 10) == 0;
}

bool ml_object_is_runtime(const char *object)
{
    static const char *const prefixes[] = {"libc.so", "libc-", "libstdc++", "libgcc_s",
                                           "ld-linux", "ld.so", "ld64.so", "ld-musl",
                                           "libc++", "libc++abi", "libpthread", "libm.so",
                                           "libdl.so", "libmemlens", NULL};
    const char *b = base_name(object);
    if (!b)
        return false;
    for (size_t i = 0; prefixes[i]; i++)
        if (strncmp(b, prefixes[i], strlen(prefixes[i])) == 0)
            return true;
    return false;
}

static json_t *str_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

/* {"function", "file" (basename)} or, without a function, {"function":null,"file","object"} */
static json_t *key_frame(const char *function, const char *file, const char *object)
{
    json_t *f = json_object();
    if (!f)
        return NULL;
    json_object_set_new(f, "function", str_or_null(function));
    json_object_set_new(f, "file", str_or_null(base_name(file)));
    if (!function)
        json_object_set_new(f, "object", str_or_null(base_name(object)));
    return f;
}

json_t *ml_baseline_entry(const char *cls, const char *kind, const ml_text_frame *frames,
                          size_t nframes)
{
    json_t *e = json_object(), *stack = json_array();
    if (!e || !stack) {
        json_decref(e);
        json_decref(stack);
        return NULL;
    }
    /* user frames first; when a stack has none (all in the runtime), its non-memlens frames */
    for (int pass = 0; pass < 2 && json_array_size(stack) == 0; pass++) {
        for (size_t i = 0; i < nframes && json_array_size(stack) < ML_BASELINE_FRAMES; i++) {
            const ml_text_frame *f = &frames[i];
            if (ml_object_is_self(f->object) || (pass == 0 && ml_object_is_runtime(f->object)))
                continue;
            json_array_append_new(stack, key_frame(f->function, f->file, f->object));
        }
    }
    json_object_set_new(e, "class", json_string(cls));
    json_object_set_new(e, "kind", json_string(kind));
    json_object_set_new(e, "stack", stack);
    return e;
}

static bool class_ok(const char *cls)
{
    static const char *const names[] = {"definite", "indirect", "possible", "reachable", NULL};
    for (size_t i = 0; cls && names[i]; i++)
        if (strcmp(cls, names[i]) == 0)
            return true;
    return false;
}

static bool opt_string(json_t *v)
{
    return !v || json_is_null(v) || json_is_string(v);
}

char *ml_baseline_key_of(json_t *entry)
{
    json_t *cls = json_object_get(entry, "class"), *kind = json_object_get(entry, "kind");
    json_t *stack = json_object_get(entry, "stack");
    if (!json_is_string(cls) || !json_is_string(kind) || !json_is_array(stack))
        return NULL;
    json_t *key = json_array(), *frames = json_array();
    bool ok = key && frames;
    size_t i;
    json_t *f;
    json_array_foreach(stack, i, f) {
        if (!ok || i >= ML_BASELINE_FRAMES)
            break;
        json_t *fn = json_object_get(f, "function"), *file = json_object_get(f, "file");
        json_t *obj = json_object_get(f, "object");
        if (!json_is_object(f) || !opt_string(fn) || !opt_string(file) || !opt_string(obj)) {
            ok = false;
            break;
        }
        /* re-normalized, so that hand-written entries with full paths match too */
        json_t *k = key_frame(json_string_value(fn), json_string_value(file),
                              json_string_value(obj));
        ok = k && json_array_append_new(frames, k) == 0;
    }
    char *s = NULL;
    if (ok) {
        json_array_append(key, cls);
        json_array_append(key, kind);
        json_array_append(key, frames);
        s = json_dumps(key, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII);
    }
    json_decref(frames);
    json_decref(key);
    return s;
}

void ml_baseline_init(ml_baseline *b)
{
    memset(b, 0, sizeof *b);
}

void ml_baseline_free(ml_baseline *b)
{
    ml_baseline_key *k, *t;
    HASH_ITER(hh, b->keys, k, t) {
        HASH_DEL(b->keys, k);
        free(k->key);
        free(k);
    }
    b->n = 0;
}

bool ml_baseline_contains(const ml_baseline *b, const char *key)
{
    ml_baseline_key *k = NULL;
    if (key)
        HASH_FIND_STR(b->keys, key, k);
    return k != NULL;
}

bool ml_baseline_add(ml_baseline *b, const char *key)
{
    if (!key)
        return false;
    if (ml_baseline_contains(b, key))
        return true;
    ml_baseline_key *k = calloc(1, sizeof *k);
    if (!k || !(k->key = strdup(key))) {
        free(k);
        return false;
    }
    HASH_ADD_KEYPTR(hh, b->keys, k->key, strlen(k->key), k);
    b->n++;
    return true;
}

bool ml_baseline_load(ml_baseline *b, const char *path, char *err, size_t errlen)
{
    ml_baseline_init(b);
    json_error_t jerr;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        if (jerr.line > 0)
            snprintf(err, errlen, "%s:%d: not a memlens baseline: %s", path, jerr.line, jerr.text);
        else
            snprintf(err, errlen, "%s: cannot read baseline: %s", path, jerr.text);
        return false;
    }
    json_t *format = json_object_get(root, "format"), *version = json_object_get(root, "version");
    json_t *leaks = json_object_get(root, "leaks");
    const char *why = NULL;
    char buf[128];
    if (!json_is_object(root) || !json_is_string(format) ||
        strcmp(json_string_value(format), "memlens-baseline") != 0)
        why = "\"format\" is not \"memlens-baseline\"";
    else if (!json_is_integer(version) || json_integer_value(version) != ML_BASELINE_VERSION)
        why = "unsupported \"version\" (this memlens reads version 1)";
    else if (!json_is_array(leaks))
        why = "\"leaks\" is not an array";
    size_t i;
    json_t *e;
    if (!why) {
        json_array_foreach(leaks, i, e) {
            char *key = ml_baseline_key_of(e);
            if (!key) {
                snprintf(buf, sizeof buf, "leaks[%zu]: expected {\"class\", \"kind\", \"stack\": "
                                          "[{\"function\", \"file\"}…]}", i);
                why = buf;
                break;
            }
            if (!class_ok(json_string_value(json_object_get(e, "class")))) {
                free(key);
                snprintf(buf, sizeof buf, "leaks[%zu]: unknown class '%.40s'", i,
                         json_string_value(json_object_get(e, "class")));
                why = buf;
                break;
            }
            bool ok = ml_baseline_add(b, key);
            free(key);
            if (!ok) {
                why = "out of memory";
                break;
            }
        }
    }
    json_decref(root);
    if (why) {
        snprintf(err, errlen, "%s: not a memlens baseline: %s", path, why);
        ml_baseline_free(b);
        return false;
    }
    return true;
}

bool ml_baseline_write(const char *path, json_t *leaks, char *err, size_t errlen)
{
    json_t *root = json_object();
    bool ok = root && json_object_set_new(root, "format", json_string("memlens-baseline")) == 0 &&
              json_object_set_new(root, "version", json_integer(ML_BASELINE_VERSION)) == 0 &&
              json_object_set_new(root, "frames", json_integer(ML_BASELINE_FRAMES)) == 0 &&
              json_object_set(root, "leaks", leaks) == 0;
    char *text = ok ? json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
    json_decref(root);
    if (!text) {
        snprintf(err, errlen, "%s: out of memory", path);
        return false;
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, errlen, "%s: cannot create baseline: %s", path,
                 errno == ELOOP ? "is a symbolic link (not followed)" : strerror(errno));
        free(text);
        return false;
    }
    size_t len = strlen(text), done = 0;
    text[len] = '\0';
    while (done < len) {
        ssize_t w = write(fd, text + done, len - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
        done += (size_t)w;
    }
    int e = errno;
    bool written = done == len && write(fd, "\n", 1) == 1;
    if (close(fd) != 0 && written) {
        e = errno;
        written = false;
    }
    free(text);
    if (!written)
        snprintf(err, errlen, "%s: write error: %s", path, strerror(e));
    return written;
}
