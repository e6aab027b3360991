"""A small convnet for the 8x8 digits with a width multiplier; every layer is sown."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx


class ConvNet(nnx.Module):
    """conv-conv-pool-fc-out; ``width`` multiplies the channels/units of every layer.

    Layers sown as ``nnx.Intermediate``: ``conv1`` and ``conv2`` as ``(N, H, W, C)``,
    ``fc`` as ``(N, units)``, ``logits`` as ``(N, 10)``.
    """

    def __init__(self, width: float = 1.0, *, rngs: nnx.Rngs):
        c1, c2, f = (max(1, int(round(v * width))) for v in (16, 32, 64))
        self.conv1_layer = nnx.Conv(1, c1, (3, 3), rngs=rngs)
        self.conv2_layer = nnx.Conv(c1, c2, (3, 3), rngs=rngs)
        self.fc_layer = nnx.Linear(4 * 4 * c2, f, rngs=rngs)
        self.out_layer = nnx.Linear(f, 10, rngs=rngs)

    def features(self, x) -> dict:
        """Every layer's activations on images ``(N, 8, 8, 1)`` (``"logits"`` last)."""
        out = {}
        h = jax.nn.relu(self.conv1_layer(x))
        out["conv1"] = h
        h = jax.nn.relu(self.conv2_layer(h))
        out["conv2"] = h
        h = _pool(h)
        h = jax.nn.relu(self.fc_layer(h.reshape(h.shape[0], -1)))
        out["fc"] = h
        out["logits"] = self.out_layer(h)
        return out

    def __call__(self, x, *, sow: bool = False):
        """Logits ``(N, 10)`` for images ``(N, 8, 8, 1)``.

        With ``sow=True`` every layer is sown (training never sows, so no
        intermediates pile up on the module).
        """
        feats = self.features(x)
        if sow:
            for name, value in feats.items():
                self.sow(nnx.Intermediate, name, value)
        return feats["logits"]


def _pool(h):
    n, hh, ww, c = h.shape
    return h.reshape(n, hh // 2, 2, ww // 2, 2, c).max(axis=(2, 4))


LAYERS = ("conv1", "conv2", "fc", "logits")


def capture_activations(model: nnx.Module, x) -> dict[str, np.ndarray]:
    """Every sown layer's activations on ``x`` (conv layers stay ``(N, H, W, C)``)."""
    _, inter = nnx.capture(lambda m, v: m(v, sow=True), nnx.Intermediate)(model, jnp.asarray(x))
    flat = dict(nnx.to_flat_state(inter)) if hasattr(nnx, "to_flat_state") else inter.flat_state()
    out = {}
    for path, value in flat.items():
        name = path[0] if isinstance(path, tuple) else path
        v = value.get_value() if hasattr(value, "get_value") else value
        out[str(name)] = np.asarray(v[0] if isinstance(v, tuple) else v)
    return out


class LSTMLanguageModel(nnx.Module):
    """Embedding, 1 to 3 stacked LSTM layers, and a linear read-out to the vocabulary.

    The PWCCA paper's PTB / WikiText-2 setting, scaled down for CPU. Input ids
    ``(B, T)``; layers named ``lstm1`` .. ``lstmL`` (hidden states ``(B, T,
    hidden)``) and ``logits`` ``(B, T, vocab)``.
    """

    def __init__(self, vocab: int, *, embed: int = 32, hidden: int = 64, layers: int = 2, rngs):
        if not 1 <= layers <= 3:
            raise ValueError(f"layers must be 1, 2 or 3, got {layers}")
        self.embed = nnx.Embed(vocab, embed, rngs=rngs)
        self.lstms = nnx.List(
            [
                nnx.RNN(nnx.OptimizedLSTMCell(embed if i == 0 else hidden, hidden, rngs=rngs))
                for i in range(layers)
            ]
        )
        self.out_layer = nnx.Linear(hidden, vocab, rngs=rngs)

    @property
    def layer_names(self) -> tuple[str, ...]:
        """The sown layer names, bottom to top."""
        return tuple(f"lstm{i + 1}" for i in range(len(self.lstms))) + ("logits",)

    def features(self, ids) -> dict:
        """Every layer's activations on ``ids`` ``(B, T)``."""
        out = {}
        h = self.embed(ids)
        for i, lstm in enumerate(self.lstms):
            h = lstm(h)
            out[f"lstm{i + 1}"] = h
        out["logits"] = self.out_layer(h)
        return out

    def __call__(self, ids, *, sow: bool = False):
        """Next-token logits ``(B, T, vocab)``."""
        feats = self.features(ids)
        if sow:
            for name, value in feats.items():
                self.sow(nnx.Intermediate, name, value)
        return feats["logits"]
