/* class_simple: one definitely lost block next to one block held by a global.
 * Expected numbers: class_simple.expect.json (leak classes as valgrind --leak-check=full names them).
 *
 *   leak_simple()   malloc(40), the pointer dropped          -> definitely lost 40 bytes in 1 block
 *   hold_global()   malloc(56), stored in the global `held`  -> still reachable 56 bytes in 1 block
 * Optional argument:
 *   extra           also leak_extra(): malloc(32) dropped (a "new" leak for e2e-check's baseline test)
 *   tail            also leak_tail(): malloc(24) dropped, the program's last allocation.  glibc's
 *                   malloc then starts its top chunk 16 bytes into that block (chunk of 32 bytes at
 *                   block - 16), so main_arena.top, in libc's writable data (a root), points inside
 *                   the lost block.  That is allocator metadata, not a program pointer: valgrind
 *                   (its own allocator) says definitely lost, and so must memlens.
 *                   -> definite 64 bytes in 2 blocks, reachable 56/1 (variant in the expect file)
 *   fail            exit with status 3 instead of 0 (MEMLENS_CHECK must keep the program's status)
 * Without argument: 2 allocations, 0 frees, 96 bytes; definite 40/1, reachable 56/1. */
#include <stdlib.h>
#include "common.h"

void *held; /* the root that keeps hold_global's block reachable */

static NOINLINE void leak_simple(void)
{
    char *p = malloc(40); /* LEAK-SITE leak_simple */
    memset(p, 0x11, 40);
}

static NOINLINE void hold_global(void)
{
    held = malloc(56); /* HELD-SITE hold_global */
    memset(held, 0x22, 56);
}

static NOINLINE void leak_extra(void)
{
    char *p = malloc(32); /* LEAK-SITE leak_extra */
    memset(p, 0x33, 32);
}

static NOINLINE void leak_tail(void)
{
    char *p = malloc(24); /* LEAK-SITE leak_tail */
    memset(p, 0x44, 24);
}

int main(int argc, char **argv)
{
    leak_simple();
    hold_global();
    if (argc > 1 && strcmp(argv[1], "extra") == 0)
        leak_extra();
    if (argc > 1 && strcmp(argv[1], "tail") == 0)
        leak_tail();
    scrub_stack();
    say("class_simple: done\n");
    return argc > 1 && strcmp(argv[1], "fail") == 0 ? 3 : 0;
}
