/* ml_modules.c — the table of loaded objects, read with dl_iterate_phdr: path, load bias, address
 * range and GNU build id for each. Objects get ids in order of first sight and keep them after
 * dlclose (their record is written before the object goes, see ml_collector_before_dlclose), so
 * frames into unloaded code still name a file. The `present` index, sorted by start address, maps
 * frames to modules. Everything here is owned by the collector's flush lock. */
#define _GNU_SOURCE
#include "ml_modules.h"
#include "ml_out.h"
#include "ml_prim.h"

#include <elf.h>
#include <link.h>
#include <string.h>
#include <unistd.h>

#define MAX_MODULES 8192
#define PATH_ARENA (4u << 20)

struct module {
    uintptr_t base, start, end;
    const char *path;
    char build_id[41];
    bool present, emitted, self;
};

static struct module *modules;        /* [MAX_MODULES] */
static unsigned module_count;
static unsigned *present;             /* indexes of present modules sorted by start */
static unsigned present_count;
static char *paths;
static size_t paths_used;
static unsigned long long seen_adds, seen_subs;
static char exe_path[4096];

static bool ensure_tables(void) {
    if (modules) return false;
    modules = ml_os_alloc(MAX_MODULES * sizeof *modules);
    present = ml_os_alloc(MAX_MODULES * sizeof *present);
    paths = ml_os_alloc(PATH_ARENA);
    ssize_t n = readlink("/proc/self/exe", exe_path, sizeof exe_path - 1);
    exe_path[n > 0 ? n : 0] = 0;
    return !modules || !present || !paths;
}

static const char *keep_path(const char *path) {
    size_t n = strlen(path) + 1;
    if (paths_used + n > PATH_ARENA) return "";
    char *p = paths + paths_used;
    memcpy(p, path, n);
    paths_used += n;
    return p;
}

static void read_build_id(const struct dl_phdr_info *info, char out[41]) {
    out[0] = 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_NOTE) continue;
        const char *p = (const char *)(info->dlpi_addr + ph->p_vaddr), *end = p + ph->p_memsz;
        while (p + sizeof(ElfW(Nhdr)) <= end) {
            const ElfW(Nhdr) *note = (const ElfW(Nhdr) *)p;
            const char *name = p + sizeof *note;
            const unsigned char *desc = (const unsigned char *)name + ((note->n_namesz + 3) & ~3u);
            if (note->n_type == NT_GNU_BUILD_ID && note->n_namesz == 4 && memcmp(name, "GNU", 4) == 0 &&
                note->n_descsz <= 20 && (const char *)desc + note->n_descsz <= end) {
                static const char hex[] = "0123456789abcdef";
                for (unsigned k = 0; k < note->n_descsz; k++) { out[2 * k] = hex[desc[k] >> 4]; out[2 * k + 1] = hex[desc[k] & 15]; }
                out[2 * note->n_descsz] = 0;
                return;
            }
            p = (const char *)desc + ((note->n_descsz + 3) & ~3u);
        }
    }
}

static void emit(unsigned id) {
    struct module *m = &modules[id];
    ml_out_begin("module");
    ml_out_u64("id", id);
    ml_out_str("path", m->path);
    ml_out_u64("base", m->base);
    ml_out_u64("size", m->end - m->start);
    ml_out_key("build_id");
    if (m->build_id[0]) ml_out_string(m->build_id, strlen(m->build_id)); else ml_out_raw("null");
    ml_out_end();
    m->emitted = true;
}

static int changed_cb(struct dl_phdr_info *info, size_t size, void *arg) {
    bool *changed = arg;
    if (size >= offsetof(struct dl_phdr_info, dlpi_subs) + sizeof info->dlpi_subs)
        *changed = info->dlpi_adds != seen_adds || info->dlpi_subs != seen_subs;
    else *changed = true;
    if (*changed) { seen_adds = info->dlpi_adds; seen_subs = info->dlpi_subs; }
    return 1;
}

static int scan_cb(struct dl_phdr_info *info, size_t size, void *arg) {
    (void)size; (void)arg;
    uintptr_t lo = UINTPTR_MAX, hi = 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD) continue;
        uintptr_t s = info->dlpi_addr + ph->p_vaddr, e = s + ph->p_memsz;
        if (s < lo) lo = s;
        if (e > hi) hi = e;
    }
    if (lo >= hi) return 0;
    const char *path = info->dlpi_name && info->dlpi_name[0] ? info->dlpi_name : exe_path;
    for (unsigned i = 0; i < module_count; i++) {
        struct module *m = &modules[i];
        if (m->base == info->dlpi_addr && m->start == lo && m->end == hi && strcmp(m->path, path) == 0) {
            m->present = true;
            return 0;
        }
    }
    if (module_count >= MAX_MODULES) return 0;
    struct module *m = &modules[module_count++];
    m->base = info->dlpi_addr;
    m->start = lo;
    m->end = hi;
    m->path = keep_path(path);
    read_build_id(info, m->build_id);
    uintptr_t me = (uintptr_t)&ml_modules_refresh;
    m->self = me >= lo && me < hi;
    m->present = true;
    return 0;
}

static void sort_present(void) {
    present_count = 0;
    for (unsigned i = 0; i < module_count; i++) {
        if (!modules[i].present) continue;
        unsigned j = present_count++;
        while (j > 0 && modules[present[j - 1]].start > modules[i].start) { present[j] = present[j - 1]; j--; }
        present[j] = i;
    }
}

void ml_modules_refresh(bool force) {
    if (ensure_tables()) return;
    bool changed = false;
    dl_iterate_phdr(changed_cb, &changed);
    if (!changed && !force && module_count) return;
    for (unsigned i = 0; i < module_count; i++) modules[i].present = false;
    dl_iterate_phdr(scan_cb, NULL);
    sort_present();
    for (unsigned i = 0; i < module_count; i++)
        if (modules[i].present && !modules[i].emitted && !modules[i].self) emit(i);
}

bool ml_modules_lookup(uintptr_t addr, int *id, uint64_t *offset, bool *self) {
    unsigned lo = 0, hi = present_count;
    while (lo < hi) {
        unsigned mid = (lo + hi) / 2;
        if (modules[present[mid]].end <= addr) lo = mid + 1; else hi = mid;
    }
    if (lo >= present_count || modules[present[lo]].start > addr) return false;
    struct module *m = &modules[present[lo]];
    if (!m->emitted && !m->self) emit(present[lo]);
    *id = (int)present[lo];
    *offset = addr - m->base;
    *self = m->self;
    return true;
}

void ml_modules_reset_emitted(void) {
    for (unsigned i = 0; i < module_count; i++) modules[i].emitted = false;
}
