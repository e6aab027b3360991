"""What the experiments share: training a configured network, nulls by shuffled rows, files."""

from __future__ import annotations

import json
import pathlib
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

import jaxcca
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


def train_group(
    folder: pathlib.Path,
    config: str,
    preset: str,
    seeds,
    *,
    prefix: str = "seed",
    data_dir=None,
    log=print,
    **overrides,
) -> list[dict]:
    """Trains one network per seed into ``folder/{prefix}{seed}``; each with its own seed.

    The one group-training loop of the experiments (a seed sets the
    initialisation and the minibatch order, so networks never share either).
    Returns one ``{"seed", "run_dir", "model", "data", "cfg"}`` per seed.
    """
    nets = []
    for seed in seeds:
        run_dir = pathlib.Path(folder) / f"{prefix}{seed}"
        model, data, cfg = train_network(
            run_dir, config, preset, data_dir=data_dir, log=log, seed=int(seed), **overrides
        )
        nets.append(
            {"seed": int(seed), "run_dir": run_dir, "model": model, "data": data, "cfg": cfg}
        )
    return nets


# the generalising digits networks that memorize (fig 3), width (fig 4a, width 1) and dynamics
# (fig 1) share: the paper's setups coincide there, so they are trained once, under OUT/shared/
SHARED_CHECKPOINTS = 20


