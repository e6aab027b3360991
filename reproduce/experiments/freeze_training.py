"""SVCCA figure 5: freeze training (lower layers frozen in turn, on a linear schedule).

Claims: freezing lower layers from bottom to top during training keeps (or
improves) test accuracy, and saves computation. Layer group ``i`` of ``L``
(config ``layer_groups``) is frozen from step ``(i + 1) * steps // (L + 1)``
on: everything of a frozen layer stops (parameters through
``optax.multi_transform``, batch-norm statistics in the train step), all in
``train.fit``. The normal arm is the shared group of ``svcca_convnet``
networks (``OUT/networks/svcca_group``); the freeze arm has its own seeds.

Compute saved: for each phase of the schedule, a train step that differentiates
only the layers not yet frozen (so neither their weight gradients nor the
backward pass below the lowest trainable layer are computed); its XLA cost
analysis (flops) and its measured time, relative to the full step, averaged
over the equally long phases. (``fit`` itself masks the frozen updates and so
does not realise the saving; the phase steps are what a freeze-training trainer
runs.) A frozen batch-norm layer normalises with its running averages from its
freeze step on, in training too (``train.train_mode``), so the layers above
train on the outputs it gives at evaluation.
Config: ``svcca_convnet``. Command: ``python -m reproduce all --only
freeze_training``. Outputs: ``freeze_training/results.json``,
``.../freeze_training.png``.
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
from reproduce.experiments._common import fmt, save_results, train_network
from reproduce.io import pyplot
from reproduce.train import _frozen_from, _path, accuracy, cross_entropy

TITLE = "Freeze training"
PAPER = "SVCCA (Raghu et al. 2017) figure 5"
SETTINGS = {
    "quick": {"networks": 3, "timing_reps": 15},
    "full": {"networks": 3, "timing_reps": 50},
    "smoke": {"networks": 2, "timing_reps": 2},
}
CONFIG = "svcca_convnet"
FREEZE_SEED = 600


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


def run(out: pathlib.Path, *, preset: str, data_dir=None, log=print) -> dict:
    """Both arms' test accuracy (normal: the shared group), and the phases' step costs."""
    s = select({}, SETTINGS, preset)
    cfg = configs.get_config(CONFIG, preset)
    freeze = schedule(cfg)
    nets = []
    for seed, _, model, data in group.networks(out, CONFIG, preset, data_dir=data_dir, log=log):
        nets.append(
            {
                "group": "normal",
                "seed": seed,
                "test_acc": accuracy(model, data["test_x"], data["test_y"]),
            }
        )
    for k in range(s["networks"]):
        seed = FREEZE_SEED + k
        model, data, _ = train_network(
            out / "freeze_training" / "networks" / f"freeze_seed{seed}",
            CONFIG,
            preset,
            data_dir=data_dir,
            log=log,
            seed=seed,
            freeze=freeze,
        )
        acc = accuracy(model, data["test_x"], data["test_y"])
        nets.append({"group": "freeze", "seed": seed, "test_acc": acc})
    phases = phase_costs({**cfg, "seed": 0}, data, s["timing_reps"]) if data_dir is None else []
    log(f"  {nets}; flops per phase {[p['flops'] for p in phases]}")
    return save_results(
        out,
        "freeze_training",
        {"preset": preset, "freeze_schedule": freeze, "networks": nets, "phases": phases},
    )


def saved(phases: list[dict], key: str) -> np.ndarray:
    """Fraction of the full step's cost saved over the schedule (equal phases), per draw."""
    if key == "flops":
        cost = np.asarray([p["flops"] for p in phases])
        return np.asarray([1.0 - cost.mean() / cost[0]])
    t = np.asarray([p["seconds"] for p in phases])  # (phases, reps): one draw per rep
    return 1.0 - t.mean(0) / t[0]


def _accs(results, group):
    return np.asarray([n["test_acc"] for n in results["networks"] if n["group"] == group])


def claims(results: dict) -> list[dict]:
    """Freeze training keeps test accuracy (within half a point), against a label permutation."""
    a, b = _accs(results, "freeze"), _accs(results, "normal")
    phases = results["phases"]
    extra = []
    if phases:
        flops, secs = saved(phases, "flops"), saved(phases, "seconds")
        extra = [
            C.claim(
                id="freeze_training.saves_flops",
                paper="SVCCA",
                figure="fig5",
                statement="freeze training saves computation",
                statistic=f"fraction of the full train step's flops (XLA cost analysis) saved, "
                f"averaged over the {len(phases)} equal phases of the schedule",
                value=float(flops[0]),
                null=C.point_null(0.0, "no layer frozen: the full step in every phase"),
                seeds="deterministic (compiled program)",
            ),
            C.claim(
                id="freeze_training.saves_time",
                paper="SVCCA",
                figure="fig5",
                statement="freeze training saves computation",
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
            id="freeze_training.keeps_accuracy",
            paper="SVCCA",
            figure="fig5",
            statement="freezing lower layers in turn during training keeps or improves test "
            "accuracy (and saves computation)",
            statistic="mean test accuracy with freeze training minus without",
            value=float(a.mean() - b.mean()),
            threshold=-0.005,
            spread=C.standard_error(a, b),
            null=C.mean_difference_null(a, b),
            seeds=[n["seed"] for n in results["networks"]],
        ),
        *extra,
    ]


def table(results: dict) -> str:
    """Test accuracy of every network; flops and time of every phase's step."""
    lines = ["| group | seed | test accuracy |", "| --- | --- | --- |"]
    for n in results["networks"]:
        lines.append(f"| {n['group']} | {n['seed']} | {fmt(n['test_acc'])} |")
    if results["phases"]:
        full = results["phases"][0]
        lines += ["", "| layer groups frozen | flops / full | median time / full |"]
        lines.append("| --- " * 3 + "|")
        for p in results["phases"]:
            lines.append(
                f"| {p['frozen_groups']} | {fmt(p['flops'] / full['flops'])} | "
                f"{fmt(np.median(p['seconds']) / np.median(full['seconds']))} |"
            )
    return "\n".join(lines)


def figure(results: dict, path: pathlib.Path) -> None:
    """Test accuracy per network, both groups, with their means."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(4, 3.2))
    for i, arm in enumerate(("normal", "freeze")):
        a = _accs(results, arm)
        ax.plot(np.full(len(a), i), a, "o", alpha=0.6)
        ax.errorbar(i + 0.15, a.mean(), yerr=a.std(), fmt="k_", capsize=4)
    ax.set_xticks([0, 1], ["normal", "freeze training"])
    ax.set_ylabel("test accuracy")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
