"""SVCCA figures 2a and 3, section 4.4: a layer projected onto a few CCA directions.

Claims: projecting ``fc2`` onto k CCA directions (CCA with the logits) keeps
test accuracy, better than keeping k neurons; ``fc2`` rewritten as a rank-k
product through ``fc1``'s CCA directions keeps it with half the weights. The
null: the same with k random directions. Config: ``svcca_convnet`` (shared
with ``class_sensitivity`` and ``architectures`` in ``OUT/networks``).
Command: ``python -m reproduce all --only svcca_projection``; runtime quick
~30 s. Outputs: ``svcca_projection/results.json``, ``.../svcca_projection.png``.
"""

from __future__ import annotations

import pathlib

import jax
import jax.numpy as jnp
import numpy as np

import jaxcca
from reproduce import claims as C
from reproduce.experiments._common import fmt, save_results, train_network
from reproduce.io import pyplot

TITLE = "A layer projected onto a few CCA directions keeps the accuracy"
PAPER = "SVCCA (Raghu et al. 2017) figures 2a and 3, section 4.4"
KS = (1, 2, 3, 5, 7, 10)


def shared_network(out: pathlib.Path, config: str, preset: str, *, data_dir=None, log=print):
    """The network ``config`` (seed 0) trained once into ``OUT/networks``, shared by experiments."""
    return train_network(
        out / "networks" / f"{config}_seed0", config, preset, data_dir=data_dir, log=log, seed=0
    )


def _acc_from_fc2(model, h, labels) -> float:
    logits = model.out_layer(jnp.asarray(h, jnp.float32))
    return float(np.mean(np.asarray(jnp.argmax(logits, -1)) == labels))


def _project(h_tr, h_te, w):
    """``h_te`` kept in the span of directions ``w`` (fitted on ``h_tr``), back in neuron space."""
    mean = h_tr.mean(0)
    coef, *_ = np.linalg.lstsq((h_tr - mean) @ w, h_tr - mean, rcond=None)
    return mean + ((h_te - mean) @ w) @ coef


def run(out: pathlib.Path, *, preset: str, data_dir=None, log=print) -> dict:
    """Accuracy with fc2 kept in k CCA directions, k random directions, k neurons."""
    model, data, _ = shared_network(out, "svcca_convnet", preset, data_dir=data_dir, log=log)
    f_tr = model.features(jnp.asarray(data["x"]))
    f_te = model.features(jnp.asarray(data["test_x"]))
    y_te = data["test_y"]
    rng = np.random.default_rng(0)
    h_tr, h_te = np.asarray(f_tr["fc2"], np.float64), np.asarray(f_te["fc2"], np.float64)
    g_tr, g_te = np.asarray(f_tr["fc1"], np.float64), np.asarray(f_te["fc1"], np.float64)
    logits_tr = np.asarray(f_tr["logits"], np.float32)
    w2 = np.asarray(jaxcca.cca(h_tr.astype(np.float32), logits_tr).x_weights, np.float64)
    w1 = np.asarray(jaxcca.cca(g_tr.astype(np.float32), logits_tr).x_weights, np.float64)
    d, d1, d2 = h_tr.shape[1], g_tr.shape[1], int(model.fc2.out_features)
    full = _acc_from_fc2(model, h_te, y_te)

    def via_fc1(g_hat):
        h = jax.nn.relu(model.bn_fc2(model.fc2(jnp.asarray(g_hat, jnp.float32))))
        return _acc_from_fc2(model, h, y_te)

    rows = []
    for k in (k for k in KS if k <= min(w2.shape[1], w1.shape[1])):
        rand2 = np.linalg.qr(rng.standard_normal((d, k)))[0]
        rand1 = np.linalg.qr(rng.standard_normal((d1, k)))[0]
        row = {
            "k": k,
            "cca": _acc_from_fc2(model, _project(h_tr, h_te, w2[:, :k]), y_te),
            "random_directions": _acc_from_fc2(model, _project(h_tr, h_te, rand2), y_te),
            "compressed": via_fc1(_project(g_tr, g_te, w1[:, :k])),
            "compressed_random": via_fc1(_project(g_tr, g_te, rand1)),
            "fc2_weights": k * (d1 + d2),
            "fc2_weights_full": d1 * d2,
        }
        for name, keep in (
            ("random_neurons", rng.choice(d, k, replace=False)),
            ("max_activation_neurons", np.argsort(-np.abs(h_tr).mean(0))[:k]),
        ):
            h = np.broadcast_to(h_tr.mean(0), h_te.shape).copy()
            h[:, keep] = h_te[:, keep]
            row[name] = _acc_from_fc2(model, h, y_te)
        rows.append(row)
    log(f"  full accuracy {full:.3f}; {rows[-1]}")
    return save_results(
        out,
        "svcca_projection",
        {"preset": preset, "seeds": [0], "width": d, "full_accuracy": full, "rows": rows},
    )


