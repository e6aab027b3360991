"""Convolutional layers: DFT-CCA (Raghu et al. 2017, section 3) and conv reductions."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from jaxcca._cca import canonical_directions
from jaxcca._checks import as_pair, as_single, raise_if_not_finite, validate_epsilon
from jaxcca._linalg import (
    cholesky_inverse_given,
    complex_cholesky_and_inverse_nograd,
    complex_singular_values,
    conj_transpose,
    eigh_nograd,
)
from jaxcca._numerics import (
    alive_neurons,
    clip_correlations,
    first_k,
    live_unit,
    mm,
    nonconstant,
    running_scale,
    safe_div,
    safe_sqrt,
    set_scale,
)
from jaxcca._results import DFTCCAResult
from jaxcca._whiten import cross_product, default_epsilon, whiten

__all__ = ["conv_to_neurons", "dft_cca", "dft_cca_distance", "dft_cca_similarity"]

CONV_MODES = ("channels", "flatten", "spatial_mean")
WEIGHTINGS = ("mean", "projection")


# ----------------------------------------------------------------------------
# Conv reductions
# ----------------------------------------------------------------------------


def conv_to_neurons(x: ArrayLike, *, mode: str) -> jax.Array:
    r"""Turns conv activations ``(N, H, W, C)`` into a ``(samples, neurons)`` matrix.

    The three treatments of a conv layer compared in Raghu et al. 2017,
    section 3, each a different question:

    * ``"channels"``: ``(N*H*W, C)``. Every channel is a neuron and every
      spatial position of every input a datapoint. Cheap (``C`` neurons), uses
      all the data; asks whether the two layers' *filters* span the same space
      irrespective of position. Both layers need the same ``H`` and ``W`` so
      that datapoints pair up (resize or pool first if not).
    * ``"flatten"``: ``(N, H*W*C)``. Every (position, channel) is a neuron.
      The most faithful, but the number of neurons is large: CCA then needs
      ``N >> H*W*C`` samples (see ``n_trivial`` in :class:`jaxcca.CCAResult`)
      and costs ``O(N (HWC)^2)``. On translation-invariant data
      :func:`jaxcca.dft_cca` computes exactly this, one frequency at a time.
    * ``"spatial_mean"``: ``(N, C)``, the mean of each channel over positions
      (global average pooling), as used by Morcos et al. 2018. Cheapest and
      insensitive to spatial size, so layers of different resolution can be
      compared; discards all spatial structure.

    Args:
      x: ``(N, H, W, C)`` activations (rows are samples, channels last).
      mode: ``"channels"``, ``"flatten"`` or ``"spatial_mean"``.

    Returns:
      The 2-D matrix described above.

    Raises:
      ValueError: ``x`` is not 4-D or ``mode`` is unknown.

    Example:
      >>> import jax.numpy as jnp, jaxcca
      >>> x = jnp.zeros((10, 4, 4, 3))
      >>> [jaxcca.conv_to_neurons(x, mode=m).shape for m in ("channels", "flatten", "spatial_mean")]
      [(160, 3), (10, 48), (10, 3)]
    """
    if mode not in CONV_MODES:
        raise ValueError(f"mode must be one of {CONV_MODES}, got {mode!r}.")
    x = as_single(x, "x", ndim=4)
    n, h, w, c = x.shape
    if mode == "channels":
        return x.reshape(n * h * w, c)
    if mode == "flatten":
        return x.reshape(n, h * w * c)
    return jnp.mean(x, axis=(1, 2))


# ----------------------------------------------------------------------------
# The frequency grid (static, numpy)
# ----------------------------------------------------------------------------


def _axis_band(size_x: int, size_y: int) -> tuple[int, np.ndarray, np.ndarray]:
    """Common frequencies of one spatial axis, in FFT order.

    Equal sizes: every frequency. Different sizes: the signed frequencies
    ``|k| <= (min(size) - 1) // 2`` that both can represent without aliasing
    (the Nyquist frequency of an even size has no partner in the larger map).

    Returns ``(grid_size, index_into_x_fft, index_into_y_fft)``.
    """
    if size_x == size_y:
        idx = np.arange(size_x)
        return size_x, idx, idx
    b = (min(size_x, size_y) - 1) // 2
    signed = np.concatenate([np.arange(0, b + 1), np.arange(-b, 0)])
    return 2 * b + 1, signed % size_x, signed % size_y


@functools.lru_cache(maxsize=64)
def _frequency_plan(hx: int, wx: int, hy: int, wy: int):
    """Which frequencies to compute and how to spread them over the full grid.

    A real map's DFT satisfies ``F[-u, -v] = conj(F[u, v])``, and CCA of the
    conjugated data gives the same correlations, so only one frequency of each
    conjugate pair is computed (the one in the real-FFT half plane).
    """
    hg, rows_x, rows_y = _axis_band(hx, hy)
    wg, cols_x, cols_y = _axis_band(wx, wy)
    ii, jj = np.meshgrid(np.arange(hg), np.arange(wg), indexing="ij")
    ci, cj = (-ii) % hg, (-jj) % wg
    half = wg // 2
    # representative of each conjugate pair: column in [0, wg // 2]; on the
    # self-paired columns (0 and an even grid's Nyquist) the smaller row.
    is_rep = (jj <= half) & ((jj != cj) | (ii <= ci))
    rep_i, rep_j = ii[is_rep], jj[is_rep]
    rep_index = -np.ones((hg, wg), np.int64)
    rep_index[rep_i, rep_j] = np.arange(rep_i.size)
    full_to_rep = np.where(is_rep, rep_index, rep_index[ci, cj])
    assert (full_to_rep >= 0).all()
    self_conj = (rep_i == ci[rep_i, rep_j]) & (rep_j == cj[rep_i, rep_j])
    multiplicity = np.where(self_conj, 1, 2)
    # rfft columns hold the non-negative frequencies 0..w//2, so a grid column
    # j <= wg // 2 (a non-negative signed frequency) is rfft column cols[j].
    # signed frequencies as np.fft.fftfreq(size) * size (Nyquist negative)
    signed_rows = np.where(ii <= (hg - 1) // 2, ii, ii - hg)
    signed_cols = np.where(jj <= (wg - 1) // 2, jj, jj - wg)
    freqs = np.stack([signed_rows, signed_cols], axis=-1).astype(np.int32)
    return {
        "grid": (hg, wg),
        "rows_x": rows_x[rep_i],
        "rows_y": rows_y[rep_i],
        "cols_x": cols_x[rep_j],
        "cols_y": cols_y[rep_j],
        "multiplicity": multiplicity,
        "full_to_rep": full_to_rep,
        "frequencies": freqs,
    }


# ----------------------------------------------------------------------------
# Per-frequency complex CCA
# ----------------------------------------------------------------------------


def _realify(z: jax.Array) -> jax.Array:
    """``(n, c)`` complex ``A + iB`` to the top half ``[a_1, -b_1, a_2, ...]`` of its real form.

    Complex linear combinations of complex columns are exactly real linear
    combinations of the columns of the ``(2n, 2c)`` real form (column ``2j``
    ``(a_j; b_j)``, column ``2j + 1`` ``(-b_j; a_j)``, i.e. ``z_j`` and ``i
    z_j``), and Hermitian inner products become real ones (``Re <a, b> =
    <R(a), R(b)>``): the canonical correlations of the real form are those of
    the complex data, each appearing twice. The bottom half follows from the
    top half, which is all that :func:`jaxcca._whiten.whiten` needs with
    ``paired=True`` (half the cost of each sample-sized product).
    """
    n, c = z.shape
    return jnp.stack([jnp.real(z), -jnp.imag(z)], axis=2).reshape(n, 2 * c)


def _center_complex(z: jax.Array) -> jax.Array:
    """Centres ``(R, N, C)`` coefficients over samples; zeroes dead channels.

    A channel whose coefficient is the same for every sample (e.g. a constant
    channel at frequency 0) leaves only round-off after centring; the real
    form must see an exact zero column so that the whitening masks it. The
    test is the one :func:`jaxcca._whiten.whiten` applies to real neurons.
    """
    n = z.shape[1]
    mean = jnp.mean(z, axis=1, keepdims=True)
    zc = z - mean
    norms = safe_sqrt(jnp.sum(jnp.real(zc * jnp.conj(zc)), axis=1, keepdims=True))
    alive = jax.lax.stop_gradient(alive_neurons(norms, mean, n))
    return jnp.where(alive, zc, 0.0)


def _complex_preconditioner(gram: jax.Array, eps: float):
    """:func:`jaxcca._whiten.spectral_preconditioner` for the real form of complex data.

    The Gram matrix of ``[[A, -B], [B, A]]``'s columns is the real form of the
    Hermitian ``G = Z^H Z`` (rows and columns interleaved, ``z_j`` then ``i
    z_j``: ``Re G`` in the even rows and columns, ``Im G`` in the odd rows and
    even columns); one complex ``c x c`` eigendecomposition gives its
    eigenvectors in pairs ``(v, i v)`` with equal eigenvalues, half the size
    (and about a third of the time) of the real ``2c x 2c`` one. The columns
    are interleaved, ``v_k`` then ``i v_k``, in descending order, and so are
    the rows (the coefficients on ``z_j`` and ``i z_j``).
    """
    c = gram.shape[0] // 2
    g = jax.lax.stop_gradient(gram)
    lam, vecs = eigh_nograd(jax.lax.complex(g[0::2, 0::2], g[1::2, 0::2]))
    lam, vecs = lam[::-1], vecs[:, ::-1]
    tiny = float(np.finfo(gram.dtype).tiny)
    keep = lam > eps * jnp.maximum(lam[0], tiny)
    inv_sqrt = safe_div(jnp.ones_like(lam), jnp.sqrt(jnp.where(keep, lam, 1.0)), keep)
    re, im = jnp.real(vecs) * inv_sqrt[None, :], jnp.imag(vecs) * inv_sqrt[None, :]
    # block (j, k): coefficients of Z v_k and Z (i v_k) on z_j and i z_j
    blocks = jnp.stack([jnp.stack([re, -im], axis=-1), jnp.stack([im, re], axis=-1)], axis=1)
    return blocks.reshape(2 * c, 2 * c), jnp.repeat(keep, 2)


def _whiten_frequency(zx, zy, epsilon):
    kw = {"epsilon": epsilon, "preconditioner": _complex_preconditioner, "paired": True}
    wx, wy = whiten(_realify(zx), **kw), whiten(_realify(zy), **kw)
    rank_x, rank_y = (wx.rank + 1) // 2, (wy.rank + 1) // 2
    return wx, wy, rank_x, rank_y, jnp.minimum(rank_x, rank_y)


def _frequency_rho(zx, zy, epsilon):
    """Complex CCA at one frequency; ``zx`` ``(n, c1)`` and ``zy`` ``(n, c2)`` centred.

    Returns ``(rho, rank_x, rank_y)``.
    """
    wx, wy, rank_x, rank_y, kc = _whiten_frequency(zx, zy, epsilon)
    # The whitened directions come in pairs (h, i h), so the real cross
    # product is the real form of the complex one, in 2 x 2 blocks.
    cross = cross_product(wx, wy, paired=True)
    s = complex_singular_values(cross[0::2, 0::2], cross[1::2, 0::2])
    return clip_correlations(s, kc), rank_x, rank_y


def _frequency_rho_weights(zx, zy, rel_x, epsilon):
    """:func:`_frequency_rho` and the projection weights ``(p,)`` (unnormalised).

    ``rel_x`` ``(c1,)`` takes x's per-channel power-of-two scales back out of
    the projections (up to one global factor, which the normalisation removes).
    """
    wx, wy, rank_x, rank_y, kc = _whiten_frequency(zx, zy, epsilon)
    u, rho, _, _ = canonical_directions(wx, wy, cross_product(wx, wy, paired=True))
    # every complex correlation appears twice, adjacent in the sorted list
    rho_c = rho[0::2]
    # |<h, z_j>| for a complex unit direction h (realified as u's column) and
    # complex neuron z_j: the real column 2j gives Re, column 2j + 1 gives -Im.
    # whiten's r carries its own global power of two (``wx.unit``, its largest
    # live column's), which differs between frequencies: take it out, so that
    # weights compare across the grid.
    rel = jnp.repeat(rel_x, 2) / wx.unit
    proj = mm(u.T, wx.r) * rel[None, :]  # (2p, 2 c1)
    alpha = jnp.sum(safe_sqrt(proj[:, 0::2] ** 2 + proj[:, 1::2] ** 2), axis=1)
    alpha = 0.5 * (alpha[0::2] + alpha[1::2])  # the two copies of each direction
    return rho_c, jnp.where(first_k(kc, rho_c.shape[0]), alpha, 0.0), rank_x, rank_y


# ----------------------------------------------------------------------------
# The Gram form on CPU: the sample-sized products batched over frequencies
# ----------------------------------------------------------------------------
#
# On CPU the small decompositions run one frequency after another (see
# :func:`_per_frequency`), and inside such a loop every product is a small,
# single-threaded one. So the similarity first forms the three complex Gram
# matrices of unit-norm channels for all frequencies at once (batched
# products: the benchmark's floor), and then needs only ``C x C`` work where
# that is accurate: a complex Cholesky factor whitens each side (``L^{-1} G
# L^{-H} = I``) and the correlations are the singular values of ``L_x^{-1}
# G_xy L_y^{-H}``. Its float32 error grows like ``eps * cond(G)``, so it is
# used where both sides' ``cond(G)`` is at most
# :data:`DFT_GRAM_FORM_MAX_COND` (100, the rule of
# :func:`jaxcca._whiten.gram_form_is_accurate`; there the per-frequency
# float32 errors are those of the general path, ~1e-7), estimated by power
# iteration (from below; a true condition number up to ~1.5x the limit can
# pass, see the tests). Up to :data:`DFT_TWO_PASS_MAX_COND` the same factor
# preconditions a second pass from the data at that one frequency
# (CholeskyQR2: ``Q1 = Z L^{-H}`` is orthonormal to ``eps * cond(G)``, and
# the Cholesky factor of its own Gram matrix finishes the whitening): two
# sample-sized products per side and one across, about half of the general
# path's work at that frequency. Every other
# frequency (ill-conditioned, rank deficient, dead-channel ties, NaN) takes
# the general path (:func:`_frequency_rho`: spectral preconditioner, rank
# masks, a second pass from the data), one after another.

_POWER_STEPS = 6
DFT_GRAM_FORM_MAX_COND = 100.0
DFT_TWO_PASS_MAX_COND = 1e5
# per-frequency paths of _similarity_by_grams
GRAM_FORM, TWO_PASS, GENERAL = 0, 1, 2


def _unit_grams(zx: jax.Array, zy: jax.Array):
    """The Gram matrices of unit-norm channels, ``(R, C1, C1)``, ``(R, C2, C2)``, ``(R, C1, C2)``.

    Formed from the coefficients and scaled by their diagonals afterwards, so
    that the sample-sized work is the three products alone. The coefficients
    need no centring: the pixels were centred before the transform. Returns
    them with the inverse channel norms ``(R, C)`` (0 on dead channels) and
    the alive masks ``(R, C)`` (the dead-neuron rule of
    :func:`jaxcca._numerics.alive_neurons`, on the Gram diagonal); a dead
    channel gets the identity's row and column and no cross terms. NaN counts
    as alive and stays.
    """
    n = zx.shape[1]
    zxh = conj_transpose(zx)
    gx, gy, gxy = mm(zxh, zx), mm(conj_transpose(zy), zy), mm(zxh, zy)

    def inv_norms(g):
        sq = jnp.real(jnp.diagonal(g, axis1=1, axis2=2))
        norms = safe_sqrt(sq) + jnp.where(jnp.isnan(sq), sq, 0.0)  # safe_sqrt drops NaN
        alive = alive_neurons(norms, jnp.zeros_like(norms), n)
        return safe_div(jnp.ones_like(norms), norms, alive) + (norms - norms), alive

    ix, alive_x = inv_norms(gx)
    iy, alive_y = inv_norms(gy)
    ix, iy = ix.astype(gx.dtype), iy.astype(gy.dtype)
    gx = _identity_on_dead(ix[:, :, None] * gx * ix[:, None, :], alive_x)
    gy = _identity_on_dead(iy[:, :, None] * gy * iy[:, None, :], alive_y)
    both = alive_x[:, :, None] & alive_y[:, None, :]
    gxy = jnp.where(both, ix[:, :, None] * gxy * iy[:, None, :], 0.0)
    return (gx, gy, gxy), (ix, iy), (alive_x, alive_y)


def _identity_on_dead(g: jax.Array, alive: jax.Array) -> jax.Array:
    """``(..., C, C)`` Gram matrices with the identity in the rows and columns of dead channels."""
    dead = ~alive
    eye = jnp.eye(g.shape[-1], dtype=g.dtype)
    return jnp.where(dead[..., :, None] | dead[..., None, :], eye, g)


def _top_eigenvalue(apply, size: int, dtype) -> jax.Array:
    """Rayleigh quotient after power iteration: ``lambda_max`` of a batch of PSD maps, from below.

    ``dtype``: the maps' (complex) dtype. The start vector has no symmetry
    that could make it orthogonal to a top eigenvector of a structured matrix.
    """
    v = (1.0 + jnp.arange(size) / size).astype(dtype)[None, :]
    for _ in range(_POWER_STEPS):
        w = apply(v)
        norm = jnp.sqrt(jnp.sum(jnp.real(w) ** 2 + jnp.imag(w) ** 2, axis=-1, keepdims=True))
        v = w / jnp.where(norm > 0, norm, 1.0).astype(w.dtype)
    return jnp.real(jnp.sum(jnp.conj(v) * apply(v), axis=-1))


def _gram_paths(g: jax.Array, eps: float) -> tuple[jax.Array, jax.Array]:
    """``(path (R,), L^{-1} (R, C, C))``: which whitening is accurate for each of ``g``.

    ``g``: ``(R, C, C)`` unit-diagonal Gram matrices (identity on dead
    channels). ``path`` is :data:`GRAM_FORM` where the condition number
    (estimated from below) is at most :data:`DFT_GRAM_FORM_MAX_COND`,
    :data:`TWO_PASS` where it is at most :data:`DFT_TWO_PASS_MAX_COND`, and
    :data:`GENERAL` elsewhere (also where the factorisation fails). The
    inverse factor is returned for the first two to use; it is the identity
    on the general path.
    """
    g = jax.lax.stop_gradient(g)
    _, l_inv = jax.vmap(complex_cholesky_and_inverse_nograd)(g)
    c = g.shape[-1]

    # matrix-vector products as fused elementwise work (tiny batched dots are slow on CPU)
    def by_g(v):
        return jnp.sum(g * v[:, None, :], axis=-1)

    def by_g_inv(v):  # G^{-1} v = L^{-H} (L^{-1} v)
        w = jnp.sum(l_inv * v[:, None, :], axis=-1)
        return jnp.sum(jnp.conj(l_inv) * w[:, :, None], axis=1)

    cond = _top_eigenvalue(by_g, c, g.dtype) * _top_eigenvalue(by_g_inv, c, g.dtype)
    finite = jnp.all(jnp.isfinite(l_inv), axis=(1, 2))
    # not (<=): a NaN estimate takes the general path
    path = jnp.where(
        cond <= DFT_GRAM_FORM_MAX_COND,
        GRAM_FORM,
        jnp.where(cond <= DFT_TWO_PASS_MAX_COND, TWO_PASS, GENERAL),
    )
    path = jnp.where(finite & (cond * eps < 1.0), path, GENERAL).astype(jnp.int32)
    return path, jnp.where((path < GENERAL)[:, None, None], l_inv, jnp.eye(c, dtype=g.dtype))


def _first_basis(z, inv_norm, l_inv, alive):
    """CholeskyQR2 at one frequency: ``(Q1, L2^{-1})``, ``Q1 L2^{-H}`` orthonormal.

    ``z`` ``(N, C)`` coefficients, ``inv_norm`` ``(C,)`` its inverse channel
    norms (0 on dead channels), ``l_inv`` the inverse Cholesky factor of the
    unit-norm Gram matrix (with its derivative). ``Q1 = Z D L^{-H}`` is
    orthonormal up to ``eps * cond(G)``; ``L2``, the Cholesky factor of its
    own Gram matrix, removes that. Dead channels give zero columns of ``Q1``.
    """
    q1 = mm(z * inv_norm[None, :], conj_transpose(l_inv))
    g2 = _identity_on_dead(mm(conj_transpose(q1), q1), alive)
    _, l2_nograd = complex_cholesky_and_inverse_nograd(jax.lax.stop_gradient(g2))
    return q1, cholesky_inverse_given(g2, l2_nograd)


def _similarity_by_grams(zx, zy, epsilon):
    """Per-frequency ``(rho, rank_x, rank_y, path)`` on CPU: the Gram form where accurate.

    ``zx``, ``zy``: ``(R, N, C)`` coefficients of centred pixels. ``path``
    ``(R,)`` says which whitening each frequency took: :data:`GRAM_FORM`,
    :data:`TWO_PASS` or :data:`GENERAL` (:func:`_frequency_rho`).
    """
    eps = validate_epsilon(epsilon)
    eps = default_epsilon(jnp.real(zx).dtype) if eps is None else eps
    (gx, gy, gxy), (ix, iy), (alive_x, alive_y) = _unit_grams(zx, zy)
    path_x, lx_inv = _gram_paths(gx, eps)
    path_y, ly_inv = _gram_paths(gy, eps)
    path = jnp.maximum(path_x, path_y)
    # the factors carry the derivative of the Cholesky factorisation of the
    # (sanitised) Gram matrices, without factorising them again
    eye_x, eye_y = jnp.eye(gx.shape[-1], dtype=gx.dtype), jnp.eye(gy.shape[-1], dtype=gy.dtype)
    lx_inv = jax.vmap(cholesky_inverse_given)(
        jnp.where((path_x < GENERAL)[:, None, None], gx, eye_x), lx_inv
    )
    ly_inv = jax.vmap(cholesky_inverse_given)(
        jnp.where((path_y < GENERAL)[:, None, None], gy, eye_y), ly_inv
    )
    cross = mm(mm(lx_inv, gxy), conj_transpose(ly_inv))
    s = jax.vmap(complex_singular_values)(jnp.real(cross), jnp.imag(cross))
    rank_x = jnp.sum(alive_x, axis=1, dtype=jnp.int32)
    rank_y = jnp.sum(alive_y, axis=1, dtype=jnp.int32)
    rho = jax.vmap(clip_correlations)(s, jnp.minimum(rank_x, rank_y))

    def one_frequency(args):
        # the frequency's slices are taken inside the branches that need
        # them: the Gram-form frequencies (most) copy nothing
        path_f, f = args

        def at(a):
            return jax.lax.dynamic_index_in_dim(a, f, keepdims=False)

        def live_coefficients():
            ax, ay = at(alive_x), at(alive_y)
            zx_f = jnp.where(ax[None, :], at(zx), 0.0)
            zy_f = jnp.where(ay[None, :], at(zy), 0.0)
            return zx_f, zy_f, ax, ay

        def skip():
            return jnp.zeros(s.shape[1:], s.dtype), jnp.int32(0), jnp.int32(0)

        def two_pass():
            zx_f, zy_f, ax, ay = live_coefficients()
            q1x, l2x = _first_basis(zx_f, at(ix), at(lx_inv), ax)
            q1y, l2y = _first_basis(zy_f, at(iy), at(ly_inv), ay)
            # Q_x^H Q_y = L2x^{-1} (Q1x^H Q1y) L2y^{-H}: one sample-sized product
            c = mm(mm(l2x, mm(conj_transpose(q1x), q1y)), conj_transpose(l2y))
            s_f = complex_singular_values(jnp.real(c), jnp.imag(c))
            kx, ky = jnp.sum(ax, dtype=jnp.int32), jnp.sum(ay, dtype=jnp.int32)
            return clip_correlations(s_f, jnp.minimum(kx, ky)), kx, ky

        def general():
            zx_f, zy_f, _, _ = live_coefficients()
            return _frequency_rho(zx_f, zy_f, epsilon)

        return jax.lax.switch(path_f, [skip, two_pass, general])

    rho_f, rank_xf, rank_yf = jax.lax.map(one_frequency, (path, jnp.arange(path.shape[0])))
    gram = path == GRAM_FORM
    return (
        jnp.where(gram[:, None], rho, rho_f),
        jnp.where(gram, rank_x, rank_xf),
        jnp.where(gram, rank_y, rank_yf),
        path,
    )


def _center_pixels(x: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Centres ``(N, H, W, C)`` maps over samples, before the transform; scales channels.

    The DFT is linear, so centring commutes with it, but done first it keeps
    a large constant pixel out of the transform: one pixel of a channel that
    is the same for every sample (e.g. 3.25e10, where the channel's other
    pixels are ~1) would otherwise enter every frequency's coefficient of that
    channel, and the channel's live pixels would survive only as its
    round-off (lost in float32). Every (pixel, channel) column is tested by
    :func:`jaxcca._numerics.nonconstant` and zeroed when constant (exact).

    Then an exact power-of-two scale per channel (CCA at every frequency does
    not depend on it): no overflow or underflow in the squared norms at any
    magnitude, and one huge channel cannot make the others look dead.

    Returns ``(scaled centred maps, per-channel scales)``; the scale of a
    channel that is zero after centring is ``inf`` (it has no magnitude).
    """
    mean = jnp.mean(x, axis=0, keepdims=True)
    xc = x - mean
    live = nonconstant(xc, mean)
    # running_scale of the masked maps from the per-pixel peaks over samples
    # (the reduction nonconstant makes too; XLA computes it once): no second
    # pass over the samples
    peak = jax.lax.stop_gradient(jnp.max(jnp.abs(xc), axis=0, keepdims=True))
    scale = running_scale(jnp.where(live, peak, 0.0), axis=(0, 1, 2))
    return jnp.where(live, xc, 0.0) * set_scale(scale)[None, None, None, :], scale


