/* check.c — evaluation of the CI gate (see check.h): verdict per process image, suppressions,
 * baseline, budgets, findings; plus the option table shared by `check` and `run --check`.
 *
 * Per process image: a stream with a `leak_summary` has a verdict and its lost entries
 * (definite, indirect, possible) are matched against the suppressions first (a suppressed entry
 * never fails the check), then against the baseline (a known entry does not count). An image
 * replaced by exec has no verdict by design: its memory went away with it, so only the peak
 * budget applies. Any other stream without a verdict (cut by a kill, tracking error, a stream
 * from an older memlens) is an input error unless --allow-incomplete: silence is not "clean".
 * A stream recorded in sampled mode has no verdict either (pointers through unsampled blocks are
 * unknown) and its numbers are estimates: it can be gated on --max-peak alone (an estimated
 * peak); asking for a leak budget on it (including the default --max-leaked 0) is an input error.
 */
#define _GNU_SOURCE
#include "check.h"
#include "trends.h"
#include "fmt.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

enum {
    OPT_MAX_LEAKED = ML_CHECK_OPT_BASE,
    OPT_MAX_POSSIBLY,
    OPT_MAX_PEAK,
    OPT_MAX_GROWTH,
    OPT_SUPPRESSIONS,
    OPT_BASELINE,
    OPT_WRITE_BASELINE,
    OPT_FORMAT,
    OPT_ALLOW_INCOMPLETE,
};

const struct option ml_check_long_options[] = {
    {"max-leaked", required_argument, NULL, OPT_MAX_LEAKED},
    {"max-possibly", required_argument, NULL, OPT_MAX_POSSIBLY},
    {"max-peak", required_argument, NULL, OPT_MAX_PEAK},
    {"max-growth", required_argument, NULL, OPT_MAX_GROWTH},
    {"suppressions", required_argument, NULL, OPT_SUPPRESSIONS},
    {"baseline", required_argument, NULL, OPT_BASELINE},
    {"write-baseline", required_argument, NULL, OPT_WRITE_BASELINE},
    {"format", required_argument, NULL, OPT_FORMAT},
    {"allow-incomplete", no_argument, NULL, OPT_ALLOW_INCOMPLETE},
    {NULL, 0, NULL, 0},
};

const char ml_check_options_help[] =
    "  --max-leaked SIZE     budget for definitely + indirectly lost bytes, summed over the\n"
    "                        processes of the run (default 0: any such leak fails)\n"
    "  --max-possibly SIZE   budget for possibly lost bytes (default: not gated, as LSan)\n"
    "  --max-peak SIZE       budget for each process's peak heap (default: not gated)\n"
    "  --max-growth RATE     budget for each process's heap and mmap growth: fails when one\n"
    "                        keeps growing (linear or exponential over its last 20 snapshots,\n"
    "                        as `memlens trends` shows) faster than RATE: SIZE/min (the\n"
    "                        default unit) or SIZE/s, e.g. 1MiB/min, 64KiB/s (default: not\n"
    "                        gated; a process with fewer than 5 snapshots is not gated: set\n"
    "                        MEMLENS_INTERVAL, e.g. 100ms, for short runs)\n"
    "  --suppressions FILE   LSan-style file: leak:PATTERN lines (* wildcards; matched as a\n"
    "                        substring of any frame's function, source file or object path),\n"
    "                        # comments; suppressed leaks are listed and never fail\n"
    "  --baseline FILE       fail only on leaks whose stack is not in FILE\n"
    "  --write-baseline FILE write the current lost leaks to FILE (0600) and accept them\n"
    "  --format FMT          text (default), junit, sarif or github\n"
    "  --allow-incomplete    skip processes without a leak verdict (stream cut by a kill)\n"
    "                        instead of failing with exit status 2\n"
    "  SIZE: 4096, 64K, 1MiB, 2G (binary units).\n";

void ml_check_opts_init(ml_check_opts *o)
{
    memset(o, 0, sizeof *o);
    o->max_leaked = 0;
    o->max_possibly = -1;
    o->max_peak = -1;
    o->max_growth = -1;
    o->format = ML_FORMAT_TEXT;
}

static int64_t parse_budget(const char *arg, const char *name, const char *cmd)
{
    uint64_t v;
    if (ml_parse_size(arg, &v) || v > (uint64_t)INT64_MAX)
        ml_usage_error(cmd, "--%s: expected a size in bytes (4096, 64K, 1MiB), not '%s'", name,
                       arg);
    return (int64_t)v;
}

