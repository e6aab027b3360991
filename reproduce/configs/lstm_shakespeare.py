"""Configuration `lstm_shakespeare`: model `lstm` on `shakespeare`."""

from reproduce.configs import select

BASE = {"data": "shakespeare", "model": "lstm", "seed": 0, "optimizer": "adam", "n_probe": 300}


# the CPU setting on embedded data ("smoke" is the same, 4 steps long)
QUICK = {
    "layers": 3,
    "embed": 32,
    "hidden": 64,
    "seq_len": 32,
    "max_chars": 300000,
    "probe_windows": 20,
    "steps": 600,
    "every": 30,
    "batch": 32,
    "lr": 3e-3,
}


def get_config(preset: str = "quick") -> dict:
    """This configuration at ``preset``: "quick" (CPU), "full" (GPU, local data), "smoke"."""
    presets = {
        "quick": QUICK,
        "full": {
            "layers": 3,
            "embed": 128,
            "hidden": 256,
            "seq_len": 64,
            "max_chars": None,
            "probe_windows": 64,
            "steps": 20000,
            "every": 500,
            "batch": 64,
            "lr": 1e-3,
        },
        "smoke": {
            **QUICK,
            "steps": 4,
            "every": 2,
            "max_chars": 20000,
            "layers": 2,
            "embed": 8,
            "hidden": 8,
            "seq_len": 8,
            "batch": 4,
            "probe_windows": 4,
        },
    }
    return select(BASE, presets, preset)
