"""alloc_heavy: a python3 workload that builds and drops dicts, lists and strings.

Each round builds a dict of small records (a list, a tuple, a str, a nested dict), keeps the last
few rounds alive, and drops the oldest, so the interpreter allocates and frees steadily with a
bounded live set. Usage: python3 alloc_heavy.py [rounds] (default 60)."""
import sys

rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 60
kept = []
total = 0
for r in range(rounds):
    table = {}
    for i in range(4000):
        key = "k%d-%d" % (r, i)
        table[key] = [i, (i, r), key * (1 + i % 5), {"n": i, "s": str(i)}]
    big = [list(range(i % 300)) for i in range(400)]
    text = "".join(str(i) for i in range(3000)).split("1")
    kept.append((table, big, text))
    if len(kept) > 4:
        kept.pop(0)
    total += len(table) + len(big) + len(text)
print("alloc_heavy: %d rounds, %d objects" % (rounds, total))
