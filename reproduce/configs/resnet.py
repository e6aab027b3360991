"""Configuration `resnet`: model `resnet` on `digits`."""

from reproduce.configs import select

BASE = {"data": "digits", "model": "resnet", "seed": 0, "optimizer": "adam", "n_probe": 300}


# the CPU setting on embedded data ("smoke" is the same, 4 steps long)
QUICK = {
    "width": 1.0,
    "blocks": [1, 1, 1],
    "steps": 300,
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
            "width": 1.0,
            "blocks": [3, 3, 3],
            "steps": 30000,
            "every": 1000,
            "batch": 128,
            "lr": 1e-3,
            "n_probe": 1000,
        },
    }
    cfg = select(BASE, presets, preset)
    # parameter groups bottom to top (path prefixes), frozen in turn by freeze training: the
    # stem with its batch norm, then every residual block whole (convs, batch norms, projection)
    cfg["layer_groups"] = [["stem", "bn_stem"]] + [
        [f"blocks/{i}"] for i in range(sum(cfg["blocks"]))
    ]
    return cfg
