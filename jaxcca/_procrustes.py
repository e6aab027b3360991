"""Orthogonal Procrustes distance between representations (Ding et al. 2021; netrep).

Each representation is centred and scaled to unit Frobenius norm, the narrower
one is zero-padded to the wider width, and ``y`` is rotated onto ``x``::

    similarity = ||x_n^T y_n||_*   (nuclear norm, in [0, 1])
    distance   = min_R ||x_n - y_n R||_F = sqrt(2 - 2 similarity)   (in [0, sqrt 2])
    angular    = arccos(similarity)                                 (in [0, pi / 2])

Numerics. The optimal rotation ``R* = U V^T`` (from the SVD of ``y_n^T x_n``)
is held constant for differentiation: by Danskin's (envelope) theorem the
gradient of ``min_R f(x, y, R)`` is the partial gradient at ``R*``, so no
derivative passes through singular vectors (whose JAX rule is infinite at
tied singular values). The distance is computed as ``||x_n - y_n R*||_F``,
not as ``sqrt(2 - 2 similarity)``: it is then accurate to round-off near 0
instead of to ``sqrt(eps)``, and the angular form as ``2 arcsin(distance /
2)`` (chord to arc), which avoids ``arccos``'s infinite slope at 1.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jaxcca._checks import as_pair, raise_if_not_finite
from jaxcca._numerics import mm, nonconstant, pow2_scale, propagate_nan, safe_rsqrt, safe_sqrt
from jaxcca._results import ProcrustesResult

__all__ = [
    "procrustes",
    "procrustes_distance",
    "procrustes_similarity",
    "unit_frobenius",
]


def unit_frobenius(x: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Centred ``x`` over its Frobenius norm, and whether it was non-constant.

    Columns whose centred entries are all at the round-off level of their own
    mean are constant and zeroed; a representation with no other column is
    constant and maps to 0. The max-abs pre-scaling is held
    constant (the result does not depend on it) and keeps the sum of squares
    from overflowing in float32; the norm uses a double ``where`` so that its
    square root carries no NaN gradient at 0.
    """
    mean = jnp.mean(x, axis=0, keepdims=True)
    xc = x - mean
    live = nonconstant(xc, mean)
    xc = jnp.where(live, xc, 0.0)
    alive = jnp.any(live)
    xs = jnp.where(alive, xc * pow2_scale(xc), 0.0)
    sq = jnp.sum(xs * xs)
    ok = alive & ~(sq <= 0)
    return xs * safe_rsqrt(sq), ok


def _pad(a: jax.Array, p: int) -> jax.Array:
    return a if a.shape[1] == p else jnp.pad(a, ((0, 0), (0, p - a.shape[1])))


@jax.jit
def _procrustes(x: jax.Array, y: jax.Array) -> ProcrustesResult:
    p = max(x.shape[1], y.shape[1])
    xn, okx = unit_frobenius(x)
    yn, oky = unit_frobenius(y)
    xn, yn = _pad(xn, p), _pad(yn, p)
    m = mm(yn.T, xn)  # (p, p), differentiated
    u, _, vt = jnp.linalg.svd(jax.lax.stop_gradient(m))
    rot = mm(u, vt)  # maximises tr(R^T m) over orthogonal R (constant: Danskin)
    both = okx & oky
    sim = jnp.clip(jnp.sum(rot * m), 0.0, 1.0)
    resid = xn - mm(yn, rot)
    d2 = jnp.sum(resid * resid)
    # A constant side has no direction: similarity 0, distance sqrt(2).
    d2 = jnp.where(both, d2, 2.0)
    sim = jnp.where(both, sim, 0.0)
    dist = jnp.minimum(safe_sqrt(d2), math.sqrt(2.0))
    ang = 2.0 * jnp.arcsin(0.5 * dist)
    return ProcrustesResult(
        propagate_nan(sim, m), propagate_nan(dist, m), propagate_nan(ang, m), rot
    )