bool ml_check_option(ml_check_opts *o, int c, const char *arg, const char *cmd)
{
    switch (c) {
    case OPT_MAX_LEAKED:
        o->max_leaked = parse_budget(arg, "max-leaked", cmd);
        o->max_leaked_given = true;
        return true;
    case OPT_MAX_POSSIBLY: o->max_possibly = parse_budget(arg, "max-possibly", cmd); return true;
    case OPT_MAX_PEAK: o->max_peak = parse_budget(arg, "max-peak", cmd); return true;
    case OPT_MAX_GROWTH: {
        uint64_t v;
        if (ml_parse_rate_per_min(arg, &v) || v > (uint64_t)INT64_MAX)
            ml_usage_error(cmd, "--max-growth: expected a rate such as 1MiB/min or 64KiB/s, not '%s'",
                           arg);
        o->max_growth = (int64_t)v;
        return true;
    }
    case OPT_SUPPRESSIONS: o->suppressions = arg; return true;
    case OPT_BASELINE: o->baseline = arg; return true;
    case OPT_WRITE_BASELINE: o->write_baseline = arg; return true;
    case OPT_ALLOW_INCOMPLETE: o->allow_incomplete = true; return true;
    case ML_CHECK_OPT_OUTPUT: o->output = arg; return true;
    case OPT_FORMAT:
        if (strcmp(arg, "text") == 0)
            o->format = ML_FORMAT_TEXT;
        else if (strcmp(arg, "junit") == 0)
            o->format = ML_FORMAT_JUNIT;
        else if (strcmp(arg, "sarif") == 0)
            o->format = ML_FORMAT_SARIF;
        else if (strcmp(arg, "github") == 0)
            o->format = ML_FORMAT_GITHUB;
        else
            ml_usage_error(cmd, "--format: expected text, junit, sarif or github, not '%s'", arg);
        return true;
    }
    return false;
}

static const char *const rule_ids[ML_RULE_COUNT] = {"definite-leak", "indirect-leak",
                                                    "possible-leak", "peak-budget", "growth-budget"};
static const char *const rule_texts[ML_RULE_COUNT] = {
    "Memory definitely lost: blocks allocated here were still allocated at exit and no pointer "
    "to them was found anywhere",
    "Memory indirectly lost: blocks allocated here were reachable only from lost blocks",
    "Memory possibly lost: blocks allocated here were reachable only through interior pointers",
    "Peak heap over budget: the process's highest live heap exceeded --max-peak",
    "Growth over budget: the process's heap or mmap kept growing (a linear or exponential pattern "
    "over its last snapshots) faster than --max-growth",
};

const char *ml_rule_id(ml_rule r)
{
    return r < ML_RULE_COUNT ? rule_ids[r] : "unknown";
}

const char *ml_rule_description(ml_rule r)
{
    return r < ML_RULE_COUNT ? rule_texts[r] : "";
}

size_t ml_site_text_frames(ml_symbolizer *sym, const ml_stream *s, const ml_site *site,
                           ml_text_frame **out)
{
    ml_text_frame *v = calloc(site->nframes ? site->nframes : 1, sizeof *v);
    if (!v)
        ml_die("out of memory");
    size_t n = 0;
    for (size_t i = 0; i < site->nframes; i++) {
        const ml_symbol *y = ml_sym_frame(sym, s, &site->frames[i]);
        if (ml_frame_is_self(y))
            continue;
        v[n++] = (ml_text_frame){y->function, y->file, y->object};
    }
    *out = v;
    return n;
}

static ml_location user_location(ml_symbolizer *sym, const ml_stream *s, const ml_site *site)
{
    ml_location loc = {0};
    bool have_fallback = false;
    for (size_t i = 0; site && i < site->nframes; i++) {
        const ml_symbol *y = ml_sym_frame(sym, s, &site->frames[i]);
        if (ml_object_is_self(y->object) || ml_object_is_runtime(y->object))
            continue;
        if (y->file) {
            return (ml_location){y->function, y->file, y->object, y->line};
        }
        if (!have_fallback) { /* no file: keep the name for messages, no location */
            loc = (ml_location){y->function, NULL, y->object, 0};
            have_fallback = true;
        }
    }
    return loc;
}

static const char *base_name(const char *path)
{
    const char *slash = path ? strrchr(path, '/') : NULL;
    return slash ? slash + 1 : path;
}

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; s && *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

