"""DFT-CCA and conv reductions: the paper's Theorem 1, a plain per-frequency
reference, invariances, transforms, gradients and errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import jaxcca
from tests import reference


def circular_conv(x, kernel):
    """3x3 circular convolution, (N, H, W, Ci) -> (N, H, W, Co)."""
    out = 0.0
    for a in range(3):
        for b in range(3):
            out = out + np.roll(x, (a - 1, b - 1), axis=(1, 2)) @ kernel[a, b]
    return out


def translation_closed(rng, m, h, w, c):
    """m random images and every one of their circular translations."""
    base = rng.standard_normal((m, h, w, c))
    shifts = [np.roll(base, (i, j), axis=(1, 2)) for i in range(h) for j in range(w)]
    return np.concatenate(shifts)


def two_layers(rng, m, h, w, c0=2, c1=3, c2=4):
    data = translation_closed(rng, m, h, w, c0)
    x = np.tanh(circular_conv(data, rng.standard_normal((3, 3, c0, c1))))
    y = np.maximum(circular_conv(x, rng.standard_normal((3, 3, c1, c2))), 0.0)
    return x, y


@pytest.mark.parametrize("shape", [(4, 4), (3, 5), (4, 6)])
def test_theorem_1_equals_cca_of_flattened_neurons(shape, rng):
    """Raghu et al. 2017, Theorem 1: translation-closed data through circular
    convolutions; the per-frequency CCAs are exactly the CCA of all H*W*C neurons."""
    x, y = two_layers(rng, 14, *shape)
    res = jaxcca.dft_cca(x, y)
    flat = jaxcca.cca(
        jaxcca.conv_to_neurons(x, mode="flatten"), jaxcca.conv_to_neurons(y, mode="flatten")
    )
    h, w = shape
    assert res.rho.shape == (h, w, 3)
    ours = np.sort(np.asarray(res.rho).ravel())[::-1]
    theirs = np.sort(np.asarray(flat.rho))[::-1]
    np.testing.assert_allclose(ours, theirs[: ours.size], atol=1e-10)
    np.testing.assert_allclose(res.similarity, flat.similarity, atol=1e-12)
    assert int(res.rank_x.sum()) == int(flat.rank_x) == h * w * 3
    # the theorem needs the symmetry: once it is broken the two differ
    x2 = x.copy()
    x2[: len(x) // 2, 0] *= 3.0
    broken = jaxcca.dft_cca(x2, y).similarity
    flat2 = jaxcca.cca_similarity(x2.reshape(len(x), -1), y.reshape(len(y), -1))
    assert abs(float(broken) - float(flat2)) > 1e-3


@pytest.mark.parametrize("sizes", [((6, 6), (6, 6)), ((5, 4), (5, 4)), ((8, 8), (5, 6))])
def test_matches_plain_per_frequency_reference(sizes, rng):
    (h1, w1), (h2, w2) = sizes
    n = 40
    x = rng.standard_normal((n, h1, w1, 3))
    y = np.tanh(rng.standard_normal((n, h2, w2, 4)) + 0.5 * x[:, :h2, :w2, :1])
    res = jaxcca.dft_cca(x, y)
    rho, alpha = reference.dft_cca(x, y)
    np.testing.assert_allclose(res.rho, rho, atol=1e-10)
    np.testing.assert_allclose(res.similarity, rho.mean(), atol=1e-12)
    weights = alpha / alpha.sum()
    np.testing.assert_allclose(res.weights, weights, atol=1e-10)
    np.testing.assert_allclose(res.weighted_similarity, np.sum(weights * rho), atol=1e-12)
    # conjugate frequencies agree, and the frequency labels are fftfreq's
    hg, wg = rho.shape[:2]
    np.testing.assert_array_equal(
        res.frequencies[..., 0],
        np.broadcast_to(np.round(np.fft.fftfreq(hg) * hg)[:, None], (hg, wg)),
    )
    np.testing.assert_array_equal(
        res.frequencies[..., 1],
        np.broadcast_to(np.round(np.fft.fftfreq(wg) * wg)[None, :], (hg, wg)),
    )
    flip = np.asarray(res.rho)[(-np.arange(hg)) % hg][:, (-np.arange(wg)) % wg]
    np.testing.assert_allclose(flip, res.rho, atol=0)


def test_common_band_for_different_sizes(rng):
    x = rng.standard_normal((30, 8, 8, 2))
    y = rng.standard_normal((30, 4, 7, 3))
    res = jaxcca.dft_cca(x, y)
    assert res.rho.shape == (3, 7, 2)  # |k| <= 1 rows; 7 columns: |k| <= 3
    assert sorted(set(np.asarray(res.frequencies[..., 0]).ravel())) == [-1, 0, 1]


def test_invariant_to_channel_mixing_scaling_and_translation(rng):
    x, y = two_layers(rng, 6, 4, 4)
    base = jaxcca.dft_cca(x, y)
    mix = rng.standard_normal((3, 3)) + 3.0 * np.eye(3)
    shifted = np.roll(x, (1, 2), axis=(1, 2)), np.roll(y, (1, 2), axis=(1, 2))
    for xx, yy in [(x @ mix, y), (3.0 * x + 1.0, y), shifted]:
        res = jaxcca.dft_cca(xx, yy)
        np.testing.assert_allclose(res.rho, base.rho, atol=1e-10)
        np.testing.assert_allclose(res.similarity, base.similarity, atol=1e-12)


def test_identical_inputs_give_one(rng):
    x = rng.standard_normal((50, 4, 5, 3))
    res = jaxcca.dft_cca(x, x)
    np.testing.assert_allclose(res.rho, 1.0, atol=1e-10)
    np.testing.assert_allclose(res.weighted_similarity, 1.0, atol=1e-10)
    assert float(jaxcca.dft_cca_distance(x, x)) < 1e-10


def test_float32_agrees_with_float64(rng):
    x = rng.standard_normal((128, 6, 6, 8))
    y = np.tanh(x @ rng.standard_normal((8, 5))) + 0.3 * rng.standard_normal((128, 6, 6, 5))
    r64 = jaxcca.dft_cca(x, y)
    r32 = jaxcca.dft_cca(x.astype(np.float32), y.astype(np.float32))
    assert r32.rho.dtype == np.float32
    np.testing.assert_allclose(r32.rho, r64.rho, atol=2e-5)
    np.testing.assert_allclose(r32.similarity, r64.similarity, atol=2e-6)
    np.testing.assert_allclose(r32.weighted_similarity, r64.weighted_similarity, atol=2e-5)


def test_jit_vmap_and_scalar_functions(rng):
    xs = rng.standard_normal((3, 24, 4, 4, 2))
    ys = np.tanh(xs) + 0.5 * rng.standard_normal((3, 24, 4, 4, 2))
    looped = [jaxcca.dft_cca(x, y) for x, y in zip(xs, ys, strict=True)]
    batched = jax.vmap(jaxcca.dft_cca)(xs, ys)
    np.testing.assert_allclose(batched.rho, np.stack([r.rho for r in looped]), atol=1e-11)
    jitted = jax.jit(lambda a, b: jaxcca.dft_cca_similarity(a, b, weighting="projection"))
    for (x, y), r in zip(zip(xs, ys, strict=True), looped, strict=True):
        np.testing.assert_allclose(jitted(x, y), r.weighted_similarity, atol=1e-12)
        np.testing.assert_allclose(jaxcca.dft_cca_similarity(x, y), r.similarity, atol=1e-12)


@pytest.mark.parametrize("weighting", ["mean", "projection"])
def test_gradients_match_finite_differences_and_are_finite_at_identity(weighting, rng):
    x = rng.standard_normal((30, 3, 4, 2))
    y = np.tanh(x) + 0.3 * rng.standard_normal((30, 3, 4, 2))
    fn = lambda a, b: jaxcca.dft_cca_similarity(a, b, weighting=weighting)  # noqa: E731
    check_grads(fn, (x, y), order=1, modes=("rev",), atol=1e-5, rtol=1e-5)
    for dtype in (np.float32, np.float64):
        g = jax.grad(fn, argnums=(0, 1))(x.astype(dtype), x.astype(dtype))
        assert all(np.all(np.isfinite(gi)) for gi in g)
        np.testing.assert_allclose(g[0], 0.0, atol=1e-3 if dtype == np.float32 else 1e-9)


def test_dead_channel_is_masked(rng):
    x = rng.standard_normal((40, 4, 4, 3))
    x[..., 1] = 0.7  # a dead channel
    y = rng.standard_normal((40, 4, 4, 3))
    res = jaxcca.dft_cca(x, y)
    assert np.all(np.asarray(res.rank_x) == 2)
    np.testing.assert_array_equal(np.asarray(res.rho)[..., 2], 0.0)
    g = jax.grad(jaxcca.dft_cca_similarity)(x, y)
    assert np.all(np.isfinite(g))


def test_conv_to_neurons_modes(rng):
    x = rng.standard_normal((5, 3, 4, 2))
    np.testing.assert_array_equal(jaxcca.conv_to_neurons(x, mode="channels"), x.reshape(60, 2))
    np.testing.assert_array_equal(jaxcca.conv_to_neurons(x, mode="flatten"), x.reshape(5, 24))
    np.testing.assert_allclose(jaxcca.conv_to_neurons(x, mode="spatial_mean"), x.mean((1, 2)))


def test_errors():
    x = jnp.zeros((10, 4, 4, 2))
    with pytest.raises(ValueError, match=r"4-D array of shape \(n_samples, height, width"):
        jaxcca.dft_cca(jnp.zeros((10, 8)), x)
    with pytest.raises(ValueError, match="same number of samples"):
        jaxcca.dft_cca(x, jnp.zeros((9, 4, 4, 2)))
    with pytest.raises(ValueError, match="weighting must be one of"):
        jaxcca.dft_cca_similarity(x, x, weighting="pw")
    with pytest.raises(ValueError, match="mode must be one of"):
        jaxcca.conv_to_neurons(x, mode="pixels")
    with pytest.raises(ValueError, match="4-D"):
        jaxcca.conv_to_neurons(jnp.zeros((10, 8)), mode="flatten")
    with pytest.raises(TypeError, match="float32 or float64"):
        jaxcca.dft_cca(x.astype(jnp.int32), x)
    with pytest.raises(ValueError, match="at least 2 samples"):
        jaxcca.dft_cca(x[:1], x[:1])
    with pytest.raises(ValueError, match="NaN or Inf"):
        jaxcca.dft_cca(x.at[0, 0, 0, 0].set(jnp.nan), x, check_finite=True)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_paired_whitening_equals_whitening_of_the_full_real_form(dtype, rng):
    """``whiten(top half, paired=True)`` is ``whiten`` of the ``(2n, 2c)`` real form."""
    from jaxcca._dft import _complex_preconditioner, _realify
    from jaxcca._whiten import cross_product, pair_inner, whiten

    def complex_data(c, n=60):
        z = rng.standard_normal((n, c)) + 1j * rng.standard_normal((n, c))
        z = z @ (rng.standard_normal((c, c)) + 1j * rng.standard_normal((c, c)))
        return z - z.mean(axis=0)

    def full_real_form(z):  # columns 2j: (a_j; b_j), 2j + 1: (-b_j; a_j)
        a, b = z.real, z.imag
        top = np.stack([a, -b], axis=2).reshape(z.shape[0], -1)
        bottom = np.stack([b, a], axis=2).reshape(z.shape[0], -1)
        return np.concatenate([top, bottom])

    zx, zy = complex_data(3), complex_data(5)
    tx, ty = (jnp.asarray(_realify(jnp.asarray(z)), dtype) for z in (zx, zy))
    fx, fy = (jnp.asarray(full_real_form(z), dtype) for z in (zx, zy))
    np.testing.assert_array_equal(np.asarray(tx), np.asarray(fx[: zx.shape[0]]))
    tol = {np.float64: 1e-12, np.float32: 2e-5}[dtype]
    np.testing.assert_allclose(pair_inner(tx, ty), fx.T @ fy, rtol=tol, atol=tol * 60)

    kw = {"preconditioner": _complex_preconditioner, "paired": True}
    px, py = whiten(tx, **kw), whiten(ty, **kw)
    wx, wy = whiten(fx), whiten(fy)
    assert int(px.rank) == int(wx.rank) == 6 and int(py.rank) == int(wy.rank) == 10
    # the same subspaces: the same canonical correlations and the same Gram of coordinates
    s_paired = np.linalg.svd(np.asarray(cross_product(px, py, paired=True)), compute_uv=False)
    s_full = np.linalg.svd(np.asarray(cross_product(wx, wy)), compute_uv=False)
    np.testing.assert_allclose(s_paired, s_full, atol=tol)
    np.testing.assert_allclose(px.r.T @ px.r, wx.r.T @ wx.r, rtol=tol, atol=tol)
    # the top half of the paired basis is orthonormal as part of the real form
    np.testing.assert_allclose(pair_inner(px.q, px.q), np.eye(6), atol=tol)


# ----------------------------------------------------------------------------
# The Gram form of dft_cca_similarity on CPU (Cholesky whitening of batched
# Gram matrices where cond(G) is small, the general path elsewhere)
# ----------------------------------------------------------------------------


def _layers_for(case, rng):
    n, c = 48, 5
    x = rng.standard_normal((n, 6, 6, c))
    y = np.tanh(x[..., :4] @ rng.standard_normal((4, 4))) + 0.5 * rng.standard_normal((n, 6, 6, 4))
    if case == "dead_channel":
        x[..., 1] = 0.7
    elif case == "duplicate_channel":  # G singular at every frequency
        x[..., 3] = x[..., 0]
    elif case == "few_samples":  # 4 samples, 5 channels: rank deficient
        x, y = x[:4], y[:4]
    elif case == "ill_conditioned":  # two channels nearly collinear: cond(G) ~ 50..250
        x[..., 2] = x[..., 0] + 0.2 * x[..., 2]
    elif case == "very_ill_conditioned":  # cond(G) ~ 5e4..1.4e5: two-pass and general
        x[..., 2] = x[..., 0] + 0.008 * x[..., 2]
    elif case == "different_sizes":
        y = y[:, :5, :4]
    return x, y


CASES = [
    "plain",
    "dead_channel",
    "duplicate_channel",
    "few_samples",
    "ill_conditioned",
    "very_ill_conditioned",
]


@pytest.mark.parametrize("case", [*CASES, "different_sizes"])
def test_gram_form_equals_general_path(case, rng):
    """Frequency by frequency, float64: the Gram form and the two-pass form give the general
    path's correlations and ranks, and the similarity equals dft_cca's (the general path
    everywhere)."""
    from jaxcca._dft import (
        GENERAL,
        GRAM_FORM,
        TWO_PASS,
        _coefficients,
        _frequency_rho,
        _similarity_by_grams,
    )

    x, y = _layers_for(case, rng)
    _, zx, zy, _ = _coefficients(jnp.asarray(x), jnp.asarray(y), recentre=False)
    rho, rank_x, rank_y, path = _similarity_by_grams(zx, zy, None)
    _, zxc, zyc, _ = _coefficients(jnp.asarray(x), jnp.asarray(y))
    ref_rho, ref_x, ref_y = jax.vmap(lambda a, b: _frequency_rho(a, b, None))(zxc, zyc)
    np.testing.assert_allclose(rho, ref_rho, atol=1e-10)
    np.testing.assert_array_equal(rank_x, ref_x)
    np.testing.assert_array_equal(rank_y, ref_y)
    np.testing.assert_allclose(
        jaxcca.dft_cca_similarity(x, y), jaxcca.dft_cca(x, y).similarity, atol=1e-12
    )
    taken = np.bincount(np.asarray(path), minlength=3)
    if case in ("duplicate_channel", "few_samples"):
        # singular Gram matrices: the general path everywhere
        assert taken[GENERAL] == path.size
    elif case == "ill_conditioned":
        assert taken[GRAM_FORM] > 0 and taken[TWO_PASS] > 0  # both, side by side
        assert taken[GENERAL] == 0
    elif case == "very_ill_conditioned":
        assert taken[TWO_PASS] > 0 and taken[GENERAL] > 0
    else:
        assert taken[GRAM_FORM] == path.size


@pytest.mark.parametrize("case", CASES)
def test_gram_form_float32_agrees_with_float64(case, rng):
    x, y = _layers_for(case, rng)
    s64 = jaxcca.dft_cca_similarity(x, y)
    s32 = jaxcca.dft_cca_similarity(x.astype(np.float32), y.astype(np.float32))
    assert s32.dtype == np.float32
    np.testing.assert_allclose(s32, s64, atol=1e-6)
    g = jax.grad(jaxcca.dft_cca_similarity, argnums=(0, 1))(x, y)
    assert all(np.all(np.isfinite(gi)) for gi in g)


@pytest.mark.parametrize(
    "case", ["plain", "dead_channel", "ill_conditioned", "very_ill_conditioned"]
)
def test_gram_and_two_pass_forms_have_the_general_paths_gradient(case, rng):
    """float64: the gradient through the Gram and two-pass forms (Cholesky derivative from
    stored factors) is the general path's (dft_cca everywhere)."""
    x, y = _layers_for(case, rng)
    fast = jax.grad(jaxcca.dft_cca_similarity, argnums=(0, 1))(x, y)
    general = jax.grad(lambda a, b: jaxcca.dft_cca(a, b).similarity, argnums=(0, 1))(x, y)
    for f, g in zip(fast, general, strict=True):
        np.testing.assert_allclose(f, g, atol=1e-9 * np.abs(g).max())


