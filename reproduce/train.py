"""The one training library: ``fit``, ``make_train_step``, optimisers, checkpoints, activations.

Every network of every experiment is trained by :func:`fit`, which writes one
run directory (every file atomically, through :mod:`reproduce.io`):

    RUN/config.json                   the configuration that was run
    RUN/checkpoints/ckpt_XXXXXX.npz   model and optimiser state after step XXXXXX (the
                                      latest two are kept, and those at the steps of
                                      ``cfg["keep_checkpoints"]``)
    RUN/activations/step_XXXXXX.npz   every layer on the probe set at that step, plus
                                      ``__reduction__``: how each layer was reduced
    RUN/metrics.json                  {step: {probe_loss, probe_accuracy}}, keyed by step
    RUN/done.json                     written last: the run is finished (and its timing)

At a checkpoint step the activations and metrics are written before the
checkpoint, so a checkpoint marks a step whose outputs are complete. A rerun
of a finished run loads its last checkpoint and trains nothing; a rerun of an
interrupted one resumes from the latest readable checkpoint (a damaged one is
named and skipped). Minibatch ``t`` is drawn from a generator seeded by
``(seed, t)``, so a resumed run takes the same steps, and ends with the same
parameters and ``metrics.json``, as an uninterrupted one.
"""

from __future__ import annotations

import json
import pathlib
import re
import time
import zipfile
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from reproduce import io

CKPT = re.compile(r"ckpt_(\d{6})\.npz")
ACTS = re.compile(r"step_(\d{6})\.npz")
REDUCTIONS = ("none", "spatial_mean")


def cross_entropy(model, x, y) -> jax.Array:
    """Mean softmax cross-entropy of ``model(x)`` against integer ``y`` (labels or tokens)."""
    return optax.softmax_cross_entropy_with_integer_labels(model(x), y).mean()


def _path(path) -> str:
    return "/".join(str(getattr(k, "key", getattr(k, "idx", getattr(k, "name", k)))) for k in path)


def _frozen_from(path: str, freeze: dict | None) -> int | None:
    """The step from which the parameter or statistic at ``path`` is frozen, or None."""
    for prefix, step in (freeze or {}).items():
        if path == prefix or path.startswith(prefix + "/"):
            return int(step)
    return None


def make_train_step(loss_fn: Callable = cross_entropy, *, freeze: dict | None = None) -> Callable:
    """A jit-compiled step ``step(model, opt, x, y, t) -> loss`` on ``loss_fn(model, x, y)``.

    Differentiates ``loss_fn`` with respect to the model's ``nnx.Param`` and
    applies ``opt.update``. With ``freeze`` (``{path prefix: step}``, e.g.
    ``{"conv/0": 100}``) the batch-norm statistics under a prefix stop moving
    from that step on, as its parameters do (see :func:`make_optimizer`).

    Args:
      loss_fn: ``loss_fn(model, x, y)`` returning a scalar; the default is
        :func:`cross_entropy`. A custom loss (e.g. with a similarity term) goes
        here.
      freeze: path prefixes of frozen layers and the step each freezes at.

    Returns:
      ``step(model, opt, x, y, t)``: one update at step ``t`` (an int); returns
      the loss before the update.
    Steps are cached by ``(loss_fn, freeze)``, so every network of the same
    structure reuses one compiled program.
    """
    key = (loss_fn, tuple(sorted((freeze or {}).items())))
    if key in _STEPS:
        return _STEPS[key]

    @nnx.jit
    def step(model, opt, x, y, t):
        before = jax.tree.map(jnp.copy, nnx.state(model, nnx.BatchStat))
        loss, grads = nnx.value_and_grad(loss_fn)(model, x, y)
        opt.update(model, grads)
        if freeze:
            after = nnx.state(model, nnx.BatchStat)

            def keep(path, old, new):
                s = _frozen_from(_path(path), freeze)
                return new if s is None else jnp.where(t >= s, old, new)

            nnx.update(model, jax.tree_util.tree_map_with_path(keep, before, after))
        return loss

    _STEPS[key] = step
    return step


_STEPS: dict = {}


def train_mode(model, freeze: dict | None, t: int) -> None:
    """Puts ``model`` in training mode, with the layers frozen by step ``t`` in eval mode.

    A frozen layer is frozen whole: its batch norm normalises with its running
    averages (which stopped moving at the freeze step) from then on, so the
    layers above train on the outputs the frozen layer gives at evaluation.
    """
    model.train()
    for path, module in nnx.iter_modules(model):
        s = _frozen_from("/".join(str(k) for k in path), freeze)
        if s is not None and t >= s and hasattr(module, "use_running_average"):
            module.use_running_average = True


