"""Configuration `digits_deep_convnet`: a 4-conv-layer digits net, SGD (momentum 0.9).

The PWCCA paper's figure 5 setting: networks trained with SGD at several
learning rates (the experiment sweeps ``lr``) to a matched training loss
(``target_train_loss``; ``steps`` is the cap, which the experiment sets per learning
rate, and ``every`` how often the
training loss is checked, on the first ``n_train_probe`` training images).
"""

from reproduce.configs import select

BASE = {
    "data": "digits",
    "model": "digits_deep_convnet",
    "seed": 0,
    "optimizer": "sgd",
    "n_probe": 300,
}


# the CPU setting on embedded data ("smoke" is the same, 4 steps long)
QUICK = {
    "width": 1.0,
    "steps": 400,
    "every": 10,
    "batch": 128,
    "lr": 0.03,
    "target_train_loss": 0.05,
    "n_train_probe": 400,
}


def get_config(preset: str = "quick") -> dict:
    """This configuration at ``preset``: "quick" (CPU), "full" (GPU, local data), "smoke"."""
    presets = {
        "quick": QUICK,
        "full": {
            "data": "cifar10",
            "width": 2.0,
            "steps": 60000,
            "every": 500,
            "batch": 128,
            "lr": 0.01,
            "target_train_loss": 0.05,
            "n_train_probe": 5000,
        },
    }
    return select(BASE, presets, preset)
