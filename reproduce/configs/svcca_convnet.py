"""Configuration `svcca_convnet`: model `svcca_convnet` on `digits`."""

BASE = {"data": "digits", "model": "svcca_convnet", "seed": 0, "optimizer": "adam", "n_probe": 300}


def get_config(preset: str = "quick") -> dict:
    presets = {
        "quick": {"width": 0.25, "steps": 300, "every": 50, "batch": 128, "lr": 3e-3},
        "full": {
            "data": "cifar10",
            "width": 1.0,
            "steps": 30000,
            "every": 1000,
            "batch": 128,
            "lr": 1e-3,
            "n_probe": 1000,
        },
        "smoke": {
            **{"width": 0.25, "steps": 300, "every": 50, "batch": 128, "lr": 3e-3},
            "steps": 4,
            "every": 2,
        },
    }
    if preset not in presets:
        raise ValueError(f"unknown preset {preset!r}; choose one of {sorted(presets)}")
    return {**BASE, **presets[preset]}
