"""SVCCA figures 2a and 2b, section 4.4: a layer kept in a few SVCCA directions.

The paper's quantity: SVCCA between a layer of network A and the same layer of
an independently trained network B (own seeds), 99 % of each layer's variance
kept before CCA; conv layers as channels over positions (every ``(image,
position)`` a datapoint, SVCCA section 3). A's layer is then replaced by its
projection onto the top ``k`` SVCCA directions (the span, fitted on the training
images; the rest of the layer is its mean) and A's remaining layers run on
(test images).

* Fig 2a: test accuracy against ``k`` for SVCCA directions, ``k`` random
  directions (the null), ``k`` random neurons and the ``k`` neurons of largest
  mean activation, on several layers.
* Fig 2b: the top SVCCA directions are spread over many neurons (neurons needed
  to hold 90 % of a direction's squared weight).
* Section 4.4: the top layers compressed one after another (``fc2``, then
  ``fc1``, then ``conv5``) to 0.35 of their width through their SVCCA
  directions with network B; accuracy after all three.

Networks: the shared group (``svcca_convnet``, ``OUT/networks/svcca_group``);
every ordered pair ``(A, B)`` of consecutive seeds. Command: ``python -m
reproduce all --only svcca_projection``. Outputs:
``svcca_projection/results.json``, ``.../svcca_projection.png``.
"""

from __future__ import annotations

import pathlib

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from reproduce import claims as C
from reproduce.experiments import _svcca_group as group
from reproduce.experiments._common import (
    fmt,
    per_pair,
    projection,
    save_figure,
    save_results,
    svcca_directions,
)
from reproduce.io import pyplot

TITLE = "A layer kept in a few SVCCA directions (with a second network) keeps the accuracy"
PAPER = "SVCCA (Raghu et al. 2017) figures 2a, 2b and section 4.4"
LAYERS = ("conv3", "conv5", "fc1", "fc2")
COMPRESS = ("fc2", "fc1", "conv5")  # compressed in this order, each on top of the previous
RATIO = 0.35
HIDDEN = ("conv1", "conv2", "conv3", "conv4", "conv5", "fc1", "fc2")
METHODS = ("svcca", "random_directions", "random_neurons", "max_activation_neurons")
TOLERANCE = 0.02  # "keeps the accuracy": within 2 points of the full network


