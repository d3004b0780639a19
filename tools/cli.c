/* cli.c — shared plumbing of the memlens commands (see cli.h). */
#define _GNU_SOURCE
#include "cli.h"

#include "baseline.h"
#include "fmt.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *ml_bold = "", *ml_dim = "", *ml_red = "", *ml_reset = "";

void ml_color_init(bool json)
{
    const char *nc = getenv("NO_COLOR");
    if (json || !isatty(STDOUT_FILENO) || (nc && *nc))
        return;
    ml_bold = "\033[1m";
    ml_dim = "\033[2m";
    ml_red = "\033[31m";
    ml_reset = "\033[0m";
}

void ml_die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("memlens: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(ML_EXIT_USAGE);
}

void ml_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "memlens %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\nTry 'memlens %s --help'.\n", cmd);
    va_end(ap);
    exit(ML_EXIT_USAGE);
}

void ml_bad_option(const char *cmd, const char *arg)
{
    if (optopt && arg && strncmp(arg, "--", 2) == 0 && !strchr(arg, '='))
        ml_usage_error(cmd, "option '%s' needs a value", arg);
    ml_usage_error(cmd, "unknown option '%s'", arg ? arg : "?");
}

void ml_cli_open(const char *arg, ml_run *run, ml_symbolizer **sym)
{
    char err[1024];
    if (!ml_run_load(arg, run, err, sizeof err))
        ml_die("%s", err);
    for (size_t i = 0; i < run->nstreams; i++)
        if (run->streams[i]->truncated_line)
            fprintf(stderr, "memlens: note: %s: ignored a truncated last line\n",
                    run->streams[i]->path);
    *sym = ml_sym_new();
    char *path = NULL;
    if (asprintf(&path, "%s/symbols.json", run->dir) < 0)
        ml_die("out of memory");
    if (access(path, F_OK) == 0 && !ml_sym_load(*sym, path, err, sizeof err)) {
        fprintf(stderr, "memlens: note: %s; reading object files instead\n", err);
        ml_sym_free(*sym);
        *sym = ml_sym_new();
    }
    free(path);
}

static const char *base_name(const char *path)
{
    const char *slash = path ? strrchr(path, '/') : NULL;
    return slash ? slash + 1 : path;
}

bool ml_frame_is_self(const ml_symbol *sym)
{
    const char *b = base_name(sym->object);
    return b && strncmp(b, "libmemlens", 10) == 0;
}

static bool is_runtime_object(const char *object)
{
    return ml_object_is_runtime(object); /* baseline.c: libc, libstdc++, ld.so, libmemlens, … */
}

size_t ml_site_first_frame(ml_symbolizer *sym, const ml_stream *s, const ml_site *site)
{
    for (size_t i = 0; i < site->nframes; i++)
        if (!ml_frame_is_self(ml_sym_frame(sym, s, &site->frames[i])))
            return i;
    return site->nframes;
}

size_t ml_site_user_frame(ml_symbolizer *sym, const ml_stream *s, const ml_site *site)
{
    for (size_t i = 0; i < site->nframes; i++) {
        const ml_symbol *y = ml_sym_frame(sym, s, &site->frames[i]);
        if (!ml_frame_is_self(y) && !is_runtime_object(y->object))
            return i;
    }
    return ml_site_first_frame(sym, s, site);
}

const char *ml_frame_short(const ml_symbol *sym, const ml_frame *f, char *buf, size_t len)
{
    char fn[64];
    const char *function = sym->function;
    if (!function) {
        snprintf(fn, sizeof fn, "0x%" PRIx64, f->offset);
        function = fn;
    }
    if (sym->file && sym->line)
        snprintf(buf, len, "%s (%s:%" PRId64 ")", function, base_name(sym->file), sym->line);
    else if (sym->file)
        snprintf(buf, len, "%s (%s)", function, base_name(sym->file));
    else
        snprintf(buf, len, "%s", function);
    return buf;
}

