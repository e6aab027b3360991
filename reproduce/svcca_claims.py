"""SVCCA (Raghu et al. 2017): what SVCCA directions say about trained networks.

* figures 2a and 3: projecting a layer onto a few CCA directions keeps the
  network's accuracy, better than keeping as many neurons;
* figure 5: freeze training (freezing lower layers on a linear schedule);
* figure 6: class sensitivity (CCA of each layer with each class's logit);
* figure 7: a convnet against a resnet, layer by layer.

All on the digits with the SVCCA convnet (batch norm, width multiplier) and a
small ResNet, trained with :mod:`reproduce.trainer`.
"""

from __future__ import annotations

import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

import jaxcca
from reproduce import configs, trainer
from reproduce.common import claim, load_done, pyplot, save
from reproduce.data import load_digits_splits

STEPS = {"quick": 300, "full": 3000, "smoke": 4}


def _trained(out: pathlib.Path, name: str, preset: str, *, seed: int = 0):
    """A network trained once into ``OUT/../networks`` and shared by these experiments."""
    out = out.parent / "networks"
    cfg = configs.get_config(name, "smoke" if preset == "smoke" else "quick")
    cfg["seed"] = seed
    cfg["steps"] = STEPS[preset]
    cfg["every"] = cfg["steps"]
    model, data = configs.build(cfg)
    trainer.fit(out / f"{name}_seed{seed}", model, data, cfg, progress=False, log=lambda *a: None)
    # fit restores nothing when the run was already finished: load its last checkpoint
    ckpts = sorted((out / f"{name}_seed{seed}" / "checkpoints").glob("ckpt_*.npz"))
    opt = trainer.make_optimizer(model, cfg)
    trainer.load_checkpoint(ckpts[-1], model, opt)
    model.eval()
    return model


def _reduce(a: np.ndarray) -> np.ndarray:
    return a.mean(axis=(1, 2)) if a.ndim == 4 else a


def _accuracy_from_fc2(model, h, labels) -> float:
    logits = model.out_layer(jnp.asarray(h, jnp.float32))
    return float(np.mean(np.asarray(jnp.argmax(logits, -1)) == labels))