def _coefficients(x, y, *, recentre: bool = True):
    """The plan, the centred ``(R, N, C)`` coefficients and x's relative channel scales.

    The relative scales ``unit / s_j`` take the channel scales back out up to
    one global power of two, the largest live channel's
    (:func:`jaxcca._numerics.live_unit`); 0 for a dead channel.
    """
    plan = _frequency_plan(x.shape[1], x.shape[2], y.shape[1], y.shape[2])
    xs, sx = _center_pixels(x)
    ys, _ = _center_pixels(y)
    fx = jnp.fft.rfft2(xs, axes=(1, 2))
    fy = jnp.fft.rfft2(ys, axes=(1, 2))
    zx = jnp.moveaxis(fx[:, plan["rows_x"], plan["cols_x"], :], 1, 0)
    zy = jnp.moveaxis(fy[:, plan["rows_y"], plan["cols_y"], :], 1, 0)
    rel_x = live_unit(sx, jnp.isfinite(sx)) / sx
    if not recentre:  # the caller applies the dead-channel rule itself
        return plan, zx, zy, rel_x
    return plan, _center_complex(zx), _center_complex(zy), rel_x


def _grid_mean(plan, rho, rank_x, rank_y, dtype):
    """Mean correlation over the full grid.

    The CCA of all ``H*W*C`` neurons has these correlations, and ``min(total
    rank)`` meaningful directions.
    """
    mult = jnp.asarray(plan["multiplicity"], dtype)
    mult_i = jnp.asarray(plan["multiplicity"], jnp.int32)
    total_k = jnp.minimum(jnp.sum(mult_i * rank_x), jnp.sum(mult_i * rank_y))
    return jnp.sum(mult[:, None] * rho) / jnp.maximum(total_k, 1).astype(dtype)


