"""Layer-by-layer comparison of models: capture, one pass over the data, every pair.

Three steps, each usable on its own:

1. :func:`capture_layers` runs a Flax NNX model on one batch under
   ``nnx.capture`` and returns every sown ``nnx.Intermediate`` (and, with
   ``outputs=True``, every submodule's method outputs) by name;
   :func:`reduce_layer` turns a conv ``(N, H, W, C)`` or sequence ``(N, T, D)``
   output into a ``(samples, neurons)`` matrix.
2. :func:`accumulate_layers` (models and batches) or
   :func:`accumulate_activations` (arrays already in hand) make ONE pass over
   the data and keep ONE co-moment accumulator of the concatenation of all
   selected, reduced layers ``[a_1 .. a_La, b_1 .. b_Lb]``: a
   :class:`jaxcca.streaming.CovarianceState` whose ``x`` is every layer of
   the first model side by side and ``y`` every layer of the second (the
   blocks ``Sxx``, ``Syy``, ``Sxy`` of the joint co-moment; for a model
   against itself only ``Sxx``). Batches are merged with the exact update of
   Chan, Golub & LeVeque (1979), so the result does not depend on how the
   data are split. Memory grows with the layers and their widths, never
   with the number of samples: ``(D_a + D_b)**2`` floats, ``D_a`` and
   ``D_b`` the sums of the reduced widths of each side's selected layers
   (``conv="flatten"`` multiplies a conv layer's width by ``H*W``), plus one
   batch; no per-pair state. The minibatch estimator keeps ``La * Lb``
   scalars plus one batch's kernel matrices. Forward pass, capture,
   reduction and update are one compiled step per batch, its accumulator
   donated, so a layer's full output (a conv map) never leaves the step.
3. :func:`similarity_matrix` slices the blocks of every pair and finalises
   them: CCA, SVCCA and PWCCA by whitening the co-moments (each layer is
   whitened once), linear CKA as ``||S_ab||_F**2 / (||S_aa||_F ||S_bb||_F)``
   and Procrustes as ``||S_ab||_* / sqrt(tr S_aa tr S_bb)``: exactly the
   full-data values of :func:`jaxcca.pairwise` on the concatenated
   activations. Measures that need the ``n x n`` Gram matrix (RBF kernels,
   debiased HSIC) are only available as the minibatch estimator of Nguyen,
   Raghu & Kornblith (2021), ``measure="minibatch_cka"``, which averages
   per-batch HSIC (its value depends on the batch size).

:func:`compare` and :func:`compare_activations` do all three in one call.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from jaxcca import streaming
from jaxcca._cca import canonical_correlations, canonical_directions
from jaxcca._checks import validate_convention, validate_keep
from jaxcca._cka import (
    minibatch_cka_finalize,
    minibatch_cka_init,
    minibatch_cka_update,
)
from jaxcca._dft import conv_to_neurons
from jaxcca._linalg import singular_values
from jaxcca._numerics import mean_correlation, mm, rescale_ratio
from jaxcca._pwcca import pwcca_weights, weighted_correlation
from jaxcca._results import Comparison, LayerStatistics
from jaxcca._svcca import reduce_whitened
from jaxcca._whiten import whiten_moments

__all__ = [
    "accumulate_activations",
    "accumulate_layers",
    "capture_layers",
    "compare",
    "compare_activations",
    "reduce_layer",
    "select_layers",
    "similarity_matrix",
]

EXACT_MEASURES = ("cca", "svcca", "pwcca", "cka", "procrustes")
MEASURES = (*EXACT_MEASURES, "minibatch_cka")
CONV_MODES = ("spatial_mean", "flatten", "channels")
TOKEN_MODES = ("mean", "last", "flatten")
_MINIBATCH_OPTIONS = ("kernel", "sigma", "threshold", "debiased")


# ----------------------------------------------------------------------------
# Capture and reduction
# ----------------------------------------------------------------------------


def _path_name(path) -> str:
    parts = [str(getattr(p, "key", getattr(p, "idx", getattr(p, "name", p)))) for p in path]
    if parts and parts[-1] == "__call__":
        parts = parts[:-1] or ["output"]  # the model's own output
    return "/".join(parts)


def _flatten_captured(state) -> dict[str, jax.Array]:
    """Names and arrays of an ``nnx.capture`` state (sown values are tuples)."""
    from flax import nnx

    out: dict[str, jax.Array] = {}
    for path, var in nnx.to_flat_state(state):
        value = var.get_value() if hasattr(var, "get_value") else var
        base = _path_name(path)
        calls = value if isinstance(value, tuple) else (value,)
        for c, call_value in enumerate(calls):
            name = base if len(calls) == 1 else f"{base}#{c}"
            leaves = jax.tree_util.tree_flatten_with_path(call_value)[0]
            for leaf_path, leaf in leaves:
                if not hasattr(leaf, "ndim") or leaf.ndim < 2:
                    continue  # scalars and per-sample vectors are not layers
                sub = _path_name(leaf_path)
                out[f"{name}/{sub}" if sub else name] = leaf
    return out


def select_layers(names: Sequence[str], layers, *, what: str = "model") -> tuple[str, ...]:
    """The names picked by ``layers`` (None, exact names, a regex or a predicate).

    Raises:
      ValueError: an exact name that is not among ``names``, or nothing selected.
    """
    names = tuple(names)
    if layers is None:
        picked = names
    elif isinstance(layers, str):
        pattern = re.compile(layers)
        picked = tuple(n for n in names if pattern.search(n))
    elif callable(layers):
        picked = tuple(n for n in names if layers(n))
    else:
        picked = tuple(layers)
        unknown = [n for n in picked if n not in names]
        if unknown:
            raise ValueError(
                f"unknown layer(s) {unknown} in {what}; it has {list(names)}. "
                "Pass names from that list, a regex string or a predicate."
            )
    if not picked:
        raise ValueError(f"no layer of {what} selected by layers={layers!r}; it has {list(names)}.")
    return picked


def capture_layers(
    model,
    x,
    *,
    call: Callable | None = None,
    layers=None,
    outputs: bool = False,
) -> dict[str, jax.Array]:
    """Every sown intermediate (and optionally every submodule output) of a model.

    Runs ``call(model, x)`` (default ``model(x)``) under
    ``nnx.capture(..., nnx.Intermediate)``: everything the model sows as
    ``nnx.Intermediate`` is returned under its path (``"block1/conv"``), and
    with ``outputs=True`` also the output of every method of every submodule
    (``method_outputs=nnx.Intermediate``; a ``__call__`` output is named by the
    submodule's path alone, the model's own ``__call__`` is ``"output"``,
    other methods get ``/method``). Flax instruments
    the methods defined on each module's own class, not inherited ones. A
    value sown several times gets ``#0``, ``#1``, ... suffixes; dict outputs
    get their keys appended; arrays with fewer than 2 dimensions are skipped.

    Put models with batch statistics in evaluation mode first
    (``model.eval()``). Works under ``nnx.jit``.

    Args:
      model: a Flax NNX module.
      x: one batch of inputs (anything ``call`` accepts).
      call: ``(model, x) -> output``; e.g. ``lambda m, x: m(x, sow=True)``.
      layers: None (all), a sequence of exact names (kept in that order), a
        regex string (``re.search``) or a predicate on names.
      outputs: also capture every submodule's method outputs.

    Returns:
      A dict from layer name to array, in capture order (or ``layers``' order).

    Raises:
      ValueError: unknown names in ``layers``, or nothing selected.

    Example:
      >>> import jax.numpy as jnp, jaxcca
      >>> from flax import nnx
      >>> class MLP(nnx.Module):
      ...     def __init__(self, rngs):
      ...         self.fc1 = nnx.Linear(3, 8, rngs=rngs)
      ...         self.fc2 = nnx.Linear(8, 2, rngs=rngs)
      ...     def __call__(self, x):
      ...         h = nnx.relu(self.fc1(x))
      ...         self.sow(nnx.Intermediate, "hidden", h)
      ...         return self.fc2(h)
      >>> x = jnp.ones((5, 3), jnp.float32)
      >>> acts = jaxcca.capture_layers(MLP(nnx.Rngs(0)), x, outputs=True)
      >>> {k: v.shape for k, v in acts.items()}
      {'output': (5, 2), 'fc1': (5, 8), 'fc2': (5, 2), 'hidden': (5, 8)}
    """
    from flax import nnx

    fn = call if call is not None else (lambda m, v: m(v))
    method_outputs = nnx.Intermediate if outputs else None
    _, state = nnx.capture(fn, nnx.Intermediate, method_outputs=method_outputs)(model, x)
    acts = _flatten_captured(state)
    picked = select_layers(list(acts), layers, what=type(model).__name__)
    return {name: acts[name] for name in picked}


def _check_modes(conv: str, tokens) -> None:
    if conv not in CONV_MODES:
        raise ValueError(f"conv must be one of {CONV_MODES}, got {conv!r}.")
    if not (tokens in TOKEN_MODES or (isinstance(tokens, int) and not isinstance(tokens, bool))):
        raise ValueError(f"tokens must be one of {TOKEN_MODES} or an int position, got {tokens!r}.")


def reduce_layer(
    x: ArrayLike,
    *,
    conv: str = "spatial_mean",
    tokens: str | int = "mean",
    mask: ArrayLike | None = None,
    name: str = "x",
) -> jax.Array:
    """One layer's output as a ``(samples, neurons)`` matrix.

    * ``(N, D)``: unchanged.
    * ``(N, H, W, C)`` (conv): :func:`jaxcca.conv_to_neurons` with
      ``mode=conv`` (``"spatial_mean"``, ``"flatten"`` or ``"channels"``;
      ``"channels"`` makes ``N*H*W`` samples, so every compared layer needs the
      same ``H*W``).
    * ``(N, T, D)`` (sequence): ``tokens="mean"`` averages the valid tokens
      (``mask``: ``(N, T)``, nonzero where valid; all valid when None; a row
      with no valid token gives zeros), ``"last"`` takes the last valid token,
      an int takes that position (negative counts from the end) and
      ``"flatten"`` gives ``(N, T*D)`` with invalid tokens zeroed.

    Args:
      x: the layer's output.
      conv: conv reduction, as above. Static.
      tokens: sequence reduction, as above. Static.
      mask: optional ``(N, T)`` validity mask for sequence outputs.
      name: the layer's name, for error messages.

    Returns:
      The ``(samples, neurons)`` matrix.

    Raises:
      ValueError: an unknown mode, a mask of the wrong shape, or an array that
        is not 2-, 3- or 4-D.

    Example:
      >>> import jax.numpy as jnp, jaxcca
      >>> h = jnp.arange(12.0).reshape(2, 3, 2)
      >>> jaxcca.reduce_layer(h, mask=jnp.array([[1, 1, 0], [1, 1, 1]])).tolist()
      [[1.0, 2.0], [8.0, 9.0]]
    """
    _check_modes(conv, tokens)
    x = x if isinstance(x, (np.ndarray, jax.Array)) else np.asarray(x)
    if x.ndim == 2:
        return jnp.asarray(x)
    if x.ndim == 4:
        return conv_to_neurons(x, mode=conv)
    if x.ndim != 3:
        raise ValueError(
            f"layer {name!r} has shape {tuple(x.shape)}; expected (samples, neurons), "
            "(samples, H, W, C) for conv or (samples, tokens, features) for sequences."
        )
    x = jnp.asarray(x)
    n, t, _ = x.shape
    if mask is None:
        m = jnp.ones((n, t), x.dtype)
    else:
        mask = jnp.asarray(mask)
        if tuple(mask.shape) != (n, t):
            raise ValueError(
                f"mask has shape {tuple(mask.shape)} but layer {name!r} has (samples, tokens) "
                f"= {(n, t)}."
            )
        m = (jnp.asarray(mask) != 0).astype(x.dtype)
    if isinstance(tokens, int):
        return x[:, tokens, :]
    if tokens == "flatten":
        return (x * m[:, :, None]).reshape(n, -1)
    if tokens == "last":
        idx = jnp.maximum(jnp.sum(m, axis=1).astype(jnp.int32) - 1, 0)
        return jnp.take_along_axis(x, idx[:, None, None], axis=1)[:, 0, :]
    count = jnp.sum(m, axis=1, keepdims=True)
    return jnp.sum(x * m[:, :, None], axis=1) / jnp.where(count > 0, count, 1.0)


# ----------------------------------------------------------------------------
# One pass
# ----------------------------------------------------------------------------


def _default_dtype():
    return jnp.float64 if jax.config.read("jax_enable_x64") else jnp.float32


def _reduced_batch(acts: Mapping[str, Any], names, conv, tokens, mask, what) -> list[jax.Array]:
    out = []
    for name in names:
        r = reduce_layer(acts[name], conv=conv, tokens=tokens, mask=mask, name=f"{what}:{name}")
        out.append(r)
    return out


class _Carry(NamedTuple):
    """What one pass holds between batches: fixed-shape arrays only (a jit carry).

    ``moments``: the joint co-moments (or None); ``minibatch``: ``La`` row
    states of the minibatch HSIC sums (or None; each state keeps its own exact
    power-of-two scales); ``rows``: samples seen.
    """

    moments: streaming.CovarianceState | None
    minibatch: tuple | None
    rows: jax.Array


class _Accumulator:
    """Adds reduced batches to the joint co-moments and minibatch HSIC sums.

    :meth:`add` is a pure function of the carry and one batch's reduced
    layers, so the caller compiles it together with the forward pass and
    donates the carry (the co-moments are updated in place). The widths are
    fixed by :meth:`start` from the first batch; every check on the batch is
    made while tracing, on shapes.
    """

    def __init__(self, exact, minibatch_options, dtype):
        self.exact = exact
        self.minibatch_options = minibatch_options
        self.dtype = dtype
        self.widths_a = self.widths_b = None
        self.carry: _Carry | None = None

    def start(self, widths_a, widths_b, same: bool) -> None:
        widths_a, widths_b = tuple(widths_a), tuple(widths_b)
        self.widths_a, self.widths_b = widths_a, widths_b
        moments = minibatch = None
        if self.exact:
            # Against itself only x's moments are used; y is one zero column
            # (streaming.update needs at least one neuron on each side).
            d2 = 1 if same else sum(widths_b)
            moments = streaming.init(sum(widths_a), d2, dtype=self.dtype)
        if self.minibatch_options is not None:
            init = minibatch_cka_init(self.dtype)
            row = jax.tree.map(lambda leaf: jnp.stack([leaf] * len(widths_b)), init)
            minibatch = (row,) * len(widths_a)
        carry = _Carry(moments, minibatch, jnp.zeros((), int))
        # Every leaf its own buffer: the carry is donated, and a buffer cannot be
        # donated twice (the rows above share their zeros).
        self.carry = jax.tree.map(lambda leaf: jnp.array(leaf, copy=True), carry)

    def _check(self, feats_a: list[jax.Array], feats_b: list[jax.Array] | None) -> int:
        rows = {int(f.shape[0]) for f in feats_a + (feats_b or [])}
        if len(rows) != 1:
            raise ValueError(
                "the reduced layers of one batch have different numbers of samples "
                f"{sorted(rows)}; conv='channels' needs every layer to have the same H*W "
                "(use conv='spatial_mean' or 'flatten')."
            )
        widths_a = tuple(int(f.shape[1]) for f in feats_a)
        widths_b = widths_a if feats_b is None else tuple(int(f.shape[1]) for f in feats_b)
        if (widths_a, widths_b) != (self.widths_a, self.widths_b):
            raise ValueError(
                f"layer widths changed between batches: {self.widths_a} / {self.widths_b} then "
                f"{widths_a} / {widths_b} (sequence layers with tokens='flatten' need a fixed "
                "length)."
            )
        return rows.pop()

    def add(self, carry: _Carry, feats_a: list[jax.Array], feats_b: list[jax.Array] | None):
        """The carry after one batch (pure; traceable)."""
        rows = self._check(feats_a, feats_b)
        feats_a = [f.astype(self.dtype) for f in feats_a]
        if feats_b is not None:
            feats_b = [f.astype(self.dtype) for f in feats_b]
        moments, minibatch = carry.moments, carry.minibatch
        if moments is not None:
            xa = jnp.concatenate(feats_a, axis=1)
            if feats_b is None:
                yb = jnp.zeros((xa.shape[0], 1), xa.dtype)
            else:
                yb = jnp.concatenate(feats_b, axis=1)
            moments = streaming.update(moments, xa, yb)
        if minibatch is not None:
            cols = feats_a if feats_b is None else feats_b
            # Zero columns change no distance and no inner product, so padding every
            # layer to the widest leaves each kernel matrix as it is.
            wa, wb = max(self.widths_a or (1,)), max(self.widths_b or (1,))
            # Each state keeps its HSIC sums in exact power-of-two scales of its
            # own (see MinibatchCKAState), so a float32 state holds any magnitude.
            ys = jnp.stack([_pad_to(f, (rows, wb)) for f in cols])
            options = self.minibatch_options or {}

            def row(states, x):
                return jax.vmap(lambda s, y: minibatch_cka_update(s, x, y, **options))(states, ys)

            minibatch = tuple(
                row(minibatch[i], _pad_to(fa, (rows, wa))) for i, fa in enumerate(feats_a)
            )
        return _Carry(moments, minibatch, carry.rows + rows)

    def statistics(self, names_a, names_b, same, reductions) -> LayerStatistics:
        if self.carry is None or self.widths_a is None or self.widths_b is None:
            raise ValueError("no batches: the iterable of batches was empty.")
        carry = self.carry
        return LayerStatistics(
            moments=carry.moments,
            minibatch=carry.minibatch,
            minibatch_options=dict(self.minibatch_options or {}),
            layers_a=tuple(names_a),
            layers_b=tuple(names_b),
            widths_a=self.widths_a,
            widths_b=self.widths_b,
            same=same,
            reductions=reductions,
            n_samples=int(carry.rows),
        )


def _minibatch_options(minibatch_cka) -> dict | None:
    if minibatch_cka is None:
        return None
    if minibatch_cka is True:
        return {}
    unknown = set(minibatch_cka) - set(_MINIBATCH_OPTIONS)
    if unknown:
        raise ValueError(
            f"unknown minibatch_cka option(s) {sorted(unknown)}; expected {_MINIBATCH_OPTIONS}."
        )
    return dict(minibatch_cka)


def _as_models(m) -> tuple[list, bool]:
    if isinstance(m, (list, tuple)):
        if not m:
            raise ValueError("an empty list of models was given.")
        return list(m), True
    return [m], False


def _widths(feats) -> tuple[int, ...]:
    return tuple(int(f.shape[1]) for f in feats)


def accumulate_layers(
    a,
    b,
    batches: Iterable,
    *,
    layers_a=None,
    layers_b=None,
    call: Callable | None = None,
    mask: Callable | None = None,
    outputs: bool = False,
    conv: str = "spatial_mean",
    tokens: str | int = "mean",
    exact: bool = True,
    minibatch_cka: dict | bool | None = None,
    dtype=None,
    jit: bool = True,
) -> LayerStatistics:
    """One pass of models over batches, accumulating every selected layer's statistics.

    Every batch goes once through every model under ``nnx.capture``; each
    selected layer is reduced by :func:`reduce_layer` and the reduced layers
    of all models are added to one joint co-moment accumulator (see the
    module docstring). Forward pass, reduction and update are one compiled
    step whose accumulator is donated (updated in place), so a layer's full
    output (e.g. a conv map) exists only inside that step, one layer at a
    time as XLA schedules it. A batch of a new shape (an uneven last batch)
    compiles the step once more. Memory is ``O(D**2)``, ``D`` the sum of the
    reduced widths of all selected layers, plus one batch's forward pass; it
    does not grow with the number of samples or of batches.

    The models are not changed: the step runs on a copy of their state
    (:func:`flax.nnx.split`), and any state update the call makes (random
    streams, batch statistics in training mode) is discarded. Put models
    with batch statistics or dropout in evaluation mode (``model.eval()``).

    Args:
      a: a Flax NNX model, or a list of models (e.g. checkpoints; their
        layers are named ``"0:name"``, ``"1:name"``, ...).
      b: a model or list of models for the columns, or None (or ``a``
        itself) to compare ``a`` with itself.
      batches: an iterable of model inputs (batches may differ in size).
      layers_a: layer selection for ``a`` (see :func:`capture_layers`).
      layers_b: layer selection for ``b``.
      call: ``(model, batch) -> output`` (default ``model(batch)``).
      mask: optional ``batch -> (N, T)`` validity mask for sequence layers.
      outputs: also capture every submodule's method outputs.
      conv: conv reduction (:func:`reduce_layer`).
      tokens: sequence reduction (:func:`reduce_layer`).
      exact: accumulate the co-moments (for cca, svcca, pwcca, cka,
        procrustes).
      minibatch_cka: also accumulate per-batch HSIC for ``minibatch_cka``:
        True or a dict of :func:`jaxcca.minibatch_cka_update` options
        (``kernel``, ``sigma``, ``threshold``, ``debiased``). Costs a kernel
        evaluation per layer pair and batch.
      dtype: accumulation dtype (default float64 when enabled, else float32).
      jit: compile the step (False runs it op by op, for debugging).

    Returns:
      A :class:`LayerStatistics` for :func:`similarity_matrix`.

    Raises:
      ValueError: unknown layers, layers of unsupported rank, layers whose
        sample counts differ, or no batches.
    """
    from flax import nnx

    _check_modes(conv, tokens)
    models_a, many_a = _as_models(a)
    same = b is None or b is a
    models_b, many_b = ([], False) if same else _as_models(b)
    acc = _Accumulator(exact, _minibatch_options(minibatch_cka), dtype or _default_dtype())
    fn = call if call is not None else (lambda m, v: m(v))
    graphdefs_a, states_a = zip(*(nnx.split(m) for m in models_a), strict=True)
    graphdefs_b, states_b = (
        zip(*(nnx.split(m) for m in models_b), strict=True) if models_b else ((), ())
    )
    what_a = [f"model {k} ({type(m).__name__})" for k, m in enumerate(models_a)]
    what_b = [f"model {k} ({type(m).__name__})" for k, m in enumerate(models_b)]

    def captured_names(graphdefs, states, batch) -> list[list[str]]:
        """Every model's layer names, in capture order, from an abstract forward pass."""
        order: list[list[str]] = []

        def run(states, batch):
            order.clear()
            for graphdef, state in zip(graphdefs, states, strict=True):
                acts = capture_layers(nnx.merge(graphdef, state), batch, call=fn, outputs=outputs)
                order.append(list(acts))  # jit sorts dict keys; keep capture order

        jax.eval_shape(run, states, batch)
        return order

    def features(graphdefs, states, names, whats, batch, m) -> list[jax.Array]:
        feats = []
        for graphdef, state, picked, what in zip(graphdefs, states, names, whats, strict=True):
            model = nnx.merge(graphdef, state)
            acts = capture_layers(model, batch, call=fn, outputs=outputs, layers=picked)
            feats += _reduced_batch(acts, picked, conv, tokens, m, what)
        return feats

    def make_step(batch, m):
        """Layer names and widths from the first batch; the compiled step."""
        found = captured_names(graphdefs_a, states_a, batch)
        names_a = [select_layers(n, layers_a, what=w) for n, w in zip(found, what_a, strict=True)]
        names_b = []
        if not same:
            found = captured_names(graphdefs_b, states_b, batch)
            names_b = [
                select_layers(n, layers_b, what=w) for n, w in zip(found, what_b, strict=True)
            ]

        def both(states_a, states_b, batch, m):
            fa = features(graphdefs_a, states_a, names_a, what_a, batch, m)
            fb = None if same else features(graphdefs_b, states_b, names_b, what_b, batch, m)
            return fa, fb

        shapes_a, shapes_b = jax.eval_shape(both, states_a, states_b, batch, m)
        acc.start(_widths(shapes_a), _widths(shapes_b or shapes_a), same)

        def one_step(carry, states_a, states_b, batch, m):
            return acc.add(carry, *both(states_a, states_b, batch, m))

        return (jax.jit(one_step, donate_argnums=0) if jit else one_step), names_a, names_b

    step, names_a, names_b = None, [], []
    for batch in batches:
        m = None if mask is None else mask(batch)
        if step is None:
            step, names_a, names_b = make_step(batch, m)
        acc.carry = step(acc.carry, states_a, states_b, batch, m)

    def labels(names, many):
        return [f"{k}:{n}" if many else n for k, picked in enumerate(names) for n in picked]

    labels_a = labels(names_a, many_a)
    labels_b = labels_a if same else labels(names_b, many_b)
    return acc.statistics(labels_a, labels_b, same, {"conv": conv, "tokens": tokens})


def _load_side(
    acts: Mapping[str, ArrayLike], layers, what: str
) -> tuple[Sequence[str], dict[str, Any]]:
    names = select_layers(list(acts), layers, what=what)
    return names, {n: acts[n] for n in names}


def accumulate_activations(
    acts_a: Mapping[str, ArrayLike],
    acts_b: Mapping[str, ArrayLike] | None = None,
    *,
    layers_a=None,
    layers_b=None,
    mask: ArrayLike | None = None,
    conv: str = "spatial_mean",
    tokens: str | int = "mean",
    batch_size: int | None = None,
    exact: bool = True,
    minibatch_cka: dict | bool | None = None,
    dtype=None,
) -> LayerStatistics:
    """:func:`accumulate_layers` for activations already saved (one array per layer).

    Args:
      acts_a: layer name -> array with samples first (``(n, d)``,
        ``(n, H, W, C)`` or ``(n, T, D)``), all with the same ``n``.
      acts_b: the same for the columns, or None to compare ``acts_a`` with itself.
      layers_a: layer selection for ``acts_a`` (see :func:`capture_layers`).
      layers_b: layer selection for ``acts_b``.
      mask: optional ``(n, T)`` validity mask for sequence layers.
      conv: conv reduction (:func:`reduce_layer`).
      tokens: sequence reduction (:func:`reduce_layer`).
      batch_size: samples per batch (default: all at once). Needed for
        ``minibatch_cka``; the exact measures do not depend on it.
      exact: accumulate the co-moments.
      minibatch_cka: as in :func:`accumulate_layers`.
      dtype: accumulation dtype (default float64 when enabled, else float32).

    Returns:
      A :class:`LayerStatistics`.

    Raises:
      ValueError: unknown layers, unsupported ranks, or different sample counts.
    """
    _check_modes(conv, tokens)
    names_a, sel_a = _load_side(acts_a, layers_a, "a")
    same = acts_b is None or acts_b is acts_a
    if acts_b is None or same:
        names_b, sel_b = names_a, sel_a
    else:
        names_b, sel_b = _load_side(acts_b, layers_b, "b")
    counts = {f"a:{k}": int(np.shape(v)[0]) for k, v in sel_a.items()}
    counts.update({f"b:{k}": int(np.shape(v)[0]) for k, v in sel_b.items()})
    if len(set(counts.values())) != 1:
        raise ValueError(f"layers have different numbers of samples: {counts}.")
    n = next(iter(counts.values()))
    if mask is not None and np.shape(mask)[0] != n:
        raise ValueError(f"mask has {np.shape(mask)[0]} rows but the layers have {n} samples.")
    step = n if batch_size is None else int(batch_size)
    if step < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
    acc = _Accumulator(exact, _minibatch_options(minibatch_cka), dtype or _default_dtype())

    def both(part_a, part_b, m):
        fa = _reduced_batch(part_a, names_a, conv, tokens, m, "a")
        fb = None if same else _reduced_batch(part_b, names_b, conv, tokens, m, "b")
        return fa, fb

    def one_step(carry, part_a, part_b, m):
        return acc.add(carry, *both(part_a, part_b, m))

    add = jax.jit(one_step, donate_argnums=0)
    for lo in range(0, n, step):
        sl = slice(lo, min(lo + step, n))
        m = None if mask is None else jnp.asarray(mask)[sl]
        part_a = {k: jnp.asarray(v[sl]) for k, v in sel_a.items()}
        part_b = None if same else {k: jnp.asarray(v[sl]) for k, v in sel_b.items()}
        if acc.carry is None:
            shapes_a, shapes_b = jax.eval_shape(both, part_a, part_b, m)
            acc.start(_widths(shapes_a), _widths(shapes_b or shapes_a), same)
        acc.carry = add(acc.carry, part_a, part_b, m)
    return acc.statistics(names_a, names_b, same, {"conv": conv, "tokens": tokens})


# ----------------------------------------------------------------------------
# Finalisation
# ----------------------------------------------------------------------------


def _slices(widths) -> list[slice]:
    ends = np.cumsum((0, *widths))
    return [slice(int(lo), int(hi)) for lo, hi in zip(ends[:-1], ends[1:], strict=True)]


def _blocks(moments: streaming.CovarianceState, same: bool):
    """``(S_aa, mean_a, S_bb, mean_b, S_ab)`` of the joint co-moment, in the units of the data.

    NumPy arrays: the finalisation slices and pads them into per-class stacks
    on the host, so assembling the blocks compiles nothing.
    """

    def unit(scale):
        scale = np.asarray(scale)
        return np.where(np.isfinite(scale), scale, 1.0)

    sx, sy = unit(moments.scale_x), unit(moments.scale_y)
    sxx = np.asarray(moments.sxx) / (sx[:, None] * sx[None, :])
    mean_x = np.asarray(moments.mean_x)
    if same:
        return sxx, mean_x, sxx, mean_x, sxx
    syy = np.asarray(moments.syy) / (sy[:, None] * sy[None, :])
    sxy = np.asarray(moments.sxy) / (sx[:, None] * sy[None, :])
    return sxx, mean_x, syy, np.asarray(moments.mean_y), sxy


def _layer_scale_blocks(moments: streaming.CovarianceState, same: bool, sl_a, sl_b):
    """``(S_aa, S_bb, S_ab)`` with each layer in one power-of-two scale of its own.

    The co-moments hold every neuron in its own scale; CKA and Procrustes are
    invariant to scaling a whole layer (not one neuron), so every neuron is
    brought exactly to the smallest scale in its layer (its largest neuron's).
    Unlike data units, these blocks stay in the float32 range at any
    magnitude (the squares in CKA's norms included).
    """

    def ratios(scale, slices):
        return jnp.concatenate(
            [rescale_ratio(scale[sl], jnp.min(scale[sl])) for sl in slices], axis=0
        )

    ra = ratios(moments.scale_x, sl_a)
    saa = moments.sxx * ra[:, None] * ra[None, :]
    if same:
        return saa, saa, saa
    rb = ratios(moments.scale_y, sl_b)
    sbb = moments.syy * rb[:, None] * rb[None, :]
    return saa, sbb, moments.sxy * ra[:, None] * rb[None, :]


@functools.partial(jax.jit, static_argnames=("epsilon", "keep"))
def _prepare_layers(covs, means, count, epsilon, keep):
    """Whitening (and SVCCA's reduction) of every layer, vmapped over the padded stack."""

    def one(cov, mean):
        w = whiten_moments(cov, mean, count, epsilon=epsilon)
        if keep is None:
            return w, jnp.zeros((0, 0), cov.dtype), jnp.zeros((), jnp.int32)
        basis, k, _ = reduce_whitened(w, keep)
        return w, basis, k

    return jax.vmap(one)(covs, means)


@functools.partial(jax.jit, static_argnames=("measure", "convention"))
def _block_from_whitened(prep_a, prep_b, crosses, measure, convention):
    """Every pair of one width class of a with one of b: ``crosses`` is ``(ga, gb, wa, wb)``."""

    def one(wa, basis_a, ka, wb, basis_b, kb, sab):
        cross = mm(mm(wa.w.T, sab), wb.w)
        if measure == "svcca":
            reduced = mm(mm(basis_a.T, cross), basis_b)
            rho, _ = canonical_correlations(wa._replace(rank=ka), wb._replace(rank=kb), reduced)
            return mean_correlation(rho, jnp.minimum(ka, kb))
        if measure == "cca":
            rho, k = canonical_correlations(wa, wb, cross)
            return mean_correlation(rho, k)
        u, rho, _, k = canonical_directions(wa, wb, cross)
        return weighted_correlation(pwcca_weights(wa, u, rho, k, convention=convention), rho)

    wb_all, basis_b_all, kb_all = prep_b

    def row(wa, basis_a, ka, crosses_i):
        pair = lambda wb, bb, kb, c: one(wa, basis_a, ka, wb, bb, kb, c)  # noqa: E731
        return jax.vmap(pair)(wb_all, basis_b_all, kb_all, crosses_i)

    wa_all, basis_a_all, ka_all = prep_a
    return jax.vmap(row)(wa_all, basis_a_all, ka_all, crosses)


@jax.jit
def _nuclear_block(crosses):
    return jax.vmap(jax.vmap(lambda c: jnp.sum(singular_values(c))))(crosses)


def _pad_to(m: jax.Array, shape) -> jax.Array:
    """Zero-pads a block: zero columns are dead neurons, which every measure ignores."""
    return jnp.pad(m, [(0, t - s) for s, t in zip(m.shape, shape, strict=True)])


def _width_classes(widths) -> dict[int, list[int]]:
    """Layers grouped by padded width: the next power of two, at least 64.

    Each class is whitened by one compiled, vmapped program, and each pair of
    classes by another, on blocks padded to the class width: a pair of narrow
    layers never pays for the widest layer's decompositions, padding costs
    less than 2x per side above 64, and the number of programs grows with the
    number of distinct classes (at most ``log2`` of the widest layer), not
    with the number of layers. Below 64 neurons the decompositions cost less
    than compiling one more program, so every narrow layer shares one class.
    """
    classes: dict[int, list[int]] = {}
    for i, w in enumerate(widths):
        classes.setdefault(max(64, 1 << max(int(w) - 1, 0).bit_length()), []).append(i)
    return classes


def _pad_host(m: np.ndarray, shape) -> np.ndarray:
    """:func:`_pad_to` on the host (no compiled program per block shape)."""
    return np.pad(m, [(0, t - s) for s, t in zip(m.shape, shape, strict=True)])


def _diagonal_stack(s, mean, slices, width):
    covs = np.stack([_pad_host(s[sl, sl], (width, width)) for sl in slices])
    means = np.stack([_pad_host(mean[sl], (width,)) for sl in slices])
    return covs, means


def _cross_block(sab, slices_a, slices_b, wa, wb):
    return np.stack(
        [np.stack([_pad_host(sab[si, sj], (wa, wb)) for sj in slices_b]) for si in slices_a]
    )


def _cka_matrix(saa, sbb, sab, sl_a, sl_b) -> np.ndarray:
    na = np.array([np.sqrt(np.sum(saa[s, s] ** 2)) for s in sl_a])
    nb = np.array([np.sqrt(np.sum(sbb[s, s] ** 2)) for s in sl_b])
    sq = sab**2
    starts_a = [s.start for s in sl_a]
    starts_b = [s.start for s in sl_b]
    num = np.add.reduceat(np.add.reduceat(sq, starts_a, axis=0), starts_b, axis=1)
    den = na[:, None] * nb[None, :]
    return np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)