static int verdict_of(const ml_stream *s, char *note, size_t len)
{
    if (s->sampled) {
        snprintf(note, len, "sampled mode: no leak verdict (reachability is not classified), "
                 "leaks not gated; the peak is an estimate");
        return ML_VERDICT_SAMPLED;
    }
    if (s->has_leak_summary) {
        if (!s->leak_complete)
            snprintf(note, len, "leak scan incomplete%s%s: more may be reported lost than is",
                     s->leak_message ? ": " : "", s->leak_message ? s->leak_message : "");
        return ML_VERDICT_OK;
    }
    if (s->has_end && s->end_reason && strcmp(s->end_reason, "exec") == 0) {
        snprintf(note, len, "image replaced by exec%s%s: its memory is gone, not leaked (leaks "
                 "not gated)", s->exec_path ? " of " : "", s->exec_path ? s->exec_path : "");
        return ML_VERDICT_EXEC;
    }
    const char *why;
    if (!s->has_end)
        why = "stream cut";
    else if (s->end_reason && strcmp(s->end_reason, "error") == 0)
        why = "tracking stopped by an internal error";
    else
        why = "no leak records: stream written by an older memlens?";
    snprintf(note, len, "no leak verdict for process %" PRId64 " (%s)", s->pid, why);
    return ML_VERDICT_MISSING;
}

static void add_finding(ml_check_result *r, const ml_finding *f)
{
    ml_finding *v = realloc(r->findings, (r->nfindings + 1) * sizeof *v);
    if (!v)
        ml_die("out of memory");
    r->findings = v;
    r->findings[r->nfindings++] = *f;
    r->procs[f->proc].nfindings++;
}

static char *process_label(const ml_stream *s)
{
    char *p = NULL;
    if (asprintf(&p, "pid %" PRId64 " %s", s->pid, s->exe ? base_name(s->exe) : "?") < 0)
        ml_die("out of memory");
    return p;
}

static char *leak_message(const ml_stream *s, const ml_leak_entry *e, const ml_location *loc)
{
    static const char *const lost[] = {"definitely lost", "indirectly lost", "possibly lost",
                                       "still reachable"};
    char amount[128], where[1024] = "", *msg = NULL;
    int64_t total = e->direct.bytes + e->indirect.bytes;
    if (e->indirect.bytes > 0)
        snprintf(amount, sizeof amount, "%" PRId64 " (%" PRId64 " direct, %" PRId64
                 " indirect) bytes", total, e->direct.bytes, e->indirect.bytes);
    else
        snprintf(amount, sizeof amount, "%" PRId64 " bytes", total);
    if (loc->function && loc->file && loc->line)
        snprintf(where, sizeof where, " in %s (%s:%" PRId64 ")", loc->function,
                 base_name(loc->file), loc->line);
    else if (loc->function)
        snprintf(where, sizeof where, " in %s", loc->function);
    char *proc = process_label(s);
    if (asprintf(&msg, "%s in %" PRId64 " block%s %s, allocated by %s%s [%s]", amount,
                 e->direct.blocks, e->direct.blocks == 1 ? "" : "s",
                 e->cls >= 0 && e->cls < ML_LEAK_NCLASS ? lost[e->cls] : "lost", e->site->kind,
                 where, proc) < 0)
        ml_die("out of memory");
    free(proc);
    return msg;
}

/* --max-growth: the heap and mmap series of process p over the default window, as `memlens trends`
 * computes them; a finding for each that keeps growing faster than the budget, pointing at the
 * fastest-growing site of its kind. cp->growth says what was seen, or why a metric is not gated. */
