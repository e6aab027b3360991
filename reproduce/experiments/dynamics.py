"""PWCCA figure 1: learning dynamics of CCA directions, for a CNN and for an RNN.

Fig 1a-c: after performance has converged, many canonical correlations of a
layer's representation L(t) with its final L(T) are still well below 1. Only
the valid coefficients count: the first ``min(rank L(t), rank L(T))`` (past
them jaxcca pads with zeros, and dead ReLU units lower the rank). Performance
has converged at the first checkpoint whose probe accuracy (CNN) or probe loss
(RNN) is within 2% of its total improvement from its final value.

Fig 1d-f, as the paper describes: CCA of L(t_early) (the first checkpoint
after 10% of training) with L(T/2); S = the top and B = the bottom fifth of
the valid canonical directions (variates of L(T/2)); then the mean CCA of S
and of B with L(t) at every checkpoint. Claimed: S is stable (close to L(t)
all along), B is not. Null: the same difference for two random sets of
directions of the same size in L(T/2)'s span.

Networks: the generalising digits CNNs shared with ``memorize`` (layer
``fc``) and the LSTM language models shared with ``lstm_dynamics`` (top LSTM
layer), two seeds each; probe set: held-out images / validation text.
Command: ``python -m reproduce all --only dynamics``; runtime quick ~30 s CPU
beyond the shared networks. Outputs: ``dynamics/results.json``,
``dynamics/dynamics.png``.
"""

from __future__ import annotations

import json
import pathlib

import jax
import jax.numpy as jnp
import numpy as np

import jaxcca
from reproduce import claims as C
from reproduce.configs import select
from reproduce.experiments import _common as K
from reproduce.io import pyplot
from reproduce.train import read_activations

TITLE = "Learning dynamics: converged and unconverged CCA directions (CNN and RNN)"
PAPER = "PWCCA (Morcos et al. 2018) figure 1"
SETTINGS = {"quick": {"seeds": 2}, "full": {"seeds": 3}, "smoke": {"seeds": 2}}
CNN_LAYER = "fc"
FRACTION = 5  # S and B: the top and bottom fifth of the valid directions
LOW = 0.9  # a coefficient below this is unconverged
NULL_DRAWS = 20


@jax.jit
def _rho_to_final(stack):
    """Canonical correlations of every checkpoint with the last, and the valid count."""
    res = jax.vmap(lambda a: jaxcca.cca(a, stack[-1]))(stack)
    return res.rho, jnp.minimum(res.rank_x, res.rank_y)


@jax.jit
def _mean_cca_with(stack, directions):
    """Mean CCA of every checkpoint with a set of directions ``(n, q)``."""
    return jax.vmap(lambda a: jaxcca.cca_similarity(a, directions))(stack)


