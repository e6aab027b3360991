"""SVCCA figure 6: class sensitivity, the CCA of each layer with each class's logit.

Claims: sensitivity to the class logits grows through the network; classes
differ in how early they are represented. Null: the same with the rows of the
logits shuffled. Config: ``svcca_convnet`` (network shared in
``OUT/networks``). Command: ``python -m reproduce all --only
class_sensitivity``; runtime quick ~20 s. Outputs:
``class_sensitivity/results.json``, ``.../class_sensitivity.png``.
"""

from __future__ import annotations

import pathlib

import jax.numpy as jnp
import numpy as np

import jaxcca
from reproduce import claims as C
from reproduce.experiments._common import reduce_spatial, save_results
from reproduce.experiments.svcca_projection import shared_network
from reproduce.io import pyplot

TITLE = "Class sensitivity: CCA of each layer with each class's logit"
PAPER = "SVCCA (Raghu et al. 2017) figure 6"
SHUFFLES = 5


def _sensitivity(feats: dict, logits: np.ndarray) -> np.ndarray:
    """``(layers, classes)``: mean CCA of every layer with every class's logit, one batch."""
    sim = jaxcca.pairwise(
        [v.astype(np.float32) for v in feats.values()],
        [logits[:, c : c + 1] for c in range(logits.shape[1])],
        measure="cca",
    )
    return np.asarray(sim)


def run(out: pathlib.Path, *, preset: str, data_dir=None, log=print) -> dict:
    """Sensitivity of every layer to every class (test set), and with the logits' rows shuffled."""
    model, data, _ = shared_network(out, "svcca_convnet", preset, data_dir=data_dir, log=log)
    feats = {
        k: reduce_spatial(np.asarray(v))
        for k, v in model.features(jnp.asarray(data["test_x"])).items()
    }
    logits = feats.pop("logits").astype(np.float32)
    rng = np.random.default_rng(0)
    null = [_sensitivity(feats, logits[rng.permutation(len(logits))]) for _ in range(SHUFFLES)]
    return save_results(
        out,
        "class_sensitivity",
        {
            "preset": preset,
            "seeds": [0],
            "layers": list(feats),
            "reduction": "conv layers: spatial mean per channel",
            "sensitivity": _sensitivity(feats, logits),
            "sensitivity_shuffled_rows": np.stack(null),
        },
    )


def _rising(sens: np.ndarray) -> float:
    from scipy.stats import spearmanr

    m = sens.mean(1)
    return float(spearmanr(np.arange(len(m)), m).statistic)


def claims(results: dict) -> list[dict]:
    """Figure 6's two claims, each against the logits' rows shuffled."""
    sens = np.asarray(results["sensitivity"])
    null = np.asarray(results["sensitivity_shuffled_rows"])
    how = f"the logits' rows shuffled ({len(null)} shuffles)"
    common = {"paper": "SVCCA", "figure": "fig6", "seeds": results["seeds"]}
    return [
        C.claim(
            id="class_sensitivity.grows",
            statement="sensitivity to the classes grows through the network",
            statistic="Spearman correlation of layer depth and the mean (over classes) CCA "
            "with a class's logit",
            value=_rising(sens),
            null=C.null_from([_rising(s) for s in null], how),
            **common,
        ),
        C.claim(
            id="class_sensitivity.classes_differ",
            statement="some classes are learned (represented) earlier in the network than others",
            statistic=f"spread (max - min) over classes of the CCA with the class logit in "
            f"{results['layers'][0]}",
            value=float(np.ptp(sens[0])),
            null=C.null_from([np.ptp(s[0]) for s in null], how),
            **common,
        ),
    ]


def table(results: dict) -> str:
    """CCA of every layer with every class's logit."""
    sens = np.asarray(results["sensitivity"])
    lines = ["| layer | " + " | ".join(str(c) for c in range(sens.shape[1])) + " |"]
    lines.append("| --- " * (sens.shape[1] + 1) + "|")
    for i, layer in enumerate(results["layers"]):
        lines.append(f"| {layer} | " + " | ".join(f"{v:.2f}" for v in sens[i]) + " |")
    return "\n".join(lines)


def figure(results: dict, path: pathlib.Path) -> None:
    """Sensitivity per class through the layers, and the shuffled-rows null as a band."""
    plt = pyplot()
    sens = np.asarray(results["sensitivity"])
    null = np.asarray(results["sensitivity_shuffled_rows"])
    layers = results["layers"]
    fig, ax = plt.subplots(figsize=(5.5, 3.4))
    for c in range(sens.shape[1]):
        ax.plot(layers, sens[:, c], "o-", label=str(c), lw=1)
    ax.fill_between(
        layers, null.min(axis=(0, 2)), null.max(axis=(0, 2)), color="k", alpha=0.15, label="null"
    )
    ax.set_ylabel("CCA with class logit")
    ax.legend(ncol=4, fontsize=6, title="digit")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
