"""SVCCA figure 4: learning happens bottom-up (the very top layers are the stated exception).

The paper's figure: SVCCA of every layer at a point of training with every
layer at the end, at 0, 35, 75 and 100 % of training, for a convnet and a
resnet. Here, for every network of the shared group (independent seeds, dense
checkpoints every few steps):

* the convergence curve of each layer, SVCCA (99 % of the variance) of the
  layer at step ``t`` with itself at the end; conv layers as channels over
  positions (SVCCA section 3: every ``(image, position)`` a datapoint, ``(N*H*W,
  C)``);
* the layer x layer matrix at 0, 35, 75 and 100 % of training, the same
  SVCCA; two layers of different resolution are compared on the coarser grid
  (the finer map average-pooled to it), a fully connected layer as a 1x1 map.

Two more patterns of the figure are measured, with the same SVCCA, on layers
the probe activations do not hold, from the parameters of the group's kept
checkpoints at 0, 35, 75 and 100 % of training (each claim twice: on the final
networks, and during training, the mean over the 35 and 75 % checkpoints; the 0 %
one is shown but not claimed: a batch norm with its initial statistics is an
exact affine map, so its SVCCA with its input is 1 by construction):

* batch norm layers stay nearly identical to the layer before them (the paper:
  "due to scaling invariance"): SVCCA of every batch norm's output with its
  input in the convnet, against every other pair of consecutive layers (conv,
  ReLU, pool or dense steps) of the same networks;
* the resnet's stripes come from the skip connections ("skip connections
  inducing high similarities to previous layers"): with each block's
  residual-branch layer (``relu(bn1(conv1(x)))``) placed between the block's
  input and output, pairs of residual-stream layers joined only by identity
  skips (every block between them adds its input unchanged; a stride-2 block's
  projection skip is a learned 1x1 convolution, not the identity) are more
  similar than pairs of branch layers the same number of layers apart (mean
  over separations of stream minus branch SVCCA); null: which pairs at a
  separation are "stream" permuted. With one block per stage (quick) the only
  such pair is (stem, block1).

Claim (per architecture): a layer's convergence time, the normalised area above
its curve ``mean_t (1 - s(t)) / (1 - s(0))`` over every checkpoint (not one
threshold crossing), rises with depth. Statistic: Spearman correlation of depth
and convergence time over the layers below the top (the top hidden layer and
the logits excluded: the paper's exception), averaged over networks; spread: its
standard error over networks; null: the depth order permuted independently in
every network. Config: ``svcca_convnet``, ``resnet`` (group in
``OUT/networks/svcca_group``). Command: ``python -m reproduce all --only
bottom_up``. Outputs: ``bottom_up/results.json``, ``bottom_up/bottom_up.png``.
Runtime: quick 57 s CPU on 2 cores (the group already trained); full ~1 GPU hour
(estimate).
"""

from __future__ import annotations

import json
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

import jaxcca
from reproduce import claims as C
from reproduce.experiments import _svcca_group as group
from reproduce.experiments._common import save_figure, save_results
from reproduce.io import pyplot
from reproduce.train import load_checkpoint, make_optimizer, read_activations

TITLE = "Learning is bottom-up: each layer against its final self through training"
PAPER = "SVCCA (Raghu et al. 2017) figure 4"
CONFIGS = ("svcca_convnet", "resnet")
# layers left out of the claim: the top hidden layer and the read-out (the paper's exception)
TOP = {"svcca_convnet": ("fc2", "logits"), "resnet": ("pool", "logits")}
FRACTIONS = group.FRACTIONS