@nnx.jit
def _probe(model, x, y):
    """Every layer, the mean cross-entropy and the accuracy of ``model`` on ``(x, y)``."""
    feats = model.features(x)
    logits = feats["logits"]
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
    return feats, loss, jnp.mean(jnp.argmax(logits, -1) == y)


def make_optimizer(model, cfg: dict) -> nnx.Optimizer:
    """The optimiser that ``cfg`` names, over the model's ``nnx.Param``.

    ``cfg["optimizer"]``: ``"adam"`` (default) or ``"sgd"`` (momentum 0.9), at
    ``cfg["lr"]``. ``cfg["freeze"]`` (``{path prefix: step}``) freezes parameter
    groups with ``optax.multi_transform``: a group frozen from step 0 gets
    ``optax.set_to_zero()``, one frozen later the optimiser with its updates
    scaled to zero from that step.
    """
    if cfg.get("optimizer", "adam") == "adam":
        base = lambda: optax.adam(cfg["lr"])  # noqa: E731
    elif cfg["optimizer"] == "sgd":
        base = lambda: optax.sgd(cfg["lr"], momentum=0.9)  # noqa: E731
    else:
        raise ValueError(f"unknown optimizer {cfg['optimizer']!r}; use 'adam' or 'sgd'")
    freeze = cfg.get("freeze") or {}
    if not freeze:
        return nnx.Optimizer(model, base(), wrt=nnx.Param)
    params = nnx.state(model, nnx.Param)
    paths = [_path(p) for p, _ in jax.tree_util.tree_flatten_with_path(params)[0]]
    for prefix in freeze:
        if not any(p == prefix or p.startswith(prefix + "/") for p in paths):
            raise ValueError(f"freeze: no parameter under {prefix!r}; the model has {paths}")

    def group(step: int):
        if step <= 0:
            return optax.set_to_zero()
        return optax.chain(base(), optax.scale_by_schedule(lambda c: (c < step).astype(float)))

    transforms = {"train": base(), **{f"frozen_{s}": group(s) for s in set(freeze.values())}}

    def labels(tree):
        def label(path, _):
            s = _frozen_from(_path(path), freeze)
            return "train" if s is None else f"frozen_{s}"

        return jax.tree_util.tree_map_with_path(label, tree)

    return nnx.Optimizer(model, optax.multi_transform(transforms, labels), wrt=nnx.Param)


# ----------------------------------------------------------------------------- checkpoints


def _is_key(leaf) -> bool:
    return jnp.issubdtype(leaf.dtype, jax.dtypes.prng_key)


def save_checkpoint(path: pathlib.Path, model, opt) -> None:
    """Writes the model's and optimiser's state, every leaf in tree order, atomically."""
    leaves = [leaf for o in (model, opt) for leaf in jax.tree.leaves(nnx.state(o))]
    arrays = {
        f"leaf_{i:05d}": np.asarray(jax.random.key_data(leaf) if _is_key(leaf) else leaf)
        for i, leaf in enumerate(leaves)
    }
    io.write_npz(path, arrays, kind="checkpoint")


def load_checkpoint(path: pathlib.Path, model, opt) -> None:
    """Restores a checkpoint of :func:`save_checkpoint`; changes nothing if it does not fit.

    Raises:
      ValueError: the file is damaged or was written by another configuration.
    """
    try:
        with np.load(path) as f:
            stored = [f[k] for k in sorted(f.files)]
    except (OSError, EOFError, ValueError, KeyError, zipfile.BadZipFile) as e:
        raise ValueError(f"{path} is damaged ({type(e).__name__}: {e})") from e
    updates, offset = [], 0
    for obj in (model, opt):
        leaves, treedef = jax.tree.flatten(nnx.state(obj))
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
        updates.append((obj, jax.tree.unflatten(treedef, restored)))
        offset += len(leaves)
    for obj, state in updates:
        nnx.update(obj, state)


def checkpoints(run_dir: pathlib.Path) -> list[tuple[int, pathlib.Path]]:
    """``(step, path)`` of every checkpoint file in ``run_dir``, oldest first (strict names)."""
    folder = pathlib.Path(run_dir) / "checkpoints"
    found = [(CKPT.fullmatch(p.name), p) for p in folder.iterdir()] if folder.is_dir() else []
    return sorted((int(m.group(1)), p) for m, p in found if m)


