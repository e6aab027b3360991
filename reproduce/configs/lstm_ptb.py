"""Configuration `lstm_ptb`: model `lstm` on `ptb`."""

from reproduce.configs import select

BASE = {"data": "ptb", "model": "lstm", "seed": 0, "optimizer": "adam", "n_probe": 300}


# the CPU setting on embedded data ("smoke" is the same, 4 steps long)
QUICK = {
    "layers": 2,
    "embed": 64,
    "hidden": 128,
    "seq_len": 35,
    "probe_windows": 20,
    "steps": 600,
    "every": 50,
    "batch": 32,
    "lr": 3e-3,
}


def get_config(preset: str = "quick") -> dict:
    """This configuration at ``preset``: "quick" (CPU), "full" (GPU, local data), "smoke"."""
    presets = {
        "quick": QUICK,
        "full": {
            "layers": 3,
            "embed": 200,
            "hidden": 650,
            "seq_len": 35,
            "probe_windows": 64,
            "steps": 40000,
            "every": 1000,
            "batch": 20,
            "lr": 1e-3,
        },
    }
    return select(BASE, presets, preset)