const char *ml_frame_text(const ml_symbol *sym, const ml_frame *f, char *buf, size_t len)
{
    char where[1024];
    ml_frame_short(sym, f, where, sizeof where);
    const char *note = sym->status == ML_SYM_MISMATCH ? " (build id differs)" : "";
    if (sym->object)
        snprintf(buf, len, "%s [%s]%s", where, base_name(sym->object), note);
    else
        snprintf(buf, len, "%s", where);
    return buf;
}

void ml_print_stack(FILE *out, ml_symbolizer *sym, const ml_stream *s, const ml_site *site,
                    size_t max_frames, const char *indent)
{
    size_t shown = 0;
    for (size_t i = ml_site_first_frame(sym, s, site); i < site->nframes; i++) {
        if (max_frames && shown >= max_frames)
            break;
        const ml_symbol *y = ml_sym_frame(sym, s, &site->frames[i]);
        if (ml_frame_is_self(y))
            continue;
        char buf[1024];
        fprintf(out, "%s%s %s\n", indent, shown ? "by" : "at", ml_frame_text(y, &site->frames[i], buf, sizeof buf));
        shown++;
    }
    if (!shown)
        fprintf(out, "%s(no stack)\n", indent);
}

bool ml_jset(json_t *o, const char *key, json_t *v)
{
    return v && json_object_set_new(o, key, v) == 0;
}

json_t *ml_jstr(const char *s)
{
    return s ? json_string(s) : json_null();
}

json_t *ml_json_stack(ml_symbolizer *sym, const ml_stream *s, const ml_site *site)
{
    json_t *stack = json_array();
    if (!stack)
        ml_die("out of memory");
    for (size_t i = 0; i < site->nframes; i++) {
        const ml_symbol *y = ml_sym_frame(sym, s, &site->frames[i]);
        if (ml_frame_is_self(y))
            continue;
        json_t *f = json_object();
        bool ok = f && ml_jset(f, "function", ml_jstr(y->function)) &&
                  ml_jset(f, "file", ml_jstr(y->file)) &&
                  ml_jset(f, "line", y->line ? json_integer(y->line) : json_null()) &&
                  ml_jset(f, "object", ml_jstr(y->object)) &&
                  ml_jset(f, "offset", json_integer((json_int_t)site->frames[i].offset));
        if (ok && y->status != ML_SYM_OK)
            ok = ml_jset(f, "symbols", json_string(ml_sym_status_name(y->status)));
        if (!ok || json_array_append_new(stack, f) != 0)
            ml_die("out of memory");
    }
    return stack;
}

static const char *end_text(const ml_stream *s, char *buf, size_t len)
{
    if (!s->has_end)
        snprintf(buf, len, "stream cut: no end record (killed or crashed?)");
    else if (s->end_reason && strcmp(s->end_reason, "exec") == 0)
        snprintf(buf, len, "replaced by exec%s%s", s->exec_path ? " of " : "",
                 s->exec_path ? s->exec_path : "");
    else if (s->end_reason && strcmp(s->end_reason, "error") == 0)
        snprintf(buf, len, "tracking stopped by an internal error%s%s",
                 s->end_message ? ": " : "", s->end_message ? s->end_message : "");
    else if (s->end_status == ML_STATUS_UNKNOWN)
        snprintf(buf, len, "exited (status not recorded)");
    else
        snprintf(buf, len, "exited with status %" PRId64, s->end_status);
    return buf;
}

void ml_print_process_header(FILE *out, const ml_stream *s)
{
    fprintf(out, "%s== process %" PRId64 "%s (ppid %" PRId64 ", image %" PRId64 ") %s  %s[%s]%s\n",
            ml_bold, s->pid, ml_reset, s->ppid, s->seq, s->exe ? s->exe : "?", ml_dim, s->name,
            ml_reset);
    fputs("   argv:", out);
    for (size_t i = 0; i < s->argc; i++)
        fprintf(out, " %s", s->argv[i]);
    if (s->parent)
        fprintf(out, "\n   %s %s", s->fork ? "forked from" : "exec'd from", s->parent);
    char buf[512];
    fprintf(out, "\n   %s\n", end_text(s, buf, sizeof buf));
    if (s->sampled) {
        char rate[ML_SIZE_BUF];
        fprintf(out, "   %ssampled mode (mean %s between samples): heap sizes and counts are "
                     "estimates (~)%s\n", ml_bold, ml_fmt_rate(s->sample_rate, rate, sizeof rate),
                ml_reset);
    }
}

