"""SVCCA figures 1 and 3: a toy regression net; neurons differ, SVCCA directions agree.

The paper's setting: a network with four fully connected hidden layers maps a
1-D input to a 4-D output; trained from different initialisations, its neurons
differ, but the top SVCCA directions of a layer are almost identical (up to
sign) across the networks (fig 1); the output is reconstructed from a few of
the last hidden layer's directions (fig 3: 2, 6, 15, 30 directions).

Here: tanh layers of 30 units (smoke 8), four target functions of ``x`` in
[-1, 1], full-batch Adam; three networks with their own seeds, every ordered
pair of consecutive seeds. Claims:

* top SVCCA directions almost identical: mean of the top 4 canonical
  correlations (SVCCA, 99 % of the variance) of each hidden layer with the
  other network's, above 0.95; null: the other network's rows shuffled;
* neurons differ more than directions: that mean minus the mean, over A's
  neurons, of the best absolute correlation with any neuron of B; null: rows
  shuffled;
* a few directions give the output (fig 3): R^2 of the output when the last
  hidden layer is kept in its top 6 SVCCA directions; null: 6 random directions.

No config file (a self-contained toy). Command: ``python -m reproduce all
--only toy_regression``. Outputs: ``toy_regression/results.json``,
``toy_regression/toy_regression.png``.
"""

from __future__ import annotations

import functools
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import optax

from reproduce import claims as C
from reproduce.configs import select
from reproduce.experiments._common import (
    fmt,
    per_pair,
    projection_r2,
    r2,
    save_figure,
    save_results,
    svcca_directions,
)
from reproduce.io import pyplot

TITLE = "Toy regression: neurons differ, the top SVCCA directions agree"
PAPER = "SVCCA (Raghu et al. 2017) figures 1 and 3"
SETTINGS = {
    "quick": {"width": 30, "steps": 3000, "points": 600, "networks": 3},
    "full": {"width": 50, "steps": 10000, "points": 1000, "networks": 5},
    "smoke": {"width": 8, "steps": 20, "points": 200, "networks": 2},
}
SEEDS = 900
KS = (2, 6, 15, 30)
TOP = 4


def targets(x: np.ndarray) -> np.ndarray:
    """The four regression targets of the 1-D input, ``(n, 4)``."""
    return np.stack([np.sin(3 * x), np.cos(5 * x), x**2, np.tanh(4 * x)], axis=1)


def init(key, width: int) -> list:
    """Weights of 1 -> width x 4 -> 4 (LeCun normal, zero biases)."""
    sizes = [1, width, width, width, width, 4]
    keys = jax.random.split(key, len(sizes) - 1)
    return [
        (jax.random.normal(k, (a, b)) / np.sqrt(a), jnp.zeros(b))
        for k, a, b in zip(keys, sizes[:-1], sizes[1:], strict=True)
    ]


def forward(params, x):
    """``(hidden layers, output)`` of the net on ``x`` ``(n, 1)``."""
    hs, h = [], x
    for w, b in params[:-1]:
        h = jnp.tanh(h @ w + b[None, :])
        hs.append(h)
    w, b = params[-1]
    return hs, h @ w + b[None, :]


@functools.partial(jax.jit, static_argnames=("width", "steps"))
def train(key, x, y, *, width: int, steps: int):
    """Full-batch Adam on the mean squared error; the trained parameters."""
    params = init(key, width)
    opt = optax.adam(3e-3)

    def loss(p):
        return jnp.mean((forward(p, x)[1] - y) ** 2)

    def step(carry, _):
        p, s = carry
        g = jax.grad(loss)(p)
        u, s = opt.update(g, s)
        return (optax.apply_updates(p, u), s), None

    (params, _), _ = jax.lax.scan(step, (params, opt.init(params)), None, length=steps)
    return params


def _corr(a, b) -> np.ndarray:
    a = (a - a.mean(0)) / (a.std(0) + 1e-12)
    b = (b - b.mean(0)) / (b.std(0) + 1e-12)
    return a.T @ b / len(a)