def _unit_gram(lam, rng, complex_=True):
    """A unit-diagonal Hermitian matrix with condition number about max(lam) / min(lam)."""
    c = lam.size
    a = rng.standard_normal((c, c)) + (1j * rng.standard_normal((c, c)) if complex_ else 0)
    q, _ = np.linalg.qr(a)
    g = (q * lam) @ q.conj().T
    d = 1.0 / np.sqrt(np.real(np.diag(g)))
    return d[:, None] * g * d[None, :]


def test_path_decisions_use_a_condition_estimate_from_below(rng):
    from jaxcca._dft import DFT_GRAM_FORM_MAX_COND as GRAM_MAX
    from jaxcca._dft import DFT_TWO_PASS_MAX_COND as TWO_MAX
    from jaxcca._dft import GENERAL, GRAM_FORM, TWO_PASS, _gram_paths

    grams, conds = [], []
    targets = (3.0, 30.0, 300.0, 0.5 * GRAM_MAX, 3e3, 0.5 * TWO_MAX, 3e5, 3e6, 3e8)
    for target in targets:
        g = _unit_gram(np.geomspace(1.0, 1.0 / target, 12), rng)
        grams.append(g)
        conds.append(np.linalg.cond(g))
    path, l_inv = _gram_paths(jnp.asarray(np.stack(grams)), 1e-13)
    path, conds = np.asarray(path), np.asarray(conds)
    want = np.where(conds <= GRAM_MAX, GRAM_FORM, np.where(conds <= TWO_MAX, TWO_PASS, GENERAL))
    # the estimate is a lower bound that is close: decisions match the true
    # condition number except within a factor 1.5 below a limit
    near = ((conds > GRAM_MAX / 1.5) & (conds <= GRAM_MAX)) | (
        (conds > TWO_MAX / 1.5) & (conds <= TWO_MAX)
    )
    np.testing.assert_array_equal(path[~near], want[~near])
    assert np.all(path >= want)  # never a cheaper path than the true condition number allows
    assert {GRAM_FORM, TWO_PASS, GENERAL} <= set(path.tolist())
    for g, li, p in zip(grams, np.asarray(l_inv), path, strict=True):
        want_l = np.linalg.inv(np.linalg.cholesky(g)) if p != GENERAL else np.eye(12)
        tol = 1e-12 * np.linalg.cond(g) * np.abs(want_l).max()
        np.testing.assert_allclose(li, want_l, atol=tol)
    # a singular matrix (duplicate channel) and a NaN one take the general path
    g = grams[0].copy()
    g[1], g[:, 1] = g[0], g[:, 0]
    bad = np.stack([g, np.full_like(g, np.nan)])
    np.testing.assert_array_equal(_gram_paths(jnp.asarray(bad), 1e-13)[0], [GENERAL, GENERAL])
    # float32's eps: cond * eps must stay below 1
    assert np.asarray(_gram_paths(jnp.asarray(grams[5:6]), 1e-4)[0])[0] == GENERAL


@pytest.mark.parametrize("complex_", [True, False])
def test_cholesky_inverse_given_has_the_cholesky_derivative(complex_, rng):
    from jaxcca._linalg import cholesky_inverse_given

    g0 = _unit_gram(np.geomspace(1.0, 0.1, 5), rng, complex_)
    dg = rng.standard_normal((5, 5)) + (1j * rng.standard_normal((5, 5)) if complex_ else 0)
    dg = dg + dg.conj().T

    def ours(t):
        g = g0 + t * dg
        l_inv = jax.lax.stop_gradient(jnp.linalg.inv(jnp.linalg.cholesky(g)))
        return cholesky_inverse_given(g, l_inv)

    def jaxs(t):
        return jnp.linalg.inv(jnp.linalg.cholesky(g0 + t * dg))

    v1, d1 = jax.jvp(ours, (0.0,), (1.0,))
    v2, d2 = jax.jvp(jaxs, (0.0,), (1.0,))
    np.testing.assert_allclose(v1, v2, atol=1e-12)
    np.testing.assert_allclose(d1, d2, atol=1e-10)
    fd = (jaxs(1e-6) - jaxs(-1e-6)) / 2e-6
    np.testing.assert_allclose(d1, fd, atol=1e-6)