static void check_growth(ml_check_result *r, size_t p, ml_symbolizer *sym)
{
    static const int metrics[2] = {ML_TREND_HEAP, ML_TREND_MMAP};
    const ml_check_opts *o = r->opts;
    ml_check_proc *cp = &r->procs[p];
    const ml_stream *s = cp->s;
    ml_trends t;
    ml_trends_compute(s, ML_WINDOW_DEFAULT, &t);
    size_t used = 0;
    for (int i = 0; i < 2; i++) {
        const char *key = ml_trend_metric_keys[metrics[i]];
        const struct ml_pattern_result *res = &t.res[metrics[i]];
        char rate[ML_SIZE_BUF], budget[ML_SIZE_BUF];
        double per_min = res->rate_bytes_per_s * 60.0;
        int n;
        if (res->pattern == ML_PATTERN_INSUFFICIENT)
            n = snprintf(cp->growth + used, sizeof cp->growth - used, "%s%s not gated (%u snapshot%s, "
                         "%d needed)", i ? ", " : "", key, res->samples, res->samples == 1 ? "" : "s",
                         ML_WINDOW_MIN);
        else
            n = snprintf(cp->growth + used, sizeof cp->growth - used, "%s%s %s %s%s/min", i ? ", " : "",
                         key, ml_pattern_name(res->pattern), per_min < 0 ? "-" : "+",
                         ml_fmt_size((int64_t)llround(fabs(per_min)), rate, sizeof rate));
        if (n > 0 && (size_t)n < sizeof cp->growth - used)
            used += (size_t)n;
        if (!ml_trend_growing(res) || per_min <= (double)o->max_growth)
            continue;
        const ml_site *site = NULL;   /* the fastest-growing site of the metric's kind */
        for (size_t k = 0; k < t.nsites && !site; k++)
            if (ml_trend_growing(&t.sites[k].res) && t.sites[k].site->is_mmap == (metrics[i] == ML_TREND_MMAP))
                site = t.sites[k].site;
        ml_finding f = {.rule = ML_RULE_GROWTH, .proc = p, .site = site, .metric = key,
                        .rate_bps = res->rate_bytes_per_s};
        f.loc = user_location(sym, s, site);
        char *proc = process_label(s), *print = NULL;
        if (asprintf(&f.message, "%s%s grows %s at %s/min (%.0f bytes/s, R² %.2f, confidence %u, last "
                     "%u snapshots) over the budget of %s/min%s%s [%s]", s->sampled ? "estimated " : "",
                     key, res->pattern == ML_PATTERN_EXPONENTIAL ? "exponentially" : "linearly",
                     ml_fmt_size((int64_t)llround(per_min), rate, sizeof rate), res->rate_bytes_per_s,
                     res->r2, res->confidence, res->samples,
                     ml_fmt_size(o->max_growth, budget, sizeof budget), f.loc.function ? "; fastest-growing "
                     "site in " : "", f.loc.function ? f.loc.function : "", proc) < 0 ||
            asprintf(&print, "%s:%s", s->exe ? base_name(s->exe) : "?", key) < 0 ||
            asprintf(&f.fingerprint, "%016" PRIx64, fnv1a(print)) < 0)
            ml_die("out of memory");
        free(print);
        free(proc);
        add_finding(r, &f);
    }
    ml_trends_free(&t);
}

typedef struct pending {
    size_t proc;
    ml_leak_entry entry;
    char *key;
} pending;

