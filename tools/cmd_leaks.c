/* cmd_leaks.c — `memlens leaks [RUN]`: what was still allocated when each process exited,
 * classified by the reachability scan.
 *
 * Sources of truth: the `live` records written at exit (one per site still holding memory;
 * they give summary.heap / summary.mmap) and the `leak` / `leak_summary` records (the verdict:
 * one entry per site and class, valgrind's "N (D direct, I indirect) bytes in B blocks").
 * Heap sites are the leaks proper; mmap sites are listed apart as mappings still mapped at exit.
 * A stream without a verdict (cut by a kill, an exec'd-away image, an older stream) lists its
 * live blocks unclassified (class null). A stream without an `end` record was cut before the
 * live records were written: the report says so (the data is incomplete, not clean). Exit 0.
 *
 * --show selects the classes listed: text hides still reachable by default (as LSan does);
 * --json lists every class unless --show is given, so sums over `leaks` match summary.heap.
 */
#define _GNU_SOURCE
#include "cli.h"
#include "fmt.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *out)
{
    fputs("Usage: memlens leaks [OPTIONS] [RUN]\n\n"
          "Blocks still allocated when each process exited, grouped by allocation site\n"
          "(largest first) with symbolized stacks; mappings still mapped at exit are listed\n"
          "apart. RUN is a run directory or a .jsonl stream (default: the newest\n"
          "./memlens-*/ directory).\n\n"
          "Options:\n"
          "  --show LIST    classes shown: definite, indirect, possible, reachable, all, lost\n"
          "                 (= definite,indirect,possible), comma-separated. Default: lost in\n"
          "                 text, all in --json. '--show reachable' alone adds still reachable\n"
          "                 to the default; a longer list is the exact set shown\n"
          "  --limit N      entries shown per process and section (default 0 = all)\n"
          "  --frames N     frames shown per stack (default 0 = all)\n"
          "  --json         one JSON object with a \"processes\" array (see docs/format.md)\n"
          "  -h, --help     this help\n\n"
          "Classes (valgrind's): definitely lost (no pointer to the block anywhere), indirectly\n"
          "lost (reachable only from lost blocks), possibly lost (only interior pointers), still\n"
          "reachable. A definitely or possibly lost entry shows 'N (D direct, I indirect) bytes':\n"
          "I counts the blocks lost only because of it (listed again as indirectly lost).\n\n"
          "A process whose stream has no end record (killed, crashed, still running) has no\n"
          "exit data: it is reported as incomplete. Exit status 0 (2 on bad input).\n",
          out);
}

#define SHOW_LOST ((1u << ML_LEAK_DEFINITE) | (1u << ML_LEAK_INDIRECT) | (1u << ML_LEAK_POSSIBLE))
#define SHOW_ALL (SHOW_LOST | (1u << ML_LEAK_REACHABLE))

static const char *const class_fields[ML_LEAK_NCLASS] = {"definitely_lost", "indirectly_lost",
                                                         "possibly_lost", "still_reachable"};
static const char *const class_texts[ML_LEAK_NCLASS] = {"definitely lost", "indirectly lost",
                                                        "possibly lost", "still reachable"};

/* Parse --show: a comma list of classes, all, lost. A list of just "reachable" adds it to the
 * default (the lost classes); any other list is the exact set. Returns false on a bad word. */
static bool parse_show(const char *arg, unsigned *mask)
{
    char *copy = strdup(arg), *save = NULL;
    if (!copy)
        ml_die("out of memory");
    unsigned m = 0;
    size_t words = 0;
    bool ok = true;
    for (char *w = strtok_r(copy, ",", &save); w && ok; w = strtok_r(NULL, ",", &save)) {
        words++;
        int cls = ml_leak_class_parse(w);
        if (cls >= 0)
            m |= 1u << cls;
        else if (strcmp(w, "all") == 0)
            m |= SHOW_ALL;
        else if (strcmp(w, "lost") == 0)
            m |= SHOW_LOST;
        else if (strcmp(w, "definitely") == 0)
            m |= 1u << ML_LEAK_DEFINITE;
        else if (strcmp(w, "indirectly") == 0)
            m |= 1u << ML_LEAK_INDIRECT;
        else if (strcmp(w, "possibly") == 0)
            m |= 1u << ML_LEAK_POSSIBLE;
        else if (strcmp(w, "still-reachable") == 0)
            m |= 1u << ML_LEAK_REACHABLE;
        else
            ok = false;
    }
    free(copy);
    if (!ok || !words)
        return false;
    if (words == 1 && m == 1u << ML_LEAK_REACHABLE)
        m |= SHOW_LOST;
    *mask = m;
    return true;
}

