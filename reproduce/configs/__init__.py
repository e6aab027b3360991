"""The only home of model and optimiser settings: one module per network setting.

Each ``configs/NAME.py`` has ``get_config(preset)`` for the presets "quick"
(CPU, built-in data), "full" (GPU, local data) and "smoke" (tests: "quick" cut
to 4 steps), all through :func:`select`, the one preset mechanism (the
experiments' own settings, e.g. group sizes, use it too).
``python -m reproduce train --config NAME`` trains one network with
:func:`reproduce.train.fit`; :func:`build` makes the model and the data.
"""

from __future__ import annotations

import importlib
import pathlib

NAMES = (
    "digits_convnet",
    "svcca_convnet",
    "resnet",
    "lstm_shakespeare",
    "lstm_ptb",
    "digits_deep_convnet",
)


def select(base: dict, presets: dict, preset: str) -> dict:
    """``base`` updated with ``presets[preset]``.

    "smoke" defaults to "quick" with every ``*steps`` setting cut to 4 (and
    checkpoints every 2 steps).
    """
    quick = presets["quick"]
    cut = {k: 4 for k in quick if k.endswith("steps")} | ({"every": 2} if "every" in quick else {})
    smoke = {**quick, **cut}
    presets = {"smoke": smoke, **presets}
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


BUILT_IN = ("digits", "shakespeare")
LOCAL = {"cifar10": "CIFAR-10 python batches", "ptb": "PTB text files", "wikitext2": "WikiText-2"}


def check_data_dir(cfg: dict, data_dir) -> None:
    """Raises ValueError unless ``data_dir`` is given exactly when ``cfg``'s data need it."""
    where = f"config {cfg.get('name', '?')!r} at preset {cfg.get('preset', '?')!r}"
    if cfg["data"] in BUILT_IN and data_dir is not None:
        raise ValueError(
            f"--data-dir is not used by {where}: it trains on the built-in {cfg['data']} data; "
            "drop --data-dir"
        )
    if cfg["data"] in LOCAL and data_dir is None:
        raise ValueError(
            f"{where} reads {LOCAL[cfg['data']]} from local files: pass --data-dir DIR "
            "(the folder that holds them)"
        )


def build(cfg: dict, data_dir: str | pathlib.Path | None = None):
    """``(model, data)`` for :func:`reproduce.train.fit` from a configuration.

    ``data``: ``{"task", "x", "y", "probe_x", "probe_y"}``, and for images
    ``"test_x", "test_y"`` (the held-out split the probe set is taken from).
    """
    import numpy as np
    from flax import nnx

    from reproduce import data as datasets
    from reproduce import models

    check_data_dir(cfg, data_dir)
    rngs = nnx.Rngs(cfg["seed"])
    if cfg["data"] in ("digits", "cifar10"):
        d = datasets.load_image_splits(
            None if cfg["data"] == "digits" else data_dir, n_probe=cfg["n_probe"]
        )
        x, y = d["train"].images, d["train"].labels
        if cfg.get("labels", "true") == "random":
            y = datasets.random_labels(y, seed=cfg["label_seed"])
        shape = x.shape[1:]
        kind = cfg["model"]
        if kind == "digits_convnet":
            model = models.ConvNet(cfg["width"], in_shape=shape, rngs=rngs)
        elif kind == "digits_deep_convnet":
            model = models.DeepConvNet(cfg["width"], in_shape=shape, rngs=rngs)
        elif kind == "svcca_convnet":
            model = models.SVCCAConvNet(cfg["width"], in_shape=shape, rngs=rngs)
        elif kind == "resnet":
            model = models.ResNet(
                cfg["width"], blocks=tuple(cfg["blocks"]), in_shape=shape, rngs=rngs
            )
        else:
            raise ValueError(f"unknown image model {kind!r}")
        data = {
            "task": "classify",
            "x": x,
            "y": y,
            "probe_x": d["probe"].images,
            "probe_y": d["probe"].labels,
            "test_x": d["test"].images,
            "test_y": d["test"].labels,
        }
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
