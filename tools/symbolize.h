/* symbolize.h — turns stream frames ([module, offset] of a return address) into
 * {function, file, line, object}.
 *
 * Data model: one cache entry per object file, keyed by (path, build id) — the same object is
 * shared by every stream of a run — holding an offline Dwfl session for the file and a map
 * offset → resolved symbol. Entries come either from `symbols.json` (written by `memlens run`
 * while the files were surely on disk; see docs/format.md) or from reading the file now with
 * elfutils. A file whose build id differs from the recorded one is never used for names
 * (status ML_SYM_MISMATCH): the frame keeps only its object path.
 */
#ifndef MEMLENS_TOOLS_SYMBOLIZE_H
#define MEMLENS_TOOLS_SYMBOLIZE_H

#include "stream.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum ml_sym_status {
    ML_SYM_OK = 0,       /* object file found, build id matches (or none recorded) */
    ML_SYM_MISSING,      /* object file not readable / not ELF / frame outside any module */
    ML_SYM_MISMATCH,     /* the file on disk is not the one that ran (build id differs) */
} ml_sym_status;

typedef struct ml_symbol {
    const char *function; /* demangled; NULL when unknown */
    const char *file;     /* source file; NULL when unknown */
    int64_t line;         /* 0 when unknown */
    const char *object;   /* module path; NULL for frames outside any module */
    ml_sym_status status;
} ml_symbol;

typedef struct ml_symbolizer ml_symbolizer;

ml_symbolizer *ml_sym_new(void);
void ml_sym_free(ml_symbolizer *sym);

/* Preload resolved frames from a symbols.json file. Returns false (err filled) when the file
 * is absent or unusable; the symbolizer then reads object files itself. */
bool ml_sym_load(ml_symbolizer *sym, const char *path, char *err, size_t errlen);

/* Resolve one frame of stream `s`. The result lives as long as the symbolizer. */
const ml_symbol *ml_sym_frame(ml_symbolizer *sym, const ml_stream *s, const ml_frame *f);

/* Resolve every frame of every site of the run and write them to `path` (0600, atomically). */
bool ml_sym_write(ml_symbolizer *sym, const ml_run *run, const char *path, char *err,
                  size_t errlen);

const char *ml_sym_status_name(ml_sym_status st);

#endif