def procrustes(x: ArrayLike, y: ArrayLike, *, check_finite: bool = False) -> ProcrustesResult:
    r"""Orthogonal Procrustes comparison of two representations.

    Both representations are centred, scaled to unit Frobenius norm and the
    narrower one is zero-padded (as netrep does); then

    ``distance^2 = min_{R orthogonal} ||x_n - y_n R||_F^2 = 2 - 2 ||x_n^T y_n||_*``

    (Schönemann 1966; Ding et al. 2021, section 2). ``similarity =
    ||x_n^T y_n||_*`` in [0, 1], ``distance`` in [0, sqrt(2)],
    ``angular_distance = arccos(similarity)`` in [0, pi / 2]. The distance is
    a metric, and so is the angular distance, on representations taken modulo
    rotation, translation and scaling (Williams et al. 2021).

    Invariant to orthogonal maps of either side's neurons, to translation and
    to isotropic scaling; not to general invertible maps. Symmetric.

    Gradients are finite everywhere. The similarity is smooth where the
    singular values of ``x_n^T y_n`` are non-zero. The distances are not
    differentiable at ``x == y`` (like ``|t|`` at 0); there the gradient
    returned is 0 (or, if round-off leaves a residual, a finite unit-size
    subgradient): use the similarity or ``distance**2`` as a training loss.

    One pair in, one result out: for a batch of pairs use ``jax.vmap``. The
    work is one ``(p, p)`` SVD, ``p = max(d1, d2)``, plus ``n p^2`` products.

    Args:
      x: ``(n, d1)`` activations, float32 or float64 (float16 and bfloat16 are computed in float32).
      y: ``(n, d2)`` activations on the same ``n`` inputs.
      check_finite: if True, raise ``ValueError`` when the inputs hold NaN or
        Inf. Needs concrete inputs: under jit or vmap it raises ValueError at
        trace time (check before the transformed call). Otherwise NaN input
        gives NaN output.

    Returns:
      A :class:`ProcrustesResult`.

    Raises:
      ValueError: wrong rank, different numbers of samples, fewer than 2 samples.
      TypeError: integer, bool or complex dtype; float64 with 64-bit mode off.

    Example:
      >>> import jax, jaxcca
      >>> x = jax.random.normal(jax.random.key(0), (100, 5))
      >>> q, _ = jax.numpy.linalg.qr(jax.random.normal(jax.random.key(1), (5, 5)))
      >>> res = jaxcca.procrustes(x, 2.0 * x @ q + 1.0)
      >>> round(float(res.similarity), 5), round(float(res.distance), 5)
      (1.0, 0.0)

    References:
      Schönemann, "A generalized solution of the orthogonal Procrustes
      problem", Psychometrika 1966.
      Ding, Denain & Steinhardt, "Grounding representation similarity through
      statistical testing", NeurIPS 2021, section 2.
      Williams, Kunz, Kornblith & Linderman, "Generalized shape metrics on
      neural representations", NeurIPS 2021 (netrep).
    """
    x, y = as_pair(x, y)
    if check_finite:
        raise_if_not_finite(x, y)
    return _procrustes(x, y)


def procrustes_similarity(x: ArrayLike, y: ArrayLike, *, check_finite: bool = False) -> jax.Array:
    """``||x_n^T y_n||_*`` in [0, 1], the cosine of the angular Procrustes distance.

    See :func:`procrustes`. Equals ``1 - procrustes_distance(x, y)**2 / 2``.

    Example:
      >>> import jax, jaxcca
      >>> x = jax.random.normal(jax.random.key(0), (50, 4))
      >>> round(float(jaxcca.procrustes_similarity(x, -x)), 5)
      1.0
    """
    return procrustes(x, y, check_finite=check_finite).similarity


def procrustes_distance(
    x: ArrayLike, y: ArrayLike, *, angular: bool = False, check_finite: bool = False
) -> jax.Array:
    """Orthogonal Procrustes distance on centred, unit-norm data (see :func:`procrustes`).

    Unlike the other ``*_distance`` functions this is not ``1 - similarity``
    but the metric of Ding et al. (2021): ``sqrt(2 - 2 s)`` in [0, sqrt(2)],
    or with ``angular=True`` ``arccos(s)`` in [0, pi / 2] (netrep's default
    score), where ``s = procrustes_similarity(x, y)``. Not differentiable at
    ``x == y`` (the gradient returned there is finite; see :func:`procrustes`).

    Args:
      x: ``(n, d1)`` activations.
      y: ``(n, d2)`` activations on the same inputs.
      angular: return the angular form. Static.
      check_finite: as in :func:`procrustes`.

    Returns:
      Scalar distance.

    Example:
      >>> import jax, jaxcca
      >>> x = jax.random.normal(jax.random.key(0), (50, 4))
      >>> y = jax.random.normal(jax.random.key(1), (50, 4))
      >>> d = jaxcca.procrustes_distance(x, y)
      >>> s = jaxcca.procrustes_similarity(x, y)
      >>> abs(float(d) ** 2 - (2 - 2 * float(s))) < 1e-5
      True
    """
    if not isinstance(angular, bool):
        raise TypeError(f"angular must be a Python bool (static), got {angular!r}.")
    res = procrustes(x, y, check_finite=check_finite)
    return res.angular_distance if angular else res.distance
