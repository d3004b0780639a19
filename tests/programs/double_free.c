/* double_free: frees one block twice, a bug that glibc catches ("free(): double free detected in
 * tcache 2", SIGABRT). Under memlens --sample 1 the block is a sample, which memlens may keep for a
 * later sample after the program's first free; the second free must still reach glibc as it would
 * without memlens (e2e-sampled compares the two runs). */
#include <stdlib.h>
#include "common.h"

int main(void)
{
    char *p = malloc(100);
    char *volatile again = p;
    p[0] = 1;
    say("double_free: before\n");
    free(p);
    free(again);
    say("double_free: after\n");
    return 0;
}