def similarity_matrix(stats: LayerStatistics, *, measure: str = "cka", **options) -> Comparison:
    """The ``(La, Lb)`` similarity matrix of a measure from accumulated statistics.

    Exact measures (from the joint co-moments, equal to :func:`jaxcca.pairwise`
    on the concatenated activations to round-off): ``"cca"``, ``"svcca"``
    (option ``keep``), ``"pwcca"`` (option ``convention``; weights from the
    row layer), ``"cka"`` (linear, biased HSIC) and ``"procrustes"``; all take
    ``epsilon`` where the single-pair function does. ``"minibatch_cka"`` is the
    minibatch estimator (Nguyen et al. 2021) of the options it was accumulated
    with (linear or RBF kernel, debiased or not).

    Args:
      stats: from :func:`accumulate_layers` or :func:`accumulate_activations`.
      measure: one of ``"cca"``, ``"svcca"``, ``"pwcca"``, ``"cka"``,
        ``"procrustes"``, ``"minibatch_cka"``.
      **options: the measure's options (``epsilon``, ``keep``, ``convention``).

    Returns:
      A :class:`Comparison`.

    Raises:
      ValueError: an unknown measure or option, or statistics that were not
        accumulated for it.

    Example:
      >>> import jax, jax.numpy as jnp, jaxcca
      >>> x = jax.random.normal(jax.random.key(0), (200, 4), jnp.float32)
      >>> acts = {"x": x, "2x": 2 * x, "x^3": x**3}
      >>> res = jaxcca.compare_activations(acts, measure="cca")
      >>> res.layers_a, [round(float(v), 2) for v in res.matrix[0]]
      (('x', '2x', 'x^3'), [1.0, 1.0, 0.78])
    """
    allowed = {
        "cca": ("epsilon",),
        "svcca": ("epsilon", "keep"),
        "pwcca": ("epsilon", "convention"),
        "cka": (),
        "procrustes": (),
        "minibatch_cka": (),
    }
    if measure not in allowed:
        raise ValueError(f"measure must be one of {MEASURES}, got {measure!r}.")
    unknown = set(options) - set(allowed[measure])
    if unknown:
        raise ValueError(
            f"unknown option(s) {sorted(unknown)} for measure {measure!r}; it takes "
            f"{allowed[measure]}."
        )
    la, lb = len(stats.layers_a), len(stats.layers_b)
    if measure == "minibatch_cka":
        if stats.minibatch is None:
            raise ValueError(
                "minibatch_cka needs statistics accumulated with minibatch_cka=True (or a dict "
                "of its options)."
            )
        finalize = jax.vmap(minibatch_cka_finalize)
        matrix = np.stack([np.asarray(finalize(row).similarity) for row in stats.minibatch])
        used = dict(stats.minibatch_options)
    else:
        if stats.moments is None:
            raise ValueError(f"{measure} needs statistics accumulated with exact=True.")
        matrix = _exact_matrix(stats, measure, options)
        used = dict(options)
    used.update(stats.reductions)
    return Comparison(
        matrix=matrix.reshape(la, lb),
        layers_a=stats.layers_a,
        layers_b=stats.layers_b,
        measure=measure,
        options=used,
        n_samples=stats.n_samples,
    )


