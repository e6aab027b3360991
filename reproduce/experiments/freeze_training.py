"""SVCCA figure 5: freeze training (lower layers frozen in turn, on a linear schedule).

Claims: freezing lower layers from bottom to top during training keeps (or
improves) test accuracy, and saves computation; the paper shows it for a
convnet and a resnet, and so does this experiment (two arms per architecture).
Layer group ``i`` of ``L`` (config ``layer_groups``; the resnet's are the stem
and then every residual block whole) is frozen from step ``(i + 1) * steps //
(L + 1)`` on: everything of a frozen layer stops (parameters through
``optax.multi_transform``, batch-norm statistics in the train step), all in
``train.fit``. The normal arm of each architecture is the shared group of
``svcca_convnet`` / ``resnet`` networks (``OUT/networks/svcca_group``); the
freeze arms have their own seeds (convnets ``600 + k``, resnets ``700 + k``).

Compute saved: for each phase of the schedule, a train step that differentiates
only the layers not yet frozen (so neither their weight gradients nor the
backward pass below the lowest trainable layer are computed); its XLA cost
analysis (flops) and its measured time, relative to the full step, averaged
over the equally long phases. (``fit`` itself masks the frozen updates and so
does not realise the saving; the phase steps are what a freeze-training trainer
runs.) A frozen batch-norm layer normalises with its running averages from its
freeze step on, in training too (``train.train_mode``), so the layers above
train on the outputs it gives at evaluation.
Configs: ``svcca_convnet``, ``resnet``. Command: ``python -m reproduce all --only
freeze_training``. Outputs: ``freeze_training/results.json``,
``.../freeze_training.png``. Runtime: quick 260 s CPU on 2 cores (with the two
shared resnets it is the first to need); full ~40 GPU minutes (estimate).
"""

from __future__ import annotations

import pathlib
import time

import jax
import numpy as np
import optax
from flax import nnx

from reproduce import claims as C
from reproduce import configs
from reproduce.configs import select
from reproduce.experiments import _svcca_group as group
from reproduce.experiments._common import fmt, save_figure, save_results, train_network
from reproduce.io import pyplot
from reproduce.train import _frozen_from, _path, accuracy, cross_entropy

TITLE = "Freeze training"
PAPER = "SVCCA (Raghu et al. 2017) figure 5"
# freeze-arm networks per architecture (the normal arms are the shared group's)
SETTINGS = {
    "quick": {"networks": 3, "timing_reps": 15},
    "full": {"networks": 3, "timing_reps": 50},
    "smoke": {"networks": 2, "timing_reps": 2},
}
CONFIGS = ("svcca_convnet", "resnet")
FREEZE_SEED = {"svcca_convnet": 600, "resnet": 700}
# claim ids: the convnet's keep their original names, the resnet's carry a suffix
SUFFIX = {"svcca_convnet": "", "resnet": "_resnet"}


def schedule(cfg: dict) -> dict:
    """``{path prefix: step}``: group ``i`` of ``L`` frozen at ``(i + 1) * steps // (L + 1)``."""
    groups, steps = cfg["layer_groups"], cfg["steps"]
    return {
        prefix: (i + 1) * steps // (len(groups) + 1)
        for i, group in enumerate(groups)
        for prefix in group
    }


def phase_costs(cfg: dict, data: dict, reps: int) -> list[dict]:
    """Flops (XLA cost analysis) and median time of the train step of every freeze phase.

    Phase ``i`` (of ``L + 1``) has the first ``i`` layer groups frozen: the step
    differentiates (and the optimiser updates) only the other parameters.
    """
    groups = cfg["layer_groups"]
    x = jax.numpy.asarray(data["x"][: cfg["batch"]])
    y = jax.numpy.asarray(data["y"][: cfg["batch"]])
    found = []
    for i in range(len(groups) + 1):
        frozen = {p: 0 for g in groups[:i] for p in g}

        def trainable(path, _value, frozen=frozen):
            return _frozen_from(_path(path), frozen) is None

        wrt = nnx.All(nnx.Param, trainable)
        model, _ = configs.build(cfg)
        opt = nnx.Optimizer(model, optax.adam(cfg["lr"]), wrt=wrt)
        graphdef, state = nnx.split((model, opt))

        def step(state, x, y, wrt=wrt, graphdef=graphdef):
            model, opt = nnx.merge(graphdef, state)
            loss, grads = nnx.value_and_grad(cross_entropy, argnums=nnx.DiffState(0, wrt))(
                model, x, y
            )
            opt.update(model, grads)
            return loss, nnx.state((model, opt))

        compiled = jax.jit(step).lower(state, x, y).compile()
        cost = compiled.cost_analysis()
        cost = cost[0] if isinstance(cost, list | tuple) else cost
        jax.block_until_ready(compiled(state, x, y))
        times = []
        for _ in range(reps):
            t = time.perf_counter()
            jax.block_until_ready(compiled(state, x, y))
            times.append(time.perf_counter() - t)
        found.append({"frozen_groups": i, "flops": float(cost["flops"]), "seconds": times})
    return found


