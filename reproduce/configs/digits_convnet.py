"""Configuration `digits_convnet`: model `digits_convnet` on `digits`."""

from reproduce.configs import select

BASE = {"data": "digits", "model": "digits_convnet", "seed": 0, "optimizer": "adam", "n_probe": 300}


# the CPU setting on embedded data ("smoke" is the same, 4 steps long)
# random_label_steps: how long a network trains on randomly permuted labels (to memorise them)
QUICK = {
    "width": 1.0,
    "steps": 400,
    "random_label_steps": 1500,
    "every": 50,
    "batch": 128,
    "lr": 3e-3,
}


def get_config(preset: str = "quick") -> dict:
    """This configuration at ``preset``: "quick" (CPU), "full" (GPU, local data), "smoke"."""
    presets = {
        "quick": QUICK,
        "full": {
            "data": "cifar10",
            "width": 2.0,
            "steps": 3000,
            "random_label_steps": 20000,
            "every": 250,
            "batch": 128,
            "lr": 1e-3,
        },
    }
    return select(BASE, presets, preset)
