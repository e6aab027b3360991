"""Dense linear algebra with derivatives that stay finite, safe to vmap on CPU.

LAPACK calls wrapped so that ``vmap`` runs them one after another on CPU
(:func:`sequential_batching_on_cpu`), and the factorisations every measure
differentiates through: :func:`cholesky_and_inverse`, :func:`safe_svd` (finite
at tied and zero singular values), :func:`singular_values` and
:func:`complex_singular_values` (cheap forward pass, finite derivative), and
CholeskyQR2 column orthonormalisation. The whitening built on them lives in
:mod:`jaxcca._whiten`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxcca._numerics import mm, pow2_scale, safe_div

__all__ = [
    "cholesky_and_inverse",
    "cholesky_inverse_nograd",
    "cholesky_nograd",
    "cholesky_upper_inverse",
    "cholesky_inverse_given",
    "complex_cholesky_and_inverse_nograd",
    "conj_transpose",
    "complex_singular_values",
    "eigh_nograd",
    "eigh_solver",
    "orthonormalize_columns",
    "psd_sqrt_from_svd",
    "safe_svd",
    "sequential_batching_on_cpu",
    "singular_values",
    "svd_solver",
]


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


def eigh_solver(a):
    """``(eigenvalues, eigenvectors)`` of symmetric ``a`` by this backend's chosen solver."""
    if _on_gpu():
        return _eigh_qr(a)
    return jnp.linalg.eigh(a)


def _eigh_qr(a):
    vecs, lam = jax.lax.linalg.eigh(a, implementation=jax.lax.linalg.EighImplementation.QR)
    return lam, vecs


def svd_solver(a):
    """Thin ``(u, s, vt)`` of ``a`` by this backend's chosen solver."""
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


eigh_nograd = sequential_batching_on_cpu(eigh_solver)
_svd_nograd = sequential_batching_on_cpu(svd_solver)
_svdvals_nograd = sequential_batching_on_cpu(_svdvals_impl)
cholesky_inverse_nograd = sequential_batching_on_cpu(_chol_inv_impl)
cholesky_nograd = sequential_batching_on_cpu(jnp.linalg.cholesky)


