/* fmt.h — number formatting and parsing shared by the memlens tools (part of memlens_reader).
 *
 * Sizes print with binary units (B, KiB, MiB, GiB, TiB): "0 B", "1023 B", "1.5 KiB", "12.0 MiB".
 * Parsers accept what the MEMLENS_* variables accept, so `memlens run` can reject bad values
 * before starting the program.
 */
#ifndef MEMLENS_TOOLS_FMT_H
#define MEMLENS_TOOLS_FMT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ML_SIZE_BUF 32

/* Format `bytes` (may be negative) into buf (at least ML_SIZE_BUF bytes); returns buf. */
const char *ml_fmt_size(int64_t bytes, char *buf, size_t len);

/* Format an integer with thousands separators ("1,234,567"); returns buf. */
const char *ml_fmt_count(int64_t n, char *buf, size_t len);

/* Parse "4096", "64K", "1M", "2KiB", "1MiB", "1G", "1GiB" (case-insensitive units, binary
 * multiples). Returns false on a bad value or overflow. */
bool ml_parse_size(const char *s, uint64_t *out);

/* Parse a duration in ms: "250" (ms), "250ms", "2s". Returns false when bad or zero. */
bool ml_parse_interval_ms(const char *s, uint64_t *out);

/* Parse a non-negative decimal integer in [min, max]. */
bool ml_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out);

#endif