def claims(results: dict) -> list[dict]:
    """Three claims, each against k random directions in place of the CCA directions."""
    rows, full, d = results["rows"], results["full_accuracy"], results["width"]
    small = [r for r in rows if r["k"] <= max(1, d // 4)]
    r = small[-1]
    half = [x for x in rows if 2 * x["fc2_weights"] <= x["fc2_weights_full"]] or rows[:1]
    c = half[-1]
    common = {"paper": "SVCCA", "seeds": results["seeds"]}
    return [
        C.claim(
            id="svcca_projection.few_directions",
            figure="fig2a",
            statement=f"projecting a layer ({d} neurons) onto a few CCA directions keeps the "
            "network's accuracy",
            statistic=f"test accuracy with fc2 kept in its top k={r['k']} CCA directions, minus "
            "(full accuracy - 0.02)",
            value=r["cca"] - (full - 0.02),
            null=C.point_null(
                r["random_directions"] - (full - 0.02), f"k={r['k']} random directions instead"
            ),
            **common,
        ),
        C.claim(
            id="svcca_projection.better_than_neurons",
            figure="fig2a",
            statement="CCA directions keep more accuracy than as many random or "
            "maximum-activation neurons",
            statistic="smallest over k of: accuracy with k CCA directions minus the better of "
            "k random / max-activation neurons",
            value=min(
                x["cca"] - max(x["random_neurons"], x["max_activation_neurons"]) for x in rows
            ),
            null=C.point_null(
                min(
                    x["random_directions"] - max(x["random_neurons"], x["max_activation_neurons"])
                    for x in rows
                ),
                "the same with k random directions instead of the CCA directions",
            ),
            **common,
        ),
        C.claim(
            id="svcca_projection.compression",
            figure="sec4.4",
            statement="a layer can be compressed through its CCA directions keeping accuracy",
            statistic=f"accuracy with fc2 as a rank-{c['k']} product through fc1's top CCA "
            f"directions ({c['fc2_weights']} of {c['fc2_weights_full']} weights), minus "
            "(full accuracy - 0.02)",
            value=c["compressed"] - (full - 0.02),
            null=C.point_null(
                c["compressed_random"] - (full - 0.02), f"k={c['k']} random directions of fc1"
            ),
            **common,
        ),
    ]


def table(results: dict) -> str:
    """Accuracy per k: CCA directions, random directions, neurons, compressed fc2."""
    lines = [
        "| k | CCA directions | random directions | random neurons | max-activation neurons "
        "| fc2 rank-k via fc1 CCA (weights) | via random directions |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results["rows"]:
        lines.append(
            f"| {r['k']} | {fmt(r['cca'])} | {fmt(r['random_directions'])} | "
            f"{fmt(r['random_neurons'])} | {fmt(r['max_activation_neurons'])} | "
            f"{fmt(r['compressed'])} ({r['fc2_weights']} of {r['fc2_weights_full']}) | "
            f"{fmt(r['compressed_random'])} |"
        )
    return "\n".join(lines) + f"\n\nFull accuracy: {fmt(results['full_accuracy'])}."


def figure(results: dict, path: pathlib.Path) -> None:
    """Accuracy against k for each way of keeping k dimensions (null: random directions)."""
    plt = pyplot()
    ks = [r["k"] for r in results["rows"]]
    fig, ax = plt.subplots(figsize=(5, 3.2))
    for key, style in (
        ("cca", "o-"),
        ("random_directions", "k:"),
        ("random_neurons", "s--"),
        ("max_activation_neurons", "^--"),
        ("compressed", "d-"),
    ):
        ax.plot(ks, [r[key] for r in results["rows"]], style, label=key)
    ax.axhline(results["full_accuracy"], color="k", lw=0.8, label="all neurons")
    ax.set_xlabel("k kept")
    ax.set_ylabel("test accuracy")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
