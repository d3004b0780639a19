/* mmap_leaks: direct mmap/munmap/mremap calls, anonymous and file-backed kept apart; no heap
 * allocation at all.  Page size must be 4096.  Expected numbers: mmap_leaks.expect.json.
 *   leak_anon()       mmap 3 pages anonymous, leaked                 -> live 12288 B, 1 range
 *   map_and_unmap()   mmap64 2 pages anonymous, munmap all of it      -> live 0
 *   partial_unmap()   mmap 4 pages anonymous, munmap the last page    -> live 12288 B, 1 range
 *   grow_mapping()    mmap 1 page anonymous, mremap(MAYMOVE) to 4     -> live 16384 B, 1 range
 *   map_file()        a 3-page temporary file: mmap 2 pages of it (leaked) and 1 page of it
 *                     (unmapped)                                      -> mmap_file live 8192 B
 * Anonymous live at exit: 40960 bytes in 3 ranges; file-backed: 8192 bytes in 1 range. */
#define _GNU_SOURCE
/* meson builds with -D_FILE_OFFSET_BITS=64, which redirects mmap to mmap64: undo it so that
 * this program calls both symbols (mmap here, mmap64 in map_and_unmap). */
#undef _FILE_OFFSET_BITS
#include <fcntl.h>
#include <stdlib.h>
#include <sys/mman.h>
#include "common.h"

#define PAGE 4096u


static NOINLINE void leak_anon(void)
{
    char *p = mmap(NULL, 3 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p != MAP_FAILED)
        p[0] = 1;
}

static NOINLINE void map_and_unmap(void)
{
    char *p = mmap64(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p != MAP_FAILED)
        munmap(p, 2 * PAGE);
}

static NOINLINE void partial_unmap(void)
{
    char *p = mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p != MAP_FAILED)
        munmap(p + 3 * PAGE, PAGE);
}

static NOINLINE void grow_mapping(void)
{
    char *p = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return;
    p[0] = 1;
    char *q = mremap(p, PAGE, 4 * PAGE, MREMAP_MAYMOVE);
    if (q == MAP_FAILED)
        say("mmap_leaks: mremap failed\n");
    else
        q[4 * PAGE - 1] = 1;
}

static NOINLINE int map_file(void)
{
    char path[] = "/tmp/memlens-mmap-XXXXXX";
    static char page[PAGE];
    int fd = mkstemp(path);
    if (fd < 0)
        return -1;
    unlink(path);
    for (int i = 0; i < 3; i++)
        if (write(fd, page, PAGE) != (ssize_t)PAGE)
            return -1;
    char *kept = mmap(NULL, 2 * PAGE, PROT_READ, MAP_PRIVATE, fd, 0);
    char *dropped = mmap(NULL, PAGE, PROT_READ, MAP_SHARED, fd, 2 * PAGE);
    close(fd);
    if (kept == MAP_FAILED || dropped == MAP_FAILED)
        return -1;
    munmap(dropped, PAGE);
    return 0;
}

int main(void)
{
    if (sysconf(_SC_PAGESIZE) != PAGE) {
        say("mmap_leaks: page size is not 4096\n");
        return 1;
    }
    leak_anon();
    map_and_unmap();
    partial_unmap();
    grow_mapping();
    if (map_file() != 0) {
        say("mmap_leaks: file mapping failed\n");
        return 1;
    }
    say("mmap_leaks: done\n");
    return 0;
}
