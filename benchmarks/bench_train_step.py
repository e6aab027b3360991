"""Wall time per training step of each reproduce model (quick-preset sizes), 2 CPU cores.

Each model's jit-compiled step (forward, backward, optax update) is timed after
compilation; prints the median over ``--steps`` steps.

    python benchmarks/bench_train_step.py [--steps 30]
"""

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import jax  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
from flax import nnx  # noqa: E402

from reproduce import configs  # noqa: E402
from reproduce.trainer import make_optimizer  # noqa: E402


def time_steps(name, steps):
    cfg = configs.get_config(name, "quick")
    model, data = configs.build(cfg)
    opt = make_optimizer(model, cfg)
    model.train()

    @nnx.jit
    def step(m, o, x, y):
        def loss_fn(m):
            return optax.softmax_cross_entropy_with_integer_labels(m(x), y).mean()

        loss, grads = nnx.value_and_grad(loss_fn)(m)
        o.update(m, grads)
        return loss

    rng = np.random.default_rng(0)
    times = []
    for i in range(steps + 1):
        idx = rng.integers(0, len(data["y"]), cfg["batch"])
        x, y = data["x"][idx], data["y"][idx]
        t0 = time.perf_counter()
        jax.block_until_ready(step(model, opt, x, y))
        if i:  # the first call compiles
            times.append(time.perf_counter() - t0)
    shape = tuple(data["x"].shape[1:])
    return cfg, shape, float(np.median(times))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=30)
    a = p.parse_args()
    print(f"{'config':18s} {'model':15s} {'input':14s} {'batch':>5s} {'ms/step':>8s}")
    for name in ("digits_convnet", "svcca_convnet", "resnet", "lstm_shakespeare"):
        cfg, shape, t = time_steps(name, a.steps)
        print(f"{name:18s} {cfg['model']:15s} {str(shape):14s} {cfg['batch']:5d} {t * 1e3:8.1f}")


if __name__ == "__main__":
    main()