def _per_frequency(fn, zx, zy):
    """``fn(zx[f], zy[f])`` for every frequency ``f``, stacked.

    On CPU one frequency after another: whitening decides with ``lax.cond``
    whether it needs its second ``n``-sized pass, and under ``vmap`` a cond
    becomes a select that computes both branches at every frequency (the
    small decompositions run one after another on CPU anyway). Other backends
    batch the frequencies.
    """
    if jax.default_backend() == "cpu":
        return jax.lax.map(lambda z: fn(*z), (zx, zy))
    return jax.vmap(fn)(zx, zy)


@functools.partial(jax.jit, static_argnames=("epsilon",))
def _dft_cca_similarity(x, y, epsilon):
    on_cpu = jax.default_backend() == "cpu"
    plan, zx, zy, _ = _coefficients(x, y, recentre=not on_cpu)
    if on_cpu:
        rho, rank_x, rank_y, _ = _similarity_by_grams(zx, zy, epsilon)
    else:
        fn = functools.partial(_frequency_rho, epsilon=epsilon)
        rho, rank_x, rank_y = _per_frequency(fn, zx, zy)
    return _grid_mean(plan, rho, rank_x, rank_y, x.dtype)


@functools.partial(jax.jit, static_argnames=("epsilon",))
def _dft_cca(x, y, epsilon) -> DFTCCAResult:
    plan, zx, zy, rel_x = _coefficients(x, y)
    fn = functools.partial(_frequency_rho_weights, rel_x=rel_x, epsilon=epsilon)
    rho, alpha, rank_x, rank_y = _per_frequency(fn, zx, zy)
    mult = jnp.asarray(plan["multiplicity"], x.dtype)
    total = jnp.sum(mult[:, None] * alpha)
    weights = alpha / jnp.where(total > 0, total, 1.0)
    full = jnp.asarray(plan["full_to_rep"])
    return DFTCCAResult(
        similarity=_grid_mean(plan, rho, rank_x, rank_y, x.dtype),
        weighted_similarity=jnp.sum(mult[:, None] * weights * rho),
        rho=rho[full],
        weights=weights[full],
        rank_x=rank_x[full],
        rank_y=rank_y[full],
        frequencies=jnp.asarray(plan["frequencies"]),
    )


