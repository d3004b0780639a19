/* symbolize.c — offline symbolization with elfutils libdwfl, plus symbols.json I/O.
 *
 * One Dwfl session per object file (modules of a process share one address space in the
 * process, but here each file is reported alone at its own ELF addresses, so a frame's
 * offset — return address minus load bias — is directly an ELF virtual address). Return
 * addresses point after the call: we look up offset - 1 so that the call's line is reported.
 */
#define _GNU_SOURCE
#include "symbolize.h"

#include <dwarf.h>
#include <elfutils/libdwfl.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef HAVE_CXA_DEMANGLE
extern char *__cxa_demangle(const char *mangled, char *out, size_t *len, int *status);
#endif

typedef struct sym_entry {
    uint64_t offset;
    ml_symbol sym;
    char *function, *file; /* owned storage behind sym */
    UT_hash_handle hh;
} sym_entry;

typedef struct sym_object {
    char *key;             /* path "\n" build_id */
    char *path, *build_id;
    bool opened;           /* Dwfl tried */
    ml_sym_status status;
    Dwfl *dwfl;
    Dwfl_Module *mod;
    sym_entry *entries;
    UT_hash_handle hh;
} sym_object;

struct ml_symbolizer {
    sym_object *objects;
    ml_symbol unknown;     /* frames outside any module */
};

static char *debuginfo_path = NULL;
static const Dwfl_Callbacks offline_callbacks = {
    .find_elf = dwfl_build_id_find_elf,
    .find_debuginfo = dwfl_standard_find_debuginfo,
    .section_address = dwfl_offline_section_address,
    .debuginfo_path = &debuginfo_path,
};

static char *xstrdup_or_null(const char *s)
{
    if (!s)
        return NULL;
    char *d = strdup(s);
    if (!d) {
        fputs("memlens: out of memory\n", stderr);
        exit(2);
    }
    return d;
}

const char *ml_sym_status_name(ml_sym_status st)
{
    switch (st) {
    case ML_SYM_OK: return "ok";
    case ML_SYM_MISSING: return "missing";
    case ML_SYM_MISMATCH: return "build_id_mismatch";
    }
    return "missing";
}

ml_symbolizer *ml_sym_new(void)
{
    ml_symbolizer *sym = calloc(1, sizeof *sym);
    if (!sym) {
        fputs("memlens: out of memory\n", stderr);
        exit(2);
    }
    sym->unknown.status = ML_SYM_MISSING;
    return sym;
}

void ml_sym_free(ml_symbolizer *sym)
{
    if (!sym)
        return;
    sym_object *o, *ot;
    HASH_ITER(hh, sym->objects, o, ot) {
        HASH_DEL(sym->objects, o);
        sym_entry *e, *et;
        HASH_ITER(hh, o->entries, e, et) {
            HASH_DEL(o->entries, e);
            free(e->function);
            free(e->file);
            free(e);
        }
        if (o->dwfl)
            dwfl_end(o->dwfl);
        free(o->key);
        free(o->path);
        free(o->build_id);
        free(o);
    }
    free(sym);
}

static sym_object *get_object(ml_symbolizer *sym, const char *path, const char *build_id)
{
    char *key = NULL;
    if (asprintf(&key, "%s\n%s", path, build_id ? build_id : "") < 0) {
        fputs("memlens: out of memory\n", stderr);
        exit(2);
    }
    sym_object *o = NULL;
    HASH_FIND_STR(sym->objects, key, o);
    if (o) {
        free(key);
        return o;
    }
    o = calloc(1, sizeof *o);
    if (!o) {
        fputs("memlens: out of memory\n", stderr);
        exit(2);
    }
    o->key = key;
    o->path = xstrdup_or_null(path);
    o->build_id = xstrdup_or_null(build_id);
    HASH_ADD_KEYPTR(hh, sym->objects, o->key, strlen(o->key), o);
    return o;
}

static void open_object(sym_object *o)
{
    o->opened = true;
    o->status = ML_SYM_MISSING;
    if (o->path[0] != '/' || access(o->path, R_OK) != 0)
        return; /* vdso, deleted or unreadable file */
    o->dwfl = dwfl_begin(&offline_callbacks);
    if (!o->dwfl)
        return;
    dwfl_report_begin(o->dwfl);
    o->mod = dwfl_report_elf(o->dwfl, o->path, o->path, -1, 0, true);
    dwfl_report_end(o->dwfl, NULL, NULL);
    if (!o->mod) {
        dwfl_end(o->dwfl);
        o->dwfl = NULL;
        return;
    }
    const unsigned char *bits = NULL;
    GElf_Addr vaddr;
    int n = dwfl_module_build_id(o->mod, &bits, &vaddr);
    if (o->build_id && o->build_id[0]) {
        char hex[2 * 64 + 1];
        if (n <= 0 || (size_t)n * 2 >= sizeof hex) {
            o->status = ML_SYM_MISMATCH;
            return;
        }
        for (int i = 0; i < n; i++)
            snprintf(hex + 2 * i, 3, "%02x", bits[i]);
        if (strcmp(hex, o->build_id) != 0) {
            o->status = ML_SYM_MISMATCH;
            return;
        }
    }
    o->status = ML_SYM_OK;
}

