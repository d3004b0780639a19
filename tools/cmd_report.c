/* cmd_report.c — `memlens report [RUN]`: top memory consumers of each traced process.
 *
 * Data model: per stream, one row per site (--by site) or per group of sites keyed by their
 * first frame's function, their first frame's object, or their kind. Heap and mmap rows are
 * never merged: a group key carries its class. Process totals cover heap kinds only; mmap
 * live bytes are reported apart (contract in docs/format.md and the lead's contract).
 */
#define _GNU_SOURCE
#include "cli.h"
#include "fmt.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

enum sort_key { SORT_LIVE, SORT_PEAK, SORT_ALLOCATED, SORT_CALLS };
enum group_by { BY_SITE, BY_FUNCTION, BY_LIBRARY, BY_KIND };

typedef struct row {
    char *key;               /* group key (NULL for --by site) */
    const ml_site *site;     /* --by site */
    const char *kind;
    bool is_mmap;
    int64_t allocations, frees, allocated, live, blocks, peak;
    size_t nsites;
    UT_hash_handle hh;
} row;

static enum sort_key sort_by = SORT_LIVE;

static int64_t row_metric(const row *r)
{
    switch (sort_by) {
    case SORT_PEAK: return r->peak;
    case SORT_ALLOCATED: return r->allocated;
    case SORT_CALLS: return r->allocations;
    default: return r->live;
    }
}

static int cmp_rows(const void *a, const void *b)
{
    const row *x = *(row *const *)a, *y = *(row *const *)b;
    int64_t mx = row_metric(x), my = row_metric(y);
    if (mx != my)
        return mx > my ? -1 : 1;
    if (x->allocated != y->allocated)
        return x->allocated > y->allocated ? -1 : 1;
    if (x->site && y->site && x->site->id != y->site->id)
        return x->site->id < y->site->id ? -1 : 1;
    return x->key && y->key ? strcmp(x->key, y->key) : 0;
}

static void usage(FILE *out)
{
    fputs("Usage: memlens report [OPTIONS] [RUN]\n\n"
          "Top memory consumers of each process of a run. RUN is a run directory or a .jsonl\n"
          "stream (default: the newest ./memlens-*/ directory).\n\n"
          "Options:\n"
          "  --sort KEY     live (default), peak, allocated or calls\n"
          "  --by WHAT      site (default), function, library or kind: group sites by their\n"
          "                 first frame's function, its object, or the operation kind\n"
          "  --limit N      rows per process (default 20; with --json: all)\n"
          "  --frames N     frames shown per site in the table (default 1; 0 = all)\n"
          "  --json         one JSON object with a \"processes\" array (see docs/format.md)\n"
          "  -h, --help     this help\n\n"
          "Heap totals cover the malloc family, new and buffer calls; mmap_anon/mmap_file sites\n"
          "are listed as their own rows and counted in \"mmap live\", never in heap totals.\n",
          out);
}

static const char *group_key(ml_symbolizer *sym, const ml_stream *s, const ml_site *site,
                             enum group_by by, char *buf, size_t len)
{
    if (by == BY_KIND)
        return site->kind;
    size_t i = ml_site_first_frame(sym, s, site);
    if (i >= site->nframes)
        return "(no stack)";
    const ml_symbol *y = ml_sym_frame(sym, s, &site->frames[i]);
    if (by == BY_LIBRARY) {
        const char *slash = y->object ? strrchr(y->object, '/') : NULL;
        return y->object ? (slash ? slash + 1 : y->object) : "(unknown object)";
    }
    if (y->function)
        return y->function;
    const char *slash = y->object ? strrchr(y->object, '/') : NULL;
    snprintf(buf, len, "0x%" PRIx64 " [%s]", site->frames[i].offset,
             y->object ? (slash ? slash + 1 : y->object) : "?");
    return buf;
}

