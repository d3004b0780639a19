/* report_formats.c — writes an ml_check_result as text, JUnit XML, SARIF 2.1.0 or GitHub
 * workflow commands (see check.h for the data model; README "CI gating" for the formats).
 *
 * text     human report: per process its four classes, suppressed/baselined amounts, peak,
 *          findings with stacks, suppressed leaks; then the "Suppressions used" table and a
 *          one-line verdict.
 * junit    <testsuites><testsuite name="memlens"> with one <testcase> per process image and
 *          one <failure> per finding (type = rule id); XML-escaped.
 * sarif    SARIF 2.1.0 built with jansson: one run, driver "memlens", five rules, one result
 *          per finding located at the first user frame (relative to %SRCROOT% = the current
 *          directory when the file is below it), with logical locations, the whole stack and a
 *          partial fingerprint that survives rebuilds.
 * github   ::error file=F,line=L,title=memlens::message, escaped per GitHub's rules (data: % CR
 *          LF; properties also : and ,); paths relative to $GITHUB_WORKSPACE (else the current
 *          directory) when below it.
 */
#define _GNU_SOURCE
#include "check.h"
#include "fmt.h"

#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef MEMLENS_VERSION
#define MEMLENS_VERSION "unknown"
#endif

#define STACK_FRAMES 12

static const char *base_name(const char *path)
{
    const char *slash = path ? strrchr(path, '/') : NULL;
    return slash ? slash + 1 : path;
}

static char *stack_text(const ml_check_result *r, const ml_finding *f, const char *indent)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    if (!m)
        ml_die("out of memory");
    if (f->site)
        ml_print_stack(m, r->sym, r->procs[f->proc].s, f->site, STACK_FRAMES, indent);
    if (fclose(m) != 0)
        ml_die("out of memory");
    while (len && buf[len - 1] == '\n')
        buf[--len] = '\0';
    return buf;
}

/* Path of `file` relative to `root` when it lies below it, else NULL. */
static const char *below(const char *file, const char *root)
{
    size_t n = root ? strlen(root) : 0;
    while (n > 1 && root[n - 1] == '/')
        n--;
    if (!file || file[0] != '/' || !n || strncmp(file, root, n) != 0 || file[n] != '/')
        return NULL;
    return file + n + 1;
}

/* ---- text ---- */

static void text_amount(FILE *out, const char *label, ml_amount a)
{
    char b[32], c[32], s[ML_SIZE_BUF];
    fprintf(out, "   %16s: %s bytes in %s block%s (%s)\n", label, ml_fmt_count(a.bytes, b, sizeof b),
            ml_fmt_count(a.blocks, c, sizeof c), a.blocks == 1 ? "" : "s",
            ml_fmt_size(a.bytes, s, sizeof s));
}

