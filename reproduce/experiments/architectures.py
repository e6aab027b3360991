"""SVCCA figure 7: a resnet against a convnet, layer by layer, with DFT-CCA.

The paper's quantity: ``jaxcca.dft_cca`` of every convnet layer with every
resnet layer on the same held-out probe images. Two layers of different
resolution are compared on the coarser grid (the finer map average-pooled to
it, i.e. their shared low frequencies); a fully connected layer is a 1x1 map
(its zero frequency). Channels are zero-padded to a common count so that one
compiled program serves every pair of a grid size (a zero channel has rank 0
and changes no correlation).

Claims (each (convnet, resnet) pair of the shared group has its own seeds):
* lower layers are similar, higher ones less: minus the Spearman correlation of
  relative depth and the DFT-CCA of a convnet layer with the resnet layer at
  the same relative depth;
* the resnet's top is least similar to the convnet's bottom: the mean of the
  other entries minus DFT-CCA(convnet ``conv1``, resnet ``pool``);
* the most similar resnet layer of a convnet layer lies at a similar relative
  depth (Spearman of the depths).
Each entry is chance-corrected by the mean of its shuffled-rows values
(``(s - m) / (1 - m)``: DFT-CCA's chance level depends on the layer pair).
Null: the same statistics with the resnet's probe rows shuffled.

Configs: ``svcca_convnet``, ``resnet`` (``OUT/networks/svcca_group``). Command:
``python -m reproduce all --only architectures``. Outputs:
``architectures/results.json``, ``architectures/architectures.png``.
"""

from __future__ import annotations

import pathlib

import jax
import jax.numpy as jnp
import numpy as np

import jaxcca
from reproduce import claims as C
from reproduce.configs import select
from reproduce.experiments import _svcca_group as group
from reproduce.experiments._common import save_results
from reproduce.io import pyplot

TITLE = "Convnet against resnet, layer by layer (DFT-CCA)"
PAPER = "SVCCA (Raghu et al. 2017) figure 7"
SETTINGS = {"quick": {"shuffles": 4}, "full": {"shuffles": 10}, "smoke": {"shuffles": 2}}