static void add_site(row *r, const ml_site *site)
{
    r->allocations += site->allocations;
    r->frees += site->frees;
    r->allocated += site->allocated_bytes;
    r->live += site->live_bytes;
    r->blocks += site->live_blocks;
    r->peak += site->peak_live_bytes; /* for groups: sum of site peaks, an upper bound */
    r->nsites++;
}

/* Build the rows of one stream; returns a malloc'd array of n pointers (rows owned by *table
 * for groups, or by the array itself for sites). */
static row **build_rows(ml_symbolizer *sym, const ml_stream *s, enum group_by by, size_t *n,
                        row **table)
{
    row **rows = calloc(s->nsites ? s->nsites : 1, sizeof *rows);
    if (!rows)
        ml_die("out of memory");
    *n = 0;
    *table = NULL;
    for (const ml_site *site = s->sites; site; site = site->hh.next) {
        row *r;
        if (by == BY_SITE) {
            r = calloc(1, sizeof *r);
            if (!r)
                ml_die("out of memory");
            r->site = site;
            r->kind = site->kind;
            r->is_mmap = site->is_mmap;
            rows[(*n)++] = r;
        } else {
            char buf[256], *key = NULL;
            const char *k = group_key(sym, s, site, by, buf, sizeof buf);
            if (asprintf(&key, "%c%s", site->is_mmap ? 'm' : 'h', k) < 0)
                ml_die("out of memory");
            HASH_FIND_STR(*table, key, r);
            if (r) {
                free(key);
                if (r->kind && strcmp(r->kind, site->kind) != 0)
                    r->kind = "(mixed)";
            } else {
                r = calloc(1, sizeof *r);
                if (!r)
                    ml_die("out of memory");
                r->key = key;
                r->kind = site->kind;
                r->is_mmap = site->is_mmap;
                HASH_ADD_KEYPTR(hh, *table, r->key, strlen(r->key), r);
                rows[(*n)++] = r;
            }
        }
        add_site(r, site);
    }
    qsort(rows, *n, sizeof *rows, cmp_rows);
    return rows;
}

static void free_rows(row **rows, size_t n, row *table)
{
    HASH_CLEAR(hh, table);
    for (size_t i = 0; i < n; i++) {
        free(rows[i]->key);
        free(rows[i]);
    }
    free(rows);
}

typedef struct totals {
    int64_t allocations, frees, allocated, live, blocks, peak, mmap_live, mmap_blocks;
    bool peak_exact;
} totals;

/* Heap totals: sums of the site rows (in sampled mode, of their per-site rounded counts, so that
 * the sites add up to the totals in both modes). */
static totals compute_totals(const ml_stream *s)
{
    totals t = {0};
    int64_t max_site_peak = 0;
    for (const ml_site *site = s->sites; site; site = site->hh.next) {
        if (site->is_mmap) {
            t.mmap_live += site->live_bytes;
            t.mmap_blocks += site->live_blocks;
            continue;
        }
        t.allocations += site->allocations;
        t.frees += site->frees;
        t.allocated += site->allocated_bytes;
        t.live += site->live_bytes;
        t.blocks += site->live_blocks;
        if (site->peak_live_bytes > max_site_peak)
            max_site_peak = site->peak_live_bytes;
    }
    t.peak_exact = s->has_snapshot;
    t.peak = s->has_snapshot ? s->heap_peak : max_site_peak; /* else a lower bound */
    if (t.peak < t.live)
        t.peak = t.live;
    return t;
}

static json_t *json_counts(json_t *o, const char *kind, int64_t allocations, int64_t frees,
                           int64_t allocated, int64_t live, int64_t blocks, int64_t peak)
{
    if (!o || (kind && !ml_jset(o, "kind", json_string(kind))) ||
        !ml_jset(o, "allocations", json_integer(allocations)) ||
        !ml_jset(o, "frees", json_integer(frees)) ||
        !ml_jset(o, "allocated_bytes", json_integer(allocated)) ||
        !ml_jset(o, "live_bytes", json_integer(live)) ||
        !ml_jset(o, "live_blocks", json_integer(blocks)) ||
        !ml_jset(o, "peak_live_bytes", json_integer(peak)))
        ml_die("out of memory");
    return o;
}

