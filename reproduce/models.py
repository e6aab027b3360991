"""The experiments' networks; every one names its layers in ``layer_names`` and sows them.

* :class:`ConvNet`: a small digits convnet (PWCCA experiments), ``width`` multiplier.
* :class:`SVCCAConvNet`: the SVCCA paper's CIFAR-10 convnet, with batch norm.
* :class:`ResNet`: a small residual network (SVCCA figure 7).
* :class:`LSTMLanguageModel`: 1 to 3 stacked LSTM layers (PWCCA LSTM experiments).

:func:`capture` takes every layer's activations in eval mode with
``nnx.capture``; training never sows.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx


class _SownModel(nnx.Module):
    """A model whose ``features(x)`` returns every named layer, ``"logits"`` last."""

    layer_names: tuple[str, ...] = ()

    def __call__(self, x, *, sow: bool = False):
        """The logits; with ``sow=True`` every layer is also sown as ``nnx.Intermediate``.

        Training never sows, so no intermediates pile up on the module.
        """
        feats = self.features(x)
        if sow:
            for name, value in feats.items():
                self.sow(nnx.Intermediate, name, value)
        return feats["logits"]


class ConvNet(_SownModel):
    """conv-conv-pool-fc-out; ``width`` multiplies the channels/units of every layer.

    Layers sown as ``nnx.Intermediate``: ``conv1`` and ``conv2`` as ``(N, H, W, C)``,
    ``fc`` as ``(N, units)``, ``logits`` as ``(N, 10)``.
    """

    layer_names = ("conv1", "conv2", "fc", "logits")

    def __init__(self, width: float = 1.0, *, in_shape=(8, 8, 1), rngs: nnx.Rngs):
        c1, c2, f = (max(1, int(round(v * width))) for v in (16, 32, 64))
        h, w, cin = in_shape
        self.conv1_layer = nnx.Conv(cin, c1, (3, 3), rngs=rngs)
        self.conv2_layer = nnx.Conv(c1, c2, (3, 3), rngs=rngs)
        self.fc_layer = nnx.Linear((h // 2) * (w // 2) * c2, f, rngs=rngs)
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


def _pool(h):
    n, hh, ww, c = h.shape
    return h.reshape(n, hh // 2, 2, ww // 2, 2, c).max(axis=(2, 4))


_MODE_ATTRS = ("use_running_average", "deterministic")


def capture(model: nnx.Module, x) -> dict[str, np.ndarray]:
    """Every sown layer's activations on ``x``, bottom to top, taken in eval mode.

    Batch norm uses its running averages; afterwards every submodule's mode is
    put back as it was and no ``nnx.Intermediate`` is left on the model. Conv
    layers stay ``(N, H, W, C)``, LSTM layers ``(B, T, hidden)``.
    """
    saved = [
        (module, attr, getattr(module, attr))
        for _, module in nnx.iter_modules(model)
        for attr in _MODE_ATTRS
        if hasattr(module, attr)
    ]
    model.eval()
    try:
        acts = _capture(model, x)
    finally:
        for module, attr, value in saved:
            setattr(module, attr, value)
    return {name: acts[name] for name in model.layer_names}


def _capture(model: nnx.Module, x) -> dict[str, np.ndarray]:
    _, inter = nnx.capture(lambda m, v: m(v, sow=True), nnx.Intermediate)(model, jnp.asarray(x))
    flat = dict(nnx.to_flat_state(inter)) if hasattr(nnx, "to_flat_state") else inter.flat_state()
    out = {}
    for path, value in flat.items():
        name = path[0] if isinstance(path, tuple) else path
        v = value.get_value() if hasattr(value, "get_value") else value
        out[str(name)] = np.asarray(v[0] if isinstance(v, tuple) else v)
    return out


class LSTMLanguageModel(_SownModel):
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

    def states(self, ids) -> dict:
        """Every LSTM layer's hidden and cell state at every timestep, ``(B, T, hidden)``.

        ``"lstmK"`` is the hidden state (as :meth:`features` gives it) and
        ``"lstmK_cell"`` the cell state, the cell run step by step from a zero
        carry as ``nnx.RNN`` runs it (PWCCA figures A2-A4 compare both).
        """
        out = {}
        h = self.embed(ids)
        for i, lstm in enumerate(self.lstms):
            cell = lstm.cell
            zeros = jnp.zeros((h.shape[0], cell.hidden_features), h.dtype)
            carry, hs, cs = (zeros, zeros), [], []
            for t in range(h.shape[1]):
                carry, y = cell(carry, h[:, t])
                cs.append(carry[0])
                hs.append(y)
            h = jnp.stack(hs, axis=1)
            out[f"lstm{i + 1}"], out[f"lstm{i + 1}_cell"] = h, jnp.stack(cs, axis=1)
        return out


def _scaled(base: int, width: float) -> int:
    return max(1, int(round(base * width)))


class SVCCAConvNet(_SownModel):
    """The SVCCA paper's CIFAR-10 convnet, with a width multiplier.

    conv-conv-bn-pool-conv-conv-conv-bn-pool-fc-bn-fc-bn-out (3x3 convs, SAME
    padding, ReLU, 2x2 max pools). Base widths: convs 64, 64, 128, 128, 128;
    fully connected 256, 256; ``width`` scales every one of them. Works on any
    image size divisible by 4 (32x32x3 CIFAR-10, 8x8x1 digits).

    Layers (after their nonlinearity): ``conv1`` .. ``conv5`` ``(N, H, W, C)``,
    ``fc1``, ``fc2`` ``(N, units)``, ``logits``. Batch norm uses batch
    statistics in ``model.train()`` mode and running averages in
    ``model.eval()`` mode (use eval mode to take activations).
    """

    layer_names = ("conv1", "conv2", "conv3", "conv4", "conv5", "fc1", "fc2", "logits")

    def __init__(
        self, width: float = 1.0, *, in_shape=(32, 32, 3), num_classes: int = 10, rngs: nnx.Rngs
    ):
        h, w, cin = in_shape
        if h % 4 or w % 4:
            raise ValueError(f"image height and width must be divisible by 4, got {in_shape}")
        c = [_scaled(v, width) for v in (64, 64, 128, 128, 128)]
        f = [_scaled(v, width) for v in (256, 256)]
        self.conv = nnx.List(
            [nnx.Conv(a, b, (3, 3), rngs=rngs) for a, b in zip([cin, *c[:-1]], c, strict=True)]
        )
        self.bn_conv2 = nnx.BatchNorm(c[1], rngs=rngs)
        self.bn_conv5 = nnx.BatchNorm(c[4], rngs=rngs)
        self.fc1 = nnx.Linear((h // 4) * (w // 4) * c[4], f[0], rngs=rngs)
        self.bn_fc1 = nnx.BatchNorm(f[0], rngs=rngs)
        self.fc2 = nnx.Linear(f[0], f[1], rngs=rngs)
        self.bn_fc2 = nnx.BatchNorm(f[1], rngs=rngs)
        self.out_layer = nnx.Linear(f[1], num_classes, rngs=rngs)

    def features(self, x, *, batch_norm: bool = False) -> dict:
        """Every layer's activations on images ``(N, H, W, C)``, bottom to top.

        With ``batch_norm=True`` every batch norm's input and output (before the
        ReLU) are added as ``"<bn>_in"`` and ``"<bn>"`` just below the layer they
        feed (SVCCA figure 4 lists batch norm layers on their own).
        """
        relu = jax.nn.relu
        out = {}

        def normed(name, z):
            b = getattr(self, name)(z)
            if batch_norm:
                out[f"{name}_in"], out[name] = z, b
            return b

        h = relu(self.conv[0](x))
        out["conv1"] = h
        h = relu(normed("bn_conv2", self.conv[1](h)))
        out["conv2"] = h
        h = _pool(h)
        h = relu(self.conv[2](h))
        out["conv3"] = h
        h = relu(self.conv[3](h))
        out["conv4"] = h
        h = relu(normed("bn_conv5", self.conv[4](h)))
        out["conv5"] = h
        h = _pool(h).reshape(h.shape[0], -1)
        h = relu(normed("bn_fc1", self.fc1(h)))
        out["fc1"] = h
        h = relu(normed("bn_fc2", self.fc2(h)))
        out["fc2"] = h
        out["logits"] = self.out_layer(h)
        return out


class _Block(nnx.Module):
    """Basic residual block: conv-bn-relu-conv-bn plus the (projected) input, then ReLU."""

    def __init__(self, cin: int, cout: int, stride: int, *, rngs: nnx.Rngs):
        self.conv1 = nnx.Conv(cin, cout, (3, 3), strides=stride, rngs=rngs)
        self.bn1 = nnx.BatchNorm(cout, rngs=rngs)
        self.conv2 = nnx.Conv(cout, cout, (3, 3), rngs=rngs)
        self.bn2 = nnx.BatchNorm(cout, rngs=rngs)
        if stride != 1 or cin != cout:
            self.proj = nnx.Conv(cin, cout, (1, 1), strides=stride, rngs=rngs)
            self.bn_proj = nnx.BatchNorm(cout, rngs=rngs)
        else:
            self.proj = None
            self.bn_proj = None

    def branch(self, x):
        """The residual branch's first layer, ``relu(bn1(conv1(x)))`` (off the skip path)."""
        return jax.nn.relu(self.bn1(self.conv1(x)))

    def __call__(self, x):
        h = self.bn2(self.conv2(self.branch(x)))
        skip = x if self.proj is None else self.bn_proj(self.proj(x))
        return jax.nn.relu(h + skip)


