"""jaxcca as a loss term: pull a layer towards a frozen reference network's, or push it away.

A reference convnet is trained on the digits and frozen. Three students start
from the same seed: one trained on cross-entropy alone, one with
``lam * jaxcca.losses.similarity_loss(fc, fc_ref, direction="pull")`` added, one
with ``direction="push"``. On the held-out probe set the SVCCA similarity of
the students' ``fc`` layer to the reference's should move as intended while
test accuracy holds.
"""

from __future__ import annotations

import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

import jaxcca
from reproduce.common import claim, load_done, save
from reproduce.data import load_image_splits
from reproduce.train import accuracy, train_convnet

PRESETS = {
    "quick": {"steps": 400, "lam": 1.0, "keep": 16, "batch": 256},
    "full": {"steps": 2000, "lam": 1.0, "keep": 16, "batch": 256},
    "smoke": {"steps": 3, "lam": 1.0, "keep": 8, "batch": 64},
}
LAYER = "fc"


def train_student(data, reference, *, seed, steps, lam, direction, keep, batch, lr=3e-3):
    """A ConvNet trained on cross-entropy (+ a similarity term when ``direction``)."""
    from reproduce.models import ConvNet

    model = ConvNet(1.0, in_shape=data["train"].images.shape[1:], rngs=nnx.Rngs(seed))
    opt = nnx.Optimizer(model, optax.adam(lr), wrt=nnx.Param)

    @nnx.jit
    def step(model, opt, x, y, h_ref):
        def loss_fn(m):
            feats = m.features(x)
            ce = optax.softmax_cross_entropy_with_integer_labels(feats["logits"], y).mean()
            if direction is None:
                return ce
            term = jaxcca.losses.similarity_loss(
                feats[LAYER], h_ref, measure="svcca", direction=direction, keep=keep
            )
            return ce + lam * term

        loss, grads = nnx.value_and_grad(loss_fn)(model)
        opt.update(model, grads)
        return loss

    ref_features = nnx.jit(lambda m, x: m.features(x)[LAYER])
    rng = np.random.default_rng(seed)
    x_all, y_all = jnp.asarray(data["train"].images), jnp.asarray(data["train"].labels)
    for _ in range(steps):
        idx = rng.integers(0, len(y_all), batch)
        x = x_all[idx]
        h_ref = jax.lax.stop_gradient(ref_features(reference, x))
        step(model, opt, x, y_all[idx], h_ref)
    return model


def run(out: pathlib.Path, *, preset: str = "quick", log=print, data_dir=None) -> dict:
    """Trains the reference and the three students; writes results.json and a figure."""
    done = load_done(out, log)
    if done is not None:
        return done
    cfg = PRESETS[preset]
    data = load_image_splits(data_dir)
    reference = train_convnet(
        data["train"].images, data["train"].labels, seed=0, steps=max(cfg["steps"], 3)
    )
    probe = jnp.asarray(data["probe"].images)
    h_ref = np.asarray(reference.features(probe)[LAYER])
    rows = {}
    for name, direction in [("baseline", None), ("pull", "pull"), ("push", "push")]:
        student = train_student(
            data,
            reference,
            seed=1,
            steps=cfg["steps"],
            lam=cfg["lam"],
            direction=direction,
            keep=cfg["keep"],
            batch=cfg["batch"],
        )
        h = np.asarray(student.features(probe)[LAYER])
        rows[name] = {
            "svcca_similarity": float(jaxcca.svcca_similarity(h, h_ref, keep=cfg["keep"])),
            "pwcca_similarity": float(jaxcca.pwcca_similarity(h, h_ref)),
            "test_accuracy": accuracy(student, data["test"].images, data["test"].labels),
        }
        log(f"  student {name}: {rows[name]}")
    ref_acc = accuracy(reference, data["test"].images, data["test"].labels)
    base, pull, push = rows["baseline"], rows["pull"], rows["push"]
    acc_ok = all(abs(r["test_accuracy"] - base["test_accuracy"]) <= 0.03 for r in rows.values())
    results = {
        "experiment": "regularize",
        "title": "jaxcca as a loss term: pull a layer towards a frozen network, or push it away",
        "paper": "jaxcca demonstration (issue 5), not a paper figure",
        "preset": preset,
        "reference_test_accuracy": ref_acc,
        "students": rows,
        "claims": [
            claim(
                "pulling raises the SVCCA similarity to the reference (probe set)",
                f"{base['svcca_similarity']:.3f} -> {pull['svcca_similarity']:.3f}",
                pull["svcca_similarity"] > base["svcca_similarity"] + 0.02,
            ),
            claim(
                "pushing lowers it",
                f"{base['svcca_similarity']:.3f} -> {push['svcca_similarity']:.3f}",
                push["svcca_similarity"] < base["svcca_similarity"] - 0.02,
            ),
            claim(
                "test accuracy holds (within 3 points of the baseline)",
                ", ".join(f"{k} {r['test_accuracy']:.3f}" for k, r in rows.items()),
                acc_ok,
            ),
        ],
        "table": _table(rows),
        "figures": [],
    }
    return save(out, results)


def _table(rows: dict) -> str:
    lines = [
        "| student | SVCCA similarity to reference fc | PWCCA similarity | test accuracy |",
        "| --- | --- | --- | --- |",
    ]
    for name, r in rows.items():
        lines.append(
            f"| {name} | {r['svcca_similarity']:.3f} | {r['pwcca_similarity']:.3f} "
            f"| {r['test_accuracy']:.3f} |"
        )
    return "\n".join(lines)