def _run_dir(out: pathlib.Path, config: str, seed: int) -> pathlib.Path:
    prefix = "" if config == "svcca_convnet" else f"{config}_"
    return out / "freeze_training" / "networks" / f"{prefix}freeze_seed{seed}"


def run(out: pathlib.Path, *, preset: str, data_dir=None, log=print) -> dict:
    """Both arms' test accuracy per architecture (normal: the shared group), and step costs."""
    s = select({}, SETTINGS, preset)
    nets, phases, schedules = [], {}, {}
    for config in CONFIGS:
        cfg = configs.get_config(config, preset)
        freeze = schedules[config] = schedule(cfg)
        for seed, _, model, data in group.networks(out, config, preset, data_dir=data_dir, log=log):
            acc = accuracy(model, data["test_x"], data["test_y"])
            nets.append({"config": config, "group": "normal", "seed": seed, "test_acc": acc})
        for k in range(s["networks"]):
            seed = FREEZE_SEED[config] + k
            model, data, _ = train_network(
                _run_dir(out, config, seed),
                config,
                preset,
                data_dir=data_dir,
                log=log,
                seed=seed,
                freeze=freeze,
            )
            acc = accuracy(model, data["test_x"], data["test_y"])
            nets.append({"config": config, "group": "freeze", "seed": seed, "test_acc": acc})
        if data_dir is None:
            phases[config] = phase_costs({**cfg, "seed": 0}, data, s["timing_reps"])
        log(f"  {config}: flops per phase {[p['flops'] for p in phases.get(config, [])]}")
    log(f"  {nets}")
    return save_results(
        out,
        "freeze_training",
        {"preset": preset, "freeze_schedule": schedules, "networks": nets, "phases": phases},
    )


def saved(phases: list[dict], key: str) -> np.ndarray:
    """Fraction of the full step's cost saved over the schedule (equal phases), per draw."""
    if key == "flops":
        cost = np.asarray([p["flops"] for p in phases])
        return np.asarray([1.0 - cost.mean() / cost[0]])
    t = np.asarray([p["seconds"] for p in phases])  # (phases, reps): one draw per rep
    return 1.0 - t.mean(0) / t[0]


def _accs(results, config, group):
    return np.asarray(
        [
            n["test_acc"]
            for n in results["networks"]
            if n["config"] == config and n["group"] == group
        ]
    )


def claims(results: dict) -> list[dict]:
    """Per architecture: freeze training keeps test accuracy; it saves flops and time."""
    return [c for config in CONFIGS for c in _arm_claims(results, config)]