def shared_true_group(out: pathlib.Path, preset: str, n: int, *, data_dir=None, log=print):
    """The first ``n`` generalising ``digits_convnet`` networks (seeds 100, 101, ...).

    Trained once into ``OUT/shared/digits_true/seedS`` with ``SHARED_CHECKPOINTS``
    checkpoints (so the learning-dynamics figures can read them) and conv
    layers stored as the spatial mean per channel.
    """
    steps = configs.get_config("digits_convnet", preset)["steps"]
    return train_group(
        out / "shared" / "digits_true",
        "digits_convnet",
        preset,
        range(100, 100 + n),
        data_dir=data_dir,
        log=log,
        every=max(1, steps // SHARED_CHECKPOINTS),
        reduce="spatial_mean",
    )


def layer_activations(model, images, *, n: int | None = None) -> dict[str, np.ndarray]:
    """Every layer of ``model`` on the first ``n`` ``images`` (conv: spatial mean), float32."""
    from reproduce.train import probe_activations

    images = np.asarray(images)[:n]
    return {k: np.asarray(v, np.float32) for k, v in probe_activations(model, images).items()}


def threshold_variance(a: np.ndarray, keep: float = 0.99) -> np.ndarray:
    """``a`` projected on its top principal directions that keep ``keep`` of the variance.

    The PWCCA paper's "thresholding to remove low variance noise" before CCA
    (the SVCCA step): centred ``(n, d)`` -> the principal-component scores,
    with the columns past the ``k`` kept set to zero. The shape stays ``(n,
    min(n, d))`` so that every network of a layer compiles one program; zero
    columns do not count in jaxcca's ranks.
    """
    a = np.asarray(a, np.float64)
    a = a - a.mean(0)
    u, s, _ = np.linalg.svd(a, full_matrices=False)
    var = s**2
    if var.sum() <= 0:
        return np.zeros_like(u, np.float32)
    k = int(np.searchsorted(np.cumsum(var) / var.sum(), keep) + 1)
    return (u * np.where(np.arange(s.size) < k, s, 0.0)).astype(np.float32)


# the width every experiment pads its representations to (the digits nets' widest layer at
# width 1): equal shapes across layers and experiments share one compiled pairwise program
PAD = 64


def _prepared(reps, keep: float | None, pad_to: int | None) -> np.ndarray:
    """Thresholded representations as one ``(m, n, pad_to)`` stack, zero columns appended.

    Zero columns change no CCA-family measure (they add no rank), and one
    shape for every layer means one compiled program per experiment.
    """
    reps = [threshold_variance(r, keep) if keep else np.asarray(r, np.float32) for r in reps]
    d = max(pad_to or 0, max(r.shape[1] for r in reps))
    return np.stack([np.pad(r, ((0, 0), (0, d - r.shape[1]))) for r in reps])


def pwcca_distance_matrix(reps, *, keep: float | None = 0.99, pad_to: int | None = None):
    """Symmetrised PWCCA distance of every pair: ``1 - (P[i, j] + P[j, i]) / 2``.

    ``P[i, j]`` weights by network i's neurons (``jaxcca.pairwise``); the
    representations are first thresholded to ``keep`` of their variance
    (``None``: not thresholded), and padded with zero columns to ``pad_to``.
    """
    stack = _prepared(reps, keep, pad_to)
    return 1.0 - np.asarray(jaxcca.symmetrize(jaxcca.pairwise(stack, measure="pwcca")))


def mean_cca_distance_matrix(reps, *, keep: float | None = 0.99, pad_to: int | None = None):
    """``1 - `` mean CCA of every pair (symmetric), prepared as :func:`pwcca_distance_matrix`."""
    stack = _prepared(reps, keep, pad_to)
    return 1.0 - np.asarray(jaxcca.symmetrize(jaxcca.pairwise(stack, measure="cca")))


@jax.jit
def cosine_distance(a, b):
    """1 - mean over samples of the cosine between two nets' activation vectors (same width)."""
    na, nb = jnp.linalg.norm(a, axis=1), jnp.linalg.norm(b, axis=1)
    return 1.0 - jnp.mean(jnp.sum(a * b, axis=1) / jnp.maximum(na * nb, 1e-12))


@jax.jit
def euclidean_distance(a, b):
    """Mean Euclidean distance between activation vectors, over the mean norm (same width)."""
    d = jnp.mean(jnp.linalg.norm(a - b, axis=1))
    scale = 0.5 * (jnp.mean(jnp.linalg.norm(a, axis=1)) + jnp.mean(jnp.linalg.norm(b, axis=1)))
    return d / jnp.maximum(scale, 1e-12)


def baseline_matrix(fn, reps, *, pad_to: int | None = None) -> np.ndarray:
    """``fn(reps[i], reps[j])`` for every pair, batched with ``jax.vmap``.

    The representations are padded with zero columns to ``pad_to`` (which
    changes neither cosine nor Euclidean distance, and compiles once).
    """
    stack = jnp.asarray(_prepared(reps, None, pad_to))
    return np.asarray(jax.vmap(jax.vmap(fn, in_axes=(None, 0)), in_axes=(0, None))(stack, stack))


def within_pairs(dist, labels, group) -> np.ndarray:
    """Distances of the distinct pairs inside ``group``."""
    dist, labels = np.asarray(dist), np.asarray(labels)
    sel = np.outer(labels == group, labels == group) & np.triu(np.ones(dist.shape, bool), 1)
    return dist[sel]


def between_pairs(dist, labels, a, b) -> np.ndarray:
    """Distances of every pair with one network in group ``a`` and one in ``b``."""
    dist, labels = np.asarray(dist), np.asarray(labels)
    return dist[np.outer(labels == a, labels == b)]


def lstm_config(data_dir) -> str:
    """The LSTM configuration: word-level PTB with ``--data-dir``, else the built-in Shakespeare."""
    return "lstm_ptb" if data_dir is not None else "lstm_shakespeare"


def shared_lstm_group(out: pathlib.Path, preset: str, n: int, *, data_dir=None, log=print):
    """The first ``n`` LSTM language models (seeds 0, 1, ...) with ``SHARED_CHECKPOINTS``.

    Shared by ``dynamics`` (fig 1, RNN), ``lstm_dynamics`` (fig 6, A8) and
    ``timesteps`` (A2-A4): trained once into ``OUT/shared/lstm/seedS``.
    """
    config = lstm_config(data_dir)
    steps = configs.get_config(config, preset)["steps"]
    return train_group(
        out / "shared" / "lstm",
        config,
        preset,
        range(n),
        data_dir=data_dir,
        log=log,
        every=max(1, steps // SHARED_CHECKPOINTS),
    )


# ----------------------------------------------------------------------------- SVCCA directions
# (SVCCA figs 1-3 and section 4.4: svcca_projection and toy_regression)


def top_singular_vectors(a0: np.ndarray, keep: float) -> np.ndarray:
    """The top right singular vectors holding ``keep`` of the variance, ``(d, k)``."""
    _, s, vt = np.linalg.svd(a0, full_matrices=False)
    frac = np.cumsum(s**2) / np.sum(s**2)
    return vt[: int(np.searchsorted(frac, keep - 1e-12)) + 1].T


def svcca_directions(a: np.ndarray, b: np.ndarray, *, keep: float = 0.99):
    """SVCCA directions of ``a`` with ``b`` in ``a``'s neuron space: ``(W (d, p), rho (p,))``.

    SVD of each centred layer to ``keep`` of its variance, then CCA of the two
    reductions (QR whitening and the SVD of the whitened cross product, in
    float64); ``W``'s columns are ordered by canonical correlation. Its
    correlations are those of ``jaxcca.svcca(a, b, keep=keep)`` (checked in the
    tests); NumPy here because the reduced widths vary from layer to layer and
    every new shape would be a new compilation.
    """
    a0, b0 = a - a.mean(0), b - b.mean(0)
    va, vb = top_singular_vectors(a0, keep), top_singular_vectors(b0, keep)
    qa, ra = np.linalg.qr(a0 @ va)
    qb, _ = np.linalg.qr(b0 @ vb)
    u, rho, _ = np.linalg.svd(qa.T @ qb, full_matrices=False)
    return va @ np.linalg.solve(ra, u), np.clip(rho, 0.0, 1.0)


def projection(a: np.ndarray, w: np.ndarray):
    """``(mean, P)``: least-squares reconstruction of ``a`` from its coordinates on ``w``."""
    mean = a.mean(0)
    z = (a - mean) @ w
    coef, *_ = np.linalg.lstsq(z, a - mean, rcond=None)
    return jnp.asarray(mean, jnp.float32), jnp.asarray(w @ coef, jnp.float32)


def projection_r2(a: np.ndarray, w: np.ndarray, read_out, target: np.ndarray) -> float:
    """R^2 of ``target`` against the read-out of ``a`` kept in the span of ``w``'s columns.

    ``a`` ``(n, d)`` is replaced by its :func:`projection` onto ``w`` ``(d, k)``
    (the rest at its mean), then mapped by the affine ``read_out = (W, b)``; the
    R^2 is ``1 - SSE / SST`` over every output, in float64.
    """
    mean, p = (np.asarray(v, np.float64) for v in projection(a, w))
    w_out, b_out = (np.asarray(v, np.float64) for v in read_out)
    return r2((mean + (a - mean) @ p) @ w_out + b_out, target)


def r2(pred, y) -> float:
    """Coefficient of determination of ``pred`` for ``y`` (every column pooled)."""
    return float(1.0 - np.sum((pred - y) ** 2) / np.sum((y - y.mean(0)) ** 2))


def per_pair(pairs, fn) -> np.ndarray:
    """``fn(pair, layer)`` averaged over each pair's ``"layers"`` (a list or a dict), per pair."""

    def layers(p):
        found = p["layers"]
        return found.values() if isinstance(found, dict) else found

    return np.asarray([np.mean([fn(p, la) for la in layers(p)]) for p in pairs])


def save_figure(fig, path: pathlib.Path, *, dpi: int = 120) -> None:
    """Lays out ``fig``, writes it to ``path`` and closes it (every experiment's last step)."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
