"""PWCCA figures 1 and 6, SVCCA figure 4: learning dynamics and bottom-up convergence.

One convnet is trained on the digits; ``fit`` writes every layer's probe
activations (conv layers as the spatial mean per channel) at every checkpoint,
and every checkpoint is compared with the end of training, batched with
``jaxcca.pairwise``. Claims: many CCA coefficients are unconverged after the
accuracy has converged; layers converge bottom-up; PWCCA shows it more clearly
than mean CCA (the two measures compared). Config: ``digits_convnet``. Command:
``python -m reproduce all --only dynamics``; runtime quick ~30 s. Outputs:
``dynamics/results.json``, ``dynamics/dynamics.png``, ``dynamics/network/*``.
"""

from __future__ import annotations

import itertools
import json
import pathlib

import jax
import numpy as np

import jaxcca
from reproduce import claims as C
from reproduce.experiments._common import save_results, shuffled_rows, train_network
from reproduce.io import pyplot
from reproduce.train import read_activations

TITLE = "Learning dynamics: convergence of each layer to its final representation"
PAPER = "PWCCA (Morcos et al. 2018) figures 1 and 6; SVCCA (Raghu et al. 2017) figure 4"
CONFIG = "digits_convnet"
LAYER = "fc"
CHECKPOINTS = 20


def distance_to_final(stacks: dict) -> dict:
    """``{measure: {layer: [distance of each checkpoint to the last]}}`` (PWCCA and mean CCA)."""
    curves = {"pwcca": {}, "cca": {}}
    for layer, stack in stacks.items():
        stack = np.asarray(stack, np.float32)
        for measure in curves:
            sim = np.asarray(jaxcca.pairwise(stack, stack[-1:], measure=measure))[:, 0]
            curves[measure][layer] = (1.0 - sim).tolist()
    return curves


def train_and_read(run_dir, config, preset, *, data_dir, log, seed=0):
    """Trains with ``CHECKPOINTS`` checkpoints; returns steps, metrics, activations, reductions."""
    steps = train_network_steps(config, preset)
    train_network(
        run_dir,
        config,
        preset,
        data_dir=data_dir,
        log=log,
        seed=seed,
        every=max(1, steps // CHECKPOINTS),
        reduce="spatial_mean",
    )
    metrics = json.loads((run_dir / "metrics.json").read_text())
    ckpt_steps, acts, how = read_activations(run_dir)
    return ckpt_steps, metrics, acts, how


def train_network_steps(config, preset) -> int:
    """The number of training steps the config gives at ``preset``."""
    from reproduce import configs

    return configs.get_config(config, preset)["steps"]


def run(out: pathlib.Path, *, preset: str, data_dir=None, log=print) -> dict:
    """Trains (or resumes), then distances to the final representation and sorted CCA."""
    steps, metrics, acts, how = train_and_read(
        out / "dynamics" / "network", CONFIG, preset, data_dir=data_dir, log=log
    )
    fc = np.asarray(acts[LAYER], np.float32)
    rhos = np.asarray(jax.vmap(lambda a: jaxcca.cca(a, fc[-1]).rho)(fc))
    acc = [metrics[str(s)]["probe_accuracy"] for s in steps]
    perf = int(np.nonzero(np.asarray(acc) >= acc[-1] - 0.01)[0][0])
    null_rhos = shuffled_rows(lambda x, y: jaxcca.cca(x, y).rho, fc[perf], fc[-1])
    centred = fc - fc.mean(axis=1, keepdims=True)
    rank = int(min(np.linalg.matrix_rank(centred[perf]), np.linalg.matrix_rank(centred[-1])))
    return save_results(
        out,
        "dynamics",
        {
            "preset": preset,
            "seeds": [0],
            "steps": steps,
            "probe_accuracy": acc,
            "reduction": how,
            "layers": list(acts),
            "distance_to_final": distance_to_final(acts),
            "sorted_cca": rhos,
            "sorted_cca_shuffled_rows": null_rhos,
            "performance_converged_index": perf,
            "valid_coefficients": rank,
        },
    )


def _spearman(x) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(np.arange(len(x)), x).statistic)


def bottom_up(area: np.ndarray) -> float:
    """Spearman correlation of depth with the mean distance to final (1: strictly bottom-up)."""
    return _spearman(area)


def clarity(area: np.ndarray) -> float:
    """Mean gap between adjacent layers' mean distance to final, over its mean."""
    return float(np.mean(np.diff(area)) / max(np.mean(area), 1e-12))


def layer_order_null(stat, *areas, how: str) -> dict:
    """The null of ``stat(*areas)`` with the layers' depth order permuted (all permutations)."""
    n = len(areas[0])
    values = [stat(*(a[list(p)] for a in areas)) for p in itertools.permutations(range(n))]
    return C.null_from(values, how)