typedef struct report_opts {
    enum group_by by;
    size_t limit, frames;
} report_opts;

static json_t *json_process(ml_symbolizer *sym, const ml_stream *s, const void *ctx)
{
    const report_opts *o = ctx;
    enum group_by by = o->by;
    size_t limit = o->limit;
    json_t *p = ml_json_process(s);
    totals t = compute_totals(s);
    json_t *jt = json_counts(json_object(), NULL, t.allocations, t.frees, t.allocated, t.live,
                             t.blocks, t.peak);
    /* a sampled peak is an estimate, never exact */
    if (!ml_jset(jt, "peak_exact", json_boolean(t.peak_exact && !s->sampled)) ||
        !ml_jset(jt, "mmap_live_bytes", json_integer(t.mmap_live)) ||
        !ml_jset(jt, "mmap_live_blocks", json_integer(t.mmap_blocks)) ||
        !ml_jset(p, "totals", jt))
        ml_die("out of memory");
    if (s->has_snapshot) {
        json_t *snap = json_object();
        if (!snap || !ml_jset(snap, "rss", json_integer(s->last.rss)) ||
            !ml_jset(snap, "rss_peak", json_integer(s->last.rss_peak)) ||
            !ml_jset(snap, "heap_peak", json_integer(s->heap_peak)) ||
            !ml_jset(p, "last_snapshot", snap))
            ml_die("out of memory");
    }
    size_t n;
    row *table;
    row **rows = build_rows(sym, s, BY_SITE, &n, &table);
    json_t *sites = json_array();
    if (!sites)
        ml_die("out of memory");
    for (size_t i = 0; i < n && (!limit || i < limit); i++) {
        const ml_site *site = rows[i]->site;
        json_t *js = json_counts(json_object(), site->kind, site->allocations, site->frees,
                                 site->allocated_bytes, site->live_bytes, site->live_blocks,
                                 site->peak_live_bytes);
        if (!ml_jset(js, "site", json_integer(site->id)) ||
            !ml_jset(js, "freed_bytes", json_integer(site->freed_bytes)) ||
            !ml_jset(js, "stack", ml_json_stack(sym, s, site)) ||
            json_array_append_new(sites, js) != 0)
            ml_die("out of memory");
    }
    free_rows(rows, n, table);
    if (!ml_jset(p, "sites", sites))
        ml_die("out of memory");
    if (by != BY_SITE) {
        static const char *const names[] = {"site", "function", "library", "kind"};
        rows = build_rows(sym, s, by, &n, &table);
        json_t *groups = json_array();
        if (!groups)
            ml_die("out of memory");
        for (size_t i = 0; i < n && (!limit || i < limit); i++) {
            row *r = rows[i];
            json_t *jg = json_counts(json_object(), r->kind, r->allocations, r->frees,
                                     r->allocated, r->live, r->blocks, r->peak);
            if (!ml_jset(jg, names[by], json_string(r->key + 1)) ||
                !ml_jset(jg, "class", json_string(r->is_mmap ? "mmap" : "heap")) ||
                !ml_jset(jg, "sites", json_integer((json_int_t)r->nsites)) ||
                json_array_append_new(groups, jg) != 0)
                ml_die("out of memory");
        }
        free_rows(rows, n, table);
        if (!ml_jset(p, "groups", groups) || !ml_jset(p, "group_by", json_string(names[by])))
            ml_die("out of memory");
    }
    return p;
}

