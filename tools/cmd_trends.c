/* cmd_trends.c — `memlens trends [RUN]`: growth patterns of each process, computed offline.
 *
 * Data model: per stream, three series built from the `snapshot` records (rss, heap_live,
 * mmap_live at each snapshot's t), and two series per tracked site sampled after each `sites`
 * record: the site's cumulative live bytes (allocated - freed, summed over `sites` deltas), which is
 * analysed, and its cumulative allocated bytes, from which ml_block_age_median_s estimates the
 * median age of its live blocks (collector/ml_block_age.c). The tracked sites are the 10 holding
 * most live bytes at the end of the stream. Each series is a struct ml_series whose capacity is
 * the window (--window N, default 20), so it keeps the last N samples; ml_pattern_analyze
 * (collector/ml_pattern.c, docs/patterns.md) classifies it. Sites are analysed first, so that each
 * process metric can use the block age of its fastest-growing site, as the collector does.
 * `trend` records written live by the collector are ignored: results are always recomputed from
 * the snapshots so that they are reproducible.
 */
#define _GNU_SOURCE
#include "cli.h"
#include "fmt.h"
#include "ml_block_age.h"
#include "ml_pattern.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define TREND_SITES 10

typedef struct tracked {
    const ml_site *site;
    int64_t live;            /* running allocated - freed */
    int64_t allocated;       /* running allocated */
    struct ml_series series;
    struct ml_series allocated_series;
    double block_age_s;      /* NaN: unknown */
    struct ml_pattern_result res;
} tracked;

typedef struct proc_trends {
    struct ml_series metric[3];
    struct ml_pattern_result res[3];
    double block_age_s[3];   /* of the fastest-growing site of a matching kind; NaN: none */
    tracked *sites;
    size_t nsites;
} proc_trends;

static const char *const metric_keys[3] = {"rss", "heap", "mmap"};
static const char *const metric_fields[3] = {"rss", "heap_live", "mmap_live"};

static unsigned window = ML_WINDOW_DEFAULT;

static void usage(FILE *out)
{
    fputs("Usage: memlens trends [OPTIONS] [RUN]\n\n"
          "Growth pattern of each process (rss, heap, mmap over the snapshots) and of its top 10\n"
          "sites by live bytes: stable, linear, exponential, spike or sawtooth, with the rate\n"
          "(MB/min, bytes/s), R² and a leak confidence 0..100 (docs/patterns.md), and the median\n"
          "age of the live blocks (age: a lower bound, estimated from the site's counters; for a\n"
          "metric, that of its fastest-growing site). RUN is a run directory or a .jsonl stream\n"
          "(default: the newest ./memlens-*/ directory).\n\n"
          "Options:\n"
          "  --window N   analyse the last N samples (5..256, default 20)\n"
          "  --json       one JSON object with a \"processes\" array; each has \"metrics\"\n"
          "               {rss, heap, mmap} and \"sites\" (pattern, rate_bps, mb_per_min, r2,\n"
          "               confidence, samples, block_age_s: seconds or null)\n"
          "  -h, --help   this help\n",
          out);
}

static int cmp_live(const void *a, const void *b)
{
    const ml_site *x = *(const ml_site *const *)a, *y = *(const ml_site *const *)b;
    if (x->live_bytes != y->live_bytes)
        return x->live_bytes > y->live_bytes ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

static int cmp_growth(const void *a, const void *b)
{
    const tracked *x = a, *y = b;
    if (x->res.confidence != y->res.confidence)
        return x->res.confidence > y->res.confidence ? -1 : 1;
    if (x->res.rate_bytes_per_s != y->res.rate_bytes_per_s)
        return x->res.rate_bytes_per_s > y->res.rate_bytes_per_s ? -1 : 1;
    return x->site->id < y->site->id ? -1 : x->site->id > y->site->id;
}

static tracked *find_tracked(proc_trends *p, int64_t id)
{
    for (size_t i = 0; i < p->nsites; i++)
        if (p->sites[i].site->id == id)
            return &p->sites[i];
    return NULL;
}

static int64_t jint(json_t *o, const char *key, bool *ok)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_integer(v)) {
        *ok = false;
        return 0;
    }
    return (int64_t)json_integer_value(v);
}

/* Second pass over the stream file: the time series. The reader already validated the file;
 * a malformed line here (the file grew meanwhile) just ends the pass. */
