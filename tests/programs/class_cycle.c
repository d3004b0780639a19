/* class_cycle: two blocks that point at each other and nothing else points at.
 * Expected numbers: class_cycle.expect.json.
 *
 *   cycle_block()  2 x malloc(32) (struct pair: a pointer + 24 bytes), a->other = b, b->other = a,
 *                  both pointers dropped.
 * valgrind reports an unreachable cycle as one definitely lost block (the first by address, the
 * "clique leader") and the rest indirectly lost: definite 32/1, indirect 32/1.  Both blocks come
 * from one site and have one size, so the totals do not depend on which is first. */
#include <stdlib.h>
#include "common.h"

struct pair {
    struct pair *other;
    char payload[24];
};

static NOINLINE struct pair *cycle_block(void)
{
    struct pair *p = malloc(sizeof *p); /* LEAK-SITE cycle_block */
    memset(p->payload, 0x66, sizeof p->payload);
    return p;
}

static NOINLINE void make_cycle(void)
{
    struct pair *a = cycle_block();
    struct pair *b = cycle_block();
    a->other = b;
    b->other = a;
}

int main(void)
{
    _Static_assert(sizeof(struct pair) == 32, "pair size is part of the expected numbers");
    make_cycle();
    scrub_stack();
    say("class_cycle: done\n");
    return 0;
}
