"""Command line: ``python -m reproduce all --preset quick --out runs``.

``all`` runs every experiment (or ``--only NAME ...``) and writes
``OUT/<experiment>/results.json``, figures, and ``OUT/report.md``. Finished
experiments are skipped on a rerun (delete their ``results.json`` to redo them).
"""

from __future__ import annotations

import os

# jax 0.10 on CPU can deadlock in vmapped linear algebra with several OpenMP
# threads (README, known issues); must be set before jax is imported.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import pathlib  # noqa: E402
import time  # noqa: E402


def report(out: pathlib.Path, all_results: dict, preset: str) -> str:
    """Writes ``OUT/report.md``: for every claim, the paper, what was measured, the outcome."""
    lines = [
        "# jaxcca reproduction report",
        "",
        f"Preset `{preset}`: scikit-learn digits and synthetic data, CPU. A claim that did "
        "not hold is reported as such.",
        "",
        "## Claims",
        "",
        "| experiment | paper | claim | measured | held |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, res in all_results.items():
        for c in res["claims"]:
            lines.append(
                f"| {name} | {res['paper']} | {c['claim']} | {c['measured']} | "
                f"{'yes' if c['held'] else '**no**'} |"
            )
    for name, res in all_results.items():
        lines += ["", f"## {res['title']}", "", f"{res['paper']}. Numbers: `{name}/results.json`."]
        lines += ["", res["table"], ""]
        lines += [f"![]({name}/{fig})" for fig in res.get("figures", [])]
    text = "\n".join(lines) + "\n"
    (out / "report.md").write_text(text)
    return text


def _train(a, out: pathlib.Path) -> None:
    from reproduce import configs, trainer

    if a.config is None:
        raise SystemExit(f"train needs --config, one of {configs.NAMES}")
    cfg = configs.get_config(a.config, a.preset)
    model, data = configs.build(cfg, a.data_dir)
    run_dir = out / "train" / f"{a.config}_{a.preset}"
    print(f"training {a.config} ({a.preset}) -> {run_dir}")
    done = trainer.fit(run_dir, model, data, cfg)
    print(json.dumps(done, indent=2))


def main(argv=None) -> None:
    """Runs the experiments and writes ``OUT/report.md``."""
    from reproduce.experiments import EXPERIMENTS

    p = argparse.ArgumentParser(prog="python -m reproduce", description=__doc__)
    p.add_argument("command", nargs="?", default="all", choices=["all", "train"])
    p.add_argument("--config", help="for `train`: one of reproduce.configs.NAMES")
    p.add_argument("--data-dir", default=None, help="local CIFAR-10 / PTB / WikiText-2 files")
    p.add_argument("--preset", default="quick", choices=["quick", "full", "smoke"])
    p.add_argument("--out", default="runs")
    p.add_argument("--only", nargs="*", choices=list(EXPERIMENTS), help="run only these")
    a = p.parse_args(argv)
    out = pathlib.Path(a.out)
    if a.command == "train":
        _train(a, out)
        return
    names = a.only or list(EXPERIMENTS)
    results = {}
    t0 = time.time()
    for i, name in enumerate(names, 1):
        print(f"[{i}/{len(names)}] {name} ({a.preset}) -> {out / name}  [{time.time() - t0:.0f} s]")
        results[name] = EXPERIMENTS[name](out / name, preset=a.preset, data_dir=a.data_dir)
        for c in results[name]["claims"]:
            print(f"    {'held' if c['held'] else 'NOT HELD'}: {c['claim']} ({c['measured']})")
    # the report covers every finished experiment in OUT, also from earlier runs
    for name in EXPERIMENTS:
        path = out / name / "results.json"
        if name not in results and path.exists():
            results[name] = json.loads(path.read_text())
    results = {name: results[name] for name in EXPERIMENTS if name in results}
    report(out, results, a.preset)
    print(f"report: {out / 'report.md'}  ({time.time() - t0:.0f} s)")


if __name__ == "__main__":
    main()
