/* suppress.h — LeakSanitizer-style suppression files for `memlens check`.
 *
 * Syntax (as LSan's): one rule per line, `leak:PATTERN`; `#` starts a comment line; blank lines
 * and surrounding spaces are ignored; any other `type:` (or a line without one) is an error
 * naming FILE:LINE. PATTERN is matched against every frame of a leak's stack: the function
 * name, the source file and the object (module) path. `*` matches any run of characters; a
 * pattern matches anywhere in the string (LSan's substring semantics) unless it starts with
 * `^` (anchored at the start) or ends with `$` (anchored at the end).
 *
 * Data model: an ml_suppressions owns its rules, each with the count of leak entries and the
 * bytes it suppressed (LSan's "Suppressions used" table). No dependency on the symbolizer:
 * callers pass frames as ml_text_frame, so the unit tests can drive it directly.
 */
#ifndef MEMLENS_TOOLS_SUPPRESS_H
#define MEMLENS_TOOLS_SUPPRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One symbolized frame as text; any field may be NULL (unknown). */
typedef struct ml_text_frame {
    const char *function, *file, *object;
} ml_text_frame;

typedef struct ml_suppression {
    char *pattern;        /* as written after "leak:" */
    size_t line;          /* line in the file */
    int64_t hits, bytes;  /* leak entries and bytes suppressed */
} ml_suppression;

typedef struct ml_suppressions {
    char *path;
    size_t n;
    ml_suppression *rules;
} ml_suppressions;

/* Parse suppression text (name is used in errors). Returns false and fills err with
 * "NAME:LINE: reason" on a bad line. */
bool ml_sup_parse(ml_suppressions *sup, const char *name, const char *text, char *err,
                  size_t errlen);
/* Read and parse a file; err is "FILE: reason" or "FILE:LINE: reason". */
bool ml_sup_load(ml_suppressions *sup, const char *path, char *err, size_t errlen);
void ml_sup_free(ml_suppressions *sup);

/* LSan template match: `*` wildcards, optional `^`/`$` anchors, else substring. */
bool ml_sup_match_pattern(const char *pattern, const char *str);

/* The first rule matching any field of any frame, or NULL. */
ml_suppression *ml_sup_match(const ml_suppressions *sup, const ml_text_frame *frames,
                             size_t nframes);

#endif
