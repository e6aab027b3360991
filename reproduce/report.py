"""``python -m reproduce report --out DIR``: every claim, table, figure and ``report.md``.

Everything here is a pure function of the saved ``OUT/<name>/results.json``
files: no training, no measuring, under a minute.
"""

from __future__ import annotations

import json
import pathlib

from reproduce import experiments, io

COLUMNS = (
    "experiment",
    "id",
    "paper",
    "figure",
    "statement",
    "statistic",
    "value",
    "spread",
    "threshold",
    "null",
    "seeds",
    "outcome",
)


def finish(out: pathlib.Path, name: str) -> dict:
    """Decides ``name``'s claims from its results, stores them in results.json, draws its figure."""
    path = pathlib.Path(out) / name / "results.json"
    results = json.loads(path.read_text())
    module = experiments.get(name)
    results["claims"] = module.claims(results)
    io.write_json(path, results)
    module.figure(results, path.parent / f"{name}.png")
    return results


def _num(v: float) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)


def _null(n: dict) -> str:
    rng = f" [{_num(n['low'])}, {_num(n['high'])}]" if n["low"] != n["high"] else ""
    return f"{_num(n['value'])}{rng}: {n['how']}"


def _seeds(s) -> str:
    return s if isinstance(s, str) else ", ".join(map(str, s))


def _runtime(name: str, r: dict) -> str:
    t = r.get("runtime")
    if t is None:
        return ""
    text = f" Ran in {t['wall_s']:.0f} s wall, {t['cpu_s']:.0f} s CPU ({t['backend']})"
    if name in experiments.SHARED_NETWORKS:
        text += ", including the shared networks it was the first experiment to need"
    return text + "."


def write(out: pathlib.Path, *, log=print) -> str:
    """Regenerates every finished experiment's claims and figure, then ``OUT/report.md``."""
    out = pathlib.Path(out)
    done = [n for n in experiments.NAMES if (out / n / "results.json").exists()]
    if not done:
        raise FileNotFoundError(
            f"no OUT/<experiment>/results.json under {out}; run "
            f"`python -m reproduce all --out {out}` first"
        )
    results = {name: finish(out, name) for name in done}
    presets = sorted({r["preset"] for r in results.values()})
    counts = {o: 0 for o in ("held", "not held", "inconclusive")}
    for r in results.values():
        for c in r["claims"]:
            counts[c["outcome"]] += 1
    lines = [
        "# jaxcca reproduction report",
        "",
        f"Preset {', '.join(f'`{p}`' for p in presets)}. Every claim is decided by one rule "
        "(`reproduce/claims.py`): held if value - spread > max(threshold, null high); not "
        "held if value + spread < min(threshold, null low); otherwise inconclusive. The null "
        "is the same statistic under a baseline that should show no effect (mean [5%, 95%]).",
        "",
        f"Outcomes: {counts['held']} held, {counts['not held']} not held, "
        f"{counts['inconclusive']} inconclusive.",
        "",
        "## Claims",
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "| " + " | ".join("---" for _ in COLUMNS) + " |",
    ]
    for name, r in results.items():
        for c in r["claims"]:
            cells = [name] + [
                _null(c[k]) if k == "null" else _seeds(c[k]) if k == "seeds" else _num(c[k])
                for k in COLUMNS[1:]
            ]
            cells[-1] = f"**{cells[-1]}**"
            lines.append("| " + " | ".join(str(x).replace("|", "/") for x in cells) + " |")
    for name, r in results.items():
        module = experiments.get(name)
        lines += [
            "",
            f"## {name}: {module.TITLE}",
            "",
            f"{module.PAPER}. Preset `{r['preset']}`. Numbers: `{name}/results.json`."
            + _runtime(name, r),
            "",
            module.table(r),
            "",
            f"![{name}]({name}/{name}.png)",
        ]
    text = "\n".join(lines) + "\n"
    io.write_text(out / "report.md", text)
    log(f"report: {out / 'report.md'} ({sum(counts.values())} claims from {len(done)} experiments)")
    return text