static bool shown(const ml_leak_entry *e, unsigned mask)
{
    return e->cls < 0 || (mask & (1u << e->cls));
}

typedef struct live_totals {
    int64_t heap_bytes, heap_blocks, mmap_bytes, mmap_blocks;
} live_totals;

static live_totals live_at_exit(const ml_stream *s)
{
    live_totals t = {0};
    for (const ml_site *site = s->sites; site; site = site->hh.next) {
        if (!site->has_exit_live || (site->exit_live_bytes <= 0 && site->exit_live_blocks <= 0))
            continue;
        if (site->is_mmap) {
            t.mmap_bytes += site->exit_live_bytes;
            t.mmap_blocks += site->exit_live_blocks;
        } else {
            t.heap_bytes += site->exit_live_bytes;
            t.heap_blocks += site->exit_live_blocks;
        }
    }
    return t;
}

static json_t *json_amount(int64_t bytes, int64_t blocks)
{
    json_t *o = json_object();
    if (!o || !ml_jset(o, "bytes", json_integer(bytes)) ||
        !ml_jset(o, "blocks", json_integer(blocks)))
        ml_die("out of memory");
    return o;
}

static json_t *json_entries(ml_symbolizer *sym, const ml_stream *s, const ml_leak_entry *v,
                            size_t n, size_t limit, unsigned mask)
{
    json_t *a = json_array();
    if (!a)
        ml_die("out of memory");
    size_t count = 0;
    for (size_t i = 0; i < n && (!limit || count < limit); i++) {
        const ml_leak_entry *e = &v[i];
        if (!shown(e, mask))
            continue;
        count++;
        json_t *o = json_object();
        if (!o || !ml_jset(o, "site", json_integer(e->site->id)) ||
            !ml_jset(o, "kind", json_string(e->site->kind)) ||
            !ml_jset(o, "class", e->cls >= 0 ? json_string(ml_leak_class_name(e->cls)) : json_null()) ||
            !ml_jset(o, "bytes", json_integer(e->direct.bytes)) ||
            !ml_jset(o, "blocks", json_integer(e->direct.blocks)) ||
            !ml_jset(o, "indirect_bytes", json_integer(e->indirect.bytes)) ||
            !ml_jset(o, "indirect_blocks", json_integer(e->indirect.blocks)) ||
            !ml_jset(o, "stack", ml_json_stack(sym, s, e->site)) ||
            json_array_append_new(a, o) != 0)
            ml_die("out of memory");
    }
    return a;
}

static const char *no_verdict_reason(const ml_stream *s)
{
    if (s->sampled)
        return "sampled mode: reachability is not classified";
    if (!s->has_end)
        return "stream cut";
    if (s->end_reason && strcmp(s->end_reason, "exec") == 0)
        return "image replaced by exec: its memory is gone, not leaked";
    if (s->end_reason && strcmp(s->end_reason, "error") == 0)
        return "tracking stopped by an internal error";
    return "no leak records: stream written by an older memlens?";
}

typedef struct leaks_opts {
    size_t limit, frames;
    unsigned mask;
} leaks_opts;

