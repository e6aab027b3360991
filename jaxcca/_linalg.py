"""Numerical building blocks shared by every measure.

Everything here works on one representation ``x`` of shape ``(n, d)`` (rows are
samples, columns are neurons) and is written for fixed shapes under ``jax.jit``:
ranks are expressed as masks, never as slices of traced length.

The central routine is :func:`whiten`, which returns an orthonormal basis of the
column space of the centred data together with its triangular-like factor. It
is built so that

* the forward pass is accurate in float32 for condition numbers up to ~1e3
  (two-pass orthonormalisation, in the spirit of CholeskyQR2, Fukaya et al.
  2014), at the speed of matrix products;
* rank deficiency (dead, constant or duplicated neurons, more neurons than
  samples) is detected and masked, and reported as an effective rank;
* gradients are finite everywhere, including at degenerate spectra: the only
  factorisation on the differentiated path is a Cholesky factorisation of a
  matrix that is close to the identity, and the spectral preconditioner is
  held constant (``stop_gradient``), which leaves gradients of anything that
  depends only on the spanned subspace exact (see :func:`whiten`).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

HIGHEST = jax.lax.Precision.HIGHEST

__all__ = [
    "Whitened",
    "as_pair",
    "as_single",
    "center",
    "default_epsilon",
    "safe_svd",
    "whiten",
]


def _mm(a: jax.Array, b: jax.Array) -> jax.Array:
    return jnp.matmul(a, b, precision=HIGHEST)


# ----------------------------------------------------------------------------
# Input checking
# ----------------------------------------------------------------------------

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def _as_float_matrix(a: ArrayLike, name: str, *, ndim: int = 2) -> jax.Array:
    """Converts ``a`` to a jax array and checks rank and dtype at trace time."""
    if not hasattr(a, "dtype") or not hasattr(a, "shape"):
        a = np.asarray(a)
    if a.ndim != ndim:
        layout = "(n_samples, n_neurons)" if ndim == 2 else "(n_samples, height, width, channels)"
        hint = (
            " For a single neuron use x[:, None]; for conv activations (N, H, W, C) "
            "use jaxcca.dft_cca or jaxcca.conv_to_neurons."
            if ndim == 2
            else ""
        )
        raise ValueError(
            f"{name} must be a {ndim}-D array of shape {layout}, got shape "
            f"{tuple(a.shape)} ({a.ndim}-D).{hint} To compare a batch of pairs, "
            "wrap the call in jax.vmap."
        )
    dtype = np.dtype(a.dtype)
    if dtype not in _FLOATS:
        raise TypeError(
            f"{name} must have dtype float32 or float64, got {dtype}. Cast it first, "
            f"e.g. {name}.astype(jnp.float32) (low-precision float16/bfloat16 "
            "activations are too coarse for CCA)."
        )
    if dtype == np.float64 and not jax.config.jax_enable_x64:
        raise TypeError(
            f"{name} is float64 but JAX's 64-bit mode is off, so it would be silently "
            "truncated to float32. Enable it with jax.config.update('jax_enable_x64', "
            f"True) or pass {name}.astype(np.float32)."
        )
    return jnp.asarray(a)


def as_single(x: ArrayLike, name: str = "x", *, ndim: int = 2) -> jax.Array:
    """Checks one representation and returns it as a jax array."""
    x = _as_float_matrix(x, name, ndim=ndim)
    if x.shape[0] < 2:
        raise ValueError(
            f"{name} has {x.shape[0]} sample(s); at least 2 samples (rows) are needed "
            "to estimate covariances. Rows are samples and columns are neurons: if you "
            "passed the google/svcca layout (neurons x samples), pass x.T."
        )
    return x


def as_pair(x: ArrayLike, y: ArrayLike, *, ndim: int = 2) -> tuple[jax.Array, jax.Array]:
    """Checks a pair of representations and promotes them to a common dtype."""
    x = as_single(x, "x", ndim=ndim)
    y = as_single(y, "y", ndim=ndim)
    if x.shape[0] != y.shape[0]:
        raise ValueError(
            f"x and y must have the same number of samples (rows), got x.shape="
            f"{tuple(x.shape)} and y.shape={tuple(y.shape)}. Both representations must "
            "be taken on the same inputs in the same order; if your arrays are "
            "neurons x samples (the google/svcca layout), pass x.T and y.T."
        )
    dtype = np.promote_types(x.dtype, y.dtype)  # both float32/float64 here
    return x.astype(dtype), y.astype(dtype)


def check_finite(*arrays: jax.Array) -> None:
    """Raises ``ValueError`` if any array holds NaN or Inf (works under jit)."""

    def _raise(bad):
        if bool(np.asarray(bad).any()):
            raise ValueError(
                "jaxcca: input activations contain NaN or Inf (check_finite=True). "
                "Find the source with jnp.isfinite(x).all(axis=0) per neuron."
            )

    bad = jnp.zeros((), bool)
    for a in arrays:
        bad = bad | ~jnp.all(jnp.isfinite(a))
    try:
        concrete = bool(bad)
    except jax.errors.ConcretizationTypeError:
        jax.debug.callback(_raise, bad)
        return
    _raise(concrete)


# ----------------------------------------------------------------------------
# Centering and tolerances
# ----------------------------------------------------------------------------


def center(x: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Returns ``(x - mean, mean)`` with the mean over samples (axis 0)."""
    mean = jnp.mean(x, axis=0, keepdims=True)
    return x - mean, mean[0]


