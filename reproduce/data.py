"""Embedded data (no network): scikit-learn's 8x8 digits, with fixed splits."""

from __future__ import annotations

import dataclasses

import numpy as np


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
    from reproduce.datasets import load_cifar10

    d = load_cifar10(data_dir)
    train, test = Split(*d["train"]), Split(*d["test"])
    return {
        "train": train,
        "test": test,
        "probe": Split(test.images[:n_probe], test.labels[:n_probe]),
    }
