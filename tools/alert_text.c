/* alert_text.c — human text of an alert record (see alert_text.h). Missing or mistyped fields
 * print as 0 / "?": the line comes from another process and is only described, never trusted. */
#include "alert_text.h"
#include "fmt.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static int64_t jint(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_integer(v) ? (int64_t)json_integer_value(v) : 0;
}

static const char *jstr(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "?";
}

const char *ml_alert_text(json_t *alert, ml_site_where_fn where, void *ctx, char *buf, size_t len)
{
    const char *rule = jstr(alert, "rule"), *metric = jstr(alert, "metric");
    int64_t pid = jint(alert, "pid"), value = jint(alert, "value");
    int64_t threshold = jint(alert, "threshold"), limit = jint(alert, "limit");
    char v[ML_SIZE_BUF], t[ML_SIZE_BUF], l[ML_SIZE_BUF], what[1024], place[512];
    ml_fmt_size(value, v, sizeof v);
    ml_fmt_size(threshold, t, sizeof t);
    if (strcmp(rule, "threshold") == 0 && limit > 0) {
        snprintf(what, sizeof what, "%s memory %s >= %.0f%% of limit %s",
                 strcmp(metric, "cgroup") == 0 ? "cgroup" : metric, v,
                 100.0 * (double)threshold / (double)limit, ml_fmt_size(limit, l, sizeof l));
    } else if (strcmp(rule, "threshold") == 0) {
        snprintf(what, sizeof what, "%s %s >= %s", strcmp(metric, "rss") == 0 ? "RSS" : metric, v,
                 t);
    } else if (strcmp(rule, "growth") == 0) {
        /* MB/min as everywhere in memlens: MiB per minute (value and threshold are bytes/min) */
        snprintf(what, sizeof what, "%s growing %.1f MB/min (%s, confidence %" PRId64
                 ") > %.1f MB/min", metric, json_number_value(json_object_get(alert, "mb_per_min")),
                 jstr(alert, "pattern"), jint(alert, "confidence"), (double)threshold / 1048576.0);
    } else if (strcmp(rule, "site") == 0) {
        snprintf(what, sizeof what, "%s holds %s >= %s",
                 where(ctx, pid, jint(alert, "site"), place, sizeof place), v, t);
    } else {
        snprintf(what, sizeof what, "%s: %s %s >= %s", rule, metric, v, t);
    }
    char top[640] = "";
    json_t *first = json_array_get(json_object_get(alert, "sites"), 0);
    if (json_is_array(first) && json_is_integer(json_array_get(first, 0))) {
        int64_t site = (int64_t)json_integer_value(json_array_get(first, 0));
        json_t *bytes = json_array_get(first, 1);
        ml_fmt_size(json_is_integer(bytes) ? (int64_t)json_integer_value(bytes) : 0, l, sizeof l);
        snprintf(top, sizeof top, " \u2014 top: %s %s", l, where(ctx, pid, site, place, sizeof place));
    }
    char suppressed[64] = "";
    if (jint(alert, "suppressed_before") > 0)
        snprintf(suppressed, sizeof suppressed, " [%" PRId64 " suppressed before]",
                 jint(alert, "suppressed_before"));
    snprintf(buf, len, "ALERT %s: %s (pid %" PRId64 ")%s%s", jstr(alert, "level"), what, pid, top,
             suppressed);
    return buf;
}
