"""The SVCCA experiments' shared networks: independently trained convnets and resnets.

One group of ``svcca_convnet`` networks and one of ``resnet`` networks, each
network with its own seed (initialisation and minibatch order), trained once by
``train.fit`` into ``OUT/networks/svcca_group/`` with dense checkpoints (every
``every`` steps, probe activations at each). Figures 2a, 2b, 4, 5 (the normal
arms), 6, 7 and section 4.4 all read these networks instead of training their
own. The checkpoints at 0, 35, 75 and 100 % of training (``FRACTIONS``, figure
4's matrices) are kept, so figure 4 can take layers the probe activations do
not hold (batch norms, residual branches) during training.
"""

from __future__ import annotations

import pathlib

from reproduce import configs
from reproduce.configs import select
from reproduce.experiments._common import train_network

# networks per architecture and the checkpoint interval (probe activations at each one)
SETTINGS = {
    "quick": {"convnets": 3, "resnets": 2, "every": 10},
    "smoke": {"convnets": 2, "resnets": 1, "every": 2},
    # CIFAR-10: 30000 steps; every 1000 with a 250-image probe keeps ~31 x 250 MB per net
    "full": {"convnets": 3, "resnets": 2, "every": 1000, "n_probe": 250},
}
SEEDS = {"svcca_convnet": 0, "resnet": 100}
KIND = {"svcca_convnet": "convnets", "resnet": "resnets"}
# the points of training of SVCCA figure 4's layer x layer matrices
FRACTIONS = (0.0, 0.35, 0.75, 1.0)


def fraction_picks(n: int) -> list[int]:
    """Indices into ``n`` checkpoints nearest to each of ``FRACTIONS`` of training."""
    return sorted({int(round(f * (n - 1))) for f in FRACTIONS})


def checkpoint_steps(steps: int, every: int) -> list[int]:
    """The steps ``train.fit`` checkpoints at: 0, every ``every`` steps, and the last."""
    return sorted({0, steps, *range(every, steps + 1, every)})


def run_dir(out: pathlib.Path, config: str, seed: int) -> pathlib.Path:
    """Where network ``config`` with ``seed`` of the group is trained."""
    return pathlib.Path(out) / "networks" / "svcca_group" / f"{config}_seed{seed}"


def seeds(config: str, preset: str) -> list[int]:
    """The seeds of the group's ``config`` networks (every network its own)."""
    n = select({}, SETTINGS, preset)[KIND[config]]
    return [SEEDS[config] + i for i in range(n)]


def networks(out: pathlib.Path, config: str, preset: str, *, data_dir=None, log=print):
    """Trains (or loads) the group's ``config`` networks: ``[(seed, run_dir, model, data)]``."""
    s = select({}, SETTINGS, preset)
    extra = {"n_probe": s["n_probe"]} if "n_probe" in s else {}
    ckpts = checkpoint_steps(configs.get_config(config, preset)["steps"], s["every"])
    extra["keep_checkpoints"] = [ckpts[i] for i in fraction_picks(len(ckpts))]
    found = []
    for seed in seeds(config, preset):
        d = run_dir(out, config, seed)
        model, data, _ = train_network(
            d, config, preset, data_dir=data_dir, log=log, seed=seed, every=s["every"], **extra
        )
        found.append((seed, d, model, data))
    return found