static void print_process(ml_symbolizer *sym, const ml_stream *s, const void *ctx)
{
    const report_opts *o = ctx;
    enum group_by by = o->by;
    size_t limit = o->limit, frames = o->frames;
    char a[ML_SIZE_BUF], b[ML_SIZE_BUF], c[ML_SIZE_BUF], d[32], e[32], f[32];
    const char *est = ml_estimate_mark(s);
    ml_print_process_header(stdout, s);
    totals t = compute_totals(s);
    printf("   heap: %s%s allocated in %s%s calls, %s%s frees; live %s%s in %s%s blocks; "
           "peak %s%s%s\n", est, ml_fmt_size(t.allocated, a, sizeof a), est,
           ml_fmt_count(t.allocations, d, sizeof d), est, ml_fmt_count(t.frees, e, sizeof e), est,
           ml_fmt_size(t.live, b, sizeof b), est, ml_fmt_count(t.blocks, f, sizeof f), est,
           ml_fmt_size(t.peak, c, sizeof c), t.peak_exact ? "" : " (at least; no snapshot)");
    printf("   mmap: %s live in %s mappings", ml_fmt_size(t.mmap_live, a, sizeof a),
           ml_fmt_count(t.mmap_blocks, d, sizeof d));
    if (s->has_snapshot)
        printf("; rss %s (peak %s)", ml_fmt_size(s->last.rss, b, sizeof b),
               ml_fmt_size(s->last.rss_peak, c, sizeof c));
    printf("\n\n");

    size_t n;
    row *table;
    row **rows = build_rows(sym, s, by, &n, &table);
    if (n == 0) {
        printf("   (no allocations recorded)\n\n");
        free_rows(rows, n, table);
        return;
    }
    size_t shown = limit && limit < n ? limit : n;
    /* column widths */
    static const char *const heads[] = {"LIVE", "BLOCKS", "PEAK", "ALLOCATED", "CALLS", "KIND"};
    size_t w[6];
    for (size_t k = 0; k < 6; k++)
        w[k] = strlen(heads[k]);
    char cell[6][ML_SIZE_BUF];
    for (size_t pass = 0; pass < 2; pass++) {
        if (pass == 1) {
            const char *what = by == BY_SITE ? "SITE" : by == BY_FUNCTION ? "FUNCTION"
                             : by == BY_LIBRARY ? "LIBRARY" : "SITES";
            printf("   %s%*s  %*s  %*s  %*s  %*s  %-*s  %s%s\n", ml_bold, (int)w[0], heads[0],
                   (int)w[1], heads[1], (int)w[2], heads[2], (int)w[3], heads[3], (int)w[4],
                   heads[4], (int)w[5], heads[5], what, ml_reset);
        }
        for (size_t i = 0; i < shown; i++) {
            row *r = rows[i];
            const char *mark = r->is_mmap ? "" : ml_estimate_mark(s); /* mappings are exact */
            char num[ML_SIZE_BUF];
            snprintf(cell[0], sizeof cell[0], "%s%s", mark, ml_fmt_size(r->live, num, sizeof num));
            snprintf(cell[1], sizeof cell[1], "%s%s", mark, ml_fmt_count(r->blocks, num, sizeof num));
            snprintf(cell[2], sizeof cell[2], "%s%s", mark, ml_fmt_size(r->peak, num, sizeof num));
            snprintf(cell[3], sizeof cell[3], "%s%s", mark,
                     ml_fmt_size(r->allocated, num, sizeof num));
            snprintf(cell[4], sizeof cell[4], "%s%s", mark,
                     ml_fmt_count(r->allocations, num, sizeof num));
            snprintf(cell[5], sizeof cell[5], "%s", r->kind);
            if (pass == 0) {
                for (size_t k = 0; k < 6; k++)
                    if (strlen(cell[k]) > w[k])
                        w[k] = strlen(cell[k]);
                continue;
            }
            printf("   %*s  %*s  %*s  %*s  %*s  %-*s  ", (int)w[0], cell[0], (int)w[1], cell[1],
                   (int)w[2], cell[2], (int)w[3], cell[3], (int)w[4], cell[4], (int)w[5],
                   cell[5]);
            if (by != BY_SITE) {
                if (by == BY_KIND)
                    printf("%zu\n", r->nsites);
                else
                    printf("%s%s (%zu site%s)\n", r->key + 1, r->is_mmap ? " [mmap]" : "",
                           r->nsites, r->nsites == 1 ? "" : "s");
                continue;
            }
            size_t first = ml_site_first_frame(sym, s, r->site);
            if (first >= r->site->nframes) {
                printf("(no stack)\n");
                continue;
            }
            char buf[1024];
            printf("%s\n", ml_frame_text(ml_sym_frame(sym, s, &r->site->frames[first]),
                                         &r->site->frames[first], buf, sizeof buf));
            if (frames != 1) {
                size_t pad = 3 + w[0] + w[1] + w[2] + w[3] + w[4] + w[5] + 12;
                size_t count = 0;
                for (size_t k = first + 1; k < r->site->nframes; k++) {
                    if (frames && ++count >= frames)
                        break;
                    const ml_symbol *y = ml_sym_frame(sym, s, &r->site->frames[k]);
                    if (ml_frame_is_self(y))
                        continue;
                    printf("%*s%s%s%s\n", (int)pad, "", ml_dim,
                           ml_frame_text(y, &r->site->frames[k], buf, sizeof buf), ml_reset);
                }
            }
        }
    }
    if (shown < n)
        printf("   %s… %zu more (--limit 0 shows all)%s\n", ml_dim, n - shown, ml_reset);
    if (by != BY_SITE && by != BY_KIND)
        printf("   %s(PEAK of a group is the sum of its sites' peaks)%s\n", ml_dim, ml_reset);
    printf("\n");
    free_rows(rows, n, table);
}

