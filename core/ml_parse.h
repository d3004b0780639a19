/* ml_parse.h — the one parser of the numbers memlens reads from people: MEMLENS_* variables in the
 * preloaded library and the options of the memlens CLI. Pure: no allocation, no locale, no stdio.
 * Every function returns true on error (a bad value or an overflow) and leaves *out alone then. */
#ifndef ML_PARSE_H
#define ML_PARSE_H

#include <stdbool.h>
#include <stdint.h>

/* A decimal integer in [min, max]: digits only (no sign, no space). */
bool ml_parse_uint(const char *text, uint64_t min, uint64_t max, uint64_t *out);

/* "4096", "512K", "512KiB", "1M", "1MiB", "2G", "1GB", "1T": binary multiples either way, as
 * heaptrack and tcmalloc read them; the unit and its "iB"/"B" are case-insensitive. */
bool ml_parse_size(const char *text, uint64_t *out);

/* "250ms", "2s", "1500" (milliseconds), "1m"/"1min", "500us", in nanoseconds. */
bool ml_parse_duration_ns(const char *text, uint64_t *out);

/* A growth rate in bytes per minute: a size (as ml_parse_size) per minute ("5MiB/min", "5M/m", or
 * just "5M") or per second ("64KiB/s"). */
bool ml_parse_rate_per_min(const char *text, uint64_t *out);

#endif
