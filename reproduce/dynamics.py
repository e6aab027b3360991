"""PWCCA figures 1 and 6, SVCCA figure 4: learning dynamics and bottom-up convergence.

One convnet is trained on the digits; at every checkpoint the activations of
every layer on the probe set are written to ``OUT/activations/step_XXXXXX.npz``
(one array per layer name, ``(n_probe, units)``; conv layers reduced to the
spatial mean per channel) with the test accuracy in ``OUT/checkpoints.json``.
The analysis reads them back and compares every layer at every checkpoint with
the same layer at the end of training, batched with ``jaxcca.pairwise`` and
``jax.vmap``.
"""

from __future__ import annotations

import json
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

import jaxcca
from reproduce.common import atomic_write, claim, load_done, pyplot, save
from reproduce.data import load_image_splits
from reproduce.models import LAYERS, ConvNet
from reproduce.train import accuracy, probe_activations, train_step

PRESETS = {
    "quick": {"steps": 600, "every": 30, "lr": 3e-3, "batch": 128},
    "full": {"steps": 5000, "every": 100, "lr": 1e-3, "batch": 128},
    "smoke": {"steps": 4, "every": 2, "lr": 3e-3, "batch": 32},
}


def train_with_checkpoints(
    out: pathlib.Path, cfg: dict, *, seed: int = 0, log=print, data_dir=None
) -> list:
    """Trains and writes probe activations at every checkpoint; returns the steps."""
    data = load_image_splits(data_dir)
    model = ConvNet(1.0, in_shape=data["train"].images.shape[1:], rngs=nnx.Rngs(seed))
    opt = nnx.Optimizer(model, optax.adam(cfg["lr"]), wrt=nnx.Param)

    acts_dir = out / "activations"
    acts_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    x_all, y_all = jnp.asarray(data["train"].images), jnp.asarray(data["train"].labels)
    record = []
    for t in range(cfg["steps"] + 1):
        if t % cfg["every"] == 0 or t == cfg["steps"]:
            acts = probe_activations(model, data["probe"].images)
            path = acts_dir / f"step_{t:06d}.npz"
            tmp = path.with_suffix(".tmp.npz")
            np.savez(tmp, **acts)
            tmp.replace(path)
            acc = accuracy(model, data["test"].images, data["test"].labels)
            record.append({"step": t, "test_acc": acc, "file": path.name})
            atomic_write(out / "checkpoints.json", json.dumps(record, indent=2))
        if t < cfg["steps"]:
            idx = rng.integers(0, len(y_all), cfg["batch"])
            train_step(model, opt, x_all[idx], y_all[idx])
    log(f"  trained {cfg['steps']} steps, {len(record)} checkpoints in {acts_dir}")
    return record


def load_checkpoints(out: pathlib.Path) -> tuple[list, dict]:
    """Reads ``checkpoints.json`` and the activations back: ``{layer: (T, n, d)}``."""
    record = json.loads((out / "checkpoints.json").read_text())
    stacks = {layer: [] for layer in LAYERS}
    for r in record:
        with np.load(out / "activations" / r["file"]) as f:
            for layer in LAYERS:
                stacks[layer].append(f[layer])
    return record, {k: np.stack(v).astype(np.float32) for k, v in stacks.items()}


def _converged_step(steps, dist, tol):
    """First checkpoint after which the distance to the final stays below ``tol``."""
    above = np.nonzero(dist > tol)[0]
    return (
        int(steps[above[-1] + 1])
        if above.size and above[-1] + 1 < len(steps)
        else int(steps[0] if not above.size else steps[-1])
    )