def restore_latest(run_dir: pathlib.Path, model, opt, log=print) -> int | None:
    """Loads the latest readable checkpoint into ``model`` and ``opt``; returns its step.

    A damaged checkpoint is named in the log and the one before it is tried;
    with none readable nothing is loaded and None is returned.
    """
    for step, path in reversed(checkpoints(run_dir)):
        try:
            load_checkpoint(path, model, opt)
            return step
        except ValueError as e:
            log(f"  checkpoint {path} is unusable ({e}); falling back to the previous one")
    return None


# ----------------------------------------------------------------------------- activations


def reduce_layer(a: np.ndarray, task: str, reduce: str) -> tuple[np.ndarray, str]:
    """One layer's probe activations as ``(samples, neurons)`` or kept whole; and how."""
    if task == "lm":
        return a.reshape(-1, a.shape[-1]), "tokens: (windows * time, hidden)"
    if a.ndim == 4 and reduce == "spatial_mean":
        return a.mean(axis=(1, 2)), "spatial_mean: (N, C), mean over H and W"
    return a, f"none: {'(N, H, W, C)' if a.ndim == 4 else '(N, units)'}"


def read_activations(run_dir: pathlib.Path, steps=None) -> tuple[list[int], dict, dict]:
    """The probe activations of a run: ``(steps, {layer: (T, ...)}, {layer: reduction})``.

    Args:
      run_dir: a run directory of :func:`fit`.
      steps: which steps to read (default all); ``[-1]`` reads the last.
    """
    folder = pathlib.Path(run_dir) / "activations"
    files = sorted((int(m.group(1)), p) for p in folder.iterdir() if (m := ACTS.fullmatch(p.name)))
    if steps is not None:
        files = (
            [files[i] for i in steps]
            if all(s < 0 for s in steps)
            else [f for f in files if f[0] in set(steps)]
        )
    stacks: dict[str, list] = {}
    reduction: dict = {}
    for _, f in files:
        with np.load(f) as z:
            reduction = json.loads(str(z["__reduction__"]))
            for k in reduction:
                stacks.setdefault(k, []).append(z[k])
    return [s for s, _ in files], {k: np.stack(v) for k, v in stacks.items()}, reduction


def final_activations(run_dir: pathlib.Path) -> dict[str, np.ndarray]:
    """The probe activations at the end of a run, ``{layer: array}``, float32."""
    _, acts, _ = read_activations(run_dir, steps=[-1])
    return {k: v[0].astype(np.float32) for k, v in acts.items()}


# ----------------------------------------------------------------------------- fit