const char *ml_estimate_mark(const ml_stream *s)
{
    return s->sampled ? "~" : "";
}

const char *ml_fmt_rate(int64_t bytes, char *buf, size_t len)
{
    static const char *const units[] = {"bytes", "KiB", "MiB", "GiB", "TiB"};
    size_t u = 0;
    int64_t v = bytes;
    while (v > 0 && v % 1024 == 0 && u + 1 < sizeof units / sizeof *units) {
        v /= 1024;
        u++;
    }
    if (u == 0 && bytes >= 1024)
        return ml_fmt_size(bytes, buf, len); /* not a whole number of KiB: "1.5 KiB" */
    snprintf(buf, len, "%" PRId64 " %s", v, units[u]);
    return buf;
}

json_t *ml_json_process(const ml_stream *s)
{
    json_t *p = json_object(), *argv = json_array();
    bool ok = p && argv;
    for (size_t i = 0; ok && i < s->argc; i++)
        ok = json_array_append_new(argv, json_string(s->argv[i])) == 0;
    ok = ok && ml_jset(p, "pid", json_integer(s->pid)) &&
         ml_jset(p, "ppid", json_integer(s->ppid)) && ml_jset(p, "exe", ml_jstr(s->exe)) &&
         json_object_set(p, "argv", argv) == 0 && ml_jset(p, "seq", json_integer(s->seq)) &&
         ml_jset(p, "stream", json_string(s->name)) && ml_jset(p, "parent", ml_jstr(s->parent)) &&
         ml_jset(p, "fork", json_boolean(s->fork)) &&
         ml_jset(p, "mode", json_string(s->sampled ? "sampled" : "full")) &&
         ml_jset(p, "sample_rate", json_integer(s->sampled ? s->sample_rate : 0)) &&
         ml_jset(p, "estimated", json_boolean(s->sampled)) &&
         ml_jset(p, "complete", json_boolean(s->has_end)) &&
         ml_jset(p, "end_reason", ml_jstr(s->end_reason)) &&
         ml_jset(p, "exit_status", s->has_end && s->end_status != ML_STATUS_UNKNOWN &&
                                       (!s->end_reason || strcmp(s->end_reason, "exit") == 0)
                                       ? json_integer(s->end_status) : json_null());
    json_decref(argv);
    if (!ok)
        ml_die("out of memory");
    return p;
}

int ml_cli_show(const ml_cli_view *view, const char *run_arg, bool json)
{
    ml_color_init(json);
    ml_run run;
    ml_symbolizer *sym;
    ml_cli_open(run_arg, &run, &sym);
    if (json) {
        json_t *root = json_object(), *procs = json_array();
        if (!root || !procs || !ml_jset(root, "run", json_string(run.dir)))
            ml_die("out of memory");
        for (size_t i = 0; i < run.nstreams; i++)
            if (json_array_append_new(procs, view->json_process(sym, run.streams[i],
                                                                view->ctx)) != 0)
                ml_die("out of memory");
        if (!ml_jset(root, "processes", procs))
            ml_die("out of memory");
        ml_json_print(root);
    } else {
        printf("%smemlens %s%s  %s  (%zu stream%s)\n\n", ml_bold, view->command, ml_reset,
               run.dir, run.nstreams, run.nstreams == 1 ? "" : "s");
        for (size_t i = 0; i < run.nstreams; i++)
            view->print_process(sym, run.streams[i], view->ctx);
    }
    ml_sym_free(sym);
    ml_run_free(&run);
    return ML_EXIT_OK;
}

void ml_json_print(json_t *root)
{
    if (json_dumpf(root, stdout, JSON_INDENT(2)) != 0 || fputc('\n', stdout) == EOF ||
        fflush(stdout) != 0)
        ml_die("cannot write output");
    json_decref(root);
}