def as_map(a: np.ndarray, size: int, width: int) -> np.ndarray:
    """``a`` as a ``(N, size, size, width)`` map: average-pooled, channels zero-padded."""
    a = np.asarray(a, np.float32)
    if a.ndim == 2:
        a = a[:, None, None, :]
    n, h, w, c = a.shape
    a = a.reshape(n, size, h // size, size, w // size, c).mean(axis=(2, 4))
    return np.pad(a, ((0, 0), (0, 0), (0, 0), (0, width - c)))


@jax.jit
def _dft_stack(xs, ys):
    return jax.vmap(jaxcca.dft_cca_similarity)(xs, ys)


def _size(a) -> int:
    return 1 if a.ndim == 2 else a.shape[1]


def similarity(fa: dict, fb: dict, perms) -> np.ndarray:
    """``(1 + len(perms), A, B)``: DFT-CCA of every layer pair, then with fb's rows permuted."""
    la, lb = list(fa), list(fb)
    width = max(v.shape[-1] for v in (*fa.values(), *fb.values()))
    orders = [np.arange(len(next(iter(fb.values())))), *perms]
    sim = np.zeros((len(orders), len(la), len(lb)))
    by_size: dict[int, list] = {}
    for i, a in enumerate(la):
        for j, b in enumerate(lb):
            by_size.setdefault(min(_size(fa[a]), _size(fb[b])), []).append((i, j))
    for size, pairs in by_size.items():  # one compiled program per grid size
        xs, ys, where = [], [], []
        for i, j in pairs:
            x = as_map(fa[la[i]], size, width)
            y = as_map(fb[lb[j]], size, width)
            for o, order in enumerate(orders):
                xs.append(x)
                ys.append(y[order])
                where.append((o, i, j))
        vals = np.asarray(_dft_stack(jnp.asarray(np.stack(xs)), jnp.asarray(np.stack(ys))))
        for (o, i, j), v in zip(where, vals, strict=True):
            sim[o, i, j] = v
    return sim


def run(out: pathlib.Path, *, preset: str, data_dir=None, log=print) -> dict:
    """DFT-CCA matrices of every (convnet, resnet) pair, and with the resnet rows shuffled."""
    n = select({}, SETTINGS, preset)["shuffles"]
    convnets = group.networks(out, "svcca_convnet", preset, data_dir=data_dir, log=log)
    resnets = group.networks(out, "resnet", preset, data_dir=data_dir, log=log)
    pairs = []
    rng = np.random.default_rng(0)
    for (sa, _, ma, data), (sb, _, mb, _) in zip(convnets, resnets, strict=False):
        x = jnp.asarray(data["probe_x"])
        fa = {k: np.asarray(v) for k, v in ma.features(x).items() if k != "logits"}
        fb = {k: np.asarray(v) for k, v in mb.features(x).items() if k != "logits"}
        sim = similarity(fa, fb, [rng.permutation(len(x)) for _ in range(n)])
        pairs.append(
            {
                "convnet_seed": sa,
                "resnet_seed": sb,
                "convnet_layers": list(fa),
                "resnet_layers": list(fb),
                "dft_cca": sim[0],
                "dft_cca_shuffled_rows": sim[1:],
            }
        )
        log(f"  convnet {sa} x resnet {sb}: diagonal-ish {np.round(sim[0].max(1), 3)}")
    return save_results(out, "architectures", {"preset": preset, "pairs": pairs})


def adjusted(sim, pair: dict) -> np.ndarray:
    """Chance-corrected matrix ``(sim - m) / (1 - m)``, ``m`` the shuffled-rows mean per entry.

    DFT-CCA's chance level differs between layer pairs (channels against
    samples, grid size), so the statistics read the adjusted matrix.
    """
    m = np.asarray(pair["dft_cca_shuffled_rows"]).mean(0)
    return (np.asarray(sim) - m) / (1.0 - m)


def _matched(sim) -> np.ndarray:
    la, lb = sim.shape
    return np.asarray([sim[i, round(i * (lb - 1) / (la - 1))] for i in range(la)])


def _spearman(a, b) -> float:
    from scipy.stats import spearmanr

    return 0.0 if np.ptp(a) == 0 or np.ptp(b) == 0 else float(spearmanr(a, b).statistic)


def decline(sim) -> float:
    """Minus the Spearman correlation of depth and the matched-depth similarity."""
    m = _matched(np.asarray(sim))
    return -_spearman(np.arange(len(m)), m)


def top_bottom(sim) -> float:
    """Mean of the other entries minus the similarity of convnet bottom and resnet top."""
    sim = np.asarray(sim)
    others = np.delete(sim.ravel(), sim.shape[1] - 1)
    return float(others.mean() - sim[0, -1])


def depth_agreement(sim) -> float:
    """Spearman correlation of a convnet layer's depth and its best resnet match's depth."""
    best = np.asarray(sim).argmax(1)
    return _spearman(np.arange(len(best)), best)


def claims(results: dict) -> list[dict]:
    """Figure 7's three statements, spread over pairs, null by shuffled resnet rows."""
    pairs = results["pairs"]
    seeds = [p["convnet_seed"] for p in pairs] + [p["resnet_seed"] for p in pairs]
    out = []
    for name, fn, statement in (
        (
            "lower_similar_higher_less",
            decline,
            "lower layers of a resnet and a convnet are similar, higher layers less so",
        ),
        (
            "top_least_like_bottom",
            top_bottom,
            "the resnet's top layer is the least similar to the convnet's bottom layer",
        ),
        (
            "relative_depth",
            depth_agreement,
            "layers at similar relative depth are the most similar across the architectures",
        ),
    ):
        vals = [fn(adjusted(p["dft_cca"], p)) for p in pairs]
        null = [fn(adjusted(s, p)) for p in pairs for s in p["dft_cca_shuffled_rows"]]
        out.append(
            C.claim(
                id=f"architectures.{name}",
                paper="SVCCA",
                figure="fig7",
                statement=statement,
                statistic=f"{fn.__doc__.strip()} (DFT-CCA, chance-adjusted by the shuffled-rows "
                "mean of each entry); mean over (convnet, resnet) pairs",
                value=float(np.mean(vals)),
                spread=C.standard_error(vals),
                null=C.null_from(null, "the resnet's probe rows shuffled"),
                seeds=seeds,
            )
        )
    return out


def table(results: dict) -> str:
    """The DFT-CCA matrix of the first pair."""
    p = results["pairs"][0]
    lb = p["resnet_layers"]
    lines = [f"convnet seed {p['convnet_seed']}, resnet seed {p['resnet_seed']}", ""]
    lines += ["| convnet \\ resnet | " + " | ".join(lb) + " |", "| --- " * (len(lb) + 1) + "|"]
    for a, row in zip(p["convnet_layers"], p["dft_cca"], strict=True):
        lines.append(f"| {a} | " + " | ".join(f"{v:.2f}" for v in row) + " |")
    return "\n".join(lines)


def figure(results: dict, path: pathlib.Path) -> None:
    """The matrix (first pair), and the shuffled-rows null's mean beside it."""
    plt = pyplot()
    p = results["pairs"][0]
    la, lb = p["convnet_layers"], p["resnet_layers"]
    fig, axes = plt.subplots(1, 2, figsize=(9, 4))
    for ax, m, title in (
        (axes[0], np.asarray(p["dft_cca"]), "DFT-CCA"),
        (axes[1], np.asarray(p["dft_cca_shuffled_rows"]).mean(0), "resnet rows shuffled"),
    ):
        im = ax.imshow(m, vmin=0, vmax=1, origin="lower")
        ax.set_xticks(range(len(lb)), lb, rotation=45, fontsize=7)
        ax.set_yticks(range(len(la)), la, fontsize=7)
        ax.set_xlabel("resnet")
        ax.set_title(title)
    axes[0].set_ylabel("convnet")
    fig.colorbar(im, ax=axes)
    fig.savefig(path, dpi=120)
    plt.close(fig)
