/* class_list_lost: a 5-node singly linked list whose head pointer is dropped.
 * Expected numbers: class_list_lost.expect.json.
 *
 *   list_node()  5 x malloc(48) (struct node: next pointer + 40 bytes), linked head -> ... -> tail;
 *                build_list() returns the head and main drops it.
 * Nothing points at the head: definitely lost 48 bytes in 1 block; the 4 other nodes are reached
 * only from it: indirectly lost 192 bytes in 4 blocks.  valgrind's loss record:
 * "240 (48 direct, 192 indirect) bytes in 1 blocks are definitely lost".  All from one site. */
#include <stdlib.h>
#include "common.h"

struct node {
    struct node *next;
    char payload[40];
};

static NOINLINE struct node *list_node(struct node *next)
{
    struct node *n = malloc(sizeof *n); /* LEAK-SITE list_node */
    n->next = next;
    memset(n->payload, 0x44, sizeof n->payload);
    return n;
}

static NOINLINE struct node *build_list(int count)
{
    struct node *head = NULL;
    for (int i = 0; i < count; i++)
        head = list_node(head);
    return head;
}

int main(void)
{
    _Static_assert(sizeof(struct node) == 48, "node size is part of the expected numbers");
    (void)build_list(5);
    scrub_stack();
    say("class_list_lost: done\n");
    return 0;
}
