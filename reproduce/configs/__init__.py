"""One configuration per model setting: ``get_config(preset)`` with "quick" and "full".

``python -m reproduce train --config NAME --preset quick`` trains one network
with the trainer (checkpoints, resume, probe activations); ``build(cfg,
data_dir)`` makes the model and the data.
"""

from __future__ import annotations

import importlib
import pathlib

NAMES = ("digits_convnet", "svcca_convnet", "resnet", "lstm_shakespeare", "lstm_ptb")


def select(base: dict, presets: dict, preset: str) -> dict:
    """``base`` updated with ``presets[preset]``; "smoke" defaults to "quick" cut to 4 steps."""
    presets = {"smoke": {**presets["quick"], "steps": 4, "every": 2}, **presets}
    if preset not in presets:
        raise ValueError(f"unknown preset {preset!r}; choose one of {sorted(presets)}")
    return {**base, **presets[preset]}


def get_config(name: str, preset: str = "quick") -> dict:
    """The configuration ``name`` at ``preset``."""
    if name not in NAMES:
        raise ValueError(f"unknown config {name!r}; choose one of {NAMES}")
    module = importlib.import_module(f"reproduce.configs.{name}")
    cfg = module.get_config(preset)
    cfg["name"] = name
    cfg["preset"] = preset
    return cfg


def build(cfg: dict, data_dir: str | pathlib.Path | None = None):
    """``(model, data)`` for :func:`reproduce.trainer.fit` from a configuration."""
    import numpy as np
    from flax import nnx

    from reproduce import datasets, models
    from reproduce.data import load_digits_splits, random_labels

    rngs = nnx.Rngs(cfg["seed"])
    if cfg["data"] in ("digits", "cifar10"):
        if cfg["data"] == "digits":
            d = load_digits_splits()
            x, y = d["train"].images, d["train"].labels
            px, py = d["probe"].images, d["probe"].labels
        else:
            d = datasets.load_cifar10(data_dir)
            x, y = d["train"]
            px, py = d["test"][0][: cfg["n_probe"]], d["test"][1][: cfg["n_probe"]]
        if cfg.get("labels") == "random":
            y = random_labels(y, seed=cfg.get("label_seed", 1234))
        shape = x.shape[1:]
        kind = cfg["model"]
        if kind == "digits_convnet":
            model = models.ConvNet(cfg["width"], rngs=rngs)
        elif kind == "svcca_convnet":
            model = models.SVCCAConvNet(cfg["width"], in_shape=shape, rngs=rngs)
        elif kind == "resnet":
            model = models.ResNet(
                cfg["width"], blocks=tuple(cfg["blocks"]), in_shape=shape, rngs=rngs
            )
        else:
            raise ValueError(f"unknown image model {kind!r}")
        data = {"task": "classify", "x": x, "y": y, "probe_x": px, "probe_y": py}
        return model, data
    if cfg["data"] == "shakespeare":
        corpus = datasets.load_shakespeare(max_chars=cfg.get("max_chars"))
    elif cfg["data"] == "ptb":
        corpus = datasets.load_ptb(data_dir)
    elif cfg["data"] == "wikitext2":
        corpus = datasets.load_wikitext2(data_dir)
    else:
        raise ValueError(f"unknown data {cfg['data']!r}")
    x, y = datasets.batchify(corpus.train, batch=1, seq_len=cfg["seq_len"])
    px, py = datasets.batchify(corpus.valid, batch=1, seq_len=cfg["seq_len"])
    model = models.LSTMLanguageModel(
        len(corpus.vocab),
        embed=cfg["embed"],
        hidden=cfg["hidden"],
        layers=cfg["layers"],
        rngs=rngs,
    )
    n = cfg["probe_windows"]
    data = {"task": "lm", "x": x, "y": y, "probe_x": px[:n], "probe_y": py[:n].astype(np.int32)}
    return model, data