static char *demangle(const char *name)
{
#ifdef HAVE_CXA_DEMANGLE
    if (name && name[0] == '_' && name[1] == 'Z') {
        int status = -1;
        char *d = __cxa_demangle(name, NULL, NULL, &status);
        if (d && status == 0)
            return d;
        free(d);
    }
#endif
    return xstrdup_or_null(name);
}

/* Lexically normalize an absolute path: drop "." and empty components, fold "..". */
static void normalize_path(char *path)
{
    char *out = path;
    const char *in = path;
    while (*in) {
        while (*in == '/')
            in++;
        const char *end = strchrnul(in, '/');
        size_t len = (size_t)(end - in);
        if (len == 0) {
            break;
        } else if (len == 1 && in[0] == '.') {
            /* skip */
        } else if (len == 2 && in[0] == '.' && in[1] == '.') {
            while (out > path && *--out != '/')
                ;
        } else {
            *out++ = '/';
            memmove(out, in, len);
            out += len;
        }
        in = end;
    }
    if (out == path)
        *out++ = '/';
    *out = '\0';
}

/* DWARF file names may be relative to the unit's DW_AT_comp_dir (meson builds compile
 * "../src/x.c" from the build directory): make them absolute so that CI annotations and
 * SARIF locations can point at the file. Returns a malloc'd path. */
static char *absolute_source(Dwfl_Line *line, const char *src)
{
    if (src[0] == '/')
        return xstrdup_or_null(src);
    Dwarf_Die *cu = dwfl_linecu(line);
    Dwarf_Attribute attr;
    const char *dir = cu ? dwarf_formstring(dwarf_attr(cu, DW_AT_comp_dir, &attr)) : NULL;
    char *path = NULL;
    if (!dir || dir[0] != '/' || asprintf(&path, "%s/%s", dir, src) < 0)
        return xstrdup_or_null(src);
    normalize_path(path);
    return path;
}

static void resolve(sym_object *o, sym_entry *e)
{
    if (!o->opened)
        open_object(o);
    if (o->status != ML_SYM_OK)
        return;
    GElf_Addr bias = 0;
    if (!dwfl_module_getelf(o->mod, &bias))
        return;
    GElf_Addr addr = bias + e->offset - (e->offset ? 1 : 0);
    GElf_Off symoff;
    GElf_Sym elfsym;
    const char *name = dwfl_module_addrinfo(o->mod, addr, &symoff, &elfsym, NULL, NULL, NULL);
    char *at = name ? strchr(name, '@') : NULL; /* symbol version: "memcpy@@GLIBC_2.14" */
    if (at && at != name) {
        char *plain = strndup(name, (size_t)(at - name));
        e->function = plain ? demangle(plain) : NULL;
        free(plain);
    } else {
        e->function = demangle(name);
    }
    Dwfl_Line *line = dwfl_module_getsrc(o->mod, addr);
    if (line) {
        int lineno = 0;
        const char *src = dwfl_lineinfo(line, NULL, &lineno, NULL, NULL, NULL);
        if (src) {
            e->file = absolute_source(line, src);
            e->sym.line = lineno > 0 ? lineno : 0;
        }
    }
}

static sym_entry *object_entry(sym_object *o, uint64_t offset, bool *created)
{
    sym_entry *e = NULL;
    HASH_FIND(hh, o->entries, &offset, sizeof offset, e);
    *created = !e;
    if (e)
        return e;
    e = calloc(1, sizeof *e);
    if (!e) {
        fputs("memlens: out of memory\n", stderr);
        exit(2);
    }
    e->offset = offset;
    HASH_ADD(hh, o->entries, offset, sizeof e->offset, e);
    return e;
}

const ml_symbol *ml_sym_frame(ml_symbolizer *sym, const ml_stream *s, const ml_frame *f)
{
    const ml_module *m = f->module >= 0 ? ml_stream_module(s, f->module) : NULL;
    if (!m)
        return &sym->unknown;
    sym_object *o = get_object(sym, m->path, m->build_id);
    bool created;
    sym_entry *e = object_entry(o, f->offset, &created);
    if (created) {
        resolve(o, e);
        e->sym.function = e->function;
        e->sym.file = e->file;
        e->sym.object = o->path;
        e->sym.status = o->status;
    }
    return &e->sym;
}

/* ---- symbols.json ---- */