static json_t *json_process(ml_symbolizer *sym, const ml_stream *s, const void *ctx)
{
    const leaks_opts *o = ctx;
    size_t limit = o->limit;
    unsigned mask = o->mask;
    json_t *p = ml_json_process(s), *summary = json_object();
    live_totals t = live_at_exit(s);
    ml_leak_entry *heap, *mmap;
    size_t nheap = ml_stream_leak_entries(s, false, &heap);
    size_t nmmap = ml_stream_leak_entries(s, true, &mmap);
    if (!summary || !ml_jset(summary, "heap", json_amount(t.heap_bytes, t.heap_blocks)) ||
        !ml_jset(summary, "mmap", json_amount(t.mmap_bytes, t.mmap_blocks)) ||
        !ml_jset(summary, "complete", json_boolean(s->has_end)))
        ml_die("out of memory");
    for (int cls = 0; cls < ML_LEAK_NCLASS; cls++)
        if (!ml_jset(summary, class_fields[cls],
                     s->has_leak_summary ? json_amount(s->leak_total[cls].bytes,
                                                       s->leak_total[cls].blocks)
                                         : json_null()))
            ml_die("out of memory");
    if (!ml_jset(summary, "leak_verdict", json_boolean(s->has_leak_summary)) ||
        !ml_jset(summary, "leak_scan_complete",
                 s->has_leak_summary ? json_boolean(s->leak_complete) : json_null()) ||
        (s->leak_message && !ml_jset(summary, "leak_message", json_string(s->leak_message))) ||
        (!s->has_leak_summary &&
         !ml_jset(summary, "no_verdict_reason", json_string(no_verdict_reason(s)))) ||
        !ml_jset(p, "summary", summary) ||
        !ml_jset(p, "leaks", json_entries(sym, s, heap, nheap, limit, mask)) ||
        !ml_jset(p, "mappings", json_entries(sym, s, mmap, nmmap, limit, mask)))
        ml_die("out of memory");
    if (!s->has_end && !ml_jset(p, "note", json_string("stream cut (no end record): leak data "
                                                       "incomplete, live records missing")))
        ml_die("out of memory");
    free(heap);
    free(mmap);
    return p;
}

/* `est`: "~" before each number when they are sampled estimates, else "". */
static void print_entries(ml_symbolizer *sym, const ml_stream *s, const ml_leak_entry *v, size_t n,
                          size_t limit, size_t frames, unsigned mask, const char *unit,
                          const char *est)
{
    char a[ML_SIZE_BUF], b[32], c[32], d[32], e2[32];
    size_t count = 0, total = 0;
    for (size_t i = 0; i < n; i++)
        total += shown(&v[i], mask);
    for (size_t i = 0; i < n && (!limit || count < limit); i++) {
        const ml_leak_entry *e = &v[i];
        if (!shown(e, mask))
            continue;
        count++;
        int64_t sum = e->direct.bytes + e->indirect.bytes;
        const char *what = e->cls >= 0 ? class_texts[e->cls] : "still allocated at exit";
        char amount[128];
        if (e->cls == ML_LEAK_DEFINITE || e->cls == ML_LEAK_POSSIBLE)
            snprintf(amount, sizeof amount, "%s (%s direct, %s indirect) bytes",
                     ml_fmt_count(sum, b, sizeof b), ml_fmt_count(e->direct.bytes, c, sizeof c),
                     ml_fmt_count(e->indirect.bytes, d, sizeof d));
        else
            snprintf(amount, sizeof amount, "%s%s bytes", est, ml_fmt_count(sum, b, sizeof b));
        printf("   %s%s%s%s in %s%s %s%s %s %s%s  %s (%s%s)  %s(site %" PRId64 ")%s\n", ml_bold,
               e->cls == ML_LEAK_DEFINITE ? ml_red : "", amount, ml_reset, est,
               ml_fmt_count(e->direct.blocks, e2, sizeof e2), unit,
               e->direct.blocks == 1 ? "" : "s", e->direct.blocks == 1 ? "is" : "are", what,
               "", e->site->kind, est, ml_fmt_size(sum, a, sizeof a), ml_dim, e->site->id,
               ml_reset);
        ml_print_stack(stdout, sym, s, e->site, frames, "       ");
    }
    if (count < total)
        printf("   %s… %zu more (--limit 0 shows all)%s\n", ml_dim, total - count, ml_reset);
}

