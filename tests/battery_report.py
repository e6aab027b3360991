"""The exhaustive bad-input battery: every measure x every case x every magnitude, every path.

Runs :func:`tests.test_bad_inputs.run_case` (float32 against float64 on the
same data) for every entry of the measure registry, every case of
``CASES`` and every magnitude ``1e-30, 1e-20, ..., 1e30``, on the paths
eager, ``jit``, ``jit(vmap)`` (single-pair measures; ``pairwise`` and
``streaming`` are batch paths of their own) and ``jit(grad)``
(differentiable measures), with the suite's strict settings (x64 on, strict
dtype and rank promotion). Prints one line per failing case and a count
table: cases, passed, failed per measure. Not a test (it takes a long time)::

    OMP_NUM_THREADS=1 PYTHONPATH=$PWD nice python -m tests.battery_report [--only NAME ...]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_dtype_promotion", "strict")
jax.config.update("jax_numpy_rank_promotion", "raise")

from .test_bad_inputs import ALL, CASES, run_case  # noqa: E402

EXPONENTS = tuple(range(-30, 31, 10))


def paths_of(m) -> tuple[str, ...]:
    if m.differentiable:
        return ("eager", "jit", "vmap", "grad")
    return ("eager", "jit")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", help="measure names (default: all)")
    args = parser.parse_args()
    measures = [m for m in ALL if not args.only or m.name in args.only]
    rows = []
    start = time.perf_counter()
    for m in measures:
        t0 = time.perf_counter()
        passed = failed = 0
        for ci, case in enumerate(CASES):
            for e in EXPONENTS:
                seed = 1000 * ci + e + 30
                try:
                    problem = run_case(m, case, e, seed, paths=paths_of(m))
                except Exception as err:  # a raise is a failure too, reported as such
                    problem = f"raised {type(err).__name__}: {str(err).splitlines()[0][:120]}"
                if problem is None:
                    passed += 1
                else:
                    failed += 1
                    print(f"FAIL {m.name} {case} e={e} seed={seed}: {problem}", flush=True)
        rows.append((m.name, passed + failed, passed, failed))
        print(
            f"done {m.name}: {passed + failed} cases, {failed} failed, "
            f"{time.perf_counter() - t0:.0f} s",
            flush=True,
        )
    width = max(len(r[0]) for r in rows)
    print(f"\n{'measure':<{width}}  cases  passed  failed")
    for name, n, p, f in rows:
        print(f"{name:<{width}}  {n:5d}  {p:6d}  {f:6d}")
    total = [sum(r[i] for r in rows) for i in (1, 2, 3)]
    print(f"{'total':<{width}}  {total[0]:5d}  {total[1]:6d}  {total[2]:6d}")
    print(f"paths: eager, jit, jit(vmap), jit(grad); {time.perf_counter() - start:.0f} s")
    return 1 if total[2] else 0


if __name__ == "__main__":
    raise SystemExit(main())