static bool load_object(ml_symbolizer *sym, json_t *jo)
{
    json_t *path = json_object_get(jo, "path"), *bid = json_object_get(jo, "build_id");
    json_t *status = json_object_get(jo, "status"), *frames = json_object_get(jo, "frames");
    if (!json_is_string(path) || (bid && !json_is_null(bid) && !json_is_string(bid)) ||
        !json_is_string(status) || (frames && !json_is_object(frames)))
        return false;
    sym_object *o = get_object(sym, json_string_value(path), json_string_value(bid));
    const char *st = json_string_value(status);
    if (strcmp(st, "ok") == 0)
        o->status = ML_SYM_OK;
    else if (strcmp(st, "build_id_mismatch") == 0)
        o->status = ML_SYM_MISMATCH;
    else
        o->status = ML_SYM_MISSING;
    /* A non-ok verdict from run time is final; for ok objects, offsets absent from the file
     * are still resolved from disk on demand (o->opened stays false). */
    if (o->status != ML_SYM_OK)
        o->opened = true;
    const char *key;
    json_t *v;
    json_object_foreach(frames, key, v) {
        char *end;
        errno = 0;
        unsigned long long off = strtoull(key, &end, 10);
        if (errno || *end || !json_is_object(v))
            return false;
        json_t *fn = json_object_get(v, "function"), *file = json_object_get(v, "file");
        json_t *ln = json_object_get(v, "line");
        bool created;
        sym_entry *e = object_entry(o, off, &created);
        if (!created)
            continue;
        e->function = json_is_string(fn) ? xstrdup_or_null(json_string_value(fn)) : NULL;
        e->file = json_is_string(file) ? xstrdup_or_null(json_string_value(file)) : NULL;
        e->sym.line = json_is_integer(ln) && json_integer_value(ln) > 0 ? json_integer_value(ln) : 0;
        e->sym.function = e->function;
        e->sym.file = e->file;
        e->sym.object = o->path;
        e->sym.status = o->status;
    }
    return true;
}

bool ml_sym_load(ml_symbolizer *sym, const char *path, char *err, size_t errlen)
{
    json_error_t jerr;
    json_t *root = json_load_file(path, 0, &jerr);
    if (!root) {
        snprintf(err, errlen, "%s: %s", path, jerr.text);
        return false;
    }
    json_t *version = json_object_get(root, "version"), *objects = json_object_get(root, "objects");
    bool ok = json_is_integer(version) && json_integer_value(version) == 1 && json_is_array(objects);
    size_t i;
    json_t *jo;
    if (ok) {
        json_array_foreach(objects, i, jo) {
            if (!load_object(sym, jo)) {
                ok = false;
                break;
            }
        }
    }
    if (!ok)
        snprintf(err, errlen, "%s: not a memlens symbols.json (version 1)", path);
    json_decref(root);
    return ok;
}

static json_t *str_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

static bool set_new(json_t *o, const char *key, json_t *v)
{
    return v && json_object_set_new(o, key, v) == 0;
}

bool ml_sym_write(ml_symbolizer *sym, const ml_run *run, const char *path, char *err,
                  size_t errlen)
{
    for (size_t i = 0; i < run->nstreams; i++) {
        const ml_stream *s = run->streams[i];
        for (const ml_site *site = s->sites; site; site = site->hh.next)
            for (size_t k = 0; k < site->nframes; k++)
                ml_sym_frame(sym, s, &site->frames[k]);
    }
    json_t *root = json_object(), *objects = json_array();
    bool ok = root && objects && set_new(root, "version", json_integer(1)) &&
              json_object_set(root, "objects", objects) == 0;
    for (sym_object *o = sym->objects; ok && o; o = o->hh.next) {
        json_t *jo = json_object(), *frames = json_object();
        ok = jo && frames && set_new(jo, "path", json_string(o->path)) &&
             set_new(jo, "build_id", str_or_null(o->build_id)) &&
             set_new(jo, "status", json_string(ml_sym_status_name(o->status)));
        for (sym_entry *e = o->entries; ok && o->status == ML_SYM_OK && e; e = e->hh.next) {
            char key[24];
            snprintf(key, sizeof key, "%llu", (unsigned long long)e->offset);
            json_t *jf = json_object();
            ok = jf && set_new(jf, "function", str_or_null(e->function)) &&
                 set_new(jf, "file", str_or_null(e->file)) &&
                 set_new(jf, "line", e->sym.line ? json_integer(e->sym.line) : json_null()) &&
                 json_object_set_new(frames, key, jf) == 0;
        }
        ok = ok && json_object_set(jo, "frames", frames) == 0 && json_array_append(objects, jo) == 0;
        json_decref(frames);
        json_decref(jo);
    }
    json_decref(objects);
    if (!ok) {
        json_decref(root);
        snprintf(err, errlen, "%s: out of memory building symbols", path);
        return false;
    }

    char *tmp = NULL;
    if (asprintf(&tmp, "%s.tmp.%ld", path, (long)getpid()) < 0) {
        json_decref(root);
        snprintf(err, errlen, "%s: out of memory", path);
        return false;
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f) {
        snprintf(err, errlen, "%s: cannot create: %s", tmp, strerror(errno));
        if (fd >= 0)
            close(fd);
        ok = false;
    } else {
        ok = json_dumpf(root, f, JSON_COMPACT) == 0;
        ok = (fputc('\n', f) != EOF) && ok;
        ok = (fclose(f) == 0) && ok;
        if (!ok)
            snprintf(err, errlen, "%s: write error: %s", tmp, strerror(errno));
        else if (rename(tmp, path) != 0) {
            snprintf(err, errlen, "%s: cannot rename to %s: %s", tmp, path, strerror(errno));
            ok = false;
        }
        if (!ok)
            unlink(tmp);
    }
    free(tmp);
    json_decref(root);
    return ok;
}
