"""Training with optax and a jit-compiled NNX step; activations captured on the probe set."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from reproduce.models import ConvNet, capture_activations


@nnx.jit
def train_step(model, opt, x, y):
    """One optax update on the mean softmax cross-entropy of ``model(x)`` against ``y``.

    ``y`` holds integer labels ``(N,)`` or next-token targets ``(B, T)``;
    ``opt`` is an ``nnx.Optimizer(model, tx, wrt=nnx.Param)``. Returns the loss
    before the update. Compiled once per model structure and input shape.
    """

    def loss_fn(m):
        return optax.softmax_cross_entropy_with_integer_labels(m(x), y).mean()

    loss, grads = nnx.value_and_grad(loss_fn)(model)
    opt.update(model, grads)
    return loss


def train_convnet(
    images: np.ndarray,
    labels: np.ndarray,
    *,
    seed: int,
    width: float = 1.0,
    steps: int = 500,
    batch: int = 128,
    lr: float = 3e-3,
) -> ConvNet:
    """Trains a :class:`ConvNet` with Adam on ``(images, labels)``; returns the model."""
    model = ConvNet(width, in_shape=images.shape[1:], rngs=nnx.Rngs(seed))
    opt = nnx.Optimizer(model, optax.adam(lr), wrt=nnx.Param)

    rng = np.random.default_rng(seed)
    x_all, y_all = jnp.asarray(images), jnp.asarray(labels)
    for _ in range(steps):
        idx = rng.integers(0, len(labels), batch)
        train_step(model, opt, x_all[idx], y_all[idx])
    return model


def accuracy(model: ConvNet, images: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of correct predictions."""
    logits = model(jnp.asarray(images))
    return float(np.mean(np.asarray(jnp.argmax(logits, -1)) == labels))


def probe_activations(model: ConvNet, images: np.ndarray) -> dict[str, np.ndarray]:
    """Activations of every layer on the probe images.

    Conv layers are reduced to the per-channel spatial mean, ``(N, C)``, as in
    Morcos et al. 2018.
    """
    acts = capture_activations(model, images)
    return {k: (v.mean(axis=(1, 2)) if v.ndim == 4 else v) for k, v in acts.items()}
