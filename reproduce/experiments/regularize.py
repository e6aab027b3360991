"""jaxcca as a loss term: pull a layer towards a frozen reference network's, or push it away.

Not a paper figure (issue 5's demonstration). A reference convnet is trained
and frozen; students are trained by the same ``train.fit`` with a custom loss,
cross-entropy plus ``lam * jaxcca.losses.similarity_loss(fc, fc_ref,
direction=...)``. Every student has its own seed. Config: ``digits_convnet``.
Command: ``python -m reproduce all --only regularize``; runtime quick ~1 min.
Outputs: ``regularize/results.json``, ``regularize/regularize.png``.
"""

from __future__ import annotations

import pathlib

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

import jaxcca
from reproduce import claims as C
from reproduce.configs import select
from reproduce.experiments._common import fmt, save_figure, save_results, train_network
from reproduce.io import pyplot
from reproduce.train import accuracy, cross_entropy

TITLE = "jaxcca as a loss term: pull a layer towards a frozen network, or push it away"
PAPER = "jaxcca demonstration (issue 5), not a paper figure"
SETTINGS = {
    "quick": {"lam": 1.0, "keep": 16, "students": 2},
    "full": {"lam": 1.0, "keep": 16, "students": 3},
    "smoke": {"lam": 1.0, "keep": 8, "students": 1},
}
CONFIG = "digits_convnet"
LAYER = "fc"
SEEDS = {"baseline": 700, "pull": 710, "push": 720}


def similarity_loss(reference, *, direction: str, lam: float, keep: int):
    """``loss_fn(model, x, y)``: cross-entropy plus the SVCCA term against the frozen reference."""
    graphdef, state = nnx.split(reference)

    def loss_fn(model, x, y):
        ref = nnx.merge(graphdef, state)
        h_ref = jax.lax.stop_gradient(ref.features(x)[LAYER])
        feats = model.features(x)
        ce = cross_entropy(model, x, y)
        term = jaxcca.losses.similarity_loss(
            feats[LAYER], h_ref, measure="svcca", direction=direction, keep=keep
        )
        return ce + lam * term

    return loss_fn


def run(out: pathlib.Path, *, preset: str, data_dir=None, log=print) -> dict:
    """Trains the reference and the students; their similarity to it and their accuracy."""
    s = select({}, SETTINGS, preset)
    nets = out / "regularize" / "networks"
    reference, data, _ = train_network(
        nets / "reference", CONFIG, preset, data_dir=data_dir, log=log, seed=0
    )
    probe = jnp.asarray(data["probe_x"])
    h_ref = np.asarray(reference.features(probe)[LAYER])
    students = []
    losses = {"baseline": cross_entropy}
    for kind in ("pull", "push"):  # one loss (one compiled step) per kind
        losses[kind] = similarity_loss(reference, direction=kind, lam=s["lam"], keep=s["keep"])
    for kind in ("baseline", "pull", "push"):
        for k in range(s["students"]):
            seed = SEEDS[kind] + k
            loss = losses[kind]
            model, _, _ = train_network(
                nets / f"{kind}_seed{seed}",
                CONFIG,
                preset,
                data_dir=data_dir,
                log=log,
                seed=seed,
                loss_fn=loss,
            )
            h = np.asarray(model.features(probe)[LAYER])
            students.append(
                {
                    "kind": kind,
                    "seed": seed,
                    "svcca_similarity": float(jaxcca.svcca_similarity(h, h_ref, keep=s["keep"])),
                    "pwcca_similarity": float(jaxcca.pwcca_similarity(h, h_ref)),
                    "test_accuracy": accuracy(model, data["test_x"], data["test_y"]),
                }
            )
            log(f"  student {students[-1]}")
    return save_results(
        out,
        "regularize",
        {
            "preset": preset,
            "settings": s,
            "reference_test_accuracy": accuracy(reference, data["test_x"], data["test_y"]),
            "students": students,
        },
    )


def _values(results, kind, key):
    return np.asarray([s[key] for s in results["students"] if s["kind"] == kind])


def claims(results: dict) -> list[dict]:
    """Pull raises, push lowers the similarity; accuracy holds; nulls by permuting students."""
    sim = {k: _values(results, k, "svcca_similarity") for k in SEEDS}
    acc = {k: _values(results, k, "test_accuracy") for k in SEEDS}
    seeds = [s["seed"] for s in results["students"]]
    reg = np.concatenate([acc["pull"], acc["push"]])
    common = {"paper": "jaxcca", "figure": "issue5", "seeds": seeds}
    return [
        C.claim(
            id="regularize.pull",
            statement="pulling raises the SVCCA similarity to the reference",
            statistic=f"mean SVCCA similarity to the reference's {LAYER} (probe set), pulled "
            "students minus baseline students",
            value=sim["pull"].mean() - sim["baseline"].mean(),
            spread=C.standard_error(sim["pull"], sim["baseline"]),
            null=C.mean_difference_null(sim["pull"], sim["baseline"]),
            **common,
        ),
        C.claim(
            id="regularize.push",
            statement="pushing lowers it",
            statistic="baseline students' mean similarity minus pushed students'",
            value=sim["baseline"].mean() - sim["push"].mean(),
            spread=C.standard_error(sim["push"], sim["baseline"]),
            null=C.mean_difference_null(sim["baseline"], sim["push"]),
            **common,
        ),
        C.claim(
            id="regularize.accuracy_holds",
            statement="test accuracy holds (within 3 points of the baseline)",
            statistic="mean test accuracy of the regularised students minus the baseline's",
            value=reg.mean() - acc["baseline"].mean(),
            threshold=-0.03,
            spread=C.standard_error(reg, acc["baseline"]),
            null=C.mean_difference_null(reg, acc["baseline"]),
            **common,
        ),
    ]


def table(results: dict) -> str:
    """Every student's similarity to the reference and test accuracy."""
    lines = [
        "| student | seed | SVCCA similarity to reference fc | PWCCA similarity | test accuracy |",
        "| --- | --- | --- | --- | --- |",
    ]
    for s in results["students"]:
        lines.append(
            f"| {s['kind']} | {s['seed']} | {fmt(s['svcca_similarity'])} | "
            f"{fmt(s['pwcca_similarity'])} | {fmt(s['test_accuracy'])} |"
        )
    return "\n".join(lines)


def figure(results: dict, path: pathlib.Path) -> None:
    """Similarity to the reference per student group (each student a dot)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(4, 3.2))
    for i, kind in enumerate(SEEDS):
        v = _values(results, kind, "svcca_similarity")
        ax.plot(np.full(len(v), i), v, "o")
    ax.set_xticks(range(len(SEEDS)), list(SEEDS))
    ax.set_ylabel(f"SVCCA similarity to reference {LAYER}")
    save_figure(fig, path)