def _exact_matrix(stats: LayerStatistics, measure: str, options: dict) -> np.ndarray:
    """Every pair's exact value from the joint co-moments.

    Layers are grouped into width classes (:func:`_width_classes`) and their
    blocks zero-padded to the class width (zero columns are dead neurons:
    masked by the whitening, and adding nothing to norms, traces and singular
    values); every class is whitened once, and every pair of classes is
    computed by one compiled, vmapped program.
    """
    if stats.moments is None:
        raise ValueError(f"measure {measure!r} needs the co-moments: accumulate with exact=True.")
    moments = stats.moments
    saa, mean_a, sbb, mean_b, sab = _blocks(moments, stats.same)
    sl_a, sl_b = _slices(stats.widths_a), _slices(stats.widths_b)
    if measure in ("cka", "procrustes"):
        saa, sbb, sab = _layer_scale_blocks(moments, stats.same, sl_a, sl_b)
    if measure == "cka":
        return _cka_matrix(saa, sbb, sab, sl_a, sl_b)
    classes_a, classes_b = _width_classes(stats.widths_a), _width_classes(stats.widths_b)

    def stacks(s, mean, slices, classes):
        return {
            w: _diagonal_stack(s, mean, [slices[i] for i in idx], w) for w, idx in classes.items()
        }

    diag_a = stacks(saa, mean_a, sl_a, classes_a)
    diag_b = diag_a if stats.same else stacks(sbb, mean_b, sl_b, classes_b)
    matrix = np.zeros((len(sl_a), len(sl_b)))

    def crosses(wa, wb):
        slices_a = [sl_a[i] for i in classes_a[wa]]
        return _cross_block(sab, slices_a, [sl_b[j] for j in classes_b[wb]], wa, wb)

    def fill(wa, wb, block):
        matrix[np.ix_(classes_a[wa], classes_b[wb])] = np.asarray(block)

    if measure == "procrustes":
        tr_a = np.zeros(len(sl_a))
        tr_b = np.zeros(len(sl_b))
        for w, idx in classes_a.items():
            tr_a[idx] = np.trace(diag_a[w][0], axis1=1, axis2=2)
        for w, idx in classes_b.items():
            tr_b[idx] = np.trace(diag_b[w][0], axis1=1, axis2=2)
        for wa in classes_a:
            for wb in classes_b:
                fill(wa, wb, _nuclear_block(crosses(wa, wb)))
        den = np.sqrt(tr_a[:, None] * tr_b[None, :])
        return np.clip(np.where(den > 0, matrix / np.where(den > 0, den, 1.0), 0.0), 0.0, 1.0)
    epsilon = options.get("epsilon")
    keep = validate_keep(options.get("keep", 0.99)) if measure == "svcca" else None
    convention = validate_convention(options.get("convention", "paper"))
    count = moments.n_samples
    prep_a = {w: _prepare_layers(*diag_a[w], count, epsilon, keep) for w in classes_a}
    prep_b = (
        prep_a
        if stats.same
        else {w: _prepare_layers(*diag_b[w], count, epsilon, keep) for w in classes_b}
    )
    for wa in classes_a:
        for wb in classes_b:
            block = _block_from_whitened(
                prep_a[wa], prep_b[wb], crosses(wa, wb), measure, convention
            )
            fill(wa, wb, block)
    return matrix