bool ml_check_eval(ml_check_result *r, const ml_check_opts *o, const ml_run *run,
                   ml_symbolizer *sym, char *err, size_t errlen)
{
    memset(r, 0, sizeof *r);
    r->opts = o;
    r->run = run;
    r->sym = sym;
    if (o->suppressions && !ml_sup_load(&r->sup, o->suppressions, err, errlen))
        return false;
    ml_baseline base;
    ml_baseline_init(&base);
    if (o->baseline && !ml_baseline_load(&base, o->baseline, err, errlen)) {
        ml_sup_free(&r->sup);
        return false;
    }
    json_t *written = o->write_baseline ? json_array() : NULL;
    r->nprocs = run->nstreams;
    r->procs = calloc(r->nprocs ? r->nprocs : 1, sizeof *r->procs);
    if (!r->procs || (o->write_baseline && !written))
        ml_die("out of memory");

    /* first pass: verdicts, classes, suppressions; the lost entries left are pending */
    pending *todo = NULL;
    size_t ntodo = 0;
    for (size_t p = 0; p < r->nprocs; p++) {
        ml_check_proc *cp = &r->procs[p];
        const ml_stream *s = run->streams[p];
        cp->s = s;
        cp->verdict = verdict_of(s, cp->note, sizeof cp->note);
        /* peak: exact from snapshots, else at least the largest site peak */
        int64_t best = -1;
        for (const ml_site *site = s->sites; site; site = site->hh.next)
            if (!site->is_mmap && site->peak_live_bytes > best) {
                best = site->peak_live_bytes;
                cp->peak_site = site;
            }
        cp->peak_exact = s->has_snapshot;
        cp->peak_estimated = s->sampled;
        cp->peak = s->has_snapshot ? s->heap_peak : (best > 0 ? best : 0);
        if (cp->verdict == ML_VERDICT_SAMPLED) {
            r->nsampled++;
            bool leaks_asked = o->max_leaked_given || o->max_possibly >= 0 || (o->max_peak < 0 && o->max_growth < 0);
            if (leaks_asked && !o->allow_incomplete) {
                snprintf(err, errlen, "no leak verdict for process %" PRId64 ": it was recorded "
                         "in sampled mode, so leak budgets cannot be checked; give only "
                         "--max-peak (checked against an estimated peak), or check a run made "
                         "without --sample (MEMLENS_SAMPLE)", s->pid);
                free(todo);
                json_decref(written);
                ml_baseline_free(&base);
                return false;
            }
            if (leaks_asked)
                r->nmissing++;
        }
        if (cp->verdict == ML_VERDICT_MISSING) {
            r->nmissing++;
            if (!o->allow_incomplete) {
                snprintf(err, errlen, "%s; --allow-incomplete skips such processes", cp->note);
                free(todo);
                json_decref(written);
                ml_baseline_free(&base);
                return false;
            }
        }
        if (cp->verdict != ML_VERDICT_OK)
            continue;
        for (int k = 0; k < 2; k++) {
            ml_leak_entry *v;
            size_t n = ml_stream_leak_entries(s, k == 1, &v);
            for (size_t i = 0; i < n; i++) {
                ml_leak_entry *e = &v[i];
                if (e->cls < 0)
                    continue;
                cp->classes[e->cls].bytes += e->direct.bytes;
                cp->classes[e->cls].blocks += e->direct.blocks;
                if (e->cls == ML_LEAK_REACHABLE)
                    continue;
                ml_text_frame *tf;
                size_t nf = ml_site_text_frames(sym, s, e->site, &tf);
                ml_suppression *rule = ml_sup_match(&r->sup, tf, nf);
                if (rule) {
                    rule->hits++;
                    rule->bytes += e->direct.bytes;
                    cp->suppressed.bytes += e->direct.bytes;
                    cp->suppressed.blocks += e->direct.blocks;
                    ml_suppressed *sv = realloc(cp->suppressed_entries,
                                                (cp->nsuppressed + 1) * sizeof *sv);
                    if (!sv)
                        ml_die("out of memory");
                    cp->suppressed_entries = sv;
                    sv[cp->nsuppressed++] = (ml_suppressed){*e, rule};
                    free(tf);
                    continue;
                }
                json_t *be = ml_baseline_entry(ml_leak_class_name(e->cls), e->site->kind, tf, nf);
                free(tf);
                char *key = be ? ml_baseline_key_of(be) : NULL;
                if (!key)
                    ml_die("out of memory");
                if (written) {
                    json_object_set_new(be, "bytes", json_integer(e->direct.bytes));
                    json_object_set_new(be, "blocks", json_integer(e->direct.blocks));
                    json_object_set_new(be, "process", ml_jstr(s->exe ? base_name(s->exe) : NULL));
                    json_array_append(written, be);
                }
                json_decref(be);
                pending *tv = realloc(todo, (ntodo + 1) * sizeof *tv);
                if (!tv)
                    ml_die("out of memory");
                todo = tv;
                todo[ntodo++] = (pending){p, *e, key};
            }
            free(v);
        }
    }

    if (written) {
        bool ok = ml_baseline_write(o->write_baseline, written, err, errlen);
        /* the new baseline accepts every current leak */
        for (size_t i = 0; ok && i < ntodo; i++)
            ml_baseline_add(&base, todo[i].key);
        json_decref(written);
        if (!ok) {
            for (size_t i = 0; i < ntodo; i++)
                free(todo[i].key);
            free(todo);
            ml_baseline_free(&base);
            return false;
        }
    }

    /* second pass: baseline, budgets, findings */
    for (size_t i = 0; i < ntodo; i++) {
        pending *t = &todo[i];
        ml_check_proc *cp = &r->procs[t->proc];
        if (ml_baseline_contains(&base, t->key)) {
            cp->baselined.bytes += t->entry.direct.bytes;
            cp->baselined.blocks += t->entry.direct.blocks;
            free(t->key);
            t->key = NULL;
            continue;
        }
        ml_amount *g = &cp->gated[t->entry.cls];
        g->bytes += t->entry.direct.bytes;
        g->blocks += t->entry.direct.blocks;
        ml_amount *sum = t->entry.cls == ML_LEAK_POSSIBLE ? &r->possible : &r->leaked;
        sum->bytes += t->entry.direct.bytes;
        sum->blocks += t->entry.direct.blocks;
    }
    r->leaked_over = r->leaked.bytes > o->max_leaked;
    r->possible_over = o->max_possibly >= 0 && r->possible.bytes > o->max_possibly;

    for (size_t p = 0; p < r->nprocs; p++) {
        ml_check_proc *cp = &r->procs[p];
        const ml_stream *s = cp->s;
        for (size_t i = 0; i < ntodo; i++) {
            pending *t = &todo[i];
            if (t->proc != p || !t->key)
                continue;
            bool possible = t->entry.cls == ML_LEAK_POSSIBLE;
            if (possible ? !r->possible_over : !r->leaked_over)
                continue;
            ml_finding f = {.rule = (ml_rule)t->entry.cls, .proc = p, .site = t->entry.site,
                            .entry = t->entry};
            f.loc = user_location(sym, s, t->entry.site);
            f.message = leak_message(s, &t->entry, &f.loc);
            if (asprintf(&f.fingerprint, "%016" PRIx64, fnv1a(t->key)) < 0)
                ml_die("out of memory");
            add_finding(r, &f);
        }
        if (o->max_peak >= 0 && cp->peak > o->max_peak) {
            char a[ML_SIZE_BUF], b[ML_SIZE_BUF];
            ml_finding f = {.rule = ML_RULE_PEAK, .proc = p, .site = cp->peak_site};
            f.loc = user_location(sym, s, cp->peak_site);
            char *proc = process_label(s);
            if (asprintf(&f.message, "%speak heap %s%s (%" PRId64 " bytes) over the budget of %s "
                         "(%" PRId64 " bytes)%s%s [%s]", cp->peak_estimated ? "estimated " : "",
                         cp->peak_estimated ? "~" : cp->peak_exact ? "" : "at least ",
                         ml_fmt_size(cp->peak, a, sizeof a), cp->peak,
                         ml_fmt_size(o->max_peak, b, sizeof b), o->max_peak,
                         f.loc.function ? "; largest site in " : "",
                         f.loc.function ? f.loc.function : "", proc) < 0 ||
                asprintf(&f.fingerprint, "%016" PRIx64, fnv1a(s->exe ? base_name(s->exe) : "?")) < 0)
                ml_die("out of memory");
            free(proc);
            add_finding(r, &f);
        }
    }
    if (o->max_growth >= 0)
        for (size_t p = 0; p < r->nprocs; p++)
            check_growth(r, p, sym);
    for (size_t i = 0; i < ntodo; i++)
        free(todo[i].key);
    free(todo);
    ml_baseline_free(&base);
    return true;
}

