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

bool ml_parse_interval_ms(const char *s, uint64_t *out)
{
    uint64_t ns;
    if (ml_parse_duration_ns(s, &ns) || ns < 1000000 || ns % 1000000)
        return true;
    *out = ns / 1000000;
    return false;
}

char *ml_xstrdup(const char *s)
{
    char *d = strdup(s ? s : "");
    if (!d) {
        fputs("memlens: out of memory\n", stderr);
        exit(2);
    }
    return d;
}

void *ml_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) {
        fputs("memlens: out of memory\n", stderr);
        exit(2);
    }
    return p;
}