def default_epsilon(dtype) -> float:
    """The default relative rank tolerance for ``dtype``.

    Directions whose variance is below ``epsilon`` times the largest (after
    each neuron has been scaled to unit norm) are dropped before the second
    pass. The second pass then drops any direction that keeps less than
    ``10 * sqrt(eps_dtype)`` of the variance the first pass credited it with:
    that is what catches round-off (duplicated neurons, more neurons than
    samples), so ``epsilon`` itself can sit low: ``1e-10`` for float32 (data
    with condition numbers past 3e3 keep every direction) and ``1e-13`` for
    float64.
    """
    return 1e-10 if np.dtype(dtype) == np.float32 else 1e-13


def _pivot_tolerance(dtype) -> float:
    # A kept direction must retain this fraction of its expected unit norm
    # once the basis is re-orthonormalised; spurious directions created by
    # round-off retain ~eps**0.5 or less.
    return float(np.sqrt(np.finfo(dtype).eps)) * 10.0


def _safe_div(num: jax.Array, den: jax.Array, ok: jax.Array) -> jax.Array:
    """``num / den`` where ``ok``, else 0, with no NaN in either branch's gradient."""
    safe_den = jnp.where(ok, den, jnp.ones_like(den))
    return jnp.where(ok, num / safe_den, jnp.zeros_like(num))


# ----------------------------------------------------------------------------
# LAPACK calls that are safe to vmap on CPU
# ----------------------------------------------------------------------------
#
# jaxlib 0.10's batched CPU LAPACK kernels (eigh, cholesky, svd, triangular
# solve, ...) split the batch over XLA's intra-op thread pool and block until
# it is done. When two such kernels (or one and a blocking matrix product) run
# concurrently and occupy every worker, nothing is left to run their tasks and
# the program hangs (seen on 2 cores with vmapped pwcca; cf. the hangs reported
# in PyAutoLabs/PyAutoFit issues 1528 and 1530). On CPU the wrappers below
# therefore run a batch as a sequential ``lax.map`` of unbatched calls, which
# never wait on the pool; on GPU/TPU they batch natively.


def sequential_batching_on_cpu(fn):
    """Wraps ``fn`` (arrays -> pytree of arrays) so that ``vmap`` maps it sequentially on CPU.

    The wrapped function has no derivative rule of its own: use it for
    primal computations inside a ``custom_jvp`` or on ``stop_gradient`` inputs.
    """
    wrapped = jax.custom_batching.custom_vmap(fn)

    @wrapped.def_vmap
    def _rule(axis_size, in_batched, *args):
        args = tuple(
            a if b else jnp.broadcast_to(a, (axis_size, *jnp.shape(a)))
            for a, b in zip(args, in_batched, strict=True)
        )
        if jax.default_backend() == "cpu":
            out = jax.lax.map(lambda xs: wrapped(*xs), args)
        else:
            out = jax.vmap(fn)(*args)
        return out, jax.tree.map(lambda _: True, out)

    return wrapped


