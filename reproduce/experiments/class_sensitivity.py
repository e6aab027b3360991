"""SVCCA figure 6: class sensitivity, DFT-CCA of each layer with one class's logit.

The paper's quantity: ``jaxcca.dft_cca`` between a layer and the logit of one
class (a ``(N, 1, 1, 1)`` map, so only the zero frequency of the layer has a
counterpart), on held-out images. CCA of ``C`` channels with one number rises
with ``C`` at a fixed number of samples, so each value is chance-corrected by
its own row-permutation null (``jaxcca.permutation_test``'s ``adjusted``:
``(value - mean null) / (1 - mean null)``), which makes layers of different
widths comparable.

This is the digits, not CIFAR-10: the paper's semantic statement (close classes
have close curves) is tested on digit pairs that look alike, 3/5, 3/8, 5/8, 4/9
and 1/7, against every other pair. The paper's distinct class (firetruck against
dog and cat) is played by 0, chosen before looking at any curve: the one digit in
no close pair whose shape (a closed loop, no stroke ends) none of the others has.

Claims (each network of the shared group; spread over networks):
* sensitivity grows with depth (Spearman of depth and the mean adjusted
  sensitivity; null: depth order permuted);
* close classes have closer curves than other pairs (mean distance between the
  curves of other pairs minus that of the close pairs; null: the ten class
  labels permuted);
* the distinct class separates from the others early: in the lower half of the
  layers, the distance of its curve from the mean curve of the other classes,
  minus the mean of that distance over the other classes (null: a class drawn
  at random, independently in every network, plays the distinct one).

Config: ``svcca_convnet`` (``OUT/networks/svcca_group``). Command: ``python -m
reproduce all --only class_sensitivity``. Outputs:
``class_sensitivity/results.json``, ``.../class_sensitivity.png``.
"""

from __future__ import annotations

import functools
import itertools
import pathlib

import jax
import jax.numpy as jnp
import numpy as np

import jaxcca
from reproduce import claims as C
from reproduce.configs import select
from reproduce.experiments import _svcca_group as group
from reproduce.experiments._common import save_figure, save_results
from reproduce.io import pyplot

TITLE = "Class sensitivity: DFT-CCA of each layer with one class's logit"
PAPER = "SVCCA (Raghu et al. 2017) figure 6 (on digits)"
CLOSE = ((3, 5), (3, 8), (5, 8), (4, 9), (1, 7))
DISTINCT = 0
SETTINGS = {
    "quick": {"permutations": 50},
    "full": {"permutations": 200},
    "smoke": {"permutations": 8},
}


def zero_frequency(layer, width: int) -> np.ndarray:
    """``layer`` as the ``(N, 1, 1, width)`` map that ``dft_cca`` compares with a 1x1 logit.

    Against a ``(N, 1, 1, 1)`` map, ``dft_cca`` keeps only the layer's zero
    frequency (the common band), i.e. its spatial mean up to scale; pooling first
    gives the same value (checked in the tests) and, with the channels
    zero-padded to ``width``, one compiled program for every layer.
    """
    a = np.asarray(layer, np.float32)
    a = a.mean(axis=(1, 2)) if a.ndim == 4 else a
    return np.pad(a, ((0, 0), (0, width - a.shape[1])))[:, None, None, :]


@functools.partial(jax.jit, static_argnames="n")
def _sensitivity(x, logits, n: int):
    """``(classes, 2)``: DFT-CCA of ``x`` with each class's logit and its adjusted value."""

    def one(logit):
        r = jaxcca.permutation_test(
            x,
            logit[:, None, None, None],
            measure="dft_cca",
            n_permutations=n,
            key=jax.random.key(0),
        )
        return jnp.stack([r.statistic, r.adjusted])

    return jax.vmap(one, in_axes=1)(logits)


def run(out: pathlib.Path, *, preset: str, data_dir=None, log=print) -> dict:
    """Raw and adjusted DFT-CCA of every hidden layer with every class logit, every network."""
    n = select({}, SETTINGS, preset)["permutations"]
    nets = []
    for seed, _, model, data in group.networks(
        out, "svcca_convnet", preset, data_dir=data_dir, log=log
    ):
        feats = {k: np.asarray(v) for k, v in model.features(jnp.asarray(data["test_x"])).items()}
        logits = feats.pop("logits")
        width = max(v.shape[-1] for v in feats.values())
        logits = jnp.asarray(logits, jnp.float32)
        sens = np.stack(
            [np.asarray(_sensitivity(zero_frequency(v, width), logits, n)) for v in feats.values()]
        )
        nets.append(
            {"seed": seed, "layers": list(feats), "dft_cca": sens[..., 0], "adjusted": sens[..., 1]}
        )
    return save_results(
        out,
        "class_sensitivity",
        {
            "preset": preset,
            "measure": f"dft_cca of a layer with one class logit (N, 1, 1, 1), held-out images; "
            f"adjusted by {n} row permutations",
            "close_pairs": CLOSE,
            "networks": nets,
        },
    )


def _rising(adj: np.ndarray) -> float:
    from scipy.stats import spearmanr

    m = adj.mean(1)
    return 0.0 if np.ptp(m) == 0 else float(spearmanr(np.arange(len(m)), m).statistic)