def _check_conv_pair(x, y):
    x, y = as_pair(x, y, ndim=4)
    for name, a in (("x", x), ("y", y)):
        if a.shape[1] < 1 or a.shape[2] < 1 or a.shape[3] < 1:
            raise ValueError(f"{name} has an empty spatial or channel axis: {tuple(a.shape)}.")
    return x, y


def dft_cca(
    x: ArrayLike,
    y: ArrayLike,
    *,
    epsilon: float | None = None,
    check_finite: bool = False,
) -> DFTCCAResult:
    r"""CCA of two conv layers, one spatial frequency at a time (DFT-CCA).

    Each channel is Fourier transformed over height and width; at every
    spatial frequency ``(u, v)`` the ``N`` complex vectors of channel
    coefficients of x and y are compared by complex CCA (Hermitian
    covariances, real correlations). Raghu et al. 2017 (section 3, Theorem 1):
    when the data set is closed under circular translations and the layers
    are translation-equivariant, the covariance of the DFT'd activations is
    block diagonal with one ``c1 x c2`` block per frequency, so the CCA of the
    ``H*W*C`` flattened neurons (:func:`conv_to_neurons` ``mode="flatten"``)
    splits *exactly* into these small CCAs: its correlations are the union
    of the per-frequency ones. On real data, which is only roughly
    translation invariant, DFT-CCA is the cheap block-diagonal approximation
    of that large CCA (``H*W`` problems of size ``C`` instead of one of size
    ``H*W*C``; samples needed per problem: ``N >> C``, not ``N >> HWC``).

    Implementation: a real FFT (``jnp.fft.rfft2``); by conjugate symmetry
    ``F[-u, -v] = conj(F[u, v])`` only about half the frequencies are computed
    and the others are filled in. Complex CCA is done on the real form
    ``[[A, -B], [B, A]]`` of ``A + iB`` with the same whitening as
    :func:`jaxcca.cca` (accurate in float32, finite gradients), represented
    by its top half ``[A, -B]`` (columns interleaved), so that every
    ``N``-sized product costs what the complex one does, half the real
    form's; one complex ``C x C`` eigendecomposition per side gives the
    preconditioner. Frequencies run one after another on CPU (``lax.map``)
    and batched elsewhere. Every (pixel, channel) is centred over the ``N``
    samples before the transform (a constant pixel, however large,
    contributes nothing).

    Different spatial sizes (e.g. a layer before and after pooling): only the
    common low-frequency band is compared, the signed frequencies with ``|k|
    <= (min(H_x, H_y) - 1) // 2`` on each axis whose sizes differ (the
    approach of the paper; the high frequencies of the larger map, and the
    Nyquist frequency of an even smaller map, have no counterpart). Channel
    counts may differ freely.

    Projection-weighted variant (``weighted_similarity``): the PWCCA weight
    (Morcos et al. 2018) carries over to each frequency with the complex
    modulus, ``alpha = sum_j |<h, z_j>|`` over x's complex channel
    coefficients ``z_j`` at that frequency, normalised over the whole grid, so
    frequencies holding more of x's energy weigh more. It is *not* equal to
    PWCCA of the flattened neurons: the sum of absolute values is not
    preserved by the Fourier transform, unlike the correlations.

    Jit-compiled; works under ``jax.vmap`` and ``jax.grad``, in float32 and
    float64.

    Args:
      x: ``(N, H1, W1, C1)`` activations (channels last, rows are samples).
      y: ``(N, H2, W2, C2)`` activations on the same inputs.
      epsilon: relative rank tolerance per frequency (see :func:`jaxcca.cca`).
      check_finite: raise ``ValueError`` on NaN or Inf input.

    Returns:
      A :class:`DFTCCAResult` on the grid ``(Hg, Wg)`` (``(H, W)`` for equal
      sizes), in FFT order.

    Raises:
      ValueError: inputs not 4-D, different ``N``, fewer than 2 samples.
      TypeError: integer, bool or complex dtype; float64 with 64-bit mode off.

    Example:
      >>> import jax, jaxcca
      >>> x = jax.random.normal(jax.random.key(0), (64, 6, 6, 3))
      >>> res = jaxcca.dft_cca(x, 2.0 * x)
      >>> res.rho.shape, round(float(res.similarity), 4)
      ((6, 6, 3), 1.0)

    References:
      Raghu, Gilmer, Yosinski & Sohl-Dickstein, "SVCCA", NeurIPS 2017,
      section 3 and Theorem 1.
    """
    x, y = _check_conv_pair(x, y)
    if check_finite:
        raise_if_not_finite(x, y)
    return _dft_cca(x, y, epsilon)


