/* class_list_held: a 3-node singly linked list whose head is kept in a global.
 * Expected numbers: class_list_held.expect.json.
 *
 *   list_node()  3 x malloc(48), head stored in the global `list`: every node is reached by a
 *                chain of start pointers from a root -> still reachable 144 bytes in 3 blocks;
 *                nothing lost. */
#include <stdlib.h>
#include "common.h"

struct node {
    struct node *next;
    char payload[40];
};

struct node *list; /* the root */

static NOINLINE struct node *list_node(struct node *next)
{
    struct node *n = malloc(sizeof *n); /* HELD-SITE list_node */
    n->next = next;
    memset(n->payload, 0x55, sizeof n->payload);
    return n;
}

int main(void)
{
    _Static_assert(sizeof(struct node) == 48, "node size is part of the expected numbers");
    for (int i = 0; i < 3; i++)
        list = list_node(list);
    scrub_stack();
    say("class_list_held: done\n");
    return 0;
}