void ml_check_result_free(ml_check_result *r)
{
    for (size_t i = 0; i < r->nfindings; i++) {
        free(r->findings[i].message);
        free(r->findings[i].fingerprint);
    }
    free(r->findings);
    for (size_t p = 0; p < r->nprocs; p++)
        free(r->procs[p].suppressed_entries);
    free(r->procs);
    ml_sup_free(&r->sup);
    memset(r, 0, sizeof *r);
}

int ml_check_main(const ml_check_opts *o, const ml_run *run, ml_symbolizer *sym, FILE *out)
{
    char err[1024];
    ml_check_result r;
    if (!ml_check_eval(&r, o, run, sym, err, sizeof err)) {
        fprintf(stderr, "memlens: %s\n", err);
        return ML_EXIT_USAGE;
    }
    FILE *f = out;
    if (o->output) {
        f = fopen(o->output, "w");
        if (!f) {
            fprintf(stderr, "memlens: %s: cannot create: %s\n", o->output, strerror(errno));
            ml_check_result_free(&r);
            return ML_EXIT_USAGE;
        }
    }
    bool ok = ml_check_write(&r, f);
    ok = fflush(f) == 0 && ok;
    if (f != out)
        ok = fclose(f) == 0 && ok;
    if (!ok)
        fprintf(stderr, "memlens: cannot write the check report\n");
    if (o->write_baseline)
        fprintf(stderr, "memlens: baseline written to %s\n", o->write_baseline);
    int status = !ok ? ML_EXIT_USAGE : r.nfindings ? ML_EXIT_FINDINGS : ML_EXIT_OK;
    ml_check_result_free(&r);
    return status;
}