def _on_gpu() -> bool:
    return jax.default_backend() == "gpu"


# On GPU, JAX's default small-matrix solvers are Jacobi iterations whose
# stopping tolerance leaves ~5e-6 relative error in float32 singular values
# and eigenvalues (measured on an H100, jax 0.11); the QR-based LAPACK-style
# algorithms are accurate to round-off. The matrices here are d x d, so the
# choice costs little. CPU and TPU keep their defaults.


def _eigh_impl(a):
    if _on_gpu():
        return _eigh_qr(a)
    return jnp.linalg.eigh(a)


def _eigh_qr(a):
    vecs, lam = jax.lax.linalg.eigh(a, implementation=jax.lax.linalg.EighImplementation.QR)
    return lam, vecs


def _svd_impl(a):
    if _on_gpu():
        u, s, vt = jax.lax.linalg.svd(
            a, full_matrices=False, algorithm=jax.lax.linalg.SvdAlgorithm.QR
        )
        return u, s, vt
    u, s, vt = jnp.linalg.svd(a, full_matrices=False)
    return u, s, vt


def _svdvals_impl(a):
    if _on_gpu():
        return jax.lax.linalg.svd(
            a, full_matrices=False, compute_uv=False, algorithm=jax.lax.linalg.SvdAlgorithm.QR
        )
    return jnp.linalg.svd(a, compute_uv=False)


def _chol_inv_impl(a):
    l_factor = jnp.linalg.cholesky(a)
    eye = jnp.eye(a.shape[-1], dtype=a.dtype)
    return l_factor, jax.scipy.linalg.solve_triangular(l_factor, eye, lower=True)


eigh_nograd = sequential_batching_on_cpu(_eigh_impl)
_svd_nograd = sequential_batching_on_cpu(_svd_impl)
_svdvals_nograd = sequential_batching_on_cpu(_svdvals_impl)
_chol_inv_nograd = sequential_batching_on_cpu(_chol_inv_impl)


