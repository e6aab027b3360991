"""The reproduce model zoo in one import: models, layer names, a training step, capture.

The networks themselves live in :mod:`reproduce.models` and are re-exported
here unchanged (one definition each, so configs, the trainer and the
experiments all train the same networks):

* :class:`SVCCAConvNet` ``(width=1.0, *, in_shape=(32, 32, 3), num_classes=10,
  rngs)``: the SVCCA paper's CIFAR-10 convnet, conv-conv-bn-pool-conv-conv-
  conv-bn-pool-fc-bn-fc-bn-out, 3x3 SAME convolutions, ReLU, 2x2 max pools.
  Base widths 64, 64, 128, 128, 128 (convs) and 256, 256 (fully connected),
  each multiplied by ``width`` (at least 1). Any image whose height and width
  are divisible by 4 works, e.g. 32x32x3 CIFAR-10 or 8x8x1 digits (pooled to
  4x4 then 2x2). Layers :data:`SVCCA_CONVNET_LAYERS`.
* :class:`ResNet` ``(width=1.0, *, blocks=(1, 1, 1), in_shape=(32, 32, 3),
  num_classes=10, rngs)``: a 3x3 stem (16 x width channels, BN), stages of
  basic blocks (conv-bn-relu-conv-bn plus an identity or 1x1-projection
  shortcut) with 16, 32, 64 channels x width, later stages starting with
  stride 2; global average pool; dense read-out. Layers
  :func:`resnet_layers` ``(blocks)``.
* :class:`LSTMLanguageModel` ``(vocab, *, embed=32, hidden=64, layers=2,
  rngs)``: embedding, 1 to 3 stacked ``nnx.RNN(nnx.OptimizedLSTMCell)``
  layers, dense read-out; ids ``(B, T)`` int32 in, logits ``(B, T, vocab)``
  out. Layers :func:`lstm_layers` ``(layers)``.

Every model is called as ``model(x, sow=False)``; with ``sow=True`` each named
layer is sown as ``nnx.Intermediate`` (conv layers ``(N, H, W, C)``, dense
layers ``(N, units)``, LSTM layers ``(B, T, hidden)``). Training never sows.
Batch norm uses batch statistics after ``model.train()`` and running averages
after ``model.eval()``: :func:`train_steps` trains in train mode and
:func:`capture` takes activations in eval mode, each restoring nothing else.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from reproduce.models import LSTMLanguageModel, ResNet, SVCCAConvNet, capture_activations

__all__ = [
    "LOSS_KINDS",
    "LSTMLanguageModel",
    "RESNET_LAYERS",
    "ResNet",
    "SVCCA_CONVNET_LAYERS",
    "SVCCAConvNet",
    "capture",
    "layer_names",
    "lstm_layers",
    "make_train_step",
    "resnet_layers",
    "train_steps",
]

SVCCA_CONVNET_LAYERS: tuple[str, ...] = tuple(SVCCAConvNet.LAYERS)
"""Sown layers of :class:`SVCCAConvNet`, bottom to top."""

LOSS_KINDS = ("classify", "lm")
"""``"classify"``: logits ``(N, C)``, labels ``(N,)``; ``"lm"``: logits ``(B, T, V)``, targets
``(B, T)``. Both losses are the mean softmax cross-entropy (over examples or tokens)."""


def resnet_layers(blocks: Iterable[int] = (1, 1, 1)) -> tuple[str, ...]:
    """Sown layers of a :class:`ResNet` with ``blocks`` blocks per stage, bottom to top.

    Example:
        >>> resnet_layers((1, 2))
        ('stem', 'block1', 'block2', 'block3', 'pool', 'logits')
    """
    n = sum(int(b) for b in blocks)
    return ("stem", *(f"block{i + 1}" for i in range(n)), "pool", "logits")


RESNET_LAYERS: tuple[str, ...] = resnet_layers((1, 1, 1))
"""Sown layers of the default ``ResNet(blocks=(1, 1, 1))``."""


def lstm_layers(layers: int) -> tuple[str, ...]:
    """Sown layers of an :class:`LSTMLanguageModel` with ``layers`` LSTM layers.

    Example:
        >>> lstm_layers(2)
        ('lstm1', 'lstm2', 'logits')
    """
    return (*(f"lstm{i + 1}" for i in range(layers)), "logits")


def layer_names(model: nnx.Module) -> tuple[str, ...]:
    """The names ``model`` sows with ``sow=True``, bottom to top."""
    names = getattr(model, "layer_names", None)
    if names is None:
        names = getattr(model, "LAYERS", None)
    if names is None:
        raise TypeError(
            f"expected a reproduce model with `layer_names` or `LAYERS`, got {type(model).__name__}"
        )
    return tuple(names)


def _loss(logits: jax.Array, y: jax.Array, loss_kind: str) -> jax.Array:
    want = 2 if loss_kind == "classify" else 3
    if logits.ndim != want or y.shape != logits.shape[:-1]:
        shapes = "(N, C) and (N,)" if loss_kind == "classify" else "(B, T, V) and (B, T)"
        raise ValueError(
            f"loss_kind={loss_kind!r} expects logits and targets of shapes {shapes}, got "
            f"{logits.shape} and {y.shape}; pass loss_kind='classify' for images and "
            "loss_kind='lm' for token sequences"
        )
    if not jnp.issubdtype(y.dtype, jnp.integer):
        raise TypeError(f"expected integer labels/targets, got dtype {y.dtype}; cast to int32")
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()


def make_train_step(loss_kind: str) -> Callable:
    """A jit-compiled training step ``step(model, opt, x, y) -> loss``.

    The step computes the mean softmax cross-entropy of ``model(x)`` against
    integer ``y`` (per example for ``"classify"``, per token for ``"lm"``),
    differentiates it with respect to the model's ``nnx.Param`` s and applies
    ``opt.update(model, grads)`` in place (batch-norm running statistics are
    updated too when the model is in train mode). It trains in whatever mode
    the model is in; :func:`train_steps` puts it in train mode first. Make the
    step once and reuse it: ``nnx.jit`` compiles once per model structure,
    mode and input shape.

    Args:
      loss_kind: ``"classify"`` (images ``(N, H, W, C)``, labels ``(N,)``) or
        ``"lm"`` (ids ``(B, T)``, next-token targets ``(B, T)``).

    Returns:
      ``step(model, opt, x, y)`` returning the scalar loss before the update;
      ``opt`` is an ``nnx.Optimizer(model, tx, wrt=nnx.Param)``.

    Raises:
      ValueError: unknown ``loss_kind``; at trace time, shapes that do not fit it.
      TypeError: at trace time, non-integer targets.
    """
    if loss_kind not in LOSS_KINDS:
        raise ValueError(f"loss_kind must be one of {LOSS_KINDS}, got {loss_kind!r}")

    def loss_fn(model, x, y):
        return _loss(model(x), y, loss_kind)

    @nnx.jit
    def step(model, opt, x, y):
        loss, grads = nnx.value_and_grad(loss_fn)(model, x, y)
        opt.update(model, grads)
        return loss

    return step


def train_steps(
    model: nnx.Module,
    opt: nnx.Optimizer,
    batches: Iterable[tuple],
    *,
    loss_kind: str,
    step: Callable | None = None,
) -> np.ndarray:
    """Trains ``model`` in train mode on every ``(x, y)`` in ``batches``; returns the losses.

    The model is left in train mode. Nothing is sown, so no ``nnx.Intermediate``
    state accumulates.

    Args:
      model: a zoo model.
      opt: ``nnx.Optimizer(model, tx, wrt=nnx.Param)``.
      batches: iterable of ``(x, y)`` as :func:`make_train_step` describes.
      loss_kind: ``"classify"`` or ``"lm"``.
      step: a step from :func:`make_train_step` to reuse (compiled once across
        calls); made from ``loss_kind`` when omitted.

    Returns:
      The loss of each step, ``(steps,)`` float32.
    """
    step = make_train_step(loss_kind) if step is None else step
    model.train()
    losses = [step(model, opt, jnp.asarray(x), jnp.asarray(y)) for x, y in batches]
    return np.asarray(jax.device_get(losses), dtype=np.float32).reshape(-1)


_MODE_ATTRS = ("use_running_average", "deterministic")


def capture(model: nnx.Module, x) -> dict[str, np.ndarray]:
    """Every sown layer's activations on ``x``, taken in eval mode.

    Batch norm uses its running averages (so each example's activations do not
    depend on the rest of the batch); afterwards every submodule's mode is put
    back exactly as it was, and no ``nnx.Intermediate`` state is left on the
    model.

    Args:
      model: a zoo model.
      x: the model's input: images ``(N, H, W, C)`` or ids ``(B, T)``.

    Returns:
      ``{layer name: array}`` ordered bottom to top (as :func:`layer_names`),
      conv layers ``(N, H, W, C)``, dense layers ``(N, units)``, LSTM layers
      ``(B, T, hidden)``.
    """
    saved = [
        (module, attr, getattr(module, attr))
        for _, module in nnx.iter_modules(model)
        for attr in _MODE_ATTRS
        if hasattr(module, attr)
    ]
    model.eval()
    try:
        acts = capture_activations(model, x)
    finally:
        for module, attr, value in saved:
            setattr(module, attr, value)
    order = getattr(model, "layer_names", None) or getattr(model, "LAYERS", None) or ()
    ordered = {name: acts.pop(name) for name in order if name in acts}
    return {**ordered, **acts}