def bottom_up_claims(results: dict, prefix: str, figure: str, network: str) -> list[dict]:
    """Bottom-up convergence (PWCCA), and PWCCA against mean CCA, with layer-order nulls."""
    curves = results["distance_to_final"]
    layers = results["layers"]
    area = {m: np.asarray([np.mean(curves[m][k]) for k in layers]) for m in curves}
    how = "the layers' depth order permuted (every permutation)"
    seeds = results["seeds"]
    one = f"; {len(seeds)} network, so no seed spread" if len(seeds) == 1 else ""
    return [
        C.claim(
            id=f"{prefix}.bottom_up",
            paper="PWCCA",
            figure=figure,
            statement=f"{network} converge bottom-up: lower layers reach their final "
            "representation first",
            statistic="Spearman correlation of layer depth and the mean PWCCA distance to the "
            f"final representation over training{one}",
            value=bottom_up(area["pwcca"]),
            null=layer_order_null(bottom_up, area["pwcca"], how=how),
            seeds=seeds,
        ),
        C.claim(
            id=f"{prefix}.pwcca_clearer",
            paper="PWCCA",
            figure=figure,
            statement="the weighted mean (PWCCA) shows bottom-up convergence more clearly "
            "than the unweighted mean CCA",
            statistic="PWCCA's minus mean CCA's clarity (mean gap between adjacent layers' "
            f"mean distance to final, over its mean){one}",
            value=clarity(area["pwcca"]) - clarity(area["cca"]),
            null=layer_order_null(
                lambda a, b: clarity(a) - clarity(b), area["pwcca"], area["cca"], how=how
            ),
            seeds=seeds,
        ),
    ]


def claims(results: dict) -> list[dict]:
    """Figure 1's claims on layer ``fc`` and figure 6's bottom-up claims."""
    rhos = np.asarray(results["sorted_cca"])
    null = np.asarray(results["sorted_cca_shuffled_rows"])
    perf, k = results["performance_converged_index"], results["valid_coefficients"]
    q = max(1, k // 4)
    later = rhos[perf:, :q]
    return [
        C.claim(
            id="dynamics.unconverged",
            paper="PWCCA",
            figure="fig1a",
            statement="after test accuracy has converged, many CCA coefficients against the "
            "final representation are still unconverged",
            statistic=f"fraction of the {k} valid sorted CCA coefficients ({LAYER} at the "
            "first checkpoint within 1 point of the final accuracy vs the final) below 0.9",
            value=float(np.mean(rhos[perf, :k] < 0.9)),
            threshold=0.25,
            null=C.point_null(0.0, "the final representation against itself"),
            seeds=results["seeds"],
        ),
        C.claim(
            id="dynamics.stable_stays_stable",
            paper="PWCCA",
            figure="fig1d",
            statement="directions that are stable early stay stable",
            statistic=f"smallest top-quarter CCA coefficient ({LAYER}, vs final) over the "
            "checkpoints after accuracy converged",
            value=float(later.min()),
            threshold=0.9,
            null=C.null_from(
                null[:, :q].mean(1), "the same coefficients with the final's rows shuffled"
            ),
            seeds=results["seeds"],
        ),
        *bottom_up_claims(results, "dynamics", "fig6", "convnet layers"),
    ]


def table(results: dict) -> str:
    """Mean distance to the final representation per layer, PWCCA and mean CCA."""
    curves = results["distance_to_final"]
    lines = ["| layer | mean PWCCA distance to final | mean CCA distance to final |"]
    lines.append("| --- | --- | --- |")
    for k in results["layers"]:
        lines.append(
            f"| {k} | {np.mean(curves['pwcca'][k]):.3f} | {np.mean(curves['cca'][k]):.3f} |"
        )
    return "\n".join(lines)


def figure(results: dict, path: pathlib.Path) -> None:
    """Distance to final per layer (PWCCA, mean CCA) and the sorted CCA coefficients."""
    plt = pyplot()
    steps = results["steps"]
    fig, axes = plt.subplots(1, 3 if "sorted_cca" in results else 2, figsize=(13, 3.2))
    for ax, measure in zip(axes, ("pwcca", "cca"), strict=False):
        for layer, d in results["distance_to_final"][measure].items():
            ax.plot(steps, d, label=layer)
        ax.set_title(f"{measure} distance to final")
        ax.set_xlabel("step")
        ax.legend(fontsize=7)
    if "sorted_cca" in results:
        rhos, perf = np.asarray(results["sorted_cca"]), results["performance_converged_index"]
        ax = axes[2]
        ax.plot(rhos[perf], "k-", label=f"step {steps[perf]} (accuracy converged)")
        null = np.asarray(results["sorted_cca_shuffled_rows"])
        ax.fill_between(
            range(null.shape[1]), null.min(0), null.max(0), alpha=0.3, label="rows shuffled (null)"
        )
        ax.set_xlabel("CCA direction (sorted)")
        ax.set_ylabel(f"correlation with final {LAYER}")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
