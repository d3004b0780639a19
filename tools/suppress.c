/* suppress.c — parser and matcher of LSan-style `leak:` suppressions (see suppress.h).
 *
 * Matching: a pattern is split into its `^` / `$` anchors and a body with `*` wildcards. The
 * body is matched as a glob against the whole string, with an implicit `*` on each side that
 * is not anchored — this is LSan's TemplateMatch (substring when there is no wildcard), but
 * with backtracking, so `a*b$` matches "abxb" (LSan's greedy scan misses that case).
 */
#define _GNU_SOURCE
#include "suppress.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Glob match of p[0..plen) against the whole of s; `*` is the only metacharacter.
 * Iterative with one backtrack point (the classic linear-space wildcard algorithm). */
static bool glob_match(const char *p, size_t plen, const char *s)
{
    size_t pi = 0, star = (size_t)-1;
    const char *mark = NULL;
    while (*s) {
        if (pi < plen && p[pi] == '*') {
            star = pi++;
            mark = s;
        } else if (pi < plen && p[pi] == *s) {
            pi++;
            s++;
        } else if (star != (size_t)-1) {
            pi = star + 1;
            s = ++mark;
        } else {
            return false;
        }
    }
    while (pi < plen && p[pi] == '*')
        pi++;
    return pi == plen;
}

bool ml_sup_match_pattern(const char *pattern, const char *str)
{
    if (!pattern || !str || !*str)
        return false;
    bool start = pattern[0] == '^';
    const char *body = pattern + start;
    size_t len = strlen(body);
    bool end = len > 0 && body[len - 1] == '$';
    if (end)
        len--;
    /* wrap the body in implicit wildcards where it is not anchored */
    char *glob = malloc(len + 3);
    if (!glob)
        return false;
    size_t n = 0;
    if (!start)
        glob[n++] = '*';
    memcpy(glob + n, body, len);
    n += len;
    if (!end)
        glob[n++] = '*';
    bool ok = glob_match(glob, n, str);
    free(glob);
    return ok;
}

ml_suppression *ml_sup_match(const ml_suppressions *sup, const ml_text_frame *frames,
                             size_t nframes)
{
    for (size_t r = 0; sup && r < sup->n; r++) {
        const char *pat = sup->rules[r].pattern;
        for (size_t i = 0; i < nframes; i++)
            if (ml_sup_match_pattern(pat, frames[i].function) ||
                ml_sup_match_pattern(pat, frames[i].file) ||
                ml_sup_match_pattern(pat, frames[i].object))
                return &sup->rules[r];
    }
    return NULL;
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t' || *s == '\r')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
        s[--n] = '\0';
    return s;
}

bool ml_sup_parse(ml_suppressions *sup, const char *name, const char *text, char *err,
                  size_t errlen)
{
    memset(sup, 0, sizeof *sup);
    sup->path = strdup(name ? name : "");
    char *copy = strdup(text ? text : "");
    if (!sup->path || !copy) {
        free(copy);
        snprintf(err, errlen, "%s: out of memory", name);
        return false;
    }
    bool ok = true;
    size_t lineno = 0;
    char *save = NULL;
    /* strtok_r would skip empty lines and lose the count: split by hand */
    for (char *line = copy; ok && line; line = save) {
        save = strchr(line, '\n');
        if (save)
            *save++ = '\0';
        lineno++;
        char *l = trim(line);
        if (!*l || *l == '#')
            continue;
        char *colon = strchr(l, ':');
        if (!colon || (size_t)(colon - l) != 4 || strncmp(l, "leak", 4) != 0) {
            size_t tlen = colon ? (size_t)(colon - l) : strlen(l);
            snprintf(err, errlen, "%s:%zu: unknown suppression type '%.*s'", name, lineno,
                     (int)(tlen > 200 ? 200 : tlen), l);
            ok = false;
            break;
        }
        char *pattern = trim(colon + 1);
        if (!*pattern) {
            snprintf(err, errlen, "%s:%zu: empty pattern after 'leak:'", name, lineno);
            ok = false;
            break;
        }
        ml_suppression *v = realloc(sup->rules, (sup->n + 1) * sizeof *v);
        char *p = strdup(pattern);
        if (!v || !p) {
            if (v)
                sup->rules = v;
            free(p);
            snprintf(err, errlen, "%s: out of memory", name);
            ok = false;
            break;
        }
        sup->rules = v;
        sup->rules[sup->n++] = (ml_suppression){.pattern = p, .line = lineno};
    }
    free(copy);
    if (!ok)
        ml_sup_free(sup);
    return ok;
}

bool ml_sup_load(ml_suppressions *sup, const char *path, char *err, size_t errlen)
{
    memset(sup, 0, sizeof *sup);
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "%s: cannot open suppressions: %s", path, strerror(errno));
        return false;
    }
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    char buf[4096];
    size_t n;
    bool ok = mem != NULL;
    while (ok && (n = fread(buf, 1, sizeof buf, f)) > 0)
        ok = fwrite(buf, 1, n, mem) == n;
    ok = ok && !ferror(f);
    int e = errno;
    fclose(f);
    if (mem && fclose(mem) != 0)
        ok = false;
    if (!ok) {
        free(text);
        snprintf(err, errlen, "%s: cannot read suppressions: %s", path, strerror(e));
        return false;
    }
    if (memchr(text, '\0', len)) {
        free(text);
        snprintf(err, errlen, "%s: not a text file", path);
        return false;
    }
    ok = ml_sup_parse(sup, path, text, err, errlen);
    free(text);
    return ok;
}

void ml_sup_free(ml_suppressions *sup)
{
    for (size_t i = 0; i < sup->n; i++)
        free(sup->rules[i].pattern);
    free(sup->rules);
    free(sup->path);
    memset(sup, 0, sizeof *sup);
}