class ResNet(_SownModel):
    """A small residual network (SVCCA figure 7's comparison with the convnet).

    A 3x3 stem (16 channels x width), then stages of basic blocks with 16, 32,
    64 channels (x width), the later stages starting with stride 2; global
    average pooling and a linear read-out. Layers: ``stem``, ``block1`` ..
    ``blockK`` ``(N, H, W, C)``, ``pool`` ``(N, C)``, ``logits``.
    """

    def __init__(
        self,
        width: float = 1.0,
        *,
        blocks=(1, 1, 1),
        in_shape=(32, 32, 3),
        num_classes: int = 10,
        rngs: nnx.Rngs,
    ):
        c0 = _scaled(16, width)
        self.stem = nnx.Conv(in_shape[-1], c0, (3, 3), rngs=rngs)
        self.bn_stem = nnx.BatchNorm(c0, rngs=rngs)
        layers, cin = [], c0
        for s, n_blocks in enumerate(blocks):
            cout = _scaled(16 * 2**s, width)
            for b in range(n_blocks):
                layers.append(_Block(cin, cout, 2 if (s > 0 and b == 0) else 1, rngs=rngs))
                cin = cout
        self.blocks = nnx.List(layers)
        self.out_layer = nnx.Linear(cin, num_classes, rngs=rngs)

    @property
    def layer_names(self) -> tuple[str, ...]:
        """The sown layer names, bottom to top."""
        blocks = tuple(f"block{i + 1}" for i in range(len(self.blocks)))
        return ("stem", *blocks, "pool", "logits")

    def features(self, x, *, branches: bool = False) -> dict:
        """Every layer's activations on images ``(N, H, W, C)``, bottom to top.

        With ``branches=True`` each block's residual-branch layer (off the skip
        path, :meth:`_Block.branch`) is added as ``"blockK_branch"`` just below
        ``"blockK"``.
        """
        out = {}
        h = jax.nn.relu(self.bn_stem(self.stem(x)))
        out["stem"] = h
        for i, block in enumerate(self.blocks):
            if branches:
                out[f"block{i + 1}_branch"] = block.branch(h)
            h = block(h)
            out[f"block{i + 1}"] = h
        h = jnp.mean(h, axis=(1, 2))
        out["pool"] = h
        out["logits"] = self.out_layer(h)
        return out


