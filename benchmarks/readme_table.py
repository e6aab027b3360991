"""The README's benchmark table from the benchmark scripts' JSON results.

Each benchmark script writes ``--json PATH`` with a ``readme`` row (a label and
this run's figures) and the hardware it ran on. This script merges any number of
such files, from any number of machines, into one markdown table with a column
per hardware, so the README says which figures come from which hardware:

    python benchmarks/bench_core.py --json out/cpu/core.json   # ... on each machine
    python benchmarks/readme_table.py out/cpu/*.json out/gpu/*.json [-o section.md]

``benchmarks/device_check.sh`` runs every script and appends this table to its report.
"""

import argparse
import json


def table(paths, pending=()):
    """Markdown table: one row per benchmark label, one column per hardware.

    ``pending`` names extra columns (hardware not measured yet), filled with
    "not measured".
    """
    cells, labels, hardware, commands = {}, [], [], []
    for path in paths:
        with open(path) as f:
            res = json.load(f)
        row = res.get("readme") or {}
        if not row.get("label"):
            continue
        hw = f"{res['hardware']} (jax {res['jax']})"
        if row["label"] not in labels:
            labels.append(row["label"])
        if hw not in hardware:
            hardware.append(hw)
        cells[row["label"], hw] = row["value"]
        commands.append(f"{hw}: `{res['command']}`")
    hardware += [p for p in pending if p not in hardware]
    lines = ["| benchmark | " + " | ".join(hardware) + " |", "|" + " --- |" * (len(hardware) + 1)]
    for label in labels:
        lines.append(
            f"| {label} | "
            + " | ".join(cells.get((label, hw), "not measured") for hw in hardware)
            + " |"
        )
    lines.append("")
    lines.append("Commands:")
    lines.append("")
    lines += [f"* {c}" for c in commands]
    return "\n".join(lines) + "\n"


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("json", nargs="+")
    p.add_argument("-o", "--output", help="write here instead of printing")
    p.add_argument("--pending", action="append", default=[], help="a column not measured yet")
    a = p.parse_args()
    out = table(a.json, a.pending)
    if a.output:
        with open(a.output, "w") as f:
            f.write(out)
    else:
        print(out)


if __name__ == "__main__":
    main()
