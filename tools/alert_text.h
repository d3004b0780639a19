/* alert_text.h — the one-line human form of an `alert` record (docs/format.md), as `memlens run`
 * prints it on stderr and the --live view lists it:
 *   ALERT critical: cgroup memory 820.0 MiB >= 75% of limit 1.0 GiB (pid 1234) — top: 512.0 MiB
 *   grow_cache (app.c:41)
 */
#ifndef MEMLENS_TOOLS_ALERT_TEXT_H
#define MEMLENS_TOOLS_ALERT_TEXT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* Describes a site for the text: "function (file:line)", or "site ID" when unknown. */
typedef const char *(*ml_site_where_fn)(void *ctx, int64_t pid, int64_t site, char *buf,
                                        size_t len);

/* Formats `alert` (an object with "type":"alert") into buf; returns buf. */
const char *ml_alert_text(json_t *alert, ml_site_where_fn where, void *ctx, char *buf, size_t len);

#endif
