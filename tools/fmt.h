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

#include "ml_parse.h"

#define ML_SIZE_BUF 32

/* Format `bytes` (may be negative) into buf (at least ML_SIZE_BUF bytes); returns buf. */
const char *ml_fmt_size(int64_t bytes, char *buf, size_t len);

/* Format an integer with thousands separators ("1,234,567"); returns buf. */
const char *ml_fmt_count(int64_t n, char *buf, size_t len);

/* A whole number of milliseconds: "250" (ms), "250ms", "2s", "1m" (ml_parse_duration_ns); true when
 * bad, zero or not a whole millisecond. The other parsers are ml_parse.h's, shared with the library. */
bool ml_parse_interval_ms(const char *s, uint64_t *out);

/* strdup (NULL as "") and calloc (0 as 1) that end the CLI with "out of memory" (exit 2) on failure. */
char *ml_xstrdup(const char *s);
void *ml_xcalloc(size_t n, size_t size);

#endif