def pooled_rows(a, size: int, width: int) -> np.ndarray:
    """Layer ``a`` (``(N, H, W, C)`` or ``(N, D)``) as ``(N*size*size, width)`` datapoints.

    Conv maps are average-pooled to ``size x size`` (the coarser map's grid when
    two layers of different resolution are compared; a fully connected layer is a
    1x1 map), then every ``(image, position)`` is a datapoint and every channel a
    neuron (SVCCA section 3). Channels are zero-padded to ``width`` so that one
    compiled program serves every layer (a zero neuron carries no variance and
    changes no SVCCA value).
    """
    a = np.asarray(a, np.float32)
    if a.ndim == 2:
        a = a[:, None, None, :]
    n, h, w, c = a.shape
    a = a.reshape(n, size, h // size, size, w // size, c).mean(axis=(2, 4))
    return np.pad(a.reshape(n * size * size, c), ((0, 0), (0, width - c)))


@jax.jit
def _svcca_stack(xs, ys):
    return jax.vmap(lambda x, y: jaxcca.svcca_similarity(x, y, keep=0.99))(xs, ys)


def _size(a) -> int:
    return 1 if a.ndim == 3 else a.shape[2]  # (T, N, D) or (T, N, H, W, C)


def layer_similarity(acts: dict, picks, a: str, b: str, width: int) -> np.ndarray:
    """SVCCA of layer ``a`` at each step of ``picks`` with layer ``b`` at the end."""
    size = min(_size(acts[a]), _size(acts[b]))
    y = jnp.asarray(pooled_rows(acts[b][-1], size, width))
    picks, chunk, found = list(picks), len(FRACTIONS), []
    for start in range(0, len(picks), chunk):  # fixed chunks: one compiled program per grid
        part = picks[start : start + chunk]
        part = part + [part[-1]] * (chunk - len(part))
        xs = jnp.asarray(np.stack([pooled_rows(acts[a][i], size, width) for i in part]))
        found.append(np.asarray(_svcca_stack(xs, jnp.broadcast_to(y, xs.shape))))
    return np.concatenate(found)[: len(picks)]


def end_layers(model, images, config: str) -> dict[str, np.ndarray]:
    """The final network's layers with its batch norms (convnet) or block branches (resnet)."""
    if config == "svcca_convnet":
        feats = model.features(jnp.asarray(images), batch_norm=True)
    else:  # the stem, every block's branch and output: the layers the stripes are made of
        feats = model.features(jnp.asarray(images), branches=True)
        feats = {k: v for k, v in feats.items() if k == "stem" or k.startswith("block")}
    return {k: np.asarray(v, np.float32) for k, v in feats.items() if k != "logits"}


def end_pairs(feats: dict, config: str) -> list[list]:
    """``[a, b, SVCCA]`` of the pairs the batch norm and stripe claims read.

    Convnet: every pair of consecutive layers. Resnet: every pair of two
    residual-stream layers and every pair of two branch layers. Each pair
    compared on the coarser grid of the two, as the matrices are.
    """
    names = list(feats)
    width = max(v.shape[-1] for v in feats.values())
    if config == "svcca_convnet":
        pairs = list(zip(names[:-1], names[1:], strict=True))
    else:
        pairs = [
            (a, b) for i, a in enumerate(names) for b in names[i + 1 :] if _stream(a) == _stream(b)
        ]
    found = []
    for a, b in pairs:
        size = min(
            1 if feats[a].ndim == 2 else feats[a].shape[1],
            1 if feats[b].ndim == 2 else feats[b].shape[1],
        )
        x = jnp.asarray(pooled_rows(feats[a], size, width))[None]
        y = jnp.asarray(pooled_rows(feats[b], size, width))[None]
        found.append([a, b, float(_svcca_stack(x, y)[0])])
    return found


def batch_norm_gap(pairs) -> tuple[float, list[float]]:
    """Mean SVCCA of each batch norm's output with its input, and the other consecutive pairs'."""
    bn = [v for a, b, v in pairs if a == f"{b}_in"]
    return float(np.mean(bn)), [v for a, b, v in pairs if a != f"{b}_in"]


def _stream(name: str) -> bool:
    return not name.endswith("_branch")


def identity_joined(a: str, b: str, layers, identity) -> bool:
    """Whether stream layers ``a`` below ``b`` are joined only by identity skips.

    Every block after ``a`` up to ``b`` (in the interleaved order ``layers``)
    must be in ``identity``, the blocks whose skip adds their input unchanged.
    """
    pos = {k: i for i, k in enumerate(layers)}
    lo, hi = sorted((pos[a], pos[b]))
    between = [k for k in layers[lo + 1 : hi + 1] if _stream(k)]
    return all(k in set(identity) for k in between)


def stripe_contrast(pairs, layers, *, identity=None, relabel=None) -> float:
    """Mean over separations of (stream-pair SVCCA - branch-pair SVCCA), resnet layers.

    ``layers`` is the interleaved order (stem, block1_branch, block1, ...);
    at every separation that has both kinds, the mean SVCCA of pairs of stream
    layers minus that of pairs of branch layers. With ``identity`` (the blocks
    with an identity skip) only stream pairs joined by identity skips alone
    count (:func:`identity_joined`). ``relabel(sep, kinds)`` may permute which
    pairs count as stream (the null).
    """
    pos = {k: i for i, k in enumerate(layers)}
    by_sep: dict[int, list] = {}
    for a, b, v in pairs:
        if _stream(a) != _stream(b):
            continue
        if identity is not None and _stream(a) and not identity_joined(a, b, layers, identity):
            continue
        by_sep.setdefault(abs(pos[b] - pos[a]), []).append((_stream(a), v))
    diffs = []
    for sep, found in sorted(by_sep.items()):
        kinds = np.asarray([k for k, _ in found])
        if kinds.all() or not kinds.any():
            continue
        kinds = relabel(sep, kinds) if relabel is not None else kinds
        vals = np.asarray([v for _, v in found])
        diffs.append(vals[kinds].mean() - vals[~kinds].mean())
    return float(np.mean(diffs)) if diffs else float("nan")


def pairs_during_training(model, run_dir: pathlib.Path, steps, images, config: str) -> list:
    """``[{"step", "pairs"}]``: :func:`end_pairs` at each kept checkpoint of ``steps``.

    The parameters (and batch-norm statistics) of each checkpoint that
    ``train.fit`` kept (``keep_checkpoints``) are loaded into a copy of
    ``model``; a step without a kept checkpoint (a network trained before they
    were kept) is left out.
    """
    cfg = json.loads((pathlib.Path(run_dir) / "config.json").read_text())
    found = []
    for step in steps:
        path = pathlib.Path(run_dir) / "checkpoints" / f"ckpt_{step:06d}.npz"
        if not path.exists():
            continue
        copy = nnx.clone(model)
        load_checkpoint(path, copy, make_optimizer(copy, cfg))
        feats = end_layers(copy, images, config)
        found.append({"step": int(step), "pairs": end_pairs(feats, config)})
    return found


def convergence_time(curve) -> float:
    """Normalised area above a convergence curve: ``mean_t (1 - s(t)) / (1 - s(0))``, t < T."""
    s = np.asarray(curve, np.float64)
    return float(np.mean((1.0 - s[:-1]) / max(1.0 - s[0], 1e-12)))


def run(out: pathlib.Path, *, preset: str, data_dir=None, log=print) -> dict:
    """Convergence curves and the 0/35/75/100 % layer x layer matrices of every network."""
    nets = []
    for config in CONFIGS:
        for seed, d, model, data in group.networks(out, config, preset, data_dir=data_dir, log=log):
            steps, acts, _ = read_activations(d)
            layers = list(acts)
            width = max(v.shape[-1] for v in acts.values())
            every = range(len(steps))
            curves = [layer_similarity(acts, every, k, k, width) for k in layers]
            picks = group.fraction_picks(len(steps))
            matrices = [
                [layer_similarity(acts, picks, a, b, width) for b in layers] for a in layers
            ]
            nets.append(
                {
                    "config": config,
                    "seed": seed,
                    "layers": layers,
                    "steps": steps,
                    "curves": curves,
                    "matrix_steps": [steps[i] for i in picks],
                    # [layer at step][final layer][step pick] -> stored as [pick][a][b]
                    "matrices": np.transpose(np.asarray(matrices), (2, 0, 1)),
                }
            )
            feats = end_layers(model, data["probe_x"], config)
            nets[-1].update(
                end_layers=list(feats),
                end_pairs=end_pairs(feats, config),
                pairs_during_training=pairs_during_training(
                    model, d, nets[-1]["matrix_steps"], data["probe_x"], config
                ),
            )
            if config == "resnet":
                nets[-1]["identity_skips"] = [
                    f"block{i + 1}" for i, b in enumerate(model.blocks) if b.proj is None
                ]
            log(f"  {config} seed {seed}: times {[round(convergence_time(c), 3) for c in curves]}")
    return save_results(
        out,
        "bottom_up",
        {
            "preset": preset,
            "measure": "SVCCA (keep 0.99), conv layers as channels over positions (N*H*W, C); "
            "two layers of different resolution on the coarser grid (average pooling), a fully "
            "connected layer as a 1x1 map",
            "networks": nets,
        },
    )


def _spearman(times) -> float:
    from scipy.stats import spearmanr

    times = np.asarray(times)
    if np.ptp(times) == 0:
        return 0.0
    return float(spearmanr(np.arange(len(times)), times).statistic)


def _claim_layers(net) -> list[int]:
    return [i for i, k in enumerate(net["layers"]) if k not in TOP[net["config"]]]


def claims(results: dict) -> list[dict]:
    """Per architecture: depth vs convergence time, against depth orders permuted per network."""
    out = []
    for config in CONFIGS:
        nets = [n for n in results["networks"] if n["config"] == config]
        if not nets:
            continue
        times = [
            np.asarray([convergence_time(n["curves"][i]) for i in _claim_layers(n)]) for n in nets
        ]
        per_net = [_spearman(t) for t in times]
        rng = np.random.default_rng(0)
        draws = [np.mean([_spearman(rng.permutation(t)) for t in times]) for _ in range(500)]
        kept = [k for k in nets[0]["layers"] if k not in TOP[config]]
        out.append(
            C.claim(
                id=f"bottom_up.{config}",
                paper="SVCCA",
                figure="fig4",
                statement="networks converge from the bottom up (the very top layers excepted)",
                statistic=f"Spearman correlation of depth and convergence time (normalised area "
                f"above the SVCCA-to-final curve) over {', '.join(kept)}; mean over "
                f"{len(nets)} {config} networks",
                value=float(np.mean(per_net)),
                spread=C.standard_error(per_net),
                null=C.null_from(draws, "depth order permuted independently in every network"),
                seeds=[n["seed"] for n in nets],
            )
        )
    return out + pattern_claims(results)


def _interior(n) -> list[list]:
    """The pairs at the kept checkpoints strictly inside training (35 and 75 %)."""
    inside = set(n["matrix_steps"][1:-1])
    return [e["pairs"] for e in n.get("pairs_during_training", []) if e["step"] in inside]


def pattern_claims(results: dict) -> list[dict]:
    """Batch norm layers close to the layer before (convnet); stripes from skips (resnet).

    Each on the final networks and during training (the 35 and 75 % checkpoints).
    """
    out = []
    for config, make in (("svcca_convnet", _batch_norm_claim), ("resnet", _stripes_claim)):
        nets = [n for n in results["networks"] if n["config"] == config and "end_pairs" in n]
        if not nets:
            continue
        out.append(make("", [[n["end_pairs"]] for n in nets], nets, "final"))
        during = [n for n in nets if _interior(n)]
        if during:
            per_net = [_interior(n) for n in during]
            out.append(make("_during_training", per_net, during, "the 35 and 75 % checkpoints"))
    return out


def _batch_norm_claim(suffix: str, per_net, nets, when: str) -> dict:
    """``per_net``: each network's list of pair lists (one per checkpoint)."""
    gaps = [[batch_norm_gap(pairs) for pairs in found] for found in per_net]
    bn = [np.mean([g[0] for g in found]) for found in gaps]
    return C.claim(
        id=f"bottom_up.batch_norm_close{suffix}",
        paper="SVCCA",
        figure="fig4",
        statement="batch norm layers stay nearly identical to the layer before them",
        statistic="SVCCA (keep 0.99, channels over positions) of each batch norm's output with "
        f"its input, convnets at {when}; mean over batch norms, checkpoints and networks",
        value=float(np.mean(bn)),
        spread=C.standard_error(bn),
        null=C.null_from(
            [v for found in gaps for g in found for v in g[1]],
            "every other pair of consecutive layers (conv, ReLU, pool, dense) of the same "
            "networks at the same checkpoints",
        ),
        seeds=[n["seed"] for n in nets],
    )


def _stripes_claim(suffix: str, per_net, nets, when: str) -> dict:
    """``per_net``: each network's list of pair lists (one per checkpoint)."""
    rng = np.random.default_rng(1)

    def contrast(relabel=None):
        return [
            np.mean(
                [
                    stripe_contrast(
                        pairs, n["end_layers"], identity=n["identity_skips"], relabel=relabel
                    )
                    for pairs in found
                ]
            )
            for n, found in zip(nets, per_net, strict=True)
        ]

    values = contrast()
    draws = [np.mean(contrast(lambda _, k: rng.permutation(k))) for _ in range(500)]
    return C.claim(
        id=f"bottom_up.resnet_stripes{suffix}",
        paper="SVCCA",
        figure="fig4",
        statement="the resnet's stripes: skip connections keep layers similar to earlier layers",
        statistic="SVCCA of pairs of residual-stream layers joined only by identity skips "
        "(stem and block outputs; every block between them adds its input unchanged) minus "
        "pairs of residual-branch layers the same number of layers apart, mean over "
        f"separations; resnets at {when}, mean over checkpoints and networks",
        value=float(np.mean(values)),
        spread=C.standard_error(values),
        null=C.null_from(
            draws,
            "stream / branch labels permuted among the pairs of each separation (500 draws)",
        ),
        seeds=[n["seed"] for n in nets],
    )


def table(results: dict) -> str:
    """Convergence time of every layer of every network."""
    lines = ["| network | seed | convergence time per layer (bottom to top) |"]
    lines.append("| --- | --- | --- |")
    for n in results["networks"]:
        times = ", ".join(
            f"{k} {convergence_time(c):.2f}" for k, c in zip(n["layers"], n["curves"], strict=True)
        )
        lines.append(f"| {n['config']} | {n['seed']} | {times} |")
    ends = [n for n in results["networks"] if "end_pairs" in n]
    if ends:
        lines += ["", "| network | seed | final SVCCA of layer pairs (batch norms, branches) |"]
        lines.append("| --- | --- | --- |")
        for n in ends:
            cells = ", ".join(f"{a}/{b} {v:.2f}" for a, b, v in n["end_pairs"])
            lines.append(f"| {n['config']} | {n['seed']} | {cells} |")
    during = [n for n in ends if n.get("pairs_during_training")]
    if during:
        lines += [
            "",
            "| network | seed | step | batch norm output / input (convnet) or stream - branch "
            "contrast, identity-skip stream pairs (resnet) | baseline: other consecutive pairs "
            "(convnet) or every stream pair (resnet) |",
            "| --- | --- | --- | --- | --- |",
        ]
        for n in during:
            for e in n["pairs_during_training"]:
                if n["config"] == "svcca_convnet":
                    bn, others = batch_norm_gap(e["pairs"])
                    cells = f"{bn:.3f} | {np.mean(others):.3f}"
                else:
                    ident = stripe_contrast(
                        e["pairs"], n["end_layers"], identity=n["identity_skips"]
                    )
                    cells = f"{ident:.3f} | {stripe_contrast(e['pairs'], n['end_layers']):.3f}"
                lines.append(f"| {n['config']} | {n['seed']} | {e['step']} | {cells} |")
    return "\n".join(lines) + f"\n\nMeasure: {results['measure']}."


def figure(results: dict, path: pathlib.Path) -> None:
    """Per architecture: four matrices and the curves (first network); the claimed pairs.

    The last panel holds the pairs of the batch norm and stripe claims at each
    kept checkpoint (0, 35, 75, 100 %), every network (each dot a pair): the
    claimed pairs against their baseline pairs.
    """
    plt = pyplot()
    firsts = [next(n for n in results["networks"] if n["config"] == c) for c in CONFIGS]
    firsts = [n for n in firsts if n is not None]
    fig, axes = plt.subplots(len(firsts), 6, figsize=(19, 3.3 * len(firsts)), squeeze=False)
    for row, n in zip(axes, firsts, strict=True):
        layers = n["layers"]
        for ax, m, s in zip(row[:4], n["matrices"], n["matrix_steps"], strict=False):
            ax.imshow(np.asarray(m), vmin=0, vmax=1, origin="lower")
            ax.set_title(f"{n['config']} step {s}", fontsize=8)
            ax.set_yticks(range(len(layers)), layers, fontsize=6)
            ax.set_xticks(range(len(layers)), layers, fontsize=6, rotation=90)
            ax.set_ylabel("layer at step", fontsize=7)
            ax.set_xlabel("layer at end", fontsize=7)
        cmap = plt.get_cmap("viridis")
        for i, (k, c) in enumerate(zip(layers, n["curves"], strict=True)):
            row[4].plot(n["steps"], c, color=cmap(i / max(1, len(layers) - 1)), label=k, lw=1)
        row[4].set_xlabel("step")
        row[4].set_ylabel("SVCCA with final")
        row[4].legend(fontsize=5, ncol=2)
        _pairs_panel(row[5], [m for m in results["networks"] if m["config"] == n["config"]])
    save_figure(fig, path, dpi=110)


def _pairs_panel(ax, nets) -> None:
    """SVCCA of the claimed pairs against their baseline pairs at each kept checkpoint."""
    nets = [n for n in nets if "end_pairs" in n]
    if not nets:
        ax.axis("off")
        return
    conv = nets[0]["config"] == "svcca_convnet"
    if conv:
        names = ("batch norm: output / input", "other consecutive layers")
    else:
        names = ("stream pairs joined by identity skips", "branch pairs, same separations")

    def kinds(n, pairs):
        if conv:
            return [(a == f"{b}_in", v) for a, b, v in pairs]
        # stream pairs joined by identity skips (claimed) and the branch pairs at their
        # separations (baseline), as stripe_contrast pairs them; other pairs are in neither
        pos = {k: i for i, k in enumerate(n["end_layers"])}
        claimed = [
            (a, b, v)
            for a, b, v in pairs
            if _stream(a) and identity_joined(a, b, n["end_layers"], n["identity_skips"])
        ]
        seps = {pos[b] - pos[a] for a, b, _ in claimed}
        branch = [v for a, b, v in pairs if not _stream(a) and pos[b] - pos[a] in seps]
        return [(True, v) for *_, v in claimed] + [(False, v) for v in branch]

    final = {"step": -1}
    per_step = [
        n.get("pairs_during_training") or [{**final, "pairs": n["end_pairs"]}] for n in nets
    ]
    steps = sorted({e["step"] for found in per_step for e in found})
    rng = np.random.default_rng(0)
    for i, name in enumerate(names):
        xs, ys = [], []
        for n, found in zip(nets, per_step, strict=True):
            for e in found:
                vals = [v for k, v in kinds(n, e["pairs"]) if k is (i == 0)]
                xs += [steps.index(e["step"]) + (i - 0.5) * 0.3] * len(vals)
                ys += vals
        xs = np.asarray(xs) + 0.04 * rng.standard_normal(len(xs))
        ax.plot(xs, ys, "o", ms=3, alpha=0.7, color=f"C{i}", label=name)
    ax.set_xticks(range(len(steps)), [str(s) if s >= 0 else "final" for s in steps], fontsize=6)
    ax.set_xlabel("checkpoint (step)", fontsize=7)
    ax.set_ylim(0, 1.02)
    ax.set_ylabel("SVCCA", fontsize=7)
    ax.legend(fontsize=5)
    ax.set_title(f"{nets[0]['config']}: {len(nets)} networks", fontsize=8)
