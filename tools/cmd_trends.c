/* cmd_trends.c — `memlens trends [RUN]`: growth patterns of each process, computed offline by
 * trends.c (which says how), printed as text or JSON. */
#define _GNU_SOURCE
#include "cli.h"
#include "fmt.h"
#include "trends.h"

#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

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

static json_t *json_process(ml_symbolizer *sym, const ml_stream *s, const void *ctx)
{
    (void)ctx;
    ml_trends *p = calloc(1, sizeof *p);
    if (!p)
        ml_die("out of memory");
    ml_trends_compute(s, window, p);
    json_t *proc = ml_json_process(s), *metrics = json_object(), *sites = json_array();
    if (!metrics || !sites)
        ml_die("out of memory");
    for (int m = 0; m < 3; m++)
        if (!ml_jset(metrics, ml_trend_metric_keys[m], json_result(&p->res[m], p->block_age_s[m])))
            ml_die("out of memory");
    for (size_t i = 0; i < p->nsites; i++) {
        const ml_trend_site *tr = &p->sites[i];
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
    ml_trends_free(p);
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
    ml_trends *p = calloc(1, sizeof *p);
    if (!p)
        ml_die("out of memory");
    ml_trends_compute(s, window, p);
    ml_print_process_header(stdout, s);
    printf("\n  %-8s %-12s %10s %13s %6s %5s %7s %10s %8s\n", "metric", "pattern", "MB/min", "rate",
           "R²", "conf", "samples", "last", "age");
    for (int m = 0; m < 3; m++)
        print_result(ml_trend_metric_keys[m], &p->res[m], p->block_age_s[m], NULL);
    if (p->nsites) {
        printf("\n  %-8s %-12s %10s %13s %6s %5s %7s %10s %8s  %s\n", "site", "pattern", "MB/min",
               "rate", "R²", "conf", "samples", "live", "age", "where");
        for (size_t i = 0; i < p->nsites; i++) {
            const ml_trend_site *tr = &p->sites[i];
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
    ml_trends_free(p);
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
