/* fmt.c — size/count formatting and option value parsing (see fmt.h). */
#include "fmt.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *ml_fmt_size(int64_t bytes, char *buf, size_t len)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    /* magnitude without overflow for INT64_MIN */
    uint64_t mag = bytes < 0 ? (uint64_t)0 - (uint64_t)bytes : (uint64_t)bytes;
    const char *sign = bytes < 0 ? "-" : "";
    if (mag < 1024) {
        snprintf(buf, len, "%s%" PRIu64 " B", sign, mag);
        return buf;
    }
    double v = (double)mag;
    size_t u = 0;
    while (v >= 1024.0 && u + 1 < sizeof units / sizeof *units) {
        v /= 1024.0;
        u++;
    }
    /* 1023.96 KiB would print as "1024.0 KiB": move to the next unit instead */
    if (v >= 1023.95 && u + 1 < sizeof units / sizeof *units) {
        v /= 1024.0;
        u++;
    }
    snprintf(buf, len, "%s%.1f %s", sign, v, units[u]);
    return buf;
}

const char *ml_fmt_count(int64_t n, char *buf, size_t len)
{
    char digits[32];
    uint64_t mag = n < 0 ? (uint64_t)0 - (uint64_t)n : (uint64_t)n;
    snprintf(digits, sizeof digits, "%" PRIu64, mag);
    size_t nd = strlen(digits), o = 0;
    char tmp[48];
    if (n < 0)
        tmp[o++] = '-';
    for (size_t i = 0; i < nd; i++) {
        if (i > 0 && (nd - i) % 3 == 0)
            tmp[o++] = ',';
        tmp[o++] = digits[i];
    }
    tmp[o] = '\0';
    snprintf(buf, len, "%s", tmp);
    return buf;
}

/* The decimal digits that start `s` (no sign, no space) into *v, *end after them. Returns false
 * when `s` does not start with a digit or the number overflows. */
static bool leading_uint(const char *s, uint64_t *v, const char **end)
{
    if (!s || !isdigit((unsigned char)*s))
        return false;
    errno = 0;
    char *e;
    unsigned long long x = strtoull(s, &e, 10);
    if (errno)
        return false;
    *v = (uint64_t)x;
    *end = e;
    return true;
}

bool ml_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    uint64_t v;
    const char *end;
    if (!leading_uint(s, &v, &end) || *end || v < min || v > max)
        return false;
    *out = v;
    return true;
}

bool ml_parse_size(const char *s, uint64_t *out)
{
    uint64_t v;
    const char *end;
    if (!leading_uint(s, &v, &end))
        return false;
    static const struct { const char *suffix; unsigned shift; } units[] = {
        {"", 0},  {"b", 0},    {"k", 10},   {"kb", 10},  {"kib", 10}, {"m", 20}, {"mb", 20},
        {"mib", 20}, {"g", 30}, {"gb", 30}, {"gib", 30}, {"t", 40}, {"tb", 40}, {"tib", 40},
    };
    for (size_t i = 0; i < sizeof units / sizeof *units; i++) {
        if (strcasecmp(end, units[i].suffix) == 0) {
            unsigned shift = units[i].shift;
            if (shift && v > (UINT64_MAX >> shift))
                return false;
            *out = (uint64_t)v << shift;
            return true;
        }
    }
    return false;
}

bool ml_parse_interval_ms(const char *s, uint64_t *out)
{
    uint64_t v;
    const char *end;
    if (!leading_uint(s, &v, &end))
        return false;
    uint64_t mult;
    if (*end == '\0' || strcmp(end, "ms") == 0)
        mult = 1;
    else if (strcmp(end, "s") == 0)
        mult = 1000;
    else
        return false;
    if (v == 0 || v > UINT64_MAX / mult)
        return false;
    *out = v * mult;
    return true;
}