def _pair(pa, pb, x, y, rng) -> dict:
    ha, out_a = forward(pa, x)
    hb, _ = forward(pb, x)
    ha = [np.asarray(h, np.float64) for h in ha]
    hb = [np.asarray(h, np.float64) for h in hb]
    perm = rng.permutation(len(x))
    layers = []
    for a, b in zip(ha, hb, strict=True):
        w, rho = svcca_directions(a, b)
        _, rho_null = svcca_directions(a, b[perm])
        neuron = np.abs(_corr(a, b)).max(1).mean()
        neuron_null = np.abs(_corr(a, b[perm])).max(1).mean()
        layers.append(
            {
                "rho": rho[: w.shape[1]],
                "rho_shuffled": rho_null,
                "neuron_best_corr": float(neuron),
                "neuron_best_corr_shuffled": float(neuron_null),
            }
        )
    # fig 3: the output from the last hidden layer kept in k directions
    a, b = ha[-1], hb[-1]
    w, _ = svcca_directions(a, b, keep=0.9999)
    y_full = np.asarray(out_a, np.float64)
    recon = {"ks": [], "svcca": [], "random": []}
    for k in (k for k in KS if k <= w.shape[1]):
        recon["ks"].append(k)
        recon["svcca"].append(projection_r2(a, w[:, :k], pa[-1], y_full))
        draws = []
        for _ in range(20):
            q = np.linalg.qr(rng.standard_normal((a.shape[1], k)))[0]
            draws.append(projection_r2(a, q, pa[-1], y_full))
        recon["random"].append(draws)
    # the curves of fig 1 (first pair is drawn): neurons and top directions of layer 1 over x
    a, b = ha[0], hb[0]
    wa, _ = svcca_directions(a, b)
    wb, _ = svcca_directions(b, a)
    za, zb = (a - a.mean(0)) @ wa[:, :TOP], (b - b.mean(0)) @ wb[:, :TOP]
    sign = np.sign(np.sum(za * zb, axis=0))
    return {
        "layers": layers,
        "reconstruction": recon,
        "fit_r2": r2(y_full, y),
        "curves": {
            "neurons_a": a[:, :TOP],
            "neurons_b": b[:, :TOP],
            "directions_a": za / za.std(0),
            "directions_b": zb * sign / zb.std(0),
        },
    }


def run(out: pathlib.Path, *, preset: str, data_dir=None, log=print) -> dict:
    """Trains the networks and compares every ordered pair of consecutive seeds."""
    s = select({}, SETTINGS, preset)
    x = np.linspace(-1, 1, s["points"])[:, None].astype(np.float32)
    y = targets(x[:, 0]).astype(np.float32)
    seeds = [SEEDS + i for i in range(s["networks"])]
    nets = [train(jax.random.key(seed), x, y, width=s["width"], steps=s["steps"]) for seed in seeds]
    rng = np.random.default_rng(0)
    pairs = []
    for i, seed in enumerate(seeds):
        j = (i + 1) % len(seeds)
        rec = _pair(nets[i], nets[j], x, np.asarray(y, np.float64), rng)
        pairs.append({"seed_a": seed, "seed_b": seeds[j], **rec})
        log(
            f"  {seed} vs {seeds[j]}: fit R^2 {rec['fit_r2']:.3f}, top rho per layer "
            f"{[round(float(np.mean(la['rho'][:TOP])), 3) for la in rec['layers']]}"
        )
    return save_results(
        out, "toy_regression", {"preset": preset, "x": x[:, 0], "settings": s, "pairs": pairs}
    )