def _split_options(measure: str, options: dict) -> tuple[dict | None, dict]:
    """Minibatch accumulation options vs. finalisation options."""
    if measure == "minibatch_cka":
        return {k: options[k] for k in options if k in _MINIBATCH_OPTIONS}, {
            k: options[k] for k in options if k not in _MINIBATCH_OPTIONS
        }
    return None, options


def compare(
    a,
    b,
    batches: Iterable,
    *,
    measure: str = "cka",
    layers_a=None,
    layers_b=None,
    call: Callable | None = None,
    mask: Callable | None = None,
    outputs: bool = False,
    conv: str = "spatial_mean",
    tokens: str | int = "mean",
    dtype=None,
    **options,
) -> Comparison:
    """Every layer of model(s) ``a`` against every layer of ``b`` in one pass over batches.

    :func:`accumulate_layers` followed by :func:`similarity_matrix` (see them
    for the arguments). To get several measures from one pass, call those two
    directly.

    Args:
      a: a Flax NNX model or a list of models.
      b: a model, a list of models, or None to compare ``a`` with itself.
      batches: an iterable of model inputs.
      measure: ``"cka"`` (linear, exact; default), ``"cca"``, ``"svcca"``,
        ``"pwcca"``, ``"procrustes"`` or ``"minibatch_cka"``.
      layers_a: layer selection for ``a``.
      layers_b: layer selection for ``b``.
      call: ``(model, batch) -> output``.
      mask: optional ``batch -> (N, T)`` validity mask for sequence layers.
      outputs: also capture every submodule's method outputs.
      conv: conv reduction.
      tokens: sequence reduction.
      dtype: accumulation dtype.
      **options: the measure's options (``epsilon``, ``keep``, ``convention``;
        for ``minibatch_cka``: ``kernel``, ``sigma``, ``threshold``,
        ``debiased``).

    Returns:
      A :class:`Comparison`.

    Example:
      >>> import jax.numpy as jnp, jaxcca
      >>> from flax import nnx
      >>> class MLP(nnx.Module):
      ...     def __init__(self, rngs):
      ...         self.fc1 = nnx.Linear(3, 8, rngs=rngs)
      ...         self.fc2 = nnx.Linear(8, 2, rngs=rngs)
      ...     def __call__(self, x):
      ...         return self.fc2(nnx.relu(self.fc1(x)))
      >>> x = jnp.sin(jnp.arange(180, dtype=jnp.float32)).reshape(60, 3)
      >>> batches = [x[:20], x[20:40], x[40:]]
      >>> res = jaxcca.compare(MLP(nnx.Rngs(0)), None, batches, outputs=True)
      >>> res.layers_a, res.n_samples, res.matrix.shape
      (('output', 'fc1', 'fc2'), 60, (3, 3))
    """
    mb, rest = _split_options(measure, options)
    stats = accumulate_layers(
        a,
        b,
        batches,
        layers_a=layers_a,
        layers_b=layers_b,
        call=call,
        mask=mask,
        outputs=outputs,
        conv=conv,
        tokens=tokens,
        exact=mb is None,
        minibatch_cka=mb,
        dtype=dtype,
    )
    return similarity_matrix(stats, measure=measure, **rest)