static void build_series(const ml_stream *s, proc_trends *p)
{
    for (int m = 0; m < 3; m++)
        ml_series_init(&p->metric[m], window);
    /* the tracked sites: the TREND_SITES holding most live bytes at the end */
    ml_site **all = calloc(s->nsites ? s->nsites : 1, sizeof *all);
    if (!all)
        ml_die("out of memory");
    size_t n = 0;
    for (ml_site *site = s->sites; site; site = site->hh.next)
        if (site->live_bytes > 0)
            all[n++] = site;
    qsort(all, n, sizeof *all, cmp_live);
    p->nsites = n < TREND_SITES ? n : TREND_SITES;
    p->sites = calloc(p->nsites ? p->nsites : 1, sizeof *p->sites);
    if (!p->sites)
        ml_die("out of memory");
    for (size_t i = 0; i < p->nsites; i++) {
        p->sites[i].site = all[i];
        ml_series_init(&p->sites[i].series, window);
        ml_series_init(&p->sites[i].allocated_series, window);
    }
    free(all);

    FILE *f = fopen(s->path, "re");
    if (!f)
        ml_die("%s: %s", s->path, strerror(errno));
    char *buf = NULL;
    size_t cap = 0;
    ssize_t len;
    while ((len = getline(&buf, &cap, f)) >= 0) {
        json_t *o = json_loadb(buf, (size_t)len, 0, NULL);
        if (!o)
            break;
        const char *type = json_string_value(json_object_get(o, "type"));
        bool ok = true;
        if (type && strcmp(type, "snapshot") == 0) {
            int64_t t = jint(o, "t", &ok);
            for (int m = 0; ok && m < 3; m++) {
                bool have = true;
                int64_t v = jint(o, metric_fields[m], &have);
                if (have && t >= 0)
                    ml_series_push(&p->metric[m], (uint64_t)t, (double)v);
            }
        } else if (type && strcmp(type, "sites") == 0 && p->nsites) {
            int64_t t = jint(o, "t", &ok);
            size_t i;
            json_t *row;
            json_array_foreach(json_object_get(o, "d"), i, row) {
                json_t *id = json_array_get(row, 0), *a = json_array_get(row, 3),
                       *fr = json_array_get(row, 4);
                if (!json_is_integer(id))
                    continue;
                tracked *tr = find_tracked(p, (int64_t)json_integer_value(id));
                if (tr) {
                    tr->live += (int64_t)json_integer_value(a) - (int64_t)json_integer_value(fr);
                    tr->allocated += (int64_t)json_integer_value(a);
                }
            }
            for (size_t k = 0; ok && t >= 0 && k < p->nsites; k++) {
                ml_series_push(&p->sites[k].series, (uint64_t)t, (double)p->sites[k].live);
                ml_series_push(&p->sites[k].allocated_series, (uint64_t)t, (double)p->sites[k].allocated);
            }
        }
        json_decref(o);
    }
    free(buf);
    fclose(f);

    /* sites first: each process metric takes the block age of its fastest-growing site */
    struct ml_block_age_site ages[TREND_SITES];
    for (size_t i = 0; i < p->nsites; i++) {
        tracked *tr = &p->sites[i];
        struct ml_pattern_inputs in = ML_PATTERN_INPUTS_NONE;
        tr->block_age_s = in.live_block_median_age_s =
            ml_block_age_median_s(&tr->allocated_series, (double)tr->live);
        ml_pattern_analyze(&tr->series, &in, &tr->res);
        ages[i] = (struct ml_block_age_site){&tr->res, tr->block_age_s, tr->site->is_mmap};
    }
    for (int m = 0; m < 3; m++) {
        struct ml_pattern_inputs in = ML_PATTERN_INPUTS_NONE;
        p->block_age_s[m] = in.live_block_median_age_s =
            ml_block_age_of_growth(ages, (unsigned)p->nsites, (enum ml_block_age_metric)m);
        ml_pattern_analyze(&p->metric[m], &in, &p->res[m]);
    }
    qsort(p->sites, p->nsites, sizeof *p->sites, cmp_growth);
}

static json_t *json_result(const struct ml_pattern_result *r, double block_age_s)
{
    json_t *o = json_object();
    bool ok = o && ml_jset(o, "pattern", json_string(ml_pattern_name(r->pattern))) &&
              ml_jset(o, "rate_bps", json_real(r->rate_bytes_per_s)) &&
              ml_jset(o, "mb_per_min", json_real(r->rate_mb_per_min)) &&
              ml_jset(o, "r2", json_real(r->r2)) &&
              ml_jset(o, "confidence", json_integer(r->confidence)) &&
              ml_jset(o, "samples", json_integer(r->samples)) &&
              ml_jset(o, "span_s", json_real(r->span_s)) &&
              ml_jset(o, "first", json_real(r->first)) && ml_jset(o, "last", json_real(r->last)) &&
              ml_jset(o, "block_age_s", isfinite(block_age_s) ? json_real(block_age_s) : json_null());
    if (ok && r->pattern == ML_PATTERN_EXPONENTIAL)
        ok = ml_jset(o, "doubling_s", json_real(r->exp_doubling_s));
    if (!ok)
        ml_die("out of memory");
    return o;
}

static void free_trends(proc_trends *p)
{
    free(p->sites);
}

