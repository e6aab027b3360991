"""Command line of the reproduction (run from the repository checkout).

    python -m reproduce all --preset quick --out runs     every experiment, then the report
    python -m reproduce all --only dynamics width         some of them
    python -m reproduce report --out runs                 claims, tables, figures, report.md
                                                          again from saved results only
    python -m reproduce train --config NAME               one network, resumably

A finished experiment (its ``results.json`` exists) is skipped on a rerun; an
interrupted one resumes its networks from their checkpoints. ``all`` runs the
experiments in ``--jobs`` processes (default 2): experiments that share networks
run one after another in one process, so each network is trained once; every
job's output is echoed with its name and kept in ``OUT/logs/``.
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


class JobsFailed(Exception):
    """A parallel job of ``all`` exited with an error (its log says which and why)."""


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


def _run_here(names, a, out: pathlib.Path, t0: float) -> None:
    """Runs ``names`` one after another in this process (skipping finished ones)."""
    import jax

    from reproduce import report

    for i, name in enumerate(names, 1):
        done = out / name / "results.json"
        print(f"[{i}/{len(names)}] {name} ({a.preset}) -> {out / name}  [{time.time() - t0:.0f} s]")
        if done.exists():
            print(f"  {done} exists: skipping (delete it to rerun)")
        else:
            wall, cpu = time.time(), time.process_time()
            with jax.numpy_dtype_promotion("standard"):
                experiments.get(name).run(out, preset=a.preset, data_dir=a.data_dir, log=print)
            _record_runtime(done, time.time() - wall, time.process_time() - cpu)
        for c in report.finish(out, name)["claims"]:
            print(f"    {c['outcome']}: {c['id']} (value {c['value']:.3g})")


def _record_runtime(path: pathlib.Path, wall: float, cpu: float) -> None:
    """Adds the run's wall and CPU seconds (all threads of this process) to its results."""
    import jax

    from reproduce import io

    results = json.loads(path.read_text())
    results["runtime"] = {
        "wall_s": round(wall, 1),
        "cpu_s": round(cpu, 1),
        "backend": f"{jax.default_backend()}, {os.cpu_count()} cores",
    }
    io.write_json(path, results)


def _child_env() -> dict:
    """This process's environment plus its jax settings, so every job computes the same."""
    import jax

    env = dict(os.environ)
    env["JAX_ENABLE_X64"] = str(bool(jax.config.jax_enable_x64))
    env["JAX_NUMPY_RANK_PROMOTION"] = str(jax.config.jax_numpy_rank_promotion)
    env["TQDM_DISABLE"] = "1"  # progress bars from parallel jobs would interleave
    return env


def _run_parallel(names, a, out: pathlib.Path, t0: float) -> None:
    """Runs ``names`` in up to ``a.jobs`` processes, one per group that shares networks.

    The groups are ``experiments.chains(names)``; each job's output goes to
    ``OUT/logs/<first experiment>.log`` and its lines are echoed here with the
    job's name.
    """
    import subprocess
    import threading

    todo = experiments.chains(names)
    logs = out / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    env, running, failed, lock = _child_env(), [], [], threading.Lock()

    def start(chain):
        label = chain[0] if len(chain) == 1 else f"{chain[0]}+{len(chain) - 1}"
        cmd = [sys.executable, "-m", "reproduce", "all", "--jobs", "1", "--no-report"]
        cmd += ["--preset", a.preset, "--out", str(out), "--only", *chain]
        if a.data_dir is not None:
            cmd += ["--data-dir", str(a.data_dir)]
        proc = subprocess.Popen(
            cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )

        def echo():
            with open(logs / f"{chain[0]}.log", "w") as f:
                for line in proc.stdout:  # type: ignore[union-attr]
                    f.write(line)
                    with lock:
                        print(f"{label} | {line.rstrip()}  [{time.time() - t0:.0f} s]", flush=True)

        thread = threading.Thread(target=echo, daemon=True)
        thread.start()
        return chain, proc, thread

    while todo or running:
        while todo and len(running) < a.jobs:
            running.append(start(todo.pop(0)))
        time.sleep(0.2)
        for job in [j for j in running if j[1].poll() is not None]:
            chain, proc, thread = job
            thread.join()
            running.remove(job)
            if proc.returncode != 0:
                failed.append((chain, proc.returncode))
    if failed:
        lines = [f"{', '.join(c)} (exit {rc}; log: {logs / (c[0] + '.log')})" for c, rc in failed]
        raise JobsFailed("experiments failed: " + "; ".join(lines))


def _all(a, out: pathlib.Path) -> None:
    from reproduce import report

    if a.data_dir is not None and a.preset != "full":
        raise ValueError(
            f"--data-dir is used only by --preset full; preset {a.preset!r} trains on the "
            "built-in digits and Shakespeare: drop --data-dir"
        )
    if a.jobs < 1:
        raise ValueError(f"--jobs must be at least 1, got {a.jobs}")
    names = a.only or list(experiments.NAMES)
    t0 = time.time()
    todo = []
    for name in names:  # finished experiments: claims and figure again, here, in order
        done = out / name / "results.json"
        if done.exists():
            _run_here([name], a, out, t0)
        else:
            todo.append(name)
    if a.jobs == 1 or len(experiments.chains(todo)) == 1:
        _run_here(todo, a, out, t0)
    else:
        _run_parallel(todo, a, out, t0)
    if not a.no_report:
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
    p.add_argument(
        "--jobs",
        type=int,
        default=min(2, os.cpu_count() or 1),
        help="experiments run in up to this many processes, networks shared by several "
        "experiments trained once (default: 2, or 1 on one core)",
    )
    p.add_argument("--no-report", action="store_true", help=argparse.SUPPRESS)
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
    except (ValueError, FileNotFoundError, JobsFailed) as e:
        print(f"python -m reproduce {a.command}: error: {e}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
