/* class_interior: a block reached only through a pointer into its middle.
 * Expected numbers: class_interior.expect.json.
 *
 *   interior_block()  malloc(64) filled with 0x77, the global `middle` = block + 16, the start
 *                     pointer dropped -> possibly lost 64 bytes in 1 block.
 * Offset 16 and the fill keep valgrind's interior-pointer heuristics (stdstring at 24, length64
 * and newarray at 8, multipleinheritance needs vtable pointers) from calling it reachable. */
#include <stdlib.h>
#include "common.h"

char *middle; /* the only pointer, 16 bytes into the block */

static NOINLINE char *interior_block(void)
{
    char *p = malloc(64); /* LEAK-SITE interior_block */
    memset(p, 0x77, 64);
    return p + 16;
}

int main(void)
{
    middle = interior_block();
    scrub_stack();
    say("class_interior: done\n");
    return 0;
}