@jax.custom_jvp
def cholesky_and_inverse(a: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``(L, L^{-1})`` with ``a = L L^T``, differentiable, safe to vmap on CPU.

    The derivative is ``dL = L Phi(L^{-1} dA L^{-T})`` (Phi: lower triangle,
    half diagonal; Murray 2016, "Differentiation of the Cholesky
    decomposition"), written with the stored inverse so that it needs only
    matrix products.
    """
    return _chol_inv_nograd(a)


@cholesky_and_inverse.defjvp
def _cholesky_and_inverse_jvp(primals, tangents):
    (a,), (da,) = primals, tangents
    l_factor, l_inv = cholesky_and_inverse(a)
    da = 0.5 * (da + da.T)
    x = _mm(_mm(l_inv, da), l_inv.T)
    phi = jnp.tril(x) - 0.5 * jnp.diag(jnp.diagonal(x))
    return (l_factor, l_inv), (_mm(l_factor, phi), -_mm(phi, l_inv))


# ----------------------------------------------------------------------------
# Whitening
# ----------------------------------------------------------------------------


class Whitened(NamedTuple):
    """An orthonormal basis of a centred representation's column space.

    Attributes:
      q: ``(n, d)`` orthonormal columns spanning the centred data; columns of
        dropped directions are exactly zero.
      r: ``(d, d)`` the coordinates of the centred neurons in that basis,
        ``q.T @ (x - mean)``; rows of dropped directions are zero.
      mask: ``(d,)`` bool, which columns of ``q`` are kept.
      rank: scalar int, the effective rank ``mask.sum()``.
      mean: ``(d,)`` the per-neuron mean that was removed.
      w: ``(d, d)`` the whitening map: ``q == (x - mean) @ w``.
      q1: ``(n, d)`` or None, first-pass basis with ``q == q1 @ linv_t``.
      linv_t: ``(d, d)`` or None, the second-pass factor ``L^{-T}``.
      xs: ``(n, d)`` or None, centred data with unit-norm neurons.
      precond: ``(d, d)`` or None, first-pass map, ``q1 == xs @ precond``.
    """

    q: jax.Array
    r: jax.Array
    mask: jax.Array
    rank: jax.Array
    mean: jax.Array
    w: jax.Array
    q1: jax.Array | None = None
    linv_t: jax.Array | None = None
    xs: jax.Array | None = None
    precond: jax.Array | None = None


def _cholesky_upper_inverse(g: jax.Array) -> jax.Array:
    """Returns ``L^{-T}`` for ``g = L L^T`` (lower Cholesky)."""
    return cholesky_and_inverse(g)[1].T


def spectral_preconditioner(gram: jax.Array, eps: float) -> tuple[jax.Array, jax.Array]:
    """First pass of :func:`whiten`, held constant: ``(V diag(lambda^-1/2), keep)``.

    ``gram`` is the Gram matrix of unit-norm neurons; directions are sorted by
    descending eigenvalue (noise last) and those with ``lambda <= eps *
    max(lambda)`` are masked.
    """
    tiny = float(np.finfo(gram.dtype).tiny)
    lam, vecs = eigh_nograd(jax.lax.stop_gradient(gram))
    lam, vecs = lam[::-1], vecs[:, ::-1]  # descending: noise comes last
    keep1 = lam > eps * jnp.maximum(lam[0], tiny)
    inv_sqrt = _safe_div(jnp.ones_like(lam), jnp.sqrt(jnp.where(keep1, lam, 1.0)), keep1)
    return vecs * inv_sqrt[None, :], keep1


def second_pass(g2: jax.Array, keep1: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Second pass of :func:`whiten` on ``g2 = q1^T q1`` (close to the identity).

    A Gram-Schmidt pass (constant) drops directions that keep less than
    ``_pivot_tolerance`` of their norm: they were round-off. Returns ``(keep,
    L, L^{-T})`` of the masked ``g2``, differentiable.
    """
    dtype = g2.dtype
    eye = jnp.eye(g2.shape[0], dtype=dtype)
    tol = _pivot_tolerance(dtype)
    g2_probe = jnp.where(keep1[:, None] & keep1[None, :], jax.lax.stop_gradient(g2), eye)
    l_probe, _ = _chol_inv_nograd(g2_probe + tol * 1e-2 * eye)
    pivots = jnp.diagonal(l_probe) ** 2
    keep = keep1 & (pivots > tol) & jnp.isfinite(pivots)
    keep = jnp.cumprod(keep.astype(jnp.int32)).astype(bool)  # NaN poisons the tail
    both = keep[:, None] & keep[None, :]
    l_factor, l_inv = cholesky_and_inverse(jnp.where(both, g2, eye))
    return keep, jnp.where(both, l_factor, 0.0), jnp.where(both, l_inv.T, 0.0)


def whiten(x: jax.Array, *, epsilon: float | None = None, preconditioner=None) -> Whitened:
    r"""Orthonormal basis of the centred column space of ``x``.

    Steps (``x`` is ``(n, d)``, rows are samples):

    1. centre, and scale every neuron to unit norm (Jacobi scaling; neurons
       whose spread is at round-off level of their mean are *dead* and masked);
    2. preconditioner, held constant for differentiation: the eigenvectors
       ``V`` and eigenvalues ``lambda`` of the Gram matrix ``G = xs^T xs``;
       directions with ``lambda <= epsilon * max(lambda)`` are dropped.
       ``q1 = xs V diag(lambda^{-1/2})`` is orthonormal up to round-off;
    3. re-orthonormalisation, differentiated: ``q = q1 L^{-T}`` with
       ``L = chol(q1^T q1)`` (one CholeskyQR step on a nearly orthonormal
       matrix, which is accurate to round-off and has a well-conditioned
       derivative). Columns that lose most of their norm here are round-off,
       not signal, and are dropped too.

    Because the preconditioner is a constant invertible map when ``x`` has
    full rank, ``span(q) = span(x - mean)`` holds for every perturbation and the
    derivative of any function of the subspace (canonical correlations,
    projections) is exact. At rank-deficient inputs the true function is not
    differentiable; the gradient returned is finite and treats the dropped
    directions as fixed.

    Args:
      x: ``(n, d)`` representation.
      epsilon: relative rank tolerance; ``None`` uses
        :func:`default_epsilon` of ``x.dtype``.
      preconditioner: ``(gram, eps) -> (precond, keep1)`` for step 2, held
        constant; default :func:`spectral_preconditioner`. (DFT-CCA passes
        one that exploits the structure of complex data in real form.)

    Returns:
      A :class:`Whitened` tuple.
    """
    dtype = x.dtype
    n, d = x.shape
    eps = default_epsilon(dtype) if epsilon is None else float(epsilon)
    finfo = np.finfo(dtype)

    xc, mean = center(x)
    sq = jnp.sum(xc * xc, axis=0)
    pos = sq > 0
    norms = jnp.where(pos, jnp.sqrt(jnp.where(pos, sq, 1.0)), 0.0)  # safe norm
    # A neuron is dead when its centred norm is at the round-off level of its
    # values (exactly constant neurons leave ~eps * |mean| * sqrt(n) behind).
    scale = jnp.abs(mean) * float(np.sqrt(n)) + jnp.max(norms) * 1e-3
    alive = norms > 64.0 * float(finfo.eps) * scale
    inv_norms = _safe_div(jnp.ones_like(norms), norms, alive)
    xs = xc * inv_norms[None, :]

    # --- preconditioner (constant) ---------------------------------------
    gram = _mm(xs.T, xs)
    precond, keep1 = (preconditioner or spectral_preconditioner)(gram, eps)
    q1 = _mm(xs, precond)

    # --- re-orthonormalisation (differentiated) ---------------------------
    # In float32, g2 is formed from q1 itself, not as precond^T gram precond:
    # that is what makes the second pass repair the round-off of the first
    # (CholeskyQR2). In float64 the Gram round-off (eps * cond(x)**2) is
    # negligible for any condition number the rank tolerance lets through,
    # and the d x d form saves two n-sized products.
    gram_mode = dtype == np.float64
    g2 = _mm(_mm(precond.T, gram), precond) if gram_mode else _mm(q1.T, q1)
    keep, l_factor, linv_t = second_pass(g2, keep1)
    # NaN/Inf input must give NaN output, not a quietly masked 0: the masks
    # above compare False on NaN, so poison the basis explicitly.
    poison = jnp.where(jnp.all(jnp.isfinite(x)), 0.0, jnp.nan).astype(dtype)
    q1 = jnp.where(keep[None, :], q1, 0.0) + poison
    q = _mm(q1, linv_t)
    w = _mm(inv_norms[:, None] * precond, linv_t)
    # r = q^T xc. (It equals L^T diag(lam^1/2) V^T D in exact arithmetic,
    # which avoids n-sized work, but in float32 that loses ~1e-4 in PWCCA at
    # condition number 1e3; under jit r is only computed when a measure uses it.)
    if gram_mode:
        r = _mm(_mm(linv_t.T, _mm(precond.T, gram)), jnp.diag(norms)) + poison
    else:
        r = _mm(linv_t.T, _mm(q1.T, xc))
    rank = jnp.sum(keep, dtype=jnp.int32)
    return Whitened(
        q=q,
        r=r,
        mask=keep,
        rank=rank,
        mean=mean,
        w=w,
        q1=q1,
        linv_t=linv_t,
        xs=xs + poison,
        precond=jnp.where(keep[None, :], precond, 0.0),
    )


def cross_product(wx: Whitened, wy: Whitened) -> jax.Array:
    """``wx.q.T @ wy.q`` (``(d1, d2)``), computed from the first-pass bases.

    ``L_x^{-1} (q1_x^T q1_y) L_y^{-T}`` needs one ``n``-sized product instead of
    forming both ``q`` (under jit the unused ``q`` is never computed).
    """
    if wx.q1 is None or wy.q1 is None:
        return _mm(wx.q.T, wy.q)
    if wx.q1.dtype == np.float64:
        # (xs_x P_x)^T (xs_y P_y) with the n-sized product on the raw data.
        inner = _mm(_mm(wx.precond.T, _mm(wx.xs.T, wy.xs)), wy.precond)
    else:
        inner = _mm(wx.q1.T, wy.q1)
    return _mm(_mm(wx.linv_t.T, inner), wy.linv_t)


# ----------------------------------------------------------------------------
# SVD with a gradient that is finite at degenerate spectra
# ----------------------------------------------------------------------------


@jax.custom_jvp
def safe_svd(a: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Thin SVD ``a = u @ diag(s) @ vt`` with a JVP that is finite everywhere.

    JAX's SVD derivative divides by ``s_i**2 - s_j**2`` and by ``s_i``
    (jax-ml/jax issues 2311 and 8732), which is infinite when singular values
    tie, e.g. all canonical correlations equal 1 when comparing a
    representation with itself. Here those terms are set to zero when the gap
    (or the singular value) is below a relative tolerance: the derivative then
    ignores rotations inside a degenerate singular subspace, which is exact for
    every function that is invariant to such rotations (sums of singular
    values, projectors onto unions of whole degenerate blocks) and a finite
    choice from the generalised gradient otherwise. This is the usual
    regularisation of spectral derivatives (Ionescu et al., "Matrix
    backpropagation for deep networks with structured layers", ICCV 2015;
    Wang et al., "Backpropagation-friendly eigendecomposition", NeurIPS 2019).

    Args:
      a: ``(m, k)`` real matrix.

    Returns:
      ``(u, s, vt)`` with shapes ``(m, p)``, ``(p,)``, ``(p, k)``, ``p = min(m, k)``.
    """
    return _svd_nograd(a)


@safe_svd.defjvp
def _safe_svd_jvp(primals, tangents):
    (a,), (da,) = primals, tangents
    u, s, vt = safe_svd(a)
    v = vt.T
    dtype = a.dtype
    rel = float(np.finfo(dtype).eps) * 1e3
    smax2 = jnp.maximum(jnp.max(s) ** 2, float(np.finfo(dtype).tiny))

    ds_mat = _mm(_mm(u.T, da), v)
    ds = jnp.diagonal(ds_mat)

    s_row = s[None, :]
    diffs = (s_row + s_row.T) * (s_row - s_row.T)  # s_j^2 - s_i^2 at [i, j]
    ok = jnp.abs(diffs) > rel * smax2
    f = _safe_div(jnp.ones_like(diffs), diffs, ok)
    s_ok = s > jnp.sqrt(rel * smax2)
    s_inv = _safe_div(jnp.ones_like(s), s, s_ok)

    dss = ds_mat * s_row
    sds = s_row.T * ds_mat
    du_inner = f * (dss + dss.T) + 0.5 * (ds_mat - ds_mat.T) * jnp.diag(s_inv)
    du = _mm(u, du_inner)
    dv = _mm(v, f * (sds + sds.T))
    m, k = a.shape
    if m > k:
        dav = _mm(da, v)
        du = du + (dav - _mm(u, _mm(u.T, dav))) * s_inv[None, :]
    if k > m:
        dau = _mm(da.T, u)
        dv = dv + (dau - _mm(v, _mm(vt, dau))) * s_inv[None, :]
    return (u, s, vt), (du, ds, dv.T)


# ----------------------------------------------------------------------------
# Symmetric square root with a finite derivative
# ----------------------------------------------------------------------------


def psd_sqrt_from_svd(u: jax.Array, s: jax.Array) -> jax.Array:
    """``(A A^T)^{1/2} = u diag(s) u^T`` from the thin SVD of ``A``."""
    return _mm(u * s[None, :], u.T)


@jax.custom_jvp
def singular_values(a: jax.Array) -> jax.Array:
    """Singular values, descending; cheap forward pass, finite derivative at ties.

    The derivative ``ds_i = u_i^T dA v_i`` needs the singular vectors, which
    are computed only when differentiating.
    """
    return _svdvals_nograd(a)


@singular_values.defjvp
def _singular_values_jvp(primals, tangents):
    (a,), (da,) = primals, tangents
    u, s, vt = safe_svd(a)
    return s, jnp.sum(u * _mm(da, vt.T), axis=0)