def claims(results: dict) -> list[dict]:
    """Figs 1 and 3; spread over network pairs."""
    pairs = results["pairs"]
    seeds = sorted({p["seed_a"] for p in pairs})
    common = {"paper": "SVCCA", "seeds": seeds}
    top = per_pair(pairs, lambda _, la: np.mean(la["rho"][:TOP]))
    top_null = per_pair(pairs, lambda _, la: np.mean(la["rho_shuffled"][:TOP]))
    gap = per_pair(pairs, lambda _, la: np.mean(la["rho"][:TOP]) - la["neuron_best_corr"])
    gap_null = per_pair(
        pairs, lambda _, la: np.mean(la["rho_shuffled"][:TOP]) - la["neuron_best_corr_shuffled"]
    )
    k_i = min(1, len(pairs[0]["reconstruction"]["ks"]) - 1)
    k = pairs[0]["reconstruction"]["ks"][k_i]
    rec = np.asarray([p["reconstruction"]["svcca"][k_i] for p in pairs])
    rec_null = [v for p in pairs for v in p["reconstruction"]["random"][k_i]]
    return [
        C.claim(
            id="toy_regression.directions_agree",
            figure="fig1",
            statement="trained from different initialisations, the top SVCCA directions of a "
            "layer are almost identical across the networks",
            statistic=f"mean of the top {TOP} SVCCA correlations (keep 0.99) of each hidden layer "
            "with the other network's; mean over layers and pairs",
            value=float(top.mean()),
            spread=C.standard_error(top),
            threshold=0.95,
            null=C.null_from(top_null, "the other network's rows shuffled, per pair"),
            **common,
        ),
        C.claim(
            id="toy_regression.neurons_differ",
            figure="fig1",
            statement="the neurons of the two networks differ although the directions agree",
            statistic=f"mean top-{TOP} SVCCA correlation minus the mean over neurons of the best "
            "|correlation| with any neuron of the other network; mean over layers and pairs",
            value=float(gap.mean()),
            spread=C.standard_error(gap),
            null=C.null_from(gap_null, "the other network's rows shuffled, per pair"),
            **common,
        ),
        C.claim(
            id="toy_regression.few_directions_output",
            figure="fig3",
            statement="the output is reconstructed from a few SVCCA directions of the last "
            "hidden layer",
            statistic=f"R^2 of the network's output with the last hidden layer kept in its top "
            f"{k} SVCCA directions (with the other network); mean over pairs",
            value=float(rec.mean()),
            spread=C.standard_error(rec),
            null=C.null_from(rec_null, f"{k} random directions (20 draws per pair)"),
            **common,
        ),
    ]


def table(results: dict) -> str:
    """Per pair: fit, top correlations, best neuron match; R^2 of the output per k."""
    lines = ["| A | B | fit R^2 | layer | top-4 SVCCA rho | best neuron corr |", "| --- " * 6 + "|"]
    for p in results["pairs"]:
        for i, la in enumerate(p["layers"]):
            lines.append(
                f"| {p['seed_a']} | {p['seed_b']} | {fmt(p['fit_r2'])} | {i + 1} | "
                f"{fmt(float(np.mean(la['rho'][:TOP])))} | {fmt(la['neuron_best_corr'])} |"
            )
    r = results["pairs"][0]["reconstruction"]
    lines += [
        "",
        "| k | output R^2, SVCCA directions | random directions (mean) |",
        "| --- " * 3 + "|",
    ]
    for k, a, b in zip(r["ks"], r["svcca"], r["random"], strict=True):
        lines.append(f"| {k} | {fmt(a)} | {fmt(float(np.mean(b)))} |")
    return "\n".join(lines)


def figure(results: dict, path: pathlib.Path) -> None:
    """Fig 1: four neurons of each net and their top directions over x; fig 3: R^2 per k."""
    plt = pyplot()
    p, x = results["pairs"][0], np.asarray(results["x"])
    cur = {k: np.asarray(v) for k, v in p["curves"].items()}
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.2))
    for name, ls in (("neurons_a", "-"), ("neurons_b", "--")):
        axes[0].plot(x, cur[name], ls, lw=1)
    axes[0].set_title("layer 1 neurons (solid A, dashed B)", fontsize=8)
    for name, ls in (("directions_a", "-"), ("directions_b", "--")):
        axes[1].plot(x, cur[name], ls, lw=1)
    axes[1].set_title("top SVCCA directions (sign aligned)", fontsize=8)
    r = p["reconstruction"]
    axes[2].plot(r["ks"], r["svcca"], "o-", label="SVCCA directions")
    axes[2].plot(r["ks"], [np.mean(v) for v in r["random"]], "k:", label="random directions")
    axes[2].set_xlabel("directions kept (last hidden layer)")
    axes[2].set_ylabel("output R^2")
    axes[2].legend(fontsize=7)
    save_figure(fig, path)
