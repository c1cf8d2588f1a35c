#!/usr/bin/env python3
"""The mutation score per file from one or more cargo-mutants output folders.

Usage: python3 tools/mutants_report.py [--missed] DIR...
  DIR  a cargo-mutants output folder (the one holding outcomes.json), e.g.
       target/mutants/all-0-of-1/mutants.out; several folders (shards) are
       merged, a later folder's outcome for a mutant replacing an earlier
       one's (so a re-run after new tests wins).
  --missed  also list every mutant not caught, by file.

Prints a Markdown table: per file, the mutants caught, missed, timed out
and unviable (those that do not build), and the score caught / viable,
where viable = caught + missed + timeout. A timeout is reported apart and
not counted as caught.
"""
import json
import os
import sys
from collections import defaultdict

OUTCOMES = {
    "CaughtMutant": "caught",
    "MissedMutant": "missed",
    "Timeout": "timeout",
    "Unviable": "unviable",
}


def load(folder):
    path = os.path.join(folder, "outcomes.json")
    if not os.path.exists(path):
        path = os.path.join(folder, "mutants.out", "outcomes.json")
    with open(path) as f:
        return json.load(f)["outcomes"]


def main(argv):
    show_missed = "--missed" in argv
    folders = [a for a in argv if a != "--missed"]
    if not folders:
        print(__doc__, file=sys.stderr)
        return 2
    by_name = {}
    for folder in folders:
        for outcome in load(folder):
            scenario = outcome["scenario"]
            if not isinstance(scenario, dict) or "Mutant" not in scenario:
                continue  # the baseline run
            mutant = scenario["Mutant"]
            kind = OUTCOMES.get(outcome["summary"])
            if kind is None:
                continue  # e.g. a success of an unmutated tree
            by_name[mutant["name"]] = (mutant["file"], kind)
    counts = defaultdict(lambda: defaultdict(int))
    missed = defaultdict(list)
    for name, (file, kind) in sorted(by_name.items()):
        counts[file][kind] += 1
        if kind in ("missed", "timeout"):
            missed[file].append(f"{kind}: {name}")
    print("| file | caught | missed | timeout | unviable | score |")
    print("|---|---|---|---|---|---|")
    total = defaultdict(int)
    for file in sorted(counts):
        c = counts[file]
        for kind in OUTCOMES.values():
            total[kind] += c[kind]
        print(row(file, c))
    print(row("**all**", total))
    if show_missed:
        for file in sorted(missed):
            print(f"\n{file}:")
            for line in missed[file]:
                print(f"  {line}")
    return 0


def row(label, c):
    viable = c["caught"] + c["missed"] + c["timeout"]
    score = f"{100 * c['caught'] / viable:.0f} %" if viable else "-"
    return (
        f"| {label} | {c['caught']} | {c['missed']} | {c['timeout']} "
        f"| {c['unviable']} | {score} |"
    )


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
