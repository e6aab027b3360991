"""Configuration `svcca_convnet`: model `svcca_convnet` on `digits`."""

from reproduce.configs import select

BASE = {
    "data": "digits",
    "model": "svcca_convnet",
    "seed": 0,
    "optimizer": "adam",
    "n_probe": 300,
    # parameter groups bottom to top (path prefixes), frozen in turn by freeze training
    "layer_groups": [
        ["conv/0"],
        ["conv/1", "bn_conv2"],
        ["conv/2"],
        ["conv/3"],
        ["conv/4", "bn_conv5"],
        ["fc1", "bn_fc1"],
        ["fc2", "bn_fc2"],
    ],
}


# the CPU setting on embedded data ("smoke" is the same, 4 steps long)
QUICK = {"width": 0.25, "steps": 300, "every": 50, "batch": 128, "lr": 3e-3}


def get_config(preset: str = "quick") -> dict:
    """This configuration at ``preset``: "quick" (CPU), "full" (GPU, local data), "smoke"."""
    presets = {
        "quick": QUICK,
        "full": {
            "data": "cifar10",
            "width": 1.0,
            "steps": 30000,
            "every": 1000,
            "batch": 128,
            "lr": 1e-3,
            "n_probe": 1000,
        },
    }
    return select(BASE, presets, preset)
