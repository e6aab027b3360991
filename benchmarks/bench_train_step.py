"""Wall time per training step of each reproduce network (quick-preset configs), 2 CPU cores.

Each config's network and optimiser (``configs.build``, ``train.make_optimizer``)
with the one jit-compiled step of ``train.make_train_step()`` (forward,
backward, optax update), timed after compilation; prints the median over
``--steps`` steps.

    python benchmarks/bench_train_step.py [--steps 30]
"""

import argparse
import os
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
# this checkout's reproduce and jaxcca, not installed ones
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import numpy as np  # noqa: E402

from reproduce import configs, train  # noqa: E402


def time_steps(name, steps):
    """``(cfg, input shape, median seconds per step)`` of config ``name`` at preset quick."""
    cfg = configs.get_config(name, "quick")
    model, data = configs.build(cfg)
    opt = train.make_optimizer(model, cfg)
    step = train.make_train_step()
    model.train()
    rng = np.random.default_rng(0)
    times = []
    for i in range(steps + 1):
        idx = rng.integers(0, len(data["y"]), cfg["batch"])
        x, y = jax.numpy.asarray(data["x"][idx]), jax.numpy.asarray(data["y"][idx])
        t0 = time.perf_counter()
        jax.block_until_ready(step(model, opt, x, y, i))
        if i:  # the first call compiles
            times.append(time.perf_counter() - t0)
    return cfg, tuple(data["x"].shape[1:]), float(np.median(times))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=30)
    a = p.parse_args()
    print(f"{'config':18s} {'model':15s} {'input':14s} {'batch':>5s} {'ms/step':>8s}")
    with jax.numpy_dtype_promotion("standard"):
        for name in ("digits_convnet", "svcca_convnet", "resnet", "lstm_shakespeare"):
            cfg, shape, t = time_steps(name, a.steps)
            print(
                f"{name:18s} {cfg['model']:15s} {str(shape):14s} {cfg['batch']:5d} {t * 1e3:8.1f}"
            )


if __name__ == "__main__":
    main()
