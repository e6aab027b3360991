"""What the experiments share: training a configured network, nulls by shuffled rows, files."""

from __future__ import annotations

import json
import pathlib
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from reproduce import configs, io, train


def train_network(
    run_dir: pathlib.Path,
    config: str,
    preset: str,
    *,
    data_dir=None,
    log=print,
    loss_fn: Callable = train.cross_entropy,
    **overrides,
):
    """Trains network ``config`` at ``preset`` (with ``overrides``) into ``run_dir``, resumably.

    Unless ``overrides`` sets ``every``, a network is checkpointed 4 times (the
    experiments that use this read only its end). Returns ``(model, data,
    cfg)``; the model holds the final parameters, in eval mode.
    """
    cfg = configs.get_config(config, preset)
    cfg.update(overrides)
    if "every" not in overrides:
        cfg["every"] = max(cfg["every"], -(-cfg["steps"] // 4))
    model, data = configs.build(cfg, data_dir)
    train.fit(run_dir, model, data, cfg, loss_fn=loss_fn, log=log)
    return model, data, cfg


def shuffled_rows(fn: Callable, x, y, *, n: int = 20, seed: int = 0) -> np.ndarray:
    """``fn(x, y[perm])`` for ``n`` random row permutations of ``y``, batched with ``jax.vmap``.

    The rows (samples) of ``y`` no longer correspond to those of ``x``: a
    baseline with no shared structure, for any jaxcca measure ``fn``.
    """
    x, y = jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32)
    keys = jax.random.split(jax.random.key(seed), n)

    def one(key):
        return fn(x, y[jax.random.permutation(key, y.shape[0])])

    return np.asarray(jax.jit(jax.vmap(one))(keys))


def save_results(out: pathlib.Path, name: str, results: dict) -> dict:
    """Writes ``OUT/NAME/results.json`` (raw numbers; written last, it marks completion)."""
    io.write_json(out / name / "results.json", {"experiment": name, **results})
    return json.loads((out / name / "results.json").read_text())


def reduce_spatial(a: np.ndarray) -> np.ndarray:
    """Conv activations ``(N, H, W, C)`` as ``(N, C)`` by the mean over space; others as is."""
    return a.mean(axis=(1, 2)) if a.ndim == 4 else a


def fmt(v: float) -> str:
    """A number for a table."""
    return f"{v:.3f}"