def run(out: pathlib.Path, *, preset: str = "quick", log=print, data_dir=None) -> dict:
    """Trains (or reuses the checkpoints), then compares every checkpoint with the end."""
    done = load_done(out, log)
    if done is not None:
        return done
    cfg = PRESETS[preset]
    if (
        not (out / "checkpoints.json").exists()
        or json.loads((out / "checkpoints.json").read_text())[-1]["step"] != cfg["steps"]
    ):
        train_with_checkpoints(out, cfg, log=log, data_dir=data_dir)
    record, stacks = load_checkpoints(out)
    steps = np.asarray([r["step"] for r in record])
    accs = np.asarray([r["test_acc"] for r in record])
    curves = {"pwcca": {}, "cca": {}}
    for layer, stack in stacks.items():
        final = stack[-1:]
        for measure in curves:
            sim = np.asarray(jaxcca.pairwise(stack, final, measure=measure))[:, 0]
            curves[measure][layer] = (1.0 - sim).tolist()
    # Bottom-up: the step after which each layer stays within tol of its final form.
    tol = 0.05
    conv_step = {
        m: {layer: _converged_step(steps, np.asarray(c[layer]), tol) for layer in LAYERS}
        for m, c in curves.items()
    }
    hidden = LAYERS[:-1]
    bottom_up = {
        m: all(
            conv_step[m][a] <= conv_step[m][b] for a, b in zip(hidden[:-1], hidden[1:], strict=True)
        )
        for m in curves
    }
    # PWCCA figure 1: sorted CCA coefficients of fc against its final form.
    rhos = np.asarray(
        jax.vmap(lambda a: jaxcca.cca(a, stacks["fc"][-1]).rho)(jnp.asarray(stacks["fc"]))
    )
    perf_step_idx = int(np.nonzero(accs >= accs[-1] - 0.01)[0][0])
    rho_at_perf = rhos[perf_step_idx]
    k = rho_at_perf.size
    unconverged = float(np.mean(rho_at_perf < 0.9))
    top_q, bottom_q = rho_at_perf[: k // 4], rho_at_perf[-(k // 4) :]
    # Stable early stays stable: the top directions at performance convergence keep
    # rho > 0.9 at every later checkpoint.
    later = rhos[perf_step_idx:, : k // 4]
    results = {
        "experiment": "dynamics",
        "title": "Learning dynamics: convergence of each layer to its final representation",
        "paper": "PWCCA (Morcos et al. 2018) figures 1 and 6; SVCCA (Raghu et al. 2017) figure 4",
        "preset": preset,
        "steps": steps.tolist(),
        "test_acc": accs.tolist(),
        "distance_to_final": curves,
        "converged_step": conv_step,
        "claims": [
            claim(
                "after test accuracy has converged, many sorted CCA coefficients against "
                "the final representation are still unconverged (layer fc)",
                f"accuracy within 1 point of final at step {steps[perf_step_idx]}; there "
                f"{unconverged:.0%} of coefficients are below 0.9 (top quarter mean "
                f"{top_q.mean():.3f}, bottom quarter {bottom_q.mean():.3f})",
                unconverged >= 0.25,
            ),
            claim(
                "directions stable early stay stable (top quarter keeps rho > 0.9 "
                "at every later checkpoint)",
                f"min over later checkpoints {later.min():.3f}",
                later.min() > 0.9,
            ),
            claim(
                "bottom-up convergence: lower layers reach their final representation "
                f"first (PWCCA distance to final < {tol})",
                ", ".join(f"{layer} step {conv_step['pwcca'][layer]}" for layer in hidden),
                bottom_up["pwcca"],
            ),
            claim(
                "the weighted mean (PWCCA) shows bottom-up convergence at least as clearly "
                "as the unweighted mean CCA",
                "unweighted: "
                + ", ".join(f"{layer} step {conv_step['cca'][layer]}" for layer in hidden)
                + f" (ordered: {'yes' if bottom_up['cca'] else 'no'})",
                bottom_up["pwcca"],
            ),
        ],
        "table": _table(conv_step, hidden),
        "figures": ["distance_to_final.png", "sorted_cca.png"],
    }
    _figures(out, steps, accs, curves, rhos, perf_step_idx)
    return save(out, results)


def _table(conv_step, hidden) -> str:
    lines = [
        "| layer | converged step (PWCCA) | converged step (mean CCA) |",
        "| --- | --- | --- |",
    ]
    for layer in hidden:
        lines.append(f"| {layer} | {conv_step['pwcca'][layer]} | {conv_step['cca'][layer]} |")
    return "\n".join(lines)


def _figures(out, steps, accs, curves, rhos, perf_idx) -> None:
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2), sharey=True)
    for ax, measure in zip(axes, ("pwcca", "cca"), strict=True):
        for layer, d in curves[measure].items():
            ax.plot(steps, d, label=layer)
        ax.set_title(f"{measure} distance to final")
        ax.set_xlabel("step")
        ax.legend()
    fig.tight_layout()
    fig.savefig(out / "distance_to_final.png", dpi=120)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(5, 3.2))
    cmap = plt.get_cmap("viridis")
    for i in range(0, len(steps), max(1, len(steps) // 8)):
        ax.plot(rhos[i], color=cmap(i / max(1, len(steps) - 1)), label=f"step {steps[i]}")
    ax.plot(rhos[perf_idx], "k--", label=f"accuracy converged ({steps[perf_idx]})")
    ax.set_xlabel("CCA direction (sorted)")
    ax.set_ylabel("correlation with final fc")
    ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(out / "sorted_cca.png", dpi=120)
    plt.close(fig)


LSTM_PRESETS = {
    "quick": {
        "steps": 600,
        "every": 30,
        "lr": 3e-3,
        "batch": 32,
        "seq_len": 32,
        "layers": 3,
        "hidden": 64,
        "max_chars": 300_000,
        "probe_windows": 20,
    },
    "full": {
        "steps": 20000,
        "every": 500,
        "lr": 1e-3,
        "batch": 64,
        "seq_len": 64,
        "layers": 3,
        "hidden": 256,
        "max_chars": None,
        "probe_windows": 64,
    },
    "smoke": {
        "steps": 4,
        "every": 2,
        "lr": 3e-3,
        "batch": 4,
        "seq_len": 8,
        "layers": 2,
        "hidden": 8,
        "max_chars": 20_000,
        "probe_windows": 4,
    },
}


def _distance_curves(stacks: dict) -> dict:
    curves = {"pwcca": {}, "cca": {}}
    for layer, stack in stacks.items():
        for measure in curves:
            sim = np.asarray(jaxcca.pairwise(stack, stack[-1:], measure=measure))[:, 0]
            curves[measure][layer] = (1.0 - sim).tolist()
    return curves


def _lm_corpus(cfg: dict, data_dir):
    """PTB or WikiText-2 when ``data_dir`` holds them, else the embedded Shakespeare."""
    from reproduce.datasets import load_ptb, load_shakespeare, load_wikitext2

    if data_dir is not None:
        d = pathlib.Path(data_dir)
        if (d / "ptb.train.txt").exists():
            return load_ptb(d), "PTB"
        if (d / "wiki.train.tokens").exists() or (d / "wikitext-2").is_dir():
            return load_wikitext2(d), "WikiText-2"
    return load_shakespeare(max_chars=cfg["max_chars"]), "Shakespeare (characters)"


def run_lstm(out: pathlib.Path, *, preset: str = "quick", log=print, data_dir=None) -> dict:
    """A character-level LSTM on the embedded Shakespeare: bottom-up convergence of its layers.

    Activations of every LSTM layer are taken on fixed validation windows
    (every time step of every window is a sample) at every checkpoint and
    written to ``OUT/activations/step_XXXXXX.npz``.
    """
    done = load_done(out, log)
    if done is not None:
        return done
    from reproduce.datasets import batchify
    from reproduce.models import LSTMLanguageModel

    cfg = LSTM_PRESETS[preset]
    corpus, source = _lm_corpus(cfg, data_dir)
    log(f"  corpus: {source}")
    x, y = batchify(corpus.train, batch=cfg["batch"], seq_len=cfg["seq_len"])
    px, py = batchify(corpus.valid, batch=1, seq_len=cfg["seq_len"])
    px, py = px[: cfg["probe_windows"]], py[: cfg["probe_windows"]]
    model = LSTMLanguageModel(
        len(corpus.vocab), hidden=cfg["hidden"], layers=cfg["layers"], rngs=nnx.Rngs(0)
    )
    names = model.layer_names[:-1]
    opt = nnx.Optimizer(model, optax.adam(cfg["lr"]), wrt=nnx.Param)

    @nnx.jit
    def probe(model, a, b):
        feats = model.features(a)
        loss = optax.softmax_cross_entropy_with_integer_labels(feats["logits"], b).mean()
        return {k: feats[k].reshape(-1, feats[k].shape[-1]) for k in names}, loss

    acts_dir = out / "activations"
    acts_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    record, stacks = [], {k: [] for k in names}
    for t in range(cfg["steps"] + 1):
        if t % cfg["every"] == 0 or t == cfg["steps"]:
            feats, loss = probe(model, px, py)
            feats = {k: np.asarray(v) for k, v in feats.items()}
            path = acts_dir / f"step_{t:06d}.npz"
            tmp = path.with_suffix(".tmp.npz")
            np.savez(tmp, **feats)
            tmp.replace(path)
            record.append({"step": t, "valid_loss": float(loss), "file": path.name})
            for k in names:
                stacks[k].append(feats[k])
        if t < cfg["steps"]:
            idx = rng.integers(0, len(x), cfg["batch"])
            train_step(model, opt, x[idx], y[idx])
    atomic_write(out / "checkpoints.json", json.dumps(record, indent=2))
    log(f"  trained {cfg['steps']} steps; valid loss {record[-1]['valid_loss']:.3f}")
    stacks = {k: np.stack(v).astype(np.float32) for k, v in stacks.items()}
    steps = np.asarray([r["step"] for r in record])
    curves = _distance_curves(stacks)
    tol = 0.05
    conv_step = {
        m: {layer: _converged_step(steps, np.asarray(c[layer]), tol) for layer in names}
        for m, c in curves.items()
    }
    ordered = {
        m: all(
            conv_step[m][a] <= conv_step[m][b] for a, b in zip(names[:-1], names[1:], strict=True)
        )
        for m in curves
    }
    # the area under each layer's distance-to-final curve: smaller = converged earlier
    area = {m: {k: float(np.mean(v)) for k, v in c.items()} for m, c in curves.items()}
    area_ordered = {
        m: all(area[m][a] <= area[m][b] for a, b in zip(names[:-1], names[1:], strict=True))
        for m in curves
    }
    results = {
        "experiment": "lstm_dynamics",
        "title": "Bottom-up convergence in a character-level LSTM (Shakespeare)",
        "paper": "PWCCA (Morcos et al. 2018) figure 6 (LSTM)",
        "preset": preset,
        "steps": steps.tolist(),
        "valid_loss": [r["valid_loss"] for r in record],
        "distance_to_final": curves,
        "converged_step": conv_step,
        "mean_distance_to_final": area,
        "claims": [
            claim(
                "LSTM layers converge bottom-up: lower layers reach their final "
                f"representation first (PWCCA distance to final < {tol})",
                ", ".join(f"{k} step {conv_step['pwcca'][k]}" for k in names),
                ordered["pwcca"],
            ),
            claim(
                "the same order in the mean distance to the final representation over "
                "training, weighted (PWCCA) and unweighted (mean CCA)",
                "PWCCA "
                + ", ".join(f"{k} {area['pwcca'][k]:.3f}" for k in names)
                + "; CCA "
                + ", ".join(f"{k} {area['cca'][k]:.3f}" for k in names),
                area_ordered["pwcca"],
            ),
        ],
        "table": "\n".join(
            [
                "| layer | converged step (PWCCA) | (mean CCA) | mean PWCCA distance to final |",
                "| --- | --- | --- | --- |",
                *(
                    f"| {k} | {conv_step['pwcca'][k]} | {conv_step['cca'][k]} | "
                    f"{area['pwcca'][k]:.3f} |"
                    for k in names
                ),
            ]
        ),
        "figures": ["distance_to_final.png"],
    }
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2), sharey=True)
    for ax, measure in zip(axes, ("pwcca", "cca"), strict=True):
        for layer, d in curves[measure].items():
            ax.plot(steps, d, label=layer)
        ax.set_title(f"LSTM: {measure} distance to final")
        ax.set_xlabel("step")
        ax.legend()
    fig.tight_layout()
    fig.savefig(out / "distance_to_final.png", dpi=120)
    plt.close(fig)
    return save(out, results)
