/* trends.c — growth patterns of one process, computed offline from its stream (see trends.h). */
#define _GNU_SOURCE
#include "trends.h"
#include "fmt.h"
#include "ml_block_age.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

const char *const ml_trend_metric_keys[ML_TREND_METRICS] = {"rss", "heap", "mmap"};
static const char *const metric_fields[ML_TREND_METRICS] = {"rss", "heap_live", "mmap_live"};

static int cmp_live(const void *a, const void *b)
{
    const ml_site *x = *(const ml_site *const *)a, *y = *(const ml_site *const *)b;
    if (x->live_bytes != y->live_bytes)
        return x->live_bytes > y->live_bytes ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

static int cmp_growth(const void *a, const void *b)
{
    const ml_trend_site *x = a, *y = b;
    if (x->res.confidence != y->res.confidence)
        return x->res.confidence > y->res.confidence ? -1 : 1;
    if (x->res.rate_bytes_per_s != y->res.rate_bytes_per_s)
        return x->res.rate_bytes_per_s > y->res.rate_bytes_per_s ? -1 : 1;
    return x->site->id < y->site->id ? -1 : x->site->id > y->site->id;
}

static ml_trend_site *find_site(ml_trends *p, int64_t id)
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

/* A second pass over the stream file: the time series. The reader already validated the file;
 * a malformed line here (the file grew meanwhile) just ends the pass. */
void ml_trends_compute(const ml_stream *s, unsigned window, ml_trends *p)
{
    memset(p, 0, sizeof *p);
    for (int m = 0; m < 3; m++)
        ml_series_init(&p->metric[m], window);
    /* the ml_trend_site sites: the ML_TREND_SITES holding most live bytes at the end */
    ml_site **all = calloc(s->nsites ? s->nsites : 1, sizeof *all);
    if (!all)
        ml_die("out of memory");
    size_t n = 0;
    for (ml_site *site = s->sites; site; site = site->hh.next)
        if (site->live_bytes > 0)
            all[n++] = site;
    qsort(all, n, sizeof *all, cmp_live);
    p->nsites = n < ML_TREND_SITES ? n : ML_TREND_SITES;
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
                ml_trend_site *tr = find_site(p, (int64_t)json_integer_value(id));
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
    struct ml_block_age_site ages[ML_TREND_SITES];
    for (size_t i = 0; i < p->nsites; i++) {
        ml_trend_site *tr = &p->sites[i];
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

void ml_trends_free(ml_trends *p)
{
    free(p->sites);
}

bool ml_trend_growing(const struct ml_pattern_result *r)
{
    return (r->pattern == ML_PATTERN_LINEAR || r->pattern == ML_PATTERN_EXPONENTIAL) && r->rate_bytes_per_s > 0;
}
