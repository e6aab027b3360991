"""One registry of every public measure, read by every battery (conformance, bad inputs).

To add a measure, append a ``Measure`` to ``MEASURES`` (single-pair functions)
or to ``BATCH_PATHS`` (pairwise and streaming, which are not differentiated).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

import jaxcca
from jaxcca import streaming


@dataclasses.dataclass(frozen=True)
class Measure:
    name: str
    fn: Callable  # (x, y) -> scalar similarity (or distance)
    make: Callable | None = None  # rng, dtype -> (x, y); default: dense (n, d) pair
    symmetric: bool = False
    self_value: float | None = 1.0  # value of fn(x, x)
    conv: bool = False  # columns are read as (2, 2, C) conv maps
    min_n: int = 2  # fewest samples the measure accepts
    differentiable: bool = True


def dense_pair(rng, dtype, n=60, d1=7, d2=5):
    x = rng.standard_normal((n, d1))
    y = np.tanh(x @ rng.standard_normal((d1, d2))) + 0.3 * rng.standard_normal((n, d2))
    return x.astype(dtype), y.astype(dtype)


def conv_pair(rng, dtype):
    """A dense pair whose columns are read as (2, 2, C) conv maps by the measure."""
    return dense_pair(rng, dtype, n=60, d1=12, d2=8)


def as_conv(fn):
    return lambda x, y: fn(x.reshape(x.shape[0], 2, 2, -1), y.reshape(y.shape[0], 2, 2, -1))


def _minibatch(x, y):
    n = x.shape[0] - x.shape[0] % 4
    return jaxcca.minibatch_cka(
        x[:n].reshape(4, -1, x.shape[1]), y[:n].reshape(4, -1, y.shape[1])
    ).similarity


MEASURES = [
    Measure("cca_similarity", jaxcca.cca_similarity, symmetric=True),
    Measure("cca_distance", jaxcca.cca_distance, symmetric=True, self_value=0.0),
    Measure("svcca_similarity", lambda x, y: jaxcca.svcca_similarity(x, y, keep=0.99)),
    Measure("svcca_similarity_k3", lambda x, y: jaxcca.svcca_similarity(x, y, keep=3)),
    Measure("svcca_distance", jaxcca.svcca_distance, self_value=0.0),
    Measure("pwcca_similarity", jaxcca.pwcca_similarity),
    Measure(
        "pwcca_similarity_svcca",
        lambda x, y: jaxcca.pwcca_similarity(x, y, convention="svcca"),
    ),
    Measure("pwcca_distance", jaxcca.pwcca_distance, self_value=0.0),
    Measure("cka_similarity", jaxcca.cka_similarity, symmetric=True),
    Measure(
        "cka_debiased",
        lambda x, y: jaxcca.cka_similarity(x, y, debiased=True),
        symmetric=True,
        min_n=4,
    ),
    Measure("cka_rbf", lambda x, y: jaxcca.cka_similarity(x, y, kernel="rbf"), symmetric=True),
    Measure(
        "cka_rbf_debiased_sigma",
        lambda x, y: jaxcca.cka_similarity(x, y, kernel="rbf", sigma=3.0, debiased=True),
        symmetric=True,
        min_n=4,
    ),
    Measure("cka_distance", jaxcca.cka_distance, symmetric=True, self_value=0.0),
    Measure("minibatch_cka", _minibatch, symmetric=True, min_n=16),
    Measure("procrustes_similarity", jaxcca.procrustes_similarity, symmetric=True),
    Measure("procrustes_distance", jaxcca.procrustes_distance, symmetric=True, self_value=0.0),
    Measure(
        "procrustes_angular",
        lambda x, y: jaxcca.procrustes_distance(x, y, angular=True),
        symmetric=True,
        self_value=0.0,
    ),
    Measure("dft_cca_similarity", as_conv(jaxcca.dft_cca_similarity), make=conv_pair, conv=True),
    Measure(
        "dft_cca_projection",
        as_conv(lambda x, y: jaxcca.dft_cca_similarity(x, y, weighting="projection")),
        make=conv_pair,
        conv=True,
    ),
    Measure(
        "dft_cca_distance",
        as_conv(jaxcca.dft_cca_distance),
        make=conv_pair,
        self_value=0.0,
        conv=True,
    ),
]


def _pairwise(measure, **options):
    return lambda x, y: jaxcca.pairwise([x], [y], measure=measure, **options)[0, 0]


def _streamed(result, state_dtype=None, **options):
    def fn(x, y):
        s = streaming.init(x.shape[1], y.shape[1], state_dtype or x.dtype)
        half = x.shape[0] // 2
        s = streaming.update(s, x[:half], y[:half])
        s = streaming.update(s, x[half:], y[half:])
        return getattr(streaming, result)(s, **options).similarity

    return fn


def _minibatch_state(x, y):
    """Two batches through the public minibatch CKA state (init, update, finalize)."""
    s = jaxcca.minibatch_cka_init(np.float64 if x.dtype == np.float64 else np.float32)
    half = x.shape[0] // 2
    for lo in (0, half):
        s = jaxcca.minibatch_cka_update(s, x[lo : lo + half], y[lo : lo + half])
    return jaxcca.minibatch_cka_finalize(s).similarity


def _minibatch_two(x, y):
    half = x.shape[0] // 2
    return jaxcca.minibatch_cka(
        x[: 2 * half].reshape(2, half, -1), y[: 2 * half].reshape(2, half, -1)
    ).similarity


# The ways of using the measures at scale: compared with their single-pair
# counterpart (``reference``) rather than differentiated.
BATCH_PATHS = [
    Measure("pairwise_cca", _pairwise("cca"), differentiable=False),
    Measure("pairwise_svcca", _pairwise("svcca"), differentiable=False),
    Measure("pairwise_pwcca", _pairwise("pwcca"), differentiable=False),
    Measure("pairwise_pwcca_svcca", _pairwise("pwcca", convention="svcca"), differentiable=False),
    Measure("pairwise_cka", _pairwise("cka"), symmetric=True, differentiable=False),
    Measure("pairwise_procrustes", _pairwise("procrustes"), symmetric=True, differentiable=False),
    Measure("streaming_cca", _streamed("cca"), symmetric=True, differentiable=False),
    Measure("streaming_svcca", _streamed("svcca"), differentiable=False),
    Measure("streaming_pwcca", _streamed("pwcca"), differentiable=False),
    Measure(
        "minibatch_cka_state", _minibatch_state, symmetric=True, min_n=16, differentiable=False
    ),
]

# Single-pair function each batch path must agree with.
REFERENCE = {
    "pairwise_cca": jaxcca.cca_similarity,
    "pairwise_svcca": jaxcca.svcca_similarity,
    "pairwise_pwcca": jaxcca.pwcca_similarity,
    "pairwise_pwcca_svcca": lambda x, y: jaxcca.pwcca_similarity(x, y, convention="svcca"),
    "pairwise_cka": jaxcca.cka_similarity,
    "pairwise_procrustes": jaxcca.procrustes_similarity,
    "streaming_cca": jaxcca.cca_similarity,
    "streaming_svcca": jaxcca.svcca_similarity,
    "streaming_pwcca": jaxcca.pwcca_similarity,
    "minibatch_cka_state": _minibatch_two,
}

ALL = MEASURES + BATCH_PATHS