def _arm_claims(results: dict, config: str) -> list[dict]:
    """One architecture's claims: accuracy against a label permutation, costs against none."""
    a, b = _accs(results, config, "freeze"), _accs(results, config, "normal")
    if not a.size:
        return []
    suffix, phases = SUFFIX[config], results["phases"].get(config, [])
    extra = []
    if phases:
        flops, secs = saved(phases, "flops"), saved(phases, "seconds")
        extra = [
            C.claim(
                id=f"freeze_training.saves_flops{suffix}",
                paper="SVCCA",
                figure="fig5",
                statement=f"freeze training saves computation ({config})",
                statistic=f"fraction of the full train step's flops (XLA cost analysis) saved, "
                f"averaged over the {len(phases)} equal phases of the schedule",
                value=float(flops[0]),
                null=C.point_null(0.0, "no layer frozen: the full step in every phase"),
                seeds="deterministic (compiled program)",
            ),
            C.claim(
                id=f"freeze_training.saves_time{suffix}",
                paper="SVCCA",
                figure="fig5",
                statement=f"freeze training saves computation ({config})",
                statistic="fraction of the full train step's measured time saved, averaged over "
                f"the phases; mean over {len(secs)} timing repetitions (CPU, shared machine)",
                value=float(secs.mean()),
                spread=C.standard_error(secs),
                null=C.point_null(0.0, "no layer frozen: the full step in every phase"),
                seeds="timing repetitions",
            ),
        ]
    return [
        C.claim(
            id=f"freeze_training.keeps_accuracy{suffix}",
            paper="SVCCA",
            figure="fig5",
            statement="freezing lower layers in turn during training keeps or improves test "
            f"accuracy (and saves computation) ({config})",
            statistic=f"mean test accuracy with freeze training minus without, {len(a)} against "
            f"{len(b)} {config} networks",
            value=float(a.mean() - b.mean()),
            threshold=-0.005,
            spread=C.standard_error(a, b),
            null=C.mean_difference_null(a, b),
            seeds=[n["seed"] for n in results["networks"] if n["config"] == config],
        ),
        *extra,
    ]


def table(results: dict) -> str:
    """Test accuracy of every network; flops and time of every phase's step, per architecture."""
    lines = ["| network | group | seed | test accuracy |", "| --- | --- | --- | --- |"]
    for n in results["networks"]:
        lines.append(f"| {n['config']} | {n['group']} | {n['seed']} | {fmt(n['test_acc'])} |")
    for config, phases in results["phases"].items():
        if not phases:
            continue
        full = phases[0]
        lines += ["", f"| {config}: layer groups frozen | flops / full | median time / full |"]
        lines.append("| --- " * 3 + "|")
        for p in phases:
            lines.append(
                f"| {p['frozen_groups']} | {fmt(p['flops'] / full['flops'])} | "
                f"{fmt(np.median(p['seconds']) / np.median(full['seconds']))} |"
            )
    return "\n".join(lines)


def figure(results: dict, path: pathlib.Path) -> None:
    """Test accuracy per network, both arms of both architectures; each phase's step cost.

    Left: every network (dots), each arm's mean with its standard error (bars).
    Right: each phase's step flops and median time relative to the full step
    (time: the 25-75 % range of the repetitions as bars); the schedule's saving
    is the mean over the phases.
    """
    plt = pyplot()
    fig, (ax, cost) = plt.subplots(1, 2, figsize=(8.5, 3.4))
    ticks, labels = [], []
    for j, config in enumerate(CONFIGS):
        for i, arm in enumerate(("normal", "freeze")):
            a = _accs(results, config, arm)
            if not a.size:
                continue
            x = 2.5 * j + i
            ax.plot(np.full(len(a), x), a, "o", color=f"C{i}", alpha=0.6)
            ax.errorbar(x + 0.2, a.mean(), yerr=C.standard_error(a), fmt="k_", capsize=4)
            ticks.append(x)
            labels.append(f"{config}\n{'freeze training' if arm == 'freeze' else arm}")
    ax.set_xticks(ticks, labels, fontsize=7)
    ax.set_ylabel("test accuracy")
    ax.set_title("accuracy (dots: networks; bars: mean +- s.e.)", fontsize=8)
    for j, (config, phases) in enumerate(results["phases"].items()):
        if not phases:
            continue
        k = np.arange(len(phases))
        flops = np.asarray([p["flops"] for p in phases]) / phases[0]["flops"]
        t = np.asarray([p["seconds"] for p in phases]) / np.median(phases[0]["seconds"])
        q = np.quantile(t, [0.25, 0.5, 0.75], axis=1)
        cost.plot(k, flops, "s-", color=f"C{j + 2}", label=f"{config} flops")
        cost.errorbar(
            k, q[1], yerr=[q[1] - q[0], q[2] - q[1]], fmt="o--", color=f"C{j + 2}", alpha=0.6
        )
        cost.plot([], [], "o--", color=f"C{j + 2}", alpha=0.6, label=f"{config} time")
    cost.axhline(1.0, color="gray", lw=0.8, ls=":")
    cost.set_xlabel("layer groups frozen (phase)")
    cost.set_ylabel("train step cost / full step")
    cost.legend(fontsize=6)
    save_figure(fig, path)