static void write_text(const ml_check_result *r, FILE *out)
{
    static const char *const labels[ML_LEAK_NCLASS] = {"definitely lost", "indirectly lost",
                                                       "possibly lost", "still reachable"};
    const ml_check_opts *o = r->opts;
    char a[ML_SIZE_BUF], b[ML_SIZE_BUF], n1[32];
    fprintf(out, "%smemlens check%s  %s  (%zu stream%s)\n\n", ml_bold, ml_reset, r->run->dir,
            r->run->nstreams, r->run->nstreams == 1 ? "" : "s");
    for (size_t p = 0; p < r->nprocs; p++) {
        const ml_check_proc *cp = &r->procs[p];
        ml_print_process_header(out, cp->s);
        if (cp->verdict == ML_VERDICT_OK) {
            for (int c = 0; c < ML_LEAK_NCLASS; c++)
                text_amount(out, labels[c], cp->classes[c]);
            if (cp->suppressed.blocks || cp->suppressed.bytes)
                text_amount(out, "suppressed", cp->suppressed);
            if (r->opts->baseline || r->opts->write_baseline)
                text_amount(out, "in baseline", cp->baselined);
        }
        fprintf(out, "   %16s: %s%s (%s bytes%s)\n", "peak heap",
                cp->peak_estimated ? "~" : cp->peak_exact ? "" : "at least ",
                ml_fmt_size(cp->peak, a, sizeof a), ml_fmt_count(cp->peak, n1, sizeof n1),
                cp->peak_estimated ? ", estimated" : "");
        if (cp->growth[0])
            fprintf(out, "   %16s: %s\n", "growth", cp->growth);
        if (cp->note[0])
            fprintf(out, "   %snote: %s%s\n", ml_dim, cp->note, ml_reset);
        for (size_t i = 0; i < r->nfindings; i++) {
            const ml_finding *f = &r->findings[i];
            if (f->proc != p)
                continue;
            char *st = stack_text(r, f, "        ");
            fprintf(out, "   %s%sFAIL%s %s: %s\n%s%s", ml_bold, ml_red, ml_reset, ml_rule_id(f->rule),
                    f->message, st, *st ? "\n" : "");
            free(st);
        }
        for (size_t i = 0; i < cp->nsuppressed; i++) {
            const ml_suppressed *sp = &cp->suppressed_entries[i];
            char c1[32], c2[32];
            fprintf(out, "   %ssuppressed%s by leak:%s (%s:%zu): %s bytes in %s block%s %s, %s\n",
                    ml_dim, ml_reset, sp->rule->pattern, base_name(r->sup.path), sp->rule->line,
                    ml_fmt_count(sp->entry.direct.bytes, c1, sizeof c1),
                    ml_fmt_count(sp->entry.direct.blocks, c2, sizeof c2),
                    sp->entry.direct.blocks == 1 ? "" : "s", ml_leak_class_name(sp->entry.cls),
                    sp->entry.site->kind);
            ml_print_stack(out, r->sym, cp->s, sp->entry.site, 4, "        ");
        }
        fputc('\n', out);
    }
    if (r->sup.n) {
        fprintf(out, "Suppressions used (%s):\n   %8s %12s  pattern\n", r->sup.path, "hits", "bytes");
        for (size_t i = 0; i < r->sup.n; i++)
            if (r->sup.rules[i].hits)
                fprintf(out, "   %8" PRId64 " %12" PRId64 "  %s\n", r->sup.rules[i].hits,
                        r->sup.rules[i].bytes, r->sup.rules[i].pattern);
        fputc('\n', out);
    }
    char c1[32], c2[32];
    if (r->nsampled < r->nprocs) {
        fprintf(out, "memlens check: definitely+indirectly lost %s bytes in %s blocks (budget %s)",
                ml_fmt_count(r->leaked.bytes, c1, sizeof c1),
                ml_fmt_count(r->leaked.blocks, c2, sizeof c2), ml_fmt_size(o->max_leaked, a, sizeof a));
        if (o->max_possibly >= 0)
            fprintf(out, ", possibly lost %s bytes (budget %s)",
                    ml_fmt_count(r->possible.bytes, c1, sizeof c1),
                    ml_fmt_size(o->max_possibly, b, sizeof b));
        fprintf(out, ", over %zu process%s\n", r->nprocs - r->nsampled,
                r->nprocs - r->nsampled == 1 ? "" : "es");
    }
    if (r->nsampled)
        fprintf(out, "memlens check: %zu process%s recorded in sampled mode: leaks not gated (no "
                     "verdict), peak checked against an estimate\n", r->nsampled,
                r->nsampled == 1 ? "" : "es");
    if (r->nmissing)
        fprintf(out, "memlens check: %zu process%s without a leak verdict skipped (--allow-incomplete)\n",
                r->nmissing, r->nmissing == 1 ? "" : "es");
    if (r->nfindings)
        fprintf(out, "memlens check: %s%sFAILED%s: %zu finding%s\n", ml_bold, ml_red, ml_reset,
                r->nfindings, r->nfindings == 1 ? "" : "s");
    else
        fprintf(out, "memlens check: %sPASSED%s\n", ml_bold, ml_reset);
}

/* ---- JUnit XML ---- */

static void xml_escape(FILE *out, const char *s)
{
    for (; s && *s; s++) {
        unsigned char ch = (unsigned char)*s;
        switch (ch) {
        case '&': fputs("&amp;", out); break;
        case '<': fputs("&lt;", out); break;
        case '>': fputs("&gt;", out); break;
        case '"': fputs("&quot;", out); break;
        case '\'': fputs("&apos;", out); break;
        case '\t': case '\n': case '\r': fputc(ch, out); break;
        default:
            if (ch < 0x20 || ch == 0x7f)
                fputs("&#xFFFD;", out); /* not allowed in XML 1.0 */
            else
                fputc(ch, out);
        }
    }
}

