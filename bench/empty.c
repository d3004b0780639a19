/* empty.c — the startup line of bench/run: a program that does nothing, so that its time under a
 * tool is the tool's fixed cost per process (loading, set-up, exit), apart from any allocation. */
int main(void) { return 0; }
