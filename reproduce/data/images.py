"""Image data, offline: scikit-learn's 8x8 digits (embedded, fixed splits) and local CIFAR-10."""

from __future__ import annotations

import dataclasses
import pathlib
import pickle

import numpy as np

from reproduce.data.text import _missing


@dataclasses.dataclass(frozen=True)
class Split:
    """Images ``(N, 8, 8, 1)`` in [0, 1] and integer labels."""

    images: np.ndarray
    labels: np.ndarray


def load_digits_splits(*, n_probe: int = 300, seed: int = 0) -> dict[str, Split]:
    """Train / test / probe splits of the digits (1797 images), fixed by ``seed``.

    The probe set (part of the held-out data) is where activations are taken.
    """
    from sklearn.datasets import load_digits

    d = load_digits()
    images = (d.images / 16.0).astype(np.float32)[..., None]
    labels = d.target.astype(np.int32)
    order = np.random.default_rng(seed).permutation(len(labels))
    images, labels = images[order], labels[order]
    n_train = 1200
    train = Split(images[:n_train], labels[:n_train])
    test = Split(images[n_train:], labels[n_train:])
    probe = Split(test.images[:n_probe], test.labels[:n_probe])
    return {"train": train, "test": test, "probe": probe}


def random_labels(labels: np.ndarray, *, seed: int) -> np.ndarray:
    """One fixed permutation of the training labels, shared by a whole group of networks."""
    return labels[np.random.default_rng(seed).permutation(len(labels))]


def load_image_splits(data_dir=None, *, n_probe: int = 300) -> dict[str, Split]:
    """The digits (``data_dir=None``), or CIFAR-10 when ``data_dir`` holds its python batches.

    CIFAR-10: the 50,000 training images, the 10,000 test images, and the
    first ``n_probe`` test images as the probe set.
    """
    if data_dir is None:
        return load_digits_splits(n_probe=n_probe)
    d = load_cifar10(data_dir)
    train, test = Split(*d["train"]), Split(*d["test"])
    return {
        "train": train,
        "test": test,
        "probe": Split(test.images[:n_probe], test.labels[:n_probe]),
    }


# --------------------------------------------------------------------------- CIFAR-10

_CIFAR_FMT = (
    "the CIFAR-10 python version: a pickled dict with b'data' (uint8, N x 3072: for each "
    "32x32 image 1024 red, then 1024 green, then 1024 blue values, each row-major) and "
    "b'labels' (N ints in 0..9); the folder holds data_batch_1..data_batch_5 and test_batch"
)


def _get(d: dict, key: str):
    if key.encode() in d:
        return d[key.encode()]
    return d[key]


def _cifar_batch(path: pathlib.Path) -> tuple[np.ndarray, np.ndarray]:
    if not path.is_file():
        raise _missing(path, _CIFAR_FMT)
    try:
        with path.open("rb") as f:
            d = pickle.load(f, encoding="bytes")
    except Exception as e:  # any unpickling failure means "not a CIFAR-10 batch"
        raise ValueError(f"{path} is not a CIFAR-10 batch ({e!r}); expected {_CIFAR_FMT}") from e
    if not isinstance(d, dict):
        raise ValueError(
            f"{path} is not a CIFAR-10 batch (a pickled {type(d).__name__}, not a dict); "
            f"expected {_CIFAR_FMT}"
        )
    try:
        data, labels = np.asarray(_get(d, "data")), np.asarray(_get(d, "labels"))
    except KeyError as e:
        raise ValueError(
            f"{path} is not a CIFAR-10 batch (keys {sorted(map(repr, d))}, missing {e}); "
            f"expected {_CIFAR_FMT}"
        ) from e
    if data.ndim != 2 or data.shape[1] != 3072 or labels.ndim != 1 or len(labels) != len(data):
        raise ValueError(
            f"{path}: data of shape {data.shape} and labels of shape {labels.shape}; "
            f"expected {_CIFAR_FMT}"
        )
    for name, a, hi in (("data", data, 255), ("labels", labels, 9)):
        if a.size and (a.dtype.kind not in "iu" or a.min() < 0 or a.max() > hi):
            raise ValueError(f"{path}: {name} must be integers in 0..{hi}; expected {_CIFAR_FMT}")
    images = data.astype(np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return images.astype(np.float32) / np.float32(255.0), labels.astype(np.int32)


def load_cifar10(data_dir: str | pathlib.Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """CIFAR-10 from its python batches (``data_batch_1`` .. ``data_batch_5``, ``test_batch``).

    Each batch is a pickle (read with ``pickle.load(f, encoding="bytes")``, so
    only load files you trust) of a dict with ``b"data"``, uint8 ``(N, 3072)``
    whose rows hold the 1024 red, 1024 green then 1024 blue values of a 32x32
    image (row-major), and ``b"labels"``, ``N`` ints.

    Args:
      data_dir: the ``cifar-10-batches-py`` folder, or a folder holding it.

    Returns:
      ``{"train": (images, labels), "test": (images, labels)}``: images
      ``(N, 32, 32, 3)`` float32 in [0, 1] (channels last), labels int32
      ``(N,)``; train is the five batches in order.

    Raises:
      FileNotFoundError: a batch is missing (the message names its expected path).
      ValueError: a batch is not such a pickle (names the file).
    """
    folder = pathlib.Path(data_dir)
    if (folder / "cifar-10-batches-py").is_dir():
        folder = folder / "cifar-10-batches-py"
    train = [_cifar_batch(folder / f"data_batch_{i}") for i in range(1, 6)]
    test = _cifar_batch(folder / "test_batch")
    return {
        "train": (np.concatenate([t[0] for t in train]), np.concatenate([t[1] for t in train])),
        "test": test,
    }