def dft_cca_similarity(
    x: ArrayLike,
    y: ArrayLike,
    *,
    weighting: str = "mean",
    epsilon: float | None = None,
    check_finite: bool = False,
) -> jax.Array:
    """DFT-CCA similarity of two conv layers, a differentiable scalar in [0, 1].

    Args:
      x: ``(N, H1, W1, C1)`` activations.
      y: ``(N, H2, W2, C2)`` activations on the same inputs.
      weighting: ``"mean"`` (mean correlation over the full frequency grid and
        all directions, :attr:`DFTCCAResult.similarity`; cheaper: no singular
        vectors) or ``"projection"`` (:attr:`DFTCCAResult.weighted_similarity`).
      epsilon: relative rank tolerance (see :func:`jaxcca.cca`).
      check_finite: raise ``ValueError`` on NaN or Inf input.

    Example:
      >>> import jax, jaxcca
      >>> x = jax.random.normal(jax.random.key(0), (64, 4, 4, 2))
      >>> float(jaxcca.dft_cca_similarity(x, x + 1.0)) > 0.9999
      True
    """
    if weighting not in WEIGHTINGS:
        raise ValueError(f"weighting must be one of {WEIGHTINGS}, got {weighting!r}.")
    x, y = _check_conv_pair(x, y)
    if check_finite:
        raise_if_not_finite(x, y)
    if weighting == "mean":
        return _dft_cca_similarity(x, y, epsilon)
    return _dft_cca(x, y, epsilon).weighted_similarity


def dft_cca_distance(
    x: ArrayLike,
    y: ArrayLike,
    *,
    weighting: str = "mean",
    epsilon: float | None = None,
    check_finite: bool = False,
) -> jax.Array:
    """``1 - dft_cca_similarity(x, y, ...)``, in [0, 1].

    Example:
      >>> import jax, jaxcca
      >>> x = jax.random.normal(jax.random.key(0), (64, 4, 4, 2))
      >>> float(jaxcca.dft_cca_distance(x, x)) < 1e-5
      True
    """
    return 1.0 - dft_cca_similarity(
        x, y, weighting=weighting, epsilon=epsilon, check_finite=check_finite
    )
