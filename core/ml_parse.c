/* ml_parse.c — sizes, durations and bounded integers as people write them (see ml_parse.h). */
#include "ml_parse.h"

#include <string.h>

static bool parse_digits(const char **text, uint64_t *out) {
    const char *p = *text;
    uint64_t v = 0;
    if (!p || *p < '0' || *p > '9') return true;
    while (*p >= '0' && *p <= '9') {
        if (v > (UINT64_MAX - 9) / 10) return true;
        v = v * 10 + (uint64_t)(*p++ - '0');
    }
    *text = p;
    *out = v;
    return false;
}

/* ASCII, whatever the locale. */
static bool same_ignoring_case(const char *a, const char *b) {
    for (;; a++, b++) {
        char x = *a >= 'A' && *a <= 'Z' ? (char)(*a + 32) : *a, y = *b >= 'A' && *b <= 'Z' ? (char)(*b + 32) : *b;
        if (x != y) return false;
        if (!x) return true;
    }
}

bool ml_parse_uint(const char *text, uint64_t min, uint64_t max, uint64_t *out) {
    uint64_t v;
    if (parse_digits(&text, &v) || *text || v < min || v > max) return true;
    *out = v;
    return false;
}

bool ml_parse_size(const char *text, uint64_t *out) {
    uint64_t v;
    unsigned shift;
    if (parse_digits(&text, &v)) return true;
    switch (*text) {
    case 0: case 'b': case 'B': shift = 0; break;
    case 'k': case 'K': shift = 10; text++; break;
    case 'm': case 'M': shift = 20; text++; break;
    case 'g': case 'G': shift = 30; text++; break;
    case 't': case 'T': shift = 40; text++; break;
    default: return true;
    }
    if (!(same_ignoring_case(text, "") || same_ignoring_case(text, "b") || (shift && same_ignoring_case(text, "ib"))))
        return true;
    if (v > (UINT64_MAX >> shift)) return true;
    *out = v << shift;
    return false;
}

bool ml_parse_duration_ns(const char *text, uint64_t *out) {
    uint64_t v, mult;
    if (parse_digits(&text, &v)) return true;
    if (*text == 0 || strcmp(text, "ms") == 0) mult = 1000000ull;
    else if (strcmp(text, "s") == 0) mult = 1000000000ull;
    else if (strcmp(text, "m") == 0 || strcmp(text, "min") == 0) mult = 60000000000ull;
    else if (strcmp(text, "us") == 0) mult = 1000ull;
    else return true;
    if (v > UINT64_MAX / mult) return true;
    *out = v * mult;
    return false;
}

bool ml_parse_rate_per_min(const char *text, uint64_t *out) {
    const char *slash = strchr(text, '/');
    char size[64];
    size_t n = slash ? (size_t)(slash - text) : strlen(text);
    if (n == 0 || n >= sizeof size) return true;
    memcpy(size, text, n);
    size[n] = 0;
    uint64_t v;
    if (ml_parse_size(size, &v)) return true;
    if (!slash || strcmp(slash, "/min") == 0 || strcmp(slash, "/m") == 0) { *out = v; return false; }
    if (strcmp(slash, "/s") != 0 || v > UINT64_MAX / 60) return true;
    *out = v * 60;
    return false;
}