int ml_cmd_report(int argc, char **argv)
{
    static const struct option opts[] = {
        {"sort", required_argument, NULL, 's'}, {"by", required_argument, NULL, 'b'},
        {"limit", required_argument, NULL, 'n'}, {"frames", required_argument, NULL, 'f'},
        {"json", no_argument, NULL, 'j'},       {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    enum group_by by = BY_SITE;
    bool json = false, limit_set = false;
    uint64_t limit = 20, frames = 1;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 's':
            if (!strcmp(optarg, "live")) sort_by = SORT_LIVE;
            else if (!strcmp(optarg, "peak")) sort_by = SORT_PEAK;
            else if (!strcmp(optarg, "allocated")) sort_by = SORT_ALLOCATED;
            else if (!strcmp(optarg, "calls")) sort_by = SORT_CALLS;
            else ml_usage_error("report", "--sort: expected live, peak, allocated or calls, not '%s'", optarg);
            break;
        case 'b':
            if (!strcmp(optarg, "site")) by = BY_SITE;
            else if (!strcmp(optarg, "function")) by = BY_FUNCTION;
            else if (!strcmp(optarg, "library")) by = BY_LIBRARY;
            else if (!strcmp(optarg, "kind")) by = BY_KIND;
            else ml_usage_error("report", "--by: expected site, function, library or kind, not '%s'", optarg);
            break;
        case 'n':
            if (ml_parse_uint(optarg, 0, 100000000, &limit))
                ml_usage_error("report", "--limit: expected a number, not '%s'", optarg);
            limit_set = true;
            break;
        case 'f':
            if (ml_parse_uint(optarg, 0, 100000, &frames))
                ml_usage_error("report", "--frames: expected a number, not '%s'", optarg);
            break;
        case 'j': json = true; break;
        case 'h': usage(stdout); return ML_EXIT_OK;
        default:
            ml_bad_option("report", argv[optind - 1]);
        }
    }
    if (argc - optind > 1)
        ml_usage_error("report", "expected at most one RUN argument");
    if (json && !limit_set)
        limit = 0;
    report_opts o = {by, (size_t)limit, (size_t)frames};
    ml_cli_view view = {"report", json_process, print_process, &o};
    return ml_cli_show(&view, optind < argc ? argv[optind] : NULL, json);
}
