/* ml_modules.h — the loaded objects of the process, so frames can be written as (module, offset). */
#ifndef ML_MODULES_H
#define ML_MODULES_H
#include <stdbool.h>
#include <stdint.h>

/* Re-reads the loaded objects if the set changed (or `force`), writing a module record for each new
 * one. Collector (flush lock) only. */
void ml_modules_refresh(bool force);
/* Maps an address to a module id and offset; returns false if no loaded object covers it.
 * *self is set when the address lies in libmemlens itself. */
bool ml_modules_lookup(uintptr_t addr, int *id, uint64_t *offset, bool *self);
/* Forget what was written, so that the next stream (after fork) gets every module again. */
void ml_modules_reset_emitted(void);
#endif