class DeepConvNet(_SownModel):
    """Four conv layers (two per resolution), max-pool after each pair, fc, out (PWCCA fig 5).

    A deeper digits network than :class:`ConvNet` for the learning-rate
    clusters; ``width`` multiplies every layer. Layers ``conv1`` .. ``conv4``
    ``(N, H, W, C)``, ``fc`` ``(N, units)``, ``logits`` ``(N, 10)``.
    """

    layer_names = ("conv1", "conv2", "conv3", "conv4", "fc", "logits")

    def __init__(self, width: float = 1.0, *, in_shape=(8, 8, 1), rngs: nnx.Rngs):
        c1, c2, f = _scaled(16, width), _scaled(32, width), _scaled(64, width)
        h, w, cin = in_shape
        self.convs = nnx.List(
            [
                nnx.Conv(a, b, (3, 3), rngs=rngs)
                for a, b in ((cin, c1), (c1, c1), (c1, c2), (c2, c2))
            ]
        )
        self.fc_layer = nnx.Linear((h // 4) * (w // 4) * c2, f, rngs=rngs)
        self.out_layer = nnx.Linear(f, 10, rngs=rngs)

    def features(self, x) -> dict:
        """Every layer's activations on images ``(N, H, W, C)`` (``"logits"`` last)."""
        out = {}
        h = x
        for i, conv in enumerate(self.convs):
            h = jax.nn.relu(conv(h))
            out[f"conv{i + 1}"] = h
            if i % 2 == 1:
                h = _pool(h)
        h = jax.nn.relu(self.fc_layer(h.reshape(h.shape[0], -1)))
        out["fc"] = h
        out["logits"] = self.out_layer(h)
        return out
