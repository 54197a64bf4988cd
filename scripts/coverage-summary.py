#!/usr/bin/env python3
"""Per-module line coverage from an lcov file (cargo tarpaulin --out Lcov).

Usage: scripts/coverage-summary.py [target/coverage/lcov.info]

Prints the covered/total lines of each orchestration module (the planner,
the engine, rollback, resume, the store and the projections), their sum,
and each file below 80%.
"""
import os
import sys

MODULES = [
    ("planner (src/plan.rs)", ["src/plan.rs"]),
    ("rollback planner (src/rollback.rs)", ["src/rollback.rs"]),
    ("decisions (src/decide.rs)", ["src/decide.rs"]),
    ("projections (src/projection/)", ["src/projection/"]),
    ("engine (src/engine/, resume in lifecycle.rs)", ["src/engine/"]),
    ("store, SQLite and shared (src/store/ without postgres/)", ["src/store/"]),
    ("store, PostgreSQL (src/store/postgres/)", ["src/store/postgres/"]),
]


def main() -> None:
    path = sys.argv[1] if len(sys.argv) > 1 else "target/coverage/lcov.info"
    root = os.getcwd() + "/"
    files = {}
    current = None
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line.startswith("SF:"):
                current = line[3:].replace(root, "")
                files[current] = [0, 0]
            elif line.startswith("DA:") and current:
                _, hits = line[3:].split(",")[:2]
                files[current][1] += 1
                if int(hits) > 0:
                    files[current][0] += 1
    total = [0, 0]
    print(f"{'module':58} {'lines':>13} {'cover':>7}")
    for name, prefixes in MODULES:
        hit = tot = 0
        for f, (h, t) in files.items():
            if not any(f.startswith(p) for p in prefixes):
                continue
            if prefixes == ["src/store/"] and f.startswith("src/store/postgres/"):
                continue
            hit += h
            tot += t
        if "PostgreSQL" not in name:
            total[0] += hit
            total[1] += tot
        pct = 100.0 * hit / tot if tot else 0.0
        print(f"{name:58} {hit:6}/{tot:<6} {pct:6.1f}%")
    pct = 100.0 * total[0] / total[1] if total[1] else 0.0
    print(f"{'orchestration (all of the above but PostgreSQL)':58} {total[0]:6}/{total[1]:<6} {pct:6.1f}%")
    allh = sum(h for h, _ in files.values())
    allt = sum(t for _, t in files.values())
    print(f"{'whole crate':58} {allh:6}/{allt:<6} {100.0 * allh / allt:6.1f}%")
    print()
    print("orchestration files below 80%:")
    for f, (h, t) in sorted(files.items()):
        prefixes = [p for _, ps in MODULES for p in ps]
        if any(f.startswith(p) for p in prefixes) and t and h / t < 0.8:
            print(f"  {f:50} {h:5}/{t:<5} {100.0 * h / t:5.1f}%")


if __name__ == "__main__":
    main()