def compare_activations(
    acts_a: Mapping[str, ArrayLike],
    acts_b: Mapping[str, ArrayLike] | None = None,
    *,
    measure: str = "cka",
    layers_a=None,
    layers_b=None,
    mask: ArrayLike | None = None,
    conv: str = "spatial_mean",
    tokens: str | int = "mean",
    batch_size: int | None = None,
    dtype=None,
    **options,
) -> Comparison:
    """Every saved layer of ``acts_a`` against every saved layer of ``acts_b``.

    :func:`accumulate_activations` followed by :func:`similarity_matrix`.

    Args:
      acts_a: layer name -> array with samples first.
      acts_b: the same for the columns, or None for ``acts_a`` against itself.
      measure: as in :func:`compare`.
      layers_a: layer selection for ``acts_a``.
      layers_b: layer selection for ``acts_b``.
      mask: optional ``(n, T)`` validity mask for sequence layers.
      conv: conv reduction.
      tokens: sequence reduction.
      batch_size: samples per batch (minibatch CKA's batch; default all).
      dtype: accumulation dtype.
      **options: the measure's options, as in :func:`compare`.

    Returns:
      A :class:`Comparison`.
    """
    mb, rest = _split_options(measure, options)
    stats = accumulate_activations(
        acts_a,
        acts_b,
        layers_a=layers_a,
        layers_b=layers_b,
        mask=mask,
        conv=conv,
        tokens=tokens,
        batch_size=batch_size,
        exact=mb is None,
        minibatch_cka=mb,
        dtype=dtype,
    )
    return similarity_matrix(stats, measure=measure, **rest)