static void write_junit(const ml_check_result *r, FILE *out)
{
    size_t failed = 0, skipped = 0;
    for (size_t p = 0; p < r->nprocs; p++) {
        if (r->procs[p].nfindings)
            failed++;
        else if ((r->procs[p].verdict == ML_VERDICT_MISSING ||
                  r->procs[p].verdict == ML_VERDICT_SAMPLED) && r->opts->max_peak < 0)
            skipped++;
    }
    fprintf(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                 "<testsuites name=\"memlens\" tests=\"%zu\" failures=\"%zu\" errors=\"0\">\n"
                 "  <testsuite name=\"memlens\" tests=\"%zu\" failures=\"%zu\" errors=\"0\" "
                 "skipped=\"%zu\">\n",
            r->nprocs, failed, r->nprocs, failed, skipped);
    for (size_t p = 0; p < r->nprocs; p++) {
        const ml_check_proc *cp = &r->procs[p];
        char name[512];
        snprintf(name, sizeof name, "pid %" PRId64 " %s (%s)", cp->s->pid,
                 cp->s->exe ? base_name(cp->s->exe) : "?", cp->s->name);
        fputs("    <testcase classname=\"memlens.", out);
        xml_escape(out, cp->s->exe ? base_name(cp->s->exe) : "unknown");
        fputs("\" name=\"", out);
        xml_escape(out, name);
        fputs("\" time=\"0\">\n", out);
        for (size_t i = 0; i < r->nfindings; i++) {
            const ml_finding *f = &r->findings[i];
            if (f->proc != p)
                continue;
            fprintf(out, "      <failure type=\"%s\" message=\"", ml_rule_id(f->rule));
            xml_escape(out, f->message);
            fputs("\">", out);
            xml_escape(out, f->message);
            char *st = stack_text(r, f, "    ");
            if (*st) {
                fputc('\n', out);
                xml_escape(out, st);
            }
            free(st);
            fputs("</failure>\n", out);
        }
        if (!cp->nfindings && (cp->verdict == ML_VERDICT_MISSING ||
                               cp->verdict == ML_VERDICT_SAMPLED) && r->opts->max_peak < 0) {
            fputs("      <skipped message=\"", out);
            xml_escape(out, cp->note);
            fputs("\"/>\n", out);
        } else if (cp->note[0]) {
            fputs("      <system-out>", out);
            xml_escape(out, cp->note);
            fputs("</system-out>\n", out);
        }
        fputs("    </testcase>\n", out);
    }
    fputs("  </testsuite>\n</testsuites>\n", out);
}

/* ---- SARIF 2.1.0 ---- */

static void jset(json_t *o, const char *key, json_t *v)
{
    if (!v || json_object_set_new(o, key, v) != 0)
        ml_die("out of memory");
}

static void jpush(json_t *a, json_t *v)
{
    if (!v || json_array_append_new(a, v) != 0)
        ml_die("out of memory");
}

/* Percent-encode a path for a URI reference (RFC 3986 unreserved and '/' kept). */
static char *uri_encode(const char *prefix, const char *path)
{
    size_t n = strlen(prefix), cap = n + 3 * strlen(path) + 1;
    char *u = malloc(cap);
    if (!u)
        ml_die("out of memory");
    memcpy(u, prefix, n);
    for (const unsigned char *p = (const unsigned char *)path; *p; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            strchr("-._~/", *p))
            u[n++] = (char)*p;
        else
            n += (size_t)sprintf(u + n, "%%%02X", *p);
    }
    u[n] = '\0';
    return u;
}

static json_t *sarif_physical(const char *file, int64_t line, const char *root)
{
    json_t *art = json_object(), *phys = json_object();
    if (!art || !phys)
        ml_die("out of memory");
    const char *rel = below(file, root);
    char *uri = rel ? uri_encode("", rel) : file[0] == '/' ? uri_encode("file://", file)
                                                           : uri_encode("", file);
    jset(art, "uri", json_string(uri));
    free(uri);
    if (rel)
        jset(art, "uriBaseId", json_string("SRCROOT"));
    jset(phys, "artifactLocation", art);
    if (line > 0) {
        json_t *region = json_object();
        if (!region)
            ml_die("out of memory");
        jset(region, "startLine", json_integer(line));
        jset(phys, "region", region);
    }
    return phys;
}

static json_t *sarif_location(const ml_location *loc, const char *root)
{
    json_t *l = json_object();
    if (!l)
        ml_die("out of memory");
    if (loc->file)
        jset(l, "physicalLocation", sarif_physical(loc->file, loc->line, root));
    if (loc->function) {
        json_t *ll = json_array(), *one = json_object();
        if (!ll || !one)
            ml_die("out of memory");
        jset(one, "fullyQualifiedName", json_string(loc->function));
        jset(one, "kind", json_string("function"));
        jpush(ll, one);
        jset(l, "logicalLocations", ll);
    }
    return l;
}

