"""Helpers shared by the benchmark scripts: timing, thread settings, reports.

Every script times its contenders side by side in one run (round robin, best
of ``repeat``), prints ratios, and can write its results as markdown
(``--markdown PATH``, appended) and as JSON (``--json PATH``, one object per
script with a ``readme`` row that ``benchmarks/readme_table.py`` turns into the
README's benchmark table).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import jax


def best_of(fn, *args, repeat=5, warmup=1):
    """Best wall time in seconds of ``fn(*args)`` (results blocked on)."""
    for _ in range(warmup):
        jax.block_until_ready(fn(*args))
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        best = min(best, time.perf_counter() - t0)
    return best


def best_of_each(calls, *, repeat=5, warmup=1):
    """Best wall times of several calls timed round robin (one after another, ``repeat`` rounds).

    Args:
      calls: dict name -> zero-argument callable.
      repeat: rounds.
      warmup: untimed calls of each before the first round (compilation).

    Returns:
      dict name -> best time in seconds. Interleaving makes the ratios robust to
      load that drifts during the run (a shared machine).
    """
    for fn in calls.values():
        for _ in range(warmup):
            jax.block_until_ready(fn())
    best = dict.fromkeys(calls, float("inf"))
    for _ in range(repeat):
        for name, fn in calls.items():
            t0 = time.perf_counter()
            jax.block_until_ready(fn())
            best[name] = min(best[name], time.perf_counter() - t0)
    return best


def numpy_all_cores(script, argv):
    """Runs ``script argv --numpy-only`` in a subprocess with every core for NumPy's BLAS.

    In the benchmark process itself ``OMP_NUM_THREADS`` is 1: jaxlib's CPU
    LAPACK kernels run on OpenBLAS, and several OpenMP threads next to XLA's
    own thread pool stall on small machines (a 2-core NumPy baseline next to
    jax measured 10-50x slower than alone). A process that never starts jax
    times NumPy at its best; the script prints a JSON dict on its last line.

    Returns:
      ``(dict, threads)``.
    """
    threads = os.cpu_count() or 1
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "OPENBLAS_NUM_THREADS": str(threads)}
    out = subprocess.run(
        [sys.executable, script, *argv, "--numpy-only"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1]), threads


def numpy_best_of(fn, *args, repeat=3):
    """Best wall time of a NumPy call (no warm-up needed)."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn(*args)
        best = min(best, time.perf_counter() - t0)
    return best


def hardware() -> str:
    """A short name of the machine the default backend runs on."""
    dev = jax.devices()[0]
    if dev.platform == "cpu":
        return f"{os.cpu_count()} CPU cores"
    return (
        f"{jax.device_count()} x {dev.device_kind}" if jax.device_count() > 1 else dev.device_kind
    )


def add_report_args(parser):
    """Adds ``--markdown PATH`` and ``--json PATH`` to an argparse parser."""
    parser.add_argument("--markdown", help="append the results as markdown to this file")
    parser.add_argument("--json", help="write the results (and the README row) as JSON here")


def markdown_table(header, rows) -> str:
    """A markdown table from a header list and rows of cells."""
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def report(args, *, title, command, notes, header, rows, readme):
    """Prints and saves one benchmark's results.

    Args:
      args: parsed arguments with ``markdown`` and ``json`` (may be None).
      title: section title.
      command: the command line that reproduces the run.
      notes: lines of text printed above the table (what the floor is, threads...).
      header: table header.
      rows: table rows.
      readme: ``{"label": ..., "value": ...}``: this run's row of the README table.
    """
    table = markdown_table(header, rows)
    text = f"### {title}\n\n`{command}` on {hardware()}, jax {jax.__version__}.\n\n"
    text += "".join(f"{line}\n" for line in notes) + "\n" + table
    print(text)
    if getattr(args, "markdown", None):
        with open(args.markdown, "a") as f:
            f.write(text + "\n")
    if getattr(args, "json", None):
        with open(args.json, "w") as f:
            json.dump(
                {
                    "title": title,
                    "command": command,
                    "hardware": hardware(),
                    "jax": jax.__version__,
                    "notes": notes,
                    "header": header,
                    "rows": rows,
                    "readme": readme,
                },
                f,
                indent=1,
            )


def ratio(a, b) -> str:
    """``a / b`` formatted as ``1.23x``."""
    return f"{a / b:.2f}x"