def run_projection(out: pathlib.Path, *, preset: str = "quick", log=print, data_dir=None) -> dict:
    """Keep k CCA directions of layer fc2 (CCA with the logits) vs k neurons; accuracy."""
    done = load_done(out, log)
    if done is not None:
        return done
    data = load_digits_splits()
    model = _trained(out, "svcca_convnet", preset)
    feats_tr = model.features(jnp.asarray(data["train"].images))
    feats_te = model.features(jnp.asarray(data["test"].images))
    h_tr, h_te = np.asarray(feats_tr["fc2"], np.float64), np.asarray(feats_te["fc2"], np.float64)
    y_te = data["test"].labels
    d = h_tr.shape[1]
    res = jaxcca.cca(h_tr.astype(np.float32), np.asarray(feats_tr["logits"], np.float32))
    weights = np.asarray(res.x_weights, np.float64)  # (d, p): directions in neuron space
    mean = h_tr.mean(0)
    full = _accuracy_from_fc2(model, h_te, y_te)
    rng = np.random.default_rng(0)
    ks = [k for k in (1, 2, 3, 5, 7, 10) if k <= weights.shape[1]]
    rows = []
    for k in ks:
        z_tr = (h_tr - mean) @ weights[:, :k]
        coef, *_ = np.linalg.lstsq(z_tr, h_tr - mean, rcond=None)
        h_cca = mean + ((h_te - mean) @ weights[:, :k]) @ coef
        keep_rand = rng.choice(d, k, replace=False)
        keep_max = np.argsort(-np.abs(h_tr).mean(0))[:k]
        accs = {"cca": _accuracy_from_fc2(model, h_cca, y_te)}
        for name, keep in (("random_neurons", keep_rand), ("max_activation_neurons", keep_max)):
            h = np.broadcast_to(mean, h_te.shape).copy()
            h[:, keep] = h_te[:, keep]
            accs[name] = _accuracy_from_fc2(model, h, y_te)
        rows.append({"k": k, **accs})
    log(f"  full accuracy {full:.3f}; {rows[-1]}")
    # Section 4.4, compression: fc1's output kept in its top k CCA directions (with
    # the logits) makes fc2 a rank-k product, k * (d1 + d2) weights instead of d1 * d2.
    g_tr, g_te = np.asarray(feats_tr["fc1"], np.float64), np.asarray(feats_te["fc1"], np.float64)
    res1 = jaxcca.cca(g_tr.astype(np.float32), np.asarray(feats_tr["logits"], np.float32))
    w1, mean1 = np.asarray(res1.x_weights, np.float64), g_tr.mean(0)
    d1, d2 = g_tr.shape[1], int(model.fc2.out_features)
    compression = []
    for k in ks:
        z_tr = (g_tr - mean1) @ w1[:, :k]
        coef, *_ = np.linalg.lstsq(z_tr, g_tr - mean1, rcond=None)
        g_hat = jnp.asarray(mean1 + ((g_te - mean1) @ w1[:, :k]) @ coef, jnp.float32)
        h_hat = jax.nn.relu(model.bn_fc2(model.fc2(g_hat)))
        compression.append(
            {
                "k": k,
                "accuracy": _accuracy_from_fc2(model, h_hat, y_te),
                "fc2_weights": k * (d1 + d2),
                "fc2_weights_full": d1 * d2,
            }
        )
    small = next((c for c in compression if c["accuracy"] >= full - 0.02), None)
    best_k = next((r["k"] for r in rows if r["cca"] >= full - 0.02), None)
    last = rows[-1]
    results = {
        "experiment": "svcca_projection",
        "title": "A layer projected onto a few CCA directions keeps the accuracy",
        "paper": "SVCCA (Raghu et al. 2017) figures 2a and 3",
        "preset": preset,
        "width": d,
        "full_accuracy": full,
        "rows": rows,
        "compression": compression,
        "claims": [
            claim(
                f"projecting fc2 ({d} neurons) onto k << {d} CCA directions keeps test "
                "accuracy (within 2 points)",
                f"full {full:.3f}; k={last['k']}: {last['cca']:.3f}"
                + (f"; first within 2 points at k={best_k}" if best_k else ""),
                best_k is not None and best_k <= d // 4,
            ),
            claim(
                "... better than keeping as many random or maximum-activation neurons",
                f"k={last['k']}: CCA {last['cca']:.3f}, random {last['random_neurons']:.3f}, "
                f"max-activation {last['max_activation_neurons']:.3f}",
                all(
                    r["cca"] >= max(r["random_neurons"], r["max_activation_neurons"]) - 1e-9
                    for r in rows
                ),
            ),
            claim(
                "compression (section 4.4): fc2 rewritten as a rank-k product through fc1's "
                "top CCA directions keeps accuracy (within 2 points) with at most half "
                "of fc2's weights",
                f"full {full:.3f}; "
                + (
                    f"k={small['k']}: {small['accuracy']:.3f} with {small['fc2_weights']} of "
                    f"{small['fc2_weights_full']} weights"
                    if small
                    else f"k={compression[-1]['k']}: {compression[-1]['accuracy']:.3f}"
                ),
                small is not None and 2 * small["fc2_weights"] <= small["fc2_weights_full"],
            ),
        ],
        "table": "\n".join(
            [
                "| k | CCA directions | random neurons | max-activation neurons | "
                "fc2 compressed to rank k: accuracy (weights) |",
                "| --- | --- | --- | --- | --- |",
                *(
                    f"| {r['k']} | {r['cca']:.3f} | {r['random_neurons']:.3f} | "
                    f"{r['max_activation_neurons']:.3f} | {c['accuracy']:.3f} "
                    f"({c['fc2_weights']} of {c['fc2_weights_full']}) |"
                    for r, c in zip(rows, compression, strict=True)
                ),
            ]
        ),
        "figures": ["projection.png"],
    }
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.2))
    for key, style in (("cca", "o-"), ("random_neurons", "s--"), ("max_activation_neurons", "^--")):
        ax.plot(ks, [r[key] for r in rows], style, label=key)
    ax.axhline(full, color="k", lw=0.8, label="all neurons")
    ax.set_xlabel("k kept")
    ax.set_ylabel("test accuracy")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "projection.png", dpi=120)
    plt.close(fig)
    return save(out, results)


