"""Command line of the reproduction (run from the repository checkout).

    python -m reproduce all --preset quick --out runs     every experiment, then the report
    python -m reproduce all --only dynamics width         some of them
    python -m reproduce report --out runs                 claims, tables, figures, report.md
                                                          again from saved results only
    python -m reproduce train --config NAME               one network, resumably

A finished experiment (its ``results.json`` exists) is skipped on a rerun; an
interrupted one resumes its networks from their checkpoints.
"""

from __future__ import annotations

import os

# jax 0.10 on CPU can deadlock in vmapped linear algebra with several OpenMP
# threads (README, known issues); must be set before jax is imported.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import pathlib  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

from reproduce import configs, experiments  # noqa: E402


def _train(a, out: pathlib.Path) -> None:
    from reproduce import train

    if a.config is None:
        raise ValueError(f"train needs --config NAME, one of: {', '.join(configs.NAMES)}")
    cfg = configs.get_config(a.config, a.preset)
    configs.check_data_dir(cfg, a.data_dir)
    model, data = configs.build(cfg, a.data_dir)
    run_dir = out / "train" / f"{a.config}_{a.preset}"
    print(f"training {a.config} ({a.preset}) -> {run_dir}")
    print(json.dumps(train.fit(run_dir, model, data, cfg, progress=True), indent=2))


def _all(a, out: pathlib.Path) -> None:
    import jax

    from reproduce import report

    if a.data_dir is not None and a.preset != "full":
        raise ValueError(
            f"--data-dir is used only by --preset full; preset {a.preset!r} trains on the "
            "built-in digits and Shakespeare: drop --data-dir"
        )
    names = a.only or list(experiments.NAMES)
    t0 = time.time()
    for i, name in enumerate(names, 1):
        done = out / name / "results.json"
        print(f"[{i}/{len(names)}] {name} ({a.preset}) -> {out / name}  [{time.time() - t0:.0f} s]")
        if done.exists():
            print(f"  {done} exists: skipping (delete it to rerun)")
        else:
            with jax.numpy_dtype_promotion("standard"):
                experiments.get(name).run(out, preset=a.preset, data_dir=a.data_dir, log=print)
        for c in report.finish(out, name)["claims"]:
            print(f"    {c['outcome']}: {c['id']} (value {c['value']:.3g})")
    report.write(out, log=print)
    print(f"done in {time.time() - t0:.0f} s")


def main(argv=None) -> None:
    """Parses the command line and runs it; a bad input ends with one line saying what to pass."""
    p = argparse.ArgumentParser(
        prog="python -m reproduce",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("command", nargs="?", default="all", choices=["all", "train", "report"])
    p.add_argument("--config", help=f"for `train`: one of {', '.join(configs.NAMES)}")
    p.add_argument("--data-dir", default=None, help="local CIFAR-10 / PTB files (preset full)")
    p.add_argument("--preset", default="quick", choices=["quick", "full", "smoke"])
    p.add_argument("--out", default="runs")
    p.add_argument("--only", nargs="+", choices=experiments.NAMES, help="run only these")
    a = p.parse_args(argv)
    out = pathlib.Path(a.out)
    try:
        if a.command == "train":
            _train(a, out)
        elif a.command == "report":
            from reproduce import report

            report.write(out)
        else:
            _all(a, out)
    except (ValueError, FileNotFoundError) as e:
        print(f"python -m reproduce {a.command}: error: {e}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
