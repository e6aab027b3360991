"""Resumable training of any reproduce model, with checkpoints and probe activations.

On-disk layout of one run directory (everything written atomically: a file
either exists complete or not at all):

    RUN/config.json                   the configuration that was run
    RUN/checkpoints/ckpt_XXXXXX.npz   model and optimizer state after step XXXXXX
    RUN/activations/step_XXXXXX.npz   every named layer on the probe set at that step,
                                      one array per layer name (conv layers (N, H, W, C),
                                      LSTM layers (windows * time, hidden))
    RUN/metrics.json                  per checkpoint: step, loss, probe metric, seconds/step
    RUN/done.json                     written last: the run is finished

A rerun of a finished run does nothing; a rerun of an interrupted run restores
the latest checkpoint and continues. Minibatches are drawn from a generator
seeded by ``(seed, step)``, so a resumed run takes the same steps as an
uninterrupted one.
"""

from __future__ import annotations

import json
import pathlib
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from reproduce.common import atomic_write
from reproduce.train import train_step


def _save_npz(path: pathlib.Path, arrays: dict) -> None:
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, **arrays)
    tmp.replace(path)


def _state_leaves(*objs) -> list:
    return [leaf for o in objs for leaf in jax.tree.leaves(nnx.state(o))]


def _is_key(leaf) -> bool:
    return jnp.issubdtype(leaf.dtype, jax.dtypes.prng_key)


def save_checkpoint(path: pathlib.Path, model, opt) -> None:
    """Writes the model's and optimizer's state (every leaf, in tree order).

    Typed PRNG keys (e.g. an RNN's ``Rngs``) are stored as their key data.
    """
    leaves = _state_leaves(model, opt)
    arrays = {
        f"leaf_{i:05d}": np.asarray(jax.random.key_data(leaf) if _is_key(leaf) else leaf)
        for i, leaf in enumerate(leaves)
    }
    _save_npz(path, arrays)


def load_checkpoint(path: pathlib.Path, model, opt) -> None:
    """Restores a checkpoint written by :func:`save_checkpoint` into ``model`` and ``opt``."""
    with np.load(path) as f:
        stored = [f[k] for k in sorted(f.files)]
    offset = 0
    for obj in (model, opt):
        state = nnx.state(obj)
        leaves, treedef = jax.tree.flatten(state)
        new = stored[offset : offset + len(leaves)]
        if len(new) != len(leaves):
            raise ValueError(f"{path} does not match this model's configuration")
        restored = []
        for a, old in zip(new, leaves, strict=True):
            if _is_key(old):
                restored.append(
                    jax.random.wrap_key_data(jnp.asarray(a), impl=jax.random.key_impl(old))
                )
            elif a.shape != np.shape(old):
                raise ValueError(f"{path} does not match this model's configuration")
            else:
                restored.append(jnp.asarray(a))
        nnx.update(obj, jax.tree.unflatten(treedef, restored))
        offset += len(leaves)


def make_optimizer(model, cfg: dict):
    """Adam or SGD with momentum, from ``cfg["optimizer"]`` and ``cfg["lr"]``."""
    if cfg.get("optimizer", "adam") == "adam":
        tx = optax.adam(cfg["lr"])
    else:
        tx = optax.sgd(cfg["lr"], momentum=0.9)
    return nnx.Optimizer(model, tx, wrt=nnx.Param)


def _set_mode(model, training: bool) -> None:
    if training:
        model.train()
    else:
        model.eval()