def _freeze_train(preset: str, *, freeze: bool, seed: int = 0):
    """The SVCCA convnet trained normally, or with lower layers frozen on a linear schedule."""
    from reproduce.models import SVCCAConvNet

    data = load_digits_splits()
    steps = STEPS[preset]
    model = SVCCAConvNet(0.25, in_shape=(8, 8, 1), rngs=nnx.Rngs(seed))
    opt = nnx.Optimizer(model, optax.adam(3e-3), wrt=nnx.Param)
    # the layers in order, bottom to top; layer i freezes at step (i + 1) / (L + 1) * steps
    groups = [
        lambda m: m.conv[0],
        lambda m: (m.conv[1], m.bn_conv2),
        lambda m: m.conv[2],
        lambda m: m.conv[3],
        lambda m: (m.conv[4], m.bn_conv5),
        lambda m: (m.fc1, m.bn_fc1),
        lambda m: (m.fc2, m.bn_fc2),
    ]
    n_layers = len(groups)

    @nnx.jit(static_argnums=(4,))
    def step(model, opt, x, y, n_frozen):
        # copies: a State holds references to the model's variables
        frozen = [jax.tree.map(jnp.copy, nnx.state(g(model), nnx.Param)) for g in groups[:n_frozen]]

        def loss_fn(m):
            return optax.softmax_cross_entropy_with_integer_labels(m(x), y).mean()

        loss, grads = nnx.value_and_grad(loss_fn)(model)
        opt.update(model, grads)
        for g, st in zip(groups[:n_frozen], frozen, strict=True):
            nnx.update(g(model), st)
        return loss

    x_all, y_all = jnp.asarray(data["train"].images), jnp.asarray(data["train"].labels)
    model.train()
    for t in range(steps):
        n_frozen = 0
        if freeze:
            n_frozen = sum(t >= (i + 1) * steps // (n_layers + 1) for i in range(n_layers))
        idx = np.random.default_rng([seed, t]).integers(0, len(y_all), 128)
        step(model, opt, x_all[idx], y_all[idx], n_frozen)
    model.eval()
    logits = model(jnp.asarray(data["test"].images))
    return float(np.mean(np.asarray(jnp.argmax(logits, -1)) == data["test"].labels))


def run_freeze(out: pathlib.Path, *, preset: str = "quick", log=print, data_dir=None) -> dict:
    """Freeze training vs normal training, same seeds; test accuracy."""
    done = load_done(out, log)
    if done is not None:
        return done
    seeds = (0, 1, 2) if preset != "smoke" else (0,)
    base = [_freeze_train(preset, freeze=False, seed=s) for s in seeds]
    frozen = [_freeze_train(preset, freeze=True, seed=s) for s in seeds]
    log(f"  normal {base}, freeze training {frozen}")
    results = {
        "experiment": "freeze_training",
        "title": "Freeze training",
        "paper": "SVCCA (Raghu et al. 2017) figure 5",
        "preset": preset,
        "normal": base,
        "freeze": frozen,
        "claims": [
            claim(
                "freezing lower layers on a linear schedule keeps or improves test "
                "accuracy (mean over seeds, within 0.5 points)",
                f"normal {np.mean(base):.4f}, freeze training {np.mean(frozen):.4f} "
                f"({len(seeds)} seeds)",
                np.mean(frozen) >= np.mean(base) - 0.005,
            )
        ],
        "table": "\n".join(
            [
                "| seed | normal | freeze training |",
                "| --- | --- | --- |",
                *(
                    f"| {s} | {a:.4f} | {b:.4f} |"
                    for s, a, b in zip(seeds, base, frozen, strict=True)
                ),
            ]
        ),
        "figures": [],
    }
    return save(out, results)


def run_class_sensitivity(
    out: pathlib.Path, *, preset: str = "quick", log=print, data_dir=None
) -> dict:
    """CCA of every layer with every class's logit, batched over classes with vmap."""
    done = load_done(out, log)
    if done is not None:
        return done
    data = load_digits_splits()
    model = _trained(out, "svcca_convnet", preset)
    feats = {
        k: _reduce(np.asarray(v))
        for k, v in model.features(jnp.asarray(data["test"].images)).items()
    }
    logits = feats.pop("logits").astype(np.float32)
    layers = list(feats)
    # one batched call: every layer against every class's logit (a 1-neuron representation)
    sim = np.asarray(
        jaxcca.pairwise(
            [feats[layer].astype(np.float32) for layer in layers],
            [logits[:, c : c + 1] for c in range(logits.shape[1])],
            measure="cca",
        )
    )
    sens = {layer: sim[i].tolist() for i, layer in enumerate(layers)}
    mean_by_layer = [float(np.mean(sens[layer])) for layer in layers]
    rising = sum(b >= a - 0.01 for a, b in zip(mean_by_layer[:-1], mean_by_layer[1:], strict=True))
    spread = [float(np.ptp(sens[layer])) for layer in layers]
    results = {
        "experiment": "class_sensitivity",
        "title": "Class sensitivity: CCA of each layer with each class's logit",
        "paper": "SVCCA (Raghu et al. 2017) figure 6",
        "preset": preset,
        "layers": layers,
        "sensitivity": sens,
        "claims": [
            claim(
                "sensitivity to the class logits grows through the network "
                "(mean over classes, layer to layer, allowing 0.01 of noise)",
                ", ".join(
                    f"{layer} {v:.3f}" for layer, v in zip(layers, mean_by_layer, strict=True)
                ),
                rising == len(layers) - 1,
            ),
            claim(
                "classes differ in how early they are represented (spread over classes "
                "in the first conv layer > 0.05)",
                f"spread over classes: conv1 {spread[0]:.3f}, {layers[-1]} {spread[-1]:.3f}",
                spread[0] > 0.05,
            ),
        ],
        "table": "\n".join(
            [
                "| layer | " + " | ".join(str(c) for c in range(10)) + " |",
                "| --- " * 11 + "|",
                *(
                    f"| {layer} | " + " | ".join(f"{v:.2f}" for v in sens[layer]) + " |"
                    for layer in layers
                ),
            ]
        ),
        "figures": ["class_sensitivity.png"],
    }
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 3.4))
    for c in range(10):
        ax.plot(layers, [sens[layer][c] for layer in layers], "o-", label=str(c), lw=1)
    ax.set_ylabel("CCA with class logit")
    ax.legend(ncol=5, fontsize=6, title="digit")
    fig.tight_layout()
    fig.savefig(out / "class_sensitivity.png", dpi=120)
    plt.close(fig)
    return save(out, results)


