/* baseline.h — leak baselines for `memlens check --baseline / --write-baseline`.
 *
 * A baseline is the list of leaks a project accepts for now. Each leak is keyed by what
 * survives a rebuild: its class, its allocation kind and its first ML_BASELINE_FRAMES user
 * frames (frames outside libmemlens and the C/C++ runtime) as function name plus source file
 * basename — no addresses, offsets or line numbers; a frame without a function name keys by its
 * object's basename instead. The file (docs in README "CI gating"):
 *
 *   {"format":"memlens-baseline","version":1,"frames":8,
 *    "leaks":[{"class":"definite","kind":"malloc",
 *              "stack":[{"function":"leak_three","file":"plain_leaks.c"}, …],
 *              "bytes":600,"blocks":3,"process":"plain_leaks"}]}
 *
 * `bytes`, `blocks` and `process` are informative; matching uses the key only (a leak at a known
 * stack passes whatever its size). Data model: ml_baseline is a uthash set of key strings.
 */
#ifndef MEMLENS_TOOLS_BASELINE_H
#define MEMLENS_TOOLS_BASELINE_H

#include "suppress.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#define ML_BASELINE_FRAMES 8
#define ML_BASELINE_VERSION 1

typedef struct ml_baseline_key ml_baseline_key;

typedef struct ml_baseline {
    ml_baseline_key *keys; /* uthash set */
    size_t n;
} ml_baseline;

/* True when `object` is the C/C++ runtime or the dynamic loader (libc, libstdc++, libgcc_s,
 * ld-linux, ld.so, …) or libmemlens itself. */
bool ml_object_is_runtime(const char *object);
bool ml_object_is_self(const char *object);

/* The baseline entry of a leak: {"class","kind","stack"} with the normalized key frames.
 * `frames` are the leak's frames innermost first (libmemlens frames may be included: skipped). */
json_t *ml_baseline_entry(const char *cls, const char *kind, const ml_text_frame *frames,
                          size_t nframes);
/* The key string of an entry (as built above or read from a file); NULL when malformed. */
char *ml_baseline_key_of(json_t *entry);

void ml_baseline_init(ml_baseline *b);
void ml_baseline_free(ml_baseline *b);
bool ml_baseline_add(ml_baseline *b, const char *key);
bool ml_baseline_contains(const ml_baseline *b, const char *key);

/* Load a baseline file; false with err = "FILE: reason" (one line) when unreadable/malformed. */
bool ml_baseline_load(ml_baseline *b, const char *path, char *err, size_t errlen);
/* Write {"format","version","frames","leaks"} to path: created 0600, never through a symlink
 * (O_NOFOLLOW), an existing file is replaced. Takes a reference to `leaks`. */
bool ml_baseline_write(const char *path, json_t *leaks, char *err, size_t errlen);

#endif