def analyse(steps, performance, stack, *, higher_is_better: bool) -> dict:
    """Fig 1a-c and 1d-f for one network's layer: ``stack`` ``(T, n, d)`` over checkpoints."""
    stack = jnp.asarray(stack, jnp.float32)
    perf = np.asarray(performance, np.float64)
    gain = (perf - perf[-1]) * (1 if higher_is_better else -1)  # <= 0 ... 0 at the end
    total = abs(perf[-1] - perf[0]) or 1.0
    converged = int(np.nonzero(-gain <= 0.02 * total)[0][0])
    rho, valid = (np.asarray(v) for v in _rho_to_final(stack))
    n_ckpt = len(steps)
    early = int(np.nonzero(np.asarray(steps) >= 0.1 * steps[-1])[0][0])
    early = min(max(early, 1), n_ckpt - 1)
    mid = int(np.argmin(np.abs(np.asarray(steps) - steps[-1] / 2)))
    res = jaxcca.cca(stack[early], stack[mid])
    k = int(min(res.rank_x, res.rank_y))
    q = max(1, k // FRACTION)
    var = np.asarray(res.y_variates)[:, :k]
    top, bottom = var[:, :q], var[:, k - q : k]
    s_curve = np.asarray(_mean_cca_with(stack, jnp.asarray(top)))
    b_curve = np.asarray(_mean_cca_with(stack, jnp.asarray(bottom)))
    rng = np.random.default_rng(0)
    null = []
    for _ in range(NULL_DRAWS):  # two random q-dim sets of directions in L(T/2)'s valid span
        rot = np.linalg.qr(rng.standard_normal((k, k)))[0]
        r = var @ rot
        a = np.asarray(_mean_cca_with(stack, jnp.asarray(r[:, :q])))
        b = np.asarray(_mean_cca_with(stack, jnp.asarray(r[:, k - q : k])))
        null.append(float((a - b)[early:].mean()))
    return {
        "steps": list(steps),
        "performance": perf.tolist(),
        "converged_index": converged,
        "sorted_cca_to_final": rho.tolist(),
        "valid_coefficients": valid.tolist(),
        "early_index": early,
        "mid_index": mid,
        "directions": q,
        "valid_early_mid": k,
        "stable_curve": s_curve.tolist(),
        "unstable_curve": b_curve.tolist(),
        "random_difference": null,
    }


def _read(run_dir: pathlib.Path, metric: str):
    metrics = json.loads((run_dir / "metrics.json").read_text())
    steps, acts, _ = read_activations(run_dir)
    return steps, [metrics[str(s)][metric] for s in steps], acts


def run(out: pathlib.Path, *, preset: str, data_dir=None, log=print) -> dict:
    """Reads the shared CNN and LSTM runs (trains them if needed); fig 1 per network."""
    n = select({}, SETTINGS, preset)["seeds"]
    nets = {"cnn": [], "rnn": []}
    for m in K.shared_true_group(out, preset, n, data_dir=None, log=log):
        steps, acc, acts = _read(m["run_dir"], "probe_accuracy")
        r = analyse(steps, acc, acts[CNN_LAYER], higher_is_better=True)
        nets["cnn"].append({"seed": m["seed"], "layer": CNN_LAYER, **r})
    for m in K.shared_lstm_group(out, preset, n, data_dir=data_dir, log=log):
        steps, loss, acts = _read(m["run_dir"], "probe_loss")
        top = [k for k in acts if k.startswith("lstm")][-1]
        r = analyse(steps, loss, acts[top], higher_is_better=False)
        nets["rnn"].append({"seed": m["seed"], "layer": top, **r})
    log(f"  valid coefficients at the end: {[x['valid_coefficients'][-2] for x in nets['cnn']]}")
    return K.save_results(out, "dynamics", {"preset": preset, "networks": nets})


def unconverged(net: dict) -> float:
    """Fraction of the valid coefficients (converged checkpoint vs final) below ``LOW``."""
    i = net["converged_index"]
    k = int(net["valid_coefficients"][i])
    return float(np.mean(np.asarray(net["sorted_cca_to_final"][i][:k]) < LOW)) if k else 0.0


def stable_minus_unstable(net: dict) -> float:
    """Mean over checkpoints from t_early on of CCA(S, L(t)) - CCA(B, L(t))."""
    e = net["early_index"]
    return float(
        np.mean(np.asarray(net["stable_curve"][e:]) - np.asarray(net["unstable_curve"][e:]))
    )


def claims(results: dict) -> list[dict]:
    """Figure 1a-c and 1d-f, for the CNN and the RNN."""
    out = []
    for kind, name, perf in (("cnn", "CNN", "accuracy"), ("rnn", "RNN (LSTM)", "loss")):
        nets = results["networks"][kind]
        seeds = [x["seed"] for x in nets]
        layer = nets[0]["layer"]
        frac = [unconverged(x) for x in nets]
        diff = [stable_minus_unstable(x) for x in nets]
        null = [v for x in nets for v in x["random_difference"]]
        out += [
            C.claim(
                id=f"dynamics.unconverged_{kind}",
                paper="PWCCA",
                figure="fig1a" if kind == "cnn" else "fig1b",
                statement=f"{name}: after performance has converged, many CCA coefficients of a "
                "layer against its final representation are still unconverged",
                statistic=f"fraction of the valid CCA coefficients (min of the ranks) of {layer} "
                f"at the first checkpoint with probe {perf} within 2% of its total improvement "
                f"vs the final {layer}, below {LOW} (mean over seeds); 'many': above 25%",
                value=float(np.mean(frac)),
                spread=C.standard_error(frac),
                threshold=0.25,
                null=C.point_null(0.0, "the final representation against itself"),
                seeds=seeds,
            ),
            C.claim(
                id=f"dynamics.stable_directions_{kind}",
                paper="PWCCA",
                figure="fig1d" if kind == "cnn" else "fig1e",
                statement=f"{name}: the top CCA directions of L(t_early) vs L(T/2) are stable "
                "over training, the bottom ones are not",
                statistic=f"mean over checkpoints from t_early of mean CCA(S, L(t)) - mean "
                f"CCA(B, L(t)), S/B the top/bottom fifth of the valid directions ({layer}; "
                "mean over seeds)",
                value=float(np.mean(diff)),
                spread=C.standard_error(diff),
                null=C.null_from(
                    null,
                    f"two random direction sets of the same size in L(T/2)'s span "
                    f"({NULL_DRAWS} per seed)",
                ),
                seeds=seeds,
            ),
        ]
    return out


def table(results: dict) -> str:
    """Per network: valid coefficients, the unconverged fraction, stable minus unstable."""
    lines = [
        "| network | seed | layer | converged at step | valid coefficients | unconverged "
        "fraction | S - B |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for kind, nets in results["networks"].items():
        for x in nets:
            i = x["converged_index"]
            lines.append(
                f"| {kind} | {x['seed']} | {x['layer']} | {x['steps'][i]} | "
                f"{x['valid_coefficients'][i]} | {K.fmt(unconverged(x))} | "
                f"{K.fmt(stable_minus_unstable(x))} |"
            )
    return "\n".join(lines)


def figure(results: dict, path: pathlib.Path) -> None:
    """Per network kind: sorted valid coefficients over training (1a-c); S and B curves (1d-f)."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 4, figsize=(16, 3.2))
    for col, kind in enumerate(("cnn", "rnn")):
        x = results["networks"][kind][0]
        ax = axes[2 * col]
        cmap = plt.get_cmap("viridis")
        n = len(x["steps"])
        for t in range(0, n, max(1, n // 6)):
            k = int(x["valid_coefficients"][t])
            ax.plot(
                x["sorted_cca_to_final"][t][:k], color=cmap(t / n), label=f"step {x['steps'][t]}"
            )
        i = x["converged_index"]
        k = int(x["valid_coefficients"][i])
        ax.plot(x["sorted_cca_to_final"][i][:k], "r--", label="performance converged")
        ax.set_title(f"{kind.upper()} {x['layer']}: CCA with L(T) (valid only)")
        ax.set_xlabel("CCA direction (sorted)")
        ax.legend(fontsize=6)
        ax = axes[2 * col + 1]
        for y in results["networks"][kind]:
            ax.plot(y["steps"], y["stable_curve"], "b-", label=f"S (seed {y['seed']})")
            ax.plot(y["steps"], y["unstable_curve"], "r-", label=f"B (seed {y['seed']})")
        ax.axvline(x["steps"][x["early_index"]], color="k", ls=":", lw=1)
        ax.set_title(f"{kind.upper()}: CCA of S / B with L(t)")
        ax.set_xlabel("step")
        ax.legend(fontsize=6)
    K.save_figure(fig, path)