def _pool(h):
    n, hh, ww, c = h.shape
    return h.reshape(n, hh // 2, 2, ww // 2, 2, c).max(axis=(2, 4))


@nnx.jit
def logits_with(model, x, affine: dict):
    """The logits of an :class:`~reproduce.models.SVCCAConvNet` (eval mode) on ``x``.

    Every hidden layer ``h`` is replaced by ``mean + (h - mean) @ P`` with
    ``(mean, P) = affine[layer]`` (over channels, at every position for conv
    layers): the identity keeps the network; a projection keeps a subspace.
    """

    def hook(name, h):
        mean, p = affine[name]
        mean = mean.reshape((1,) * (h.ndim - 1) + (-1,))
        return mean + jnp.einsum("...c,cd->...d", h - mean, p)

    relu, m = jax.nn.relu, model
    h = hook("conv1", relu(m.conv[0](x)))
    h = hook("conv2", relu(m.bn_conv2(m.conv[1](h))))
    h = hook("conv3", relu(m.conv[2](_pool(h))))
    h = hook("conv4", relu(m.conv[3](h)))
    h = hook("conv5", relu(m.bn_conv5(m.conv[4](h))))
    h = _pool(h).reshape(h.shape[0], -1)
    h = hook("fc1", relu(m.bn_fc1(m.fc1(h))))
    h = hook("fc2", relu(m.bn_fc2(m.fc2(h))))
    return m.out_layer(h)


def identity(feats: dict) -> dict:
    """The affine maps that leave every hidden layer as it is."""
    return {
        k: (jnp.zeros(feats[k].shape[-1]), jnp.eye(feats[k].shape[-1], dtype=jnp.float32))
        for k in HIDDEN
    }


def rows(a) -> np.ndarray:
    """A layer as ``(datapoints, neurons)``: conv ``(N, H, W, C)`` as ``(N*H*W, C)``."""
    a = np.asarray(a, np.float64)
    return a.reshape(-1, a.shape[-1])


def neurons(a: np.ndarray, keep: np.ndarray):
    """``(mean, P)`` keeping the neurons ``keep`` and setting the others to their mean."""
    p = np.zeros(a.shape[1])
    p[keep] = 1.0
    return jnp.asarray(a.mean(0), jnp.float32), jnp.asarray(np.diag(p), jnp.float32)


def _accuracy(model, x, y, affine) -> float:
    return float(np.mean(np.asarray(jnp.argmax(logits_with(model, x, affine), -1)) == y))


def _ks(d: int) -> list[int]:
    return sorted({k for k in (1, 2, 4, 8, 16, 32, 64, 128, 256) if k < d} | {d})


def participation(w: np.ndarray, share: float = 0.9) -> np.ndarray:
    """Per column of ``w``: how many neurons hold ``share`` of its squared weight."""
    q = np.sort(w**2 / np.sum(w**2, axis=0), axis=0)[::-1]
    return (np.argmax(np.cumsum(q, axis=0) >= share - 1e-12, axis=0) + 1).astype(int)


def _pair(model_a, model_b, data, rng) -> dict:
    x_tr, x_te, y_te = jnp.asarray(data["x"]), jnp.asarray(data["test_x"]), data["test_y"]
    fa, fb = model_a.features(x_tr), model_b.features(x_tr)
    base = identity(fa)
    full = _accuracy(model_a, x_te, y_te, base)
    out = {"full_accuracy": full, "layers": {}, "compression": []}
    dirs = {}
    for layer in sorted(set(LAYERS) | set(COMPRESS), key=HIDDEN.index):
        a, b = rows(fa[layer]), rows(fb[layer])
        w, rho = svcca_directions(a, b)
        dirs[layer] = (a, w)
        d = a.shape[1]
        if layer not in LAYERS:
            continue
        top = min(5, w.shape[1])
        rec = {"width": d, "rho": rho[: w.shape[1]], "ks": [], **{m: [] for m in METHODS}}
        rec["spread_svcca"] = participation(w[:, :top])
        rec["spread_random"] = participation(rng.standard_normal((d, top)))
        order = np.argsort(-a.mean(0))
        for k in _ks(d):
            kk = min(k, w.shape[1])
            maps = {
                "svcca": projection(a, w[:, :kk]),
                "random_directions": projection(a, np.linalg.qr(rng.standard_normal((d, k)))[0]),
                "random_neurons": neurons(a, rng.choice(d, k, replace=False)),
                "max_activation_neurons": neurons(a, order[:k]),
            }
            rec["ks"].append(k)
            for m, aff in maps.items():
                rec[m].append(_accuracy(model_a, x_te, y_te, {**base, layer: aff}))
        out["layers"][layer] = rec
    # section 4.4: compress the top layers one after another to RATIO of their width
    for how in ("svcca", "random_directions"):
        affine = dict(base)
        for layer in COMPRESS:
            a, w = dirs[layer]
            k = max(1, int(round(RATIO * a.shape[1])))
            basis = w[:, : min(k, w.shape[1])] if how == "svcca" else None
            if basis is None:
                basis = np.linalg.qr(rng.standard_normal((a.shape[1], k)))[0]
            affine[layer] = projection(a, basis)
            acc = _accuracy(model_a, x_te, y_te, affine)
            out["compression"].append(
                {
                    "how": how,
                    "layer": layer,
                    "kept": int(basis.shape[1]),
                    "width": a.shape[1],
                    "accuracy": acc,
                }
            )
    return out


def run(out: pathlib.Path, *, preset: str, data_dir=None, log=print) -> dict:
    """For every ordered pair of consecutive group networks: accuracy per k and method."""
    nets = group.networks(out, "svcca_convnet", preset, data_dir=data_dir, log=log)
    rng = np.random.default_rng(0)
    pairs = []
    for i, (seed_a, _, model_a, data) in enumerate(nets):
        seed_b, _, model_b, _ = nets[(i + 1) % len(nets)]
        with jax.default_matmul_precision("highest"):
            rec = _pair(model_a, model_b, data, rng)
        pairs.append({"seed_a": seed_a, "seed_b": seed_b, **rec})
        log(
            f"  A={seed_a} B={seed_b}: full {rec['full_accuracy']:.3f}, compressed "
            f"{[round(c['accuracy'], 3) for c in rec['compression']]}"
        )
    return save_results(
        out,
        "svcca_projection",
        {"preset": preset, "tolerance": TOLERANCE, "ratio": RATIO, "pairs": pairs},
    )


def _needed(rec: dict, method: str, full: float, tol: float) -> int:
    """Smallest k whose accuracy is within ``tol`` of the full network (the width if none)."""
    for k, acc in zip(rec["ks"], rec[method], strict=True):
        if acc >= full - tol:
            return k
    return rec["width"]


def claims(results: dict) -> list[dict]:
    """Fig 2a (two), fig 2b, section 4.4; spread over network pairs, nulls as stated."""
    tol = results["tolerance"]
    seeds = sorted({p["seed_a"] for p in results["pairs"]})
    common = {"paper": "SVCCA", "seeds": seeds}

    def at_quarter(method):
        def fn(p, r):
            i = max(j for j, k in enumerate(r["ks"]) if k <= max(1, r["width"] // 4))
            return r[method][i] - (p["full_accuracy"] - tol)

        return fn

    def fewer(method):
        def fn(p, r):
            best = min(
                _needed(r, m, p["full_accuracy"], tol)
                for m in ("random_neurons", "max_activation_neurons")
            )
            return np.log2(best / _needed(r, method, p["full_accuracy"], tol))

        return fn

    layers = ", ".join(results["pairs"][0]["layers"])
    quarter, quarter_null = (
        per_pair(results["pairs"], at_quarter("svcca")),
        per_pair(results["pairs"], at_quarter("random_directions")),
    )
    few, few_null = (
        per_pair(results["pairs"], fewer("svcca")),
        per_pair(results["pairs"], fewer("random_directions")),
    )
    spread = per_pair(results["pairs"], lambda p, r: np.mean(r["spread_svcca"]) / r["width"])
    spread_null = [1.0 / r["width"] for r in results["pairs"][0]["layers"].values()]

    def final(p, how):
        return [c for c in p["compression"] if c["how"] == how][-1]["accuracy"] - (
            p["full_accuracy"] - tol
        )

    comp = np.asarray([final(p, "svcca") for p in results["pairs"]])
    comp_null = np.asarray([final(p, "random_directions") for p in results["pairs"]])
    return [
        C.claim(
            id="svcca_projection.few_directions",
            figure="fig2a",
            statement="a layer projected onto a few of its SVCCA directions (with another "
            "network) keeps the network's accuracy",
            statistic=f"test accuracy with the layer kept in its top width/4 SVCCA directions, "
            f"minus (full accuracy - {tol}); mean over layers ({layers}) and network pairs",
            value=float(quarter.mean()),
            spread=C.standard_error(quarter),
            null=C.null_from(quarter_null, "width/4 random directions instead, per pair"),
            **common,
        ),
        C.claim(
            id="svcca_projection.fewer_than_neurons",
            figure="fig2a",
            statement="random or maximum-activation neurons need far more dimensions than "
            "SVCCA directions to keep the accuracy",
            statistic=f"log2 of (fewest neurons, random or max-activation, that keep accuracy "
            f"within {tol}) / (fewest SVCCA directions that do); mean over layers and pairs",
            value=float(few.mean()),
            spread=C.standard_error(few),
            null=C.null_from(few_null, "random directions in place of SVCCA directions, per pair"),
            **common,
        ),
        C.claim(
            id="svcca_projection.distributed",
            figure="fig2b",
            statement="the SVCCA directions are distributed over many neurons",
            statistic="fraction of a layer's neurons needed to hold 90% of the squared weight "
            "of each of its top 5 SVCCA directions; mean over layers and pairs",
            value=float(spread.mean()),
            spread=C.standard_error(spread),
            null=C.point_null(
                float(np.mean(spread_null)), "a direction on one neuron (1/width, mean over layers)"
            ),
            **common,
        ),
        C.claim(
            id="svcca_projection.compression",
            figure="sec4.4",
            statement=f"the top layers ({', '.join(COMPRESS)}) compressed one after another to "
            f"{results['ratio']} of their width through SVCCA directions keep the accuracy",
            statistic=f"test accuracy after all three are compressed, minus (full accuracy - "
            f"{tol}); mean over network pairs",
            value=float(comp.mean()),
            spread=C.standard_error(comp),
            null=C.null_from(comp_null, "the same with random directions, per pair"),
            **common,
        ),
    ]


def table(results: dict) -> str:
    """Accuracy per layer and k (first pair), and the compression chain of every pair."""
    p = results["pairs"][0]
    lines = [
        f"Pair A={p['seed_a']}, B={p['seed_b']}; full accuracy {fmt(p['full_accuracy'])}.",
        "",
        "| layer | k | " + " | ".join(METHODS) + " |",
        "| --- | --- | " + " | ".join("---" for _ in METHODS) + " |",
    ]
    for layer, r in p["layers"].items():
        for i, k in enumerate(r["ks"]):
            lines.append(f"| {layer} | {k} | " + " | ".join(fmt(r[m][i]) for m in METHODS) + " |")
    lines += ["", "| A | B | how | layer | kept / width | accuracy |", "| --- " * 6 + "|"]
    for p in results["pairs"]:
        for c in p["compression"]:
            lines.append(
                f"| {p['seed_a']} | {p['seed_b']} | {c['how']} | {c['layer']} | "
                f"{c['kept']} / {c['width']} | {fmt(c['accuracy'])} |"
            )
    return "\n".join(lines)


def figure(results: dict, path: pathlib.Path) -> None:
    """Fig 2a per layer (first pair): accuracy against k for each way of keeping k."""
    plt = pyplot()
    p = results["pairs"][0]
    fig, axes = plt.subplots(1, len(p["layers"]), figsize=(3.4 * len(p["layers"]), 3.2))
    for ax, (layer, r) in zip(np.atleast_1d(axes), p["layers"].items(), strict=True):
        for m, style in zip(METHODS, ("o-", "k:", "s--", "^--"), strict=True):
            ax.plot(r["ks"], r[m], style, label=m, ms=3)
        ax.axhline(p["full_accuracy"], color="k", lw=0.8)
        ax.set_xscale("log", base=2)
        ax.set_title(f"{layer} ({r['width']} neurons)", fontsize=9)
        ax.set_xlabel("k kept")
    np.atleast_1d(axes)[0].set_ylabel("test accuracy")
    np.atleast_1d(axes)[0].legend(fontsize=6)
    save_figure(fig, path)
