"""Small timing helpers shared by the benchmark scripts."""

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