def _closeness(adj: np.ndarray, labels=None) -> float:
    """Mean curve distance of the other pairs minus that of the close pairs (classes relabelled)."""
    labels = np.arange(adj.shape[1]) if labels is None else np.asarray(labels)
    curves = adj[:, np.argsort(labels)]  # class c's curve is the one labelled c
    dist = {
        p: float(np.abs(curves[:, p[0]] - curves[:, p[1]]).mean())
        for p in itertools.combinations(range(adj.shape[1]), 2)
    }
    close = [dist[tuple(sorted(p))] for p in CLOSE]
    other = [v for p, v in dist.items() if p not in {tuple(sorted(q)) for q in CLOSE}]
    return float(np.mean(other) - np.mean(close))


def early_separation(adj: np.ndarray, cls: int = DISTINCT) -> float:
    """How far class ``cls``'s curve is from the others' in the lower half of the layers.

    ``adj`` is ``(layers, classes)``. For every class, the mean over the lower
    half of the layers (``layers // 2``, at least one) of ``|curve_c - mean of
    the other classes' curves|``; the value is ``cls``'s minus the mean of the
    other classes' (0 when ``cls`` is no more apart than a typical class).
    """
    adj = np.asarray(adj, np.float64)
    low = adj[: max(1, adj.shape[0] // 2)]
    others = (low.sum(1, keepdims=True) - low) / (low.shape[1] - 1)
    apart = np.abs(low - others).mean(0)
    return float(apart[cls] - np.delete(apart, cls).mean())


def claims(results: dict) -> list[dict]:
    """Depth trend, semantic closeness, the distinct class; spread over networks, with nulls."""
    adj = [np.asarray(n["adjusted"]) for n in results["networks"]]
    seeds = [n["seed"] for n in results["networks"]]
    rng = np.random.default_rng(0)
    rising = [_rising(a) for a in adj]
    rising_null = [np.mean([_rising(a[rng.permutation(len(a))]) for a in adj]) for _ in range(500)]
    close = [_closeness(a) for a in adj]
    close_null = [
        np.mean([_closeness(a, rng.permutation(a.shape[1])) for a in adj]) for _ in range(500)
    ]
    early = [early_separation(a) for a in adj]
    early_null = [
        np.mean([early_separation(a, int(rng.integers(a.shape[1]))) for a in adj])
        for _ in range(500)
    ]
    layers = results["networks"][0]["layers"]
    lower = ", ".join(layers[: max(1, len(layers) // 2)])
    common = {"paper": "SVCCA", "figure": "fig6", "seeds": seeds}
    return [
        C.claim(
            id="class_sensitivity.grows",
            statement="sensitivity to the classes grows through the network",
            statistic="Spearman correlation of layer depth and the chance-adjusted DFT-CCA with "
            "a class logit (mean over classes); mean over networks",
            value=float(np.mean(rising)),
            spread=C.standard_error(rising),
            null=C.null_from(rising_null, "depth order permuted in every network (500 draws)"),
            **common,
        ),
        C.claim(
            id="class_sensitivity.close_classes_close_curves",
            statement="semantically close classes have close sensitivity curves (digits: 3/5, "
            "3/8, 5/8, 4/9, 1/7 against the other pairs)",
            statistic="mean |difference| between two classes' adjusted curves, other pairs minus "
            "close pairs; mean over networks",
            value=float(np.mean(close)),
            spread=C.standard_error(close),
            null=C.null_from(close_null, "the ten class labels permuted (500 draws)"),
            **common,
        ),
        C.claim(
            id="class_sensitivity.distinct_class_early",
            statement="a distinct class (firetruck against dog/cat; here the digit "
            f"{DISTINCT}) separates from the other classes early in the network",
            statistic=f"mean over the lower layers ({lower}) of |class {DISTINCT}'s adjusted "
            "curve - the other classes' mean curve|, minus the same for the average other "
            "class; mean over networks",
            value=float(np.mean(early)),
            spread=C.standard_error(early),
            null=C.null_from(
                early_null,
                "a class drawn at random in every network plays the distinct one (500 draws)",
            ),
            **common,
        ),
    ]


def table(results: dict) -> str:
    """Adjusted DFT-CCA of every layer with every class's logit (first network)."""
    n = results["networks"][0]
    adj = np.asarray(n["adjusted"])
    lines = [f"Network seed {n['seed']}; {results['measure']}.", ""]
    lines.append("| layer | " + " | ".join(str(c) for c in range(adj.shape[1])) + " |")
    lines.append("| --- " * (adj.shape[1] + 1) + "|")
    for i, layer in enumerate(n["layers"]):
        lines.append(f"| {layer} | " + " | ".join(f"{v:.2f}" for v in adj[i]) + " |")
    return "\n".join(lines)


def figure(results: dict, path: pathlib.Path) -> None:
    """Adjusted sensitivity per class through the layers (first network); close pairs marked."""
    plt = pyplot()
    n = results["networks"][0]
    adj = np.asarray(n["adjusted"])
    fig, ax = plt.subplots(figsize=(6, 3.6))
    close = {c for p in CLOSE for c in p}
    for c in range(adj.shape[1]):
        style = "s-" if c == DISTINCT else "o-" if c in close else "x:"
        lw = 2.2 if c == DISTINCT else 1
        ax.plot(n["layers"], adj[:, c], style, label=str(c), lw=lw, ms=3)
    ax.axhline(0, color="k", lw=0.6)
    ax.set_ylabel("DFT-CCA with class logit (adjusted)")
    ax.legend(
        ncol=5,
        fontsize=6,
        title=f"digit (solid: close pair; thick: distinct {DISTINCT})",
        title_fontsize=6,
    )
    save_figure(fig, path)