static json_t *sarif_stack(const ml_check_result *r, const ml_finding *f, const char *root)
{
    const ml_stream *s = r->procs[f->proc].s;
    json_t *frames = json_array(), *stack = json_object();
    if (!frames || !stack)
        ml_die("out of memory");
    for (size_t i = 0; i < f->site->nframes; i++) {
        const ml_symbol *y = ml_sym_frame(r->sym, s, &f->site->frames[i]);
        if (ml_frame_is_self(y))
            continue;
        ml_location loc = {y->function, y->file, y->object, y->line};
        json_t *fr = json_object();
        if (!fr)
            ml_die("out of memory");
        jset(fr, "location", sarif_location(&loc, root));
        if (y->object)
            jset(fr, "module", json_string(y->object));
        jpush(frames, fr);
    }
    jset(stack, "frames", frames);
    return stack;
}

static void write_sarif(const ml_check_result *r, FILE *out)
{
    char cwd[PATH_MAX];
    const char *root = getcwd(cwd, sizeof cwd) ? cwd : NULL;
    json_t *log = json_object(), *runs = json_array(), *run = json_object(), *tool = json_object();
    json_t *driver = json_object(), *rules = json_array(), *results = json_array();
    if (!log || !runs || !run || !tool || !driver || !rules || !results)
        ml_die("out of memory");
    jset(log, "$schema", json_string("https://json.schemastore.org/sarif-2.1.0.json"));
    jset(log, "version", json_string("2.1.0"));
    jset(driver, "name", json_string("memlens"));
    jset(driver, "version", json_string(MEMLENS_VERSION));
    for (int i = 0; i < ML_RULE_COUNT; i++) {
        json_t *rule = json_object(), *sd = json_object(), *fd = json_object(), *cfg = json_object();
        if (!rule || !sd || !fd || !cfg)
            ml_die("out of memory");
        jset(rule, "id", json_string(ml_rule_id((ml_rule)i)));
        jset(sd, "text", json_string(ml_rule_description((ml_rule)i)));
        jset(fd, "text", json_string(ml_rule_description((ml_rule)i)));
        jset(rule, "shortDescription", sd);
        jset(rule, "fullDescription", fd);
        jset(cfg, "level", json_string("error"));
        jset(rule, "defaultConfiguration", cfg);
        jpush(rules, rule);
    }
    jset(driver, "rules", rules);
    jset(tool, "driver", driver);
    jset(run, "tool", tool);
    if (root) {
        json_t *bases = json_object(), *src = json_object();
        size_t n = strlen(root);
        char *dir = NULL;
        if (!bases || !src || asprintf(&dir, "%s%s", root, n && root[n - 1] == '/' ? "" : "/") < 0)
            ml_die("out of memory");
        char *uri = uri_encode("file://", dir);
        free(dir);
        jset(src, "uri", json_string(uri));
        free(uri);
        jset(bases, "SRCROOT", src);
        jset(run, "originalUriBaseIds", bases);
    }
    for (size_t i = 0; i < r->nfindings; i++) {
        const ml_finding *f = &r->findings[i];
        const ml_stream *s = r->procs[f->proc].s;
        json_t *res = json_object(), *msg = json_object(), *locs = json_array();
        json_t *fp = json_object(), *props = json_object();
        if (!res || !msg || !locs || !fp || !props)
            ml_die("out of memory");
        jset(res, "ruleId", json_string(ml_rule_id(f->rule)));
        jset(res, "ruleIndex", json_integer(f->rule));
        jset(res, "level", json_string("error"));
        jset(msg, "text", json_string(f->message));
        jset(res, "message", msg);
        if (f->loc.file || f->loc.function)
            jpush(locs, sarif_location(&f->loc, root));
        jset(res, "locations", locs);
        if (f->site) {
            json_t *stacks = json_array();
            if (!stacks)
                ml_die("out of memory");
            jpush(stacks, sarif_stack(r, f, root));
            jset(res, "stacks", stacks);
        }
        jset(fp, "memlensStack/v1", json_string(f->fingerprint));
        jset(res, "partialFingerprints", fp);
        jset(props, "pid", json_integer(s->pid));
        jset(props, "process", ml_jstr(s->exe));
        jset(props, "stream", json_string(s->name));
        if (f->rule == ML_RULE_PEAK) {
            jset(props, "peakBytes", json_integer(r->procs[f->proc].peak));
            jset(props, "budgetBytes", json_integer(r->opts->max_peak));
        } else if (f->rule == ML_RULE_GROWTH) {
            jset(props, "metric", json_string(f->metric));
            jset(props, "rateBytesPerSecond", json_real(f->rate_bps));
            jset(props, "budgetBytesPerMinute", json_integer(r->opts->max_growth));
        } else {
            jset(props, "kind", json_string(f->site->kind));
            jset(props, "bytes", json_integer(f->entry.direct.bytes));
            jset(props, "blocks", json_integer(f->entry.direct.blocks));
            jset(props, "indirectBytes", json_integer(f->entry.indirect.bytes));
            jset(props, "indirectBlocks", json_integer(f->entry.indirect.blocks));
        }
        jset(res, "properties", props);
        jpush(results, res);
    }
    jset(run, "results", results);
    json_t *inv = json_array(), *one = json_object();
    if (!inv || !one)
        ml_die("out of memory");
    jset(one, "executionSuccessful", json_true());
    json_t *notes = json_array();
    if (!notes)
        ml_die("out of memory");
    for (size_t p = 0; p < r->nprocs; p++) {
        if (!r->procs[p].note[0])
            continue;
        json_t *n = json_object(), *m = json_object();
        if (!n || !m)
            ml_die("out of memory");
        jset(m, "text", json_string(r->procs[p].note));
        jset(n, "message", m);
        jset(n, "level", json_string("warning"));
        jpush(notes, n);
    }
    if (json_array_size(notes))
        jset(one, "toolExecutionNotifications", notes);
    else
        json_decref(notes);
    jpush(inv, one);
    jset(run, "invocations", inv);
    jpush(runs, run);
    jset(log, "runs", runs);
    char *text = json_dumps(log, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(log);
    if (!text)
        ml_die("out of memory");
    fputs(text, out);
    fputc('\n', out);
    free(text);
}

/* ---- GitHub workflow commands ---- */

static void gh_escape(FILE *out, const char *s, bool property)
{
    for (; s && *s; s++) {
        switch (*s) {
        case '%': fputs("%25", out); break;
        case '\r': fputs("%0D", out); break;
        case '\n': fputs("%0A", out); break;
        case ':': if (property) { fputs("%3A", out); break; } fputc(*s, out); break;
        case ',': if (property) { fputs("%2C", out); break; } fputc(*s, out); break;
        default: fputc(*s, out);
        }
    }
}

static void write_github(const ml_check_result *r, FILE *out)
{
    char cwd[PATH_MAX];
    const char *ws = getenv("GITHUB_WORKSPACE");
    const char *root = ws && *ws ? ws : getcwd(cwd, sizeof cwd) ? cwd : NULL;
    for (size_t i = 0; i < r->nfindings; i++) {
        const ml_finding *f = &r->findings[i];
        fputs("::error ", out);
        if (f->loc.file) {
            const char *rel = below(f->loc.file, root);
            fputs("file=", out);
            gh_escape(out, rel ? rel : f->loc.file, true);
            if (f->loc.line > 0)
                fprintf(out, ",line=%" PRId64, f->loc.line);
            fputc(',', out);
        }
        fputs("title=memlens::", out);
        gh_escape(out, f->message, false);
        char *st = stack_text(r, f, "  ");
        if (*st) {
            gh_escape(out, "\n", false);
            gh_escape(out, st, false);
        }
        free(st);
        fputc('\n', out);
    }
    for (size_t p = 0; p < r->nprocs; p++) {
        if (!r->procs[p].note[0])
            continue;
        fputs("::warning title=memlens::", out);
        gh_escape(out, r->procs[p].note, false);
        fputc('\n', out);
    }
    char c1[32];
    fprintf(out, "memlens check: %s (%zu finding%s; definitely+indirectly lost %s bytes)\n",
            r->nfindings ? "FAILED" : "PASSED", r->nfindings, r->nfindings == 1 ? "" : "s",
            ml_fmt_count(r->leaked.bytes, c1, sizeof c1));
}

bool ml_check_write(const ml_check_result *r, FILE *out)
{
    switch (r->opts->format) {
    case ML_FORMAT_TEXT: write_text(r, out); break;
    case ML_FORMAT_JUNIT: write_junit(r, out); break;
    case ML_FORMAT_SARIF: write_sarif(r, out); break;
    case ML_FORMAT_GITHUB: write_github(r, out); break;
    }
    return !ferror(out);
}