def run_architectures(
    out: pathlib.Path, *, preset: str = "quick", log=print, data_dir=None
) -> dict:
    """Every layer of the convnet against every layer of the resnet (SVCCA, spatial mean)."""
    done = load_done(out, log)
    if done is not None:
        return done
    data = load_digits_splits()
    probe = jnp.asarray(data["probe"].images)
    conv = _trained(out, "svcca_convnet", preset)
    res = _trained(out, "resnet", preset)
    fa = {k: _reduce(np.asarray(v)).astype(np.float32) for k, v in conv.features(probe).items()}
    fb = {k: _reduce(np.asarray(v)).astype(np.float32) for k, v in res.features(probe).items()}
    la, lb = list(fa), list(fb)
    keep = min(10, *(v.shape[1] for v in fa.values()), *(v.shape[1] for v in fb.values()))
    sim = np.asarray(
        jaxcca.pairwise([fa[k] for k in la], [fb[k] for k in lb], measure="svcca", keep=keep)
    )
    best = sim.argmax(1)
    depth_a = np.arange(len(la)) / (len(la) - 1)
    depth_b = best / (len(lb) - 1)
    from scipy.stats import spearmanr

    rho = float(spearmanr(depth_a, depth_b).statistic)
    results = {
        "experiment": "architectures",
        "title": "Convnet against resnet, layer by layer",
        "paper": "SVCCA (Raghu et al. 2017) figure 7",
        "preset": preset,
        "convnet_layers": la,
        "resnet_layers": lb,
        "svcca_similarity": sim.tolist(),
        "claims": [
            claim(
                "layers at similar relative depth are most similar across architectures "
                "(Spearman correlation of relative depth and the best-matching layer's "
                "depth > 0.5)",
                f"Spearman {rho:.2f}; best matches: "
                + ", ".join(f"{a}->{lb[b]}" for a, b in zip(la, best, strict=True)),
                rho > 0.5,
            )
        ],
        "table": "\n".join(
            [
                "| convnet \\ resnet | " + " | ".join(lb) + " |",
                "| --- " * (len(lb) + 1) + "|",
                *(
                    f"| {a} | " + " | ".join(f"{v:.2f}" for v in sim[i]) + " |"
                    for i, a in enumerate(la)
                ),
            ]
        ),
        "figures": ["architectures.png"],
    }
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 4))
    im = ax.imshow(sim, vmin=0, vmax=1)
    ax.set_xticks(range(len(lb)), lb, rotation=45, fontsize=7)
    ax.set_yticks(range(len(la)), la, fontsize=7)
    ax.set_xlabel("resnet")
    ax.set_ylabel("convnet")
    ax.set_title(f"SVCCA similarity (keep {keep})")
    fig.colorbar(im)
    fig.tight_layout()
    fig.savefig(out / "architectures.png", dpi=120)
    plt.close(fig)
    return save(out, results)