static void print_process(ml_symbolizer *sym, const ml_stream *s, const void *ctx)
{
    const leaks_opts *o = ctx;
    size_t limit = o->limit, frames = o->frames;
    unsigned mask = o->mask;
    ml_print_process_header(stdout, s);
    if (!s->has_end) {
        printf("   %sstream was cut: leak data incomplete (live records missing)%s\n\n", ml_red,
               ml_reset);
        return;
    }
    live_totals t = live_at_exit(s);
    char a[ML_SIZE_BUF], b[32], c[32];
    const char *est = ml_estimate_mark(s);
    printf("   in use at exit: %s%s bytes in %s%s blocks (%s%s)\n", est,
           ml_fmt_count(t.heap_bytes, b, sizeof b), est, ml_fmt_count(t.heap_blocks, c, sizeof c),
           est, ml_fmt_size(t.heap_bytes, a, sizeof a));
    printf("   still mapped at exit: %s bytes in %s mappings (%s)\n",
           ml_fmt_count(t.mmap_bytes, b, sizeof b), ml_fmt_count(t.mmap_blocks, c, sizeof c),
           ml_fmt_size(t.mmap_bytes, a, sizeof a));
    if (s->has_leak_summary) {
        printf("   %sLEAK SUMMARY:%s\n", ml_bold, ml_reset);
        for (int cls = 0; cls < ML_LEAK_NCLASS; cls++)
            printf("      %15s: %s bytes in %s blocks%s\n", class_texts[cls],
                   ml_fmt_count(s->leak_total[cls].bytes, b, sizeof b),
                   ml_fmt_count(s->leak_total[cls].blocks, c, sizeof c),
                   cls == ML_LEAK_REACHABLE && !(mask & (1u << cls)) ? "  (--show reachable lists them)"
                                                                     : "");
        if (!s->leak_complete)
            printf("   %snote: the scan was incomplete%s%s: more may be reported lost than is%s\n",
                   ml_red, s->leak_message ? ": " : "", s->leak_message ? s->leak_message : "",
                   ml_reset);
    } else {
        printf("   %sno leak verdict (%s): blocks listed unclassified%s\n", ml_dim,
               no_verdict_reason(s), ml_reset);
    }
    printf("\n");
    ml_leak_entry *heap, *mmap;
    size_t nheap = ml_stream_leak_entries(s, false, &heap);
    size_t nmmap = ml_stream_leak_entries(s, true, &mmap);
    size_t vh = 0, vm = 0;
    for (size_t i = 0; i < nheap; i++)
        vh += shown(&heap[i], mask);
    for (size_t i = 0; i < nmmap; i++)
        vm += shown(&mmap[i], mask);
    if (vh) {
        printf("   %sblocks by site and class:%s\n", ml_bold, ml_reset);
        print_entries(sym, s, heap, nheap, limit, frames, mask, "block", est);
        printf("\n");
    }
    if (vm) {
        printf("   %smappings still mapped at exit:%s\n", ml_bold, ml_reset);
        print_entries(sym, s, mmap, nmmap, limit, frames, mask, "mapping", "");
        printf("\n");
    }
    free(heap);
    free(mmap);
}

int ml_cmd_leaks(int argc, char **argv)
{
    static const struct option opts[] = {
        {"limit", required_argument, NULL, 'n'}, {"frames", required_argument, NULL, 'f'},
        {"json", no_argument, NULL, 'j'},       {"show", required_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},       {NULL, 0, NULL, 0},
    };
    bool json = false;
    uint64_t limit = 0, frames = 0;
    unsigned mask = 0;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'n':
            if (ml_parse_uint(optarg, 0, 100000000, &limit))
                ml_usage_error("leaks", "--limit: expected a number, not '%s'", optarg);
            break;
        case 'f':
            if (ml_parse_uint(optarg, 0, 100000, &frames))
                ml_usage_error("leaks", "--frames: expected a number, not '%s'", optarg);
            break;
        case 's':
            if (!parse_show(optarg, &mask))
                ml_usage_error("leaks", "--show: expected a comma-separated list of definite, "
                                        "indirect, possible, reachable, lost or all, not '%s'",
                               optarg);
            break;
        case 'j': json = true; break;
        case 'h': usage(stdout); return ML_EXIT_OK;
        default:
            ml_bad_option("leaks", argv[optind - 1]);
        }
    }
    if (argc - optind > 1)
        ml_usage_error("leaks", "expected at most one RUN argument");
    if (!mask)
        mask = json ? SHOW_ALL : SHOW_LOST;
    leaks_opts o = {(size_t)limit, (size_t)frames, mask};
    ml_cli_view view = {"leaks", json_process, print_process, &o};
    return ml_cli_show(&view, optind < argc ? argv[optind] : NULL, json);
}