static json_t *json_process(ml_symbolizer *sym, const ml_stream *s, const void *ctx)
{
    (void)ctx;
    proc_trends *p = calloc(1, sizeof *p);
    if (!p)
        ml_die("out of memory");
    build_series(s, p);
    json_t *proc = ml_json_process(s), *metrics = json_object(), *sites = json_array();
    if (!metrics || !sites)
        ml_die("out of memory");
    for (int m = 0; m < 3; m++)
        if (!ml_jset(metrics, metric_keys[m], json_result(&p->res[m], p->block_age_s[m])))
            ml_die("out of memory");
    for (size_t i = 0; i < p->nsites; i++) {
        const tracked *tr = &p->sites[i];
        json_t *o = json_result(&tr->res, tr->block_age_s);
        if (!ml_jset(o, "site", json_integer(tr->site->id)) ||
            !ml_jset(o, "kind", json_string(tr->site->kind)) ||
            !ml_jset(o, "live_bytes", json_integer(tr->site->live_bytes)) ||
            !ml_jset(o, "stack", ml_json_stack(sym, s, tr->site)) ||
            json_array_append_new(sites, o) != 0)
            ml_die("out of memory");
    }
    if (!ml_jset(proc, "window", json_integer(window)) || !ml_jset(proc, "metrics", metrics) ||
        !ml_jset(proc, "sites", sites))
        ml_die("out of memory");
    free_trends(p);
    free(p);
    return proc;
}

static void print_result(const char *label, const struct ml_pattern_result *r, double block_age_s,
                         const char *where)
{
    char bps[ML_SIZE_BUF], last[ML_SIZE_BUF], age[32] = "-";
    if (isfinite(block_age_s))
        snprintf(age, sizeof age, "%.1fs", block_age_s);
    bool growth = r->pattern == ML_PATTERN_LINEAR || r->pattern == ML_PATTERN_EXPONENTIAL ||
                  r->pattern == ML_PATTERN_SAWTOOTH;
    const char *color = growth && r->confidence >= 50 ? ml_red : "";
    printf("  %-8s %s%-12s%s %10.2f %11s/s %6.3f %5u %7u %10s %8s%s%s\n", label, color,
           ml_pattern_name(r->pattern), growth && r->confidence >= 50 ? ml_reset : "",
           r->rate_mb_per_min, ml_fmt_size((int64_t)llround(r->rate_bytes_per_s), bps, sizeof bps),
           r->r2, r->confidence, r->samples, ml_fmt_size((int64_t)llround(r->last), last, sizeof last),
           age, where ? "  " : "", where ? where : "");
}

static void print_process(ml_symbolizer *sym, const ml_stream *s, const void *ctx)
{
    (void)ctx;
    proc_trends *p = calloc(1, sizeof *p);
    if (!p)
        ml_die("out of memory");
    build_series(s, p);
    ml_print_process_header(stdout, s);
    printf("\n  %-8s %-12s %10s %13s %6s %5s %7s %10s %8s\n", "metric", "pattern", "MB/min", "rate",
           "R²", "conf", "samples", "last", "age");
    for (int m = 0; m < 3; m++)
        print_result(metric_keys[m], &p->res[m], p->block_age_s[m], NULL);
    if (p->nsites) {
        printf("\n  %-8s %-12s %10s %13s %6s %5s %7s %10s %8s  %s\n", "site", "pattern", "MB/min",
               "rate", "R²", "conf", "samples", "live", "age", "where");
        for (size_t i = 0; i < p->nsites; i++) {
            const tracked *tr = &p->sites[i];
            char where[1024] = "(no stack)", label[32];
            size_t f = ml_site_user_frame(sym, s, tr->site);
            if (f < tr->site->nframes)
                ml_frame_text(ml_sym_frame(sym, s, &tr->site->frames[f]), &tr->site->frames[f],
                              where, sizeof where);
            snprintf(label, sizeof label, "%" PRId64, tr->site->id);
            print_result(label, &tr->res, tr->block_age_s, where);
        }
    }
    putchar('\n');
    free_trends(p);
    free(p);
}

int ml_cmd_trends(int argc, char **argv)
{
    static const struct option opts[] = {
        {"window", required_argument, NULL, 'w'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    bool json = false;
    int c;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'w': {
            uint64_t w;
            if (ml_parse_uint(optarg, ML_WINDOW_MIN, ML_WINDOW_MAX, &w))
                ml_usage_error("trends", "--window must be %d..%d, not '%s'", ML_WINDOW_MIN,
                               ML_WINDOW_MAX, optarg);
            window = (unsigned)w;
            break;
        }
        case 'j': json = true; break;
        case 'h': usage(stdout); return ML_EXIT_OK;
        default: ml_bad_option("trends", argv[optind - 1]);
        }
    }
    if (argc - optind > 1)
        ml_usage_error("trends", "too many arguments");
    ml_cli_view view = {"trends", json_process, print_process, NULL};
    return ml_cli_show(&view, argc > optind ? argv[optind] : NULL, json);
}