def fit(
    run_dir: pathlib.Path,
    model,
    data: dict,
    cfg: dict,
    *,
    loss_fn: Callable = cross_entropy,
    progress: bool = False,
    log=print,
) -> dict:
    """Trains ``model`` on ``data`` as ``cfg`` says, resumably; returns ``done.json``.

    On return ``model`` holds the final parameters (loaded from the last
    checkpoint when the run had finished before) and is in eval mode.

    Args:
      run_dir: the run directory (layout in the module docstring).
      model: a :mod:`reproduce.models` network.
      data: ``{"task", "x", "y", "probe_x", "probe_y"}`` with ``task``
        ``"classify"`` (labels ``(N,)``) or ``"lm"`` (next-token targets).
      cfg: ``steps``, ``batch``, ``lr``, ``seed``, ``every`` (checkpoint
        interval), optional ``optimizer``, ``freeze`` ({path prefix: step}),
        ``reduce`` (``"none"`` or ``"spatial_mean"``: how conv layers are
        stored) and ``keep_checkpoints`` (steps whose checkpoints are never
        deleted, for analyses that need the parameters during training).
      loss_fn: ``loss_fn(model, x, y)``; the custom loss of the run.
      progress: show a progress bar.
      log: where to print.
    """
    run_dir = pathlib.Path(run_dir)
    reduce = cfg.get("reduce", "none")
    if reduce not in REDUCTIONS:
        raise ValueError(f"reduce must be one of {REDUCTIONS}, got {reduce!r}")
    opt = make_optimizer(model, cfg)
    if (run_dir / "done.json").exists():
        restore_latest(run_dir, model, opt, log)
        model.eval()
        return json.loads((run_dir / "done.json").read_text())
    io.write_json(run_dir / "config.json", cfg)
    step_fn = make_train_step(loss_fn, freeze=cfg.get("freeze"))

    restored = restore_latest(run_dir, model, opt, log)
    metrics_path = run_dir / "metrics.json"
    metrics = {}
    if restored is not None:
        log(f"  resuming {run_dir} from step {restored}")
        if metrics_path.exists():  # written before each checkpoint, so it covers `restored`
            old = json.loads(metrics_path.read_text())
            metrics = {k: v for k, v in old.items() if int(k) <= restored}
    start = restored or 0
    x_all, y_all = jnp.asarray(data["x"]), jnp.asarray(data["y"])
    px, py = jnp.asarray(data["probe_x"]), jnp.asarray(data["probe_y"])
    steps, every = cfg["steps"], cfg["every"]
    keep = set(cfg.get("keep_checkpoints") or ())

    def checkpoint(t: int) -> None:
        model.eval()
        feats, loss, acc = _probe(model, px, py)
        arrays, how = {}, {}
        for k in model.layer_names:
            arrays[k], how[k] = reduce_layer(np.asarray(feats[k]), data["task"], reduce)
        arrays["__reduction__"] = np.asarray(json.dumps(how))
        io.write_npz(run_dir / "activations" / f"step_{t:06d}.npz", arrays, kind="activations")
        metrics[str(t)] = {"probe_loss": float(loss), "probe_accuracy": float(acc)}
        io.write_json(metrics_path, metrics, kind="metrics")
        save_checkpoint(run_dir / "checkpoints" / f"ckpt_{t:06d}.npz", model, opt)
        for kept, old in checkpoints(run_dir)[:-2]:
            if kept not in keep:
                old.unlink()

    if restored is None:
        checkpoint(0)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=steps, initial=start, desc=run_dir.name, leave=False)
    freeze = cfg.get("freeze") or {}
    times, t_last, n_last = [], time.perf_counter(), 0
    for t in range(start, steps):
        if t == start or t in freeze.values() or t % every == 0:  # a phase starts, or after a probe
            train_mode(model, freeze, t)
        idx = np.random.default_rng([cfg["seed"], t]).integers(0, len(y_all), cfg["batch"])
        loss = step_fn(model, opt, x_all[idx], y_all[idx], t)
        n_last += 1
        if bar is not None:
            bar.update(1)
        if (t + 1) % every == 0 or t + 1 == steps:
            jax.block_until_ready(loss)
            times.append((time.perf_counter() - t_last) / n_last)
            checkpoint(t + 1)
            t_last, n_last = time.perf_counter(), 0
    if bar is not None:
        bar.close()
    model.eval()
    done = {
        "steps": steps,
        "final": metrics[str(steps)],
        "median_seconds_per_step": float(np.median(times)) if times else None,
    }
    io.write_json(run_dir / "done.json", done)
    return done


def accuracy(model, images: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of correct predictions of ``model`` (in its current mode)."""
    logits = model(jnp.asarray(images))
    return float(np.mean(np.asarray(jnp.argmax(logits, -1)) == labels))


def train_convnet(
    images: np.ndarray,
    labels: np.ndarray,
    *,
    seed: int,
    width: float = 1.0,
    steps: int = 500,
    batch: int = 128,
    lr: float = 3e-3,
):
    """A digits :class:`~reproduce.models.ConvNet` trained by :func:`fit` (for notebooks).

    The run directory is temporary; use :func:`fit` directly to keep checkpoints.
    """
    import tempfile

    from reproduce.models import ConvNet

    model = ConvNet(width, in_shape=images.shape[1:], rngs=nnx.Rngs(seed))
    data = {"task": "classify", "x": images, "y": labels, "probe_x": images[:1]}
    data["probe_y"] = labels[:1]
    cfg = {"seed": seed, "steps": steps, "every": steps, "batch": batch, "lr": lr}
    with tempfile.TemporaryDirectory() as run_dir:
        fit(pathlib.Path(run_dir), model, data, cfg, log=lambda *a: None)
    return model


def probe_activations(model, images: np.ndarray) -> dict[str, np.ndarray]:
    """Every layer of ``model`` on ``images``, conv layers as the spatial mean per channel."""
    from reproduce.models import capture

    return {
        k: reduce_layer(v, "classify", "spatial_mean")[0] for k, v in capture(model, images).items()
    }
