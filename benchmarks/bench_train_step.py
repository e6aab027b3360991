"""Wall time per training step of each reproduce model (quick-preset sizes), 2 CPU cores.

Each model's jit-compiled step (forward, backward, optax update) is timed after
compilation; prints the median over ``--steps`` steps. A second table times the
``reproduce.zoo`` training step (``zoo.make_train_step``) at fixed sizes:
SVCCAConvNet and ResNet at width 0.5 on 8x8x1 digits, batch 128; a 2-layer
LSTM (embed 64, hidden 128) on character ids, batch 32 x T 64, vocabulary 65.

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
import optax  # noqa: E402
from flax import nnx  # noqa: E402

from reproduce import configs, zoo  # noqa: E402
from reproduce.data import load_digits_splits  # noqa: E402
from reproduce.train import train_step  # noqa: E402
from reproduce.trainer import make_optimizer  # noqa: E402


def time_steps(name, steps):
    cfg = configs.get_config(name, "quick")
    model, data = configs.build(cfg)
    opt = make_optimizer(model, cfg)
    model.train()

    rng = np.random.default_rng(0)
    times = []
    for i in range(steps + 1):
        idx = rng.integers(0, len(data["y"]), cfg["batch"])
        x, y = data["x"][idx], data["y"][idx]
        t0 = time.perf_counter()
        jax.block_until_ready(train_step(model, opt, x, y))
        if i:  # the first call compiles
            times.append(time.perf_counter() - t0)
    shape = tuple(data["x"].shape[1:])
    return cfg, shape, float(np.median(times))


def time_zoo_step(model, kind, x, y, steps):
    """Median seconds of ``zoo.make_train_step(kind)`` on one batch, after compiling."""
    opt = nnx.Optimizer(model, optax.adam(1e-3), wrt=nnx.Param)
    step = zoo.make_train_step(kind)
    model.train()
    x, y = jax.numpy.asarray(x), jax.numpy.asarray(y)
    jax.block_until_ready(step(model, opt, x, y))  # compile
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        jax.block_until_ready(step(model, opt, x, y))
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def zoo_table(steps):
    digits = load_digits_splits()["train"]
    x, y = digits.images[:128], digits.labels[:128].astype(np.int32)
    ids = np.random.default_rng(0).integers(0, 65, (32, 65)).astype(np.int32)
    rows = [
        (
            "SVCCAConvNet w=0.5",
            zoo.SVCCAConvNet(0.5, in_shape=(8, 8, 1), rngs=nnx.Rngs(0)),
            "classify",
            x,
            y,
        ),
        (
            "ResNet w=0.5 (1,1,1)",
            zoo.ResNet(0.5, blocks=(1, 1, 1), in_shape=(8, 8, 1), rngs=nnx.Rngs(0)),
            "classify",
            x,
            y,
        ),
        (
            "LSTM 2x128 V=65",
            zoo.LSTMLanguageModel(65, embed=64, hidden=128, layers=2, rngs=nnx.Rngs(0)),
            "lm",
            ids[:, :-1],
            ids[:, 1:],
        ),
    ]
    print(f"\n{'zoo model':22s} {'input':14s} {'ms/step':>8s}")
    for name, model, kind, xb, yb in rows:
        t = time_zoo_step(model, kind, xb, yb, steps)
        print(f"{name:22s} {str(tuple(xb.shape)):14s} {t * 1e3:8.1f}")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=30)
    a = p.parse_args()
    print(f"{'config':18s} {'model':15s} {'input':14s} {'batch':>5s} {'ms/step':>8s}")
    for name in ("digits_convnet", "svcca_convnet", "resnet", "lstm_shakespeare"):
        cfg, shape, t = time_steps(name, a.steps)
        print(f"{name:18s} {cfg['model']:15s} {str(shape):14s} {cfg['batch']:5d} {t * 1e3:8.1f}")
    zoo_table(a.steps)


if __name__ == "__main__":
    main()