@jax.custom_jvp
def cholesky_and_inverse(a: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``(L, L^{-1})`` with ``a = L L^T``, differentiable, safe to vmap on CPU.

    The derivative is ``dL = L Phi(L^{-1} dA L^{-T})`` (Phi: lower triangle,
    half diagonal; Murray 2016, "Differentiation of the Cholesky
    decomposition"), written with the stored inverse so that it needs only
    matrix products.
    """
    return cholesky_inverse_nograd(a)


@cholesky_and_inverse.defjvp
def _cholesky_and_inverse_jvp(primals, tangents):
    (a,), (da,) = primals, tangents
    l_factor, l_inv = cholesky_and_inverse(a)
    da = 0.5 * (da + da.T)
    x = mm(mm(l_inv, da), l_inv.T)
    phi = jnp.tril(x) - 0.5 * jnp.diag(jnp.diagonal(x))
    return (l_factor, l_inv), (mm(l_factor, phi), -mm(phi, l_inv))


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

    ds_mat = mm(mm(u.T, da), v)
    ds = jnp.diagonal(ds_mat)

    s_row = s[None, :]
    diffs = (s_row + s_row.T) * (s_row - s_row.T)  # s_j^2 - s_i^2 at [i, j]
    ok = jnp.abs(diffs) > rel * smax2
    f = safe_div(jnp.ones_like(diffs), diffs, ok)
    s_ok = s > jnp.sqrt(rel * smax2)
    s_inv = safe_div(jnp.ones_like(s), s, s_ok)

    dss = ds_mat * s_row
    sds = s_row.T * ds_mat
    du_inner = f * (dss + dss.T) + 0.5 * (ds_mat - ds_mat.T) * jnp.diag(s_inv)
    du = mm(u, du_inner)
    dv = mm(v, f * (sds + sds.T))
    m, k = a.shape
    if m > k:
        dav = mm(da, v)
        du = du + (dav - mm(u, mm(u.T, dav))) * s_inv[None, :]
    if k > m:
        dau = mm(da.T, u)
        dv = dv + (dau - mm(v, mm(vt, dau))) * s_inv[None, :]
    return (u, s, vt), (du, ds, dv.T)


# ----------------------------------------------------------------------------
# Symmetric square root with a finite derivative
# ----------------------------------------------------------------------------


def psd_sqrt_from_svd(u: jax.Array, s: jax.Array) -> jax.Array:
    """``(A A^T)^{1/2} = u diag(s) u^T`` from the thin SVD of ``A``."""
    return mm(u * s[None, :], u.T)


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
    return s, jnp.sum(u * mm(da, vt.T), axis=0)


def cholesky_upper_inverse(g: jax.Array) -> jax.Array:
    """Returns ``L^{-T}`` for ``g = L L^T`` (lower Cholesky), differentiable."""
    return cholesky_and_inverse(g)[1].T


def orthonormalize_columns(c: jax.Array, valid: jax.Array) -> jax.Array:
    """Q factor of the QR decomposition of ``c[:, valid]``, zero elsewhere.

    Shifted CholeskyQR3 (Fukaya, Kannan, Nakatsukasa, Yamamoto, Yanagisawa
    2020, "Shifted Cholesky QR for computing the QR factorization of
    ill-conditioned matrices", SIAM J. Sci. Comput. 42(1)): a first Cholesky
    pass on ``c^T c + s I`` with ``s = 11 (m n + n (n + 1)) u ||c||_F^2`` (``u``
    the unit round-off) cannot fail for condition numbers up to about ``1/u``
    and leaves a factor conditioned well enough for two plain passes
    (CholeskyQR2), which make it orthonormal. Plain CholeskyQR2 fails (NaN) once
    ``cond(c)^2`` exceeds ``1/u``, i.e. at ~3e3 in float32. Every pass
    multiplies by an upper triangular matrix with a positive diagonal, so the
    result is exactly the Q factor of ``c`` (Gram-Schmidt order, like
    Householder QR up to column signs) whatever the shift, which is held
    constant; derivatives stay finite when invalid columns are masked out.
    Each column is first scaled by an exact power of two (Q does not depend on
    positive column scales), so columns of very different magnitudes do not
    underflow in the Gram matrix.
    """
    c = c * pow2_scale(c, axis=0)[None, :]
    m, n = c.shape
    both = valid[:, None] & valid[None, :]
    eye = jnp.eye(n, dtype=c.dtype)
    unit_roundoff = 0.5 * float(np.finfo(c.dtype).eps)
    for i in range(3):
        c = jnp.where(valid[None, :], c, 0.0)
        g = mm(c.T, c)
        if i == 0:
            shift = 11.0 * (m * n + n * (n + 1)) * unit_roundoff * jnp.trace(g)
            g = g + jax.lax.stop_gradient(shift) * eye
        g = jnp.where(both, g, eye)
        c = mm(c, cholesky_upper_inverse(g))
    return jnp.where(valid[None, :], c, 0.0)


# ----------------------------------------------------------------------------
# Complex singular values (DFT-CCA)
# ----------------------------------------------------------------------------


def _complex_svdvals_impl(re, im):
    return _svdvals_impl(jax.lax.complex(re, im))


def _complex_svd_impl(re, im):
    return svd_solver(jax.lax.complex(re, im))


def _complex_chol_inv_impl(a):
    l_factor = jnp.linalg.cholesky(a)
    eye = jnp.eye(a.shape[-1], dtype=a.dtype)
    return l_factor, jax.scipy.linalg.solve_triangular(l_factor, eye, lower=True)


complex_cholesky_and_inverse_nograd = sequential_batching_on_cpu(_complex_chol_inv_impl)
_complex_svdvals_nograd = sequential_batching_on_cpu(_complex_svdvals_impl)
_complex_svd_nograd = sequential_batching_on_cpu(_complex_svd_impl)


@jax.custom_jvp
def complex_singular_values(re: jax.Array, im: jax.Array) -> jax.Array:
    """Singular values of ``re + i im``; derivative ``ds_k = Re(u_k^H dM v_k)``.

    Like :func:`singular_values`, the singular vectors are only computed when
    differentiating, and the derivative is finite at ties.
    """
    return _complex_svdvals_nograd(re, im)


@complex_singular_values.defjvp
def _complex_singular_values_jvp(primals, tangents):
    re, im = primals
    dre, dim = tangents
    u, s, vh = _complex_svd_nograd(re, im)
    dm = jax.lax.complex(dre, dim)
    ds = jnp.real(
        jnp.sum(jnp.conj(u) * jnp.matmul(dm, jnp.conj(vh).T, precision="highest"), axis=0)
    )
    return s, ds


def conj_transpose(a: jax.Array) -> jax.Array:
    """``a^H`` over the last two axes (``a^T`` for real ``a``)."""
    return jnp.conj(jnp.swapaxes(a, -1, -2))


@jax.custom_jvp
def cholesky_inverse_given(a: jax.Array, l_inv: jax.Array) -> jax.Array:
    """``l_inv``, the inverse Cholesky factor of ``a`` computed by the caller, with its derivative.

    ``a`` is real symmetric or complex Hermitian and ``l_inv = L^{-1}`` for
    ``a = L L^H`` (e.g. from :data:`complex_cholesky_and_inverse_nograd`, where
    the caller also needed it for a test). The derivative with respect to
    ``a`` is that of :func:`cholesky_and_inverse`, ``d(L^{-1}) = -Phi(L^{-1}
    dA L^{-H}) L^{-1}`` (Phi: lower triangle, half diagonal; LAPACK's factor
    has a real positive diagonal, which makes it unique); ``l_inv`` itself is
    held constant. Only matrix products: no second factorisation.
    """
    del a
    return l_inv


@cholesky_inverse_given.defjvp
def _cholesky_inverse_given_jvp(primals, tangents):
    a, l_inv = primals
    da, _ = tangents
    del a
    da = 0.5 * (da + conj_transpose(da))
    x = mm(mm(l_inv, da), conj_transpose(l_inv))
    phi = jnp.tril(x) - 0.5 * jnp.diag(jnp.diagonal(x))
    return l_inv, -mm(phi, l_inv)