def fit(
    run_dir: pathlib.Path,
    model,
    data: dict,
    cfg: dict,
    *,
    progress: bool = True,
    on_step=None,
    log=print,
) -> dict:
    """Trains ``model`` on ``data`` as ``cfg`` says, resumably; returns the metrics.

    Args:
      run_dir: the run directory (layout in the module docstring).
      model: a reproduce model (``features(x)`` returns every named layer).
      data: ``{"x", "y"}`` training arrays, ``{"probe_x", "probe_y"}`` the
        probe set, and ``"task"``: ``"classify"`` (labels ``(N,)``) or ``"lm"``
        (next-token targets ``(N, T)``).
      cfg: ``steps``, ``batch``, ``lr``, ``seed``, ``every`` (checkpoint
        interval), optional ``optimizer`` (``"adam"`` or ``"sgd"``).
      progress: show a progress bar.
      on_step: optional ``callback(step)`` after every step (tests use it to
        interrupt a run).
      log: where to print.
    """
    run_dir = pathlib.Path(run_dir)
    if (run_dir / "done.json").exists():
        return json.loads((run_dir / "done.json").read_text())
    for sub in ("checkpoints", "activations"):
        (run_dir / sub).mkdir(parents=True, exist_ok=True)
    atomic_write(run_dir / "config.json", json.dumps(cfg, indent=2, default=str))
    opt = make_optimizer(model, cfg)
    lm = data["task"] == "lm"

    @nnx.jit
    def probe(m, x, y):
        feats = m.features(x)
        logits = feats["logits"]
        loss = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
        acc = jnp.mean(jnp.argmax(logits, -1) == y)
        if lm:
            feats = {k: v.reshape(-1, v.shape[-1]) for k, v in feats.items()}
        return feats, loss, acc

    ckpts = sorted((run_dir / "checkpoints").glob("ckpt_*.npz"))
    metrics_path = run_dir / "metrics.json"
    metrics = json.loads(metrics_path.read_text()) if metrics_path.exists() else []
    start = 0
    if ckpts:
        load_checkpoint(ckpts[-1], model, opt)
        start = int(ckpts[-1].stem.split("_")[1])
        metrics = [m for m in metrics if m["step"] <= start]
        log(f"  resuming {run_dir} from step {start}")
    x_all, y_all = jnp.asarray(data["x"]), jnp.asarray(data["y"])
    steps, every = cfg["steps"], cfg["every"]

    def checkpoint(t: int, seconds_per_step: float) -> None:
        _set_mode(model, False)
        feats, loss, acc = probe(model, jnp.asarray(data["probe_x"]), jnp.asarray(data["probe_y"]))
        _save_npz(run_dir / "activations" / f"step_{t:06d}.npz", jax.tree.map(np.asarray, feats))
        save_checkpoint(run_dir / "checkpoints" / f"ckpt_{t:06d}.npz", model, opt)
        metrics.append(
            {
                "step": t,
                "probe_loss": float(loss),
                "probe_accuracy": float(acc),
                "seconds_per_step": seconds_per_step,
            }
        )
        atomic_write(metrics_path, json.dumps(metrics, indent=2))
        _set_mode(model, True)

    if start == 0:
        checkpoint(0, float("nan"))
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=steps, initial=start, desc=run_dir.name, leave=False)
    _set_mode(model, True)
    t_last, n_last = time.perf_counter(), 0
    for t in range(start, steps):
        rng = np.random.default_rng([cfg["seed"], t])
        idx = rng.integers(0, len(y_all), cfg["batch"])
        loss = train_step(model, opt, x_all[idx], y_all[idx])
        n_last += 1
        if bar is not None:
            bar.update(1)
        if (t + 1) % every == 0 or t + 1 == steps:
            jax.block_until_ready(loss)
            per_step = (time.perf_counter() - t_last) / n_last
            checkpoint(t + 1, per_step)
            t_last, n_last = time.perf_counter(), 0
        if on_step is not None:
            on_step(t + 1)
    if bar is not None:
        bar.close()
    _set_mode(model, False)
    timed = [m["seconds_per_step"] for m in metrics[1:] if np.isfinite(m["seconds_per_step"])]
    done = {
        "steps": steps,
        "final": metrics[-1],
        "median_seconds_per_step": float(np.median(timed)) if timed else None,
    }
    atomic_write(run_dir / "done.json", json.dumps(done, indent=2))
    return done


def read_activations(run_dir: pathlib.Path) -> tuple[list[int], dict[str, np.ndarray]]:
    """Every checkpoint's probe activations: ``(steps, {layer: (T, ...)})``."""
    files = sorted((pathlib.Path(run_dir) / "activations").glob("step_*.npz"))
    steps = [int(f.stem.split("_")[1]) for f in files]
    stacks: dict[str, list] = {}
    for f in files:
        with np.load(f) as z:
            for k in z.files:
                stacks.setdefault(k, []).append(z[k])
    return steps, {k: np.stack(v) for k, v in stacks.items()}
