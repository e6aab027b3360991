"""Regression tests for the defects of issue 13, one (or more) per defect, at its source."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxcca
from jaxcca import streaming as st
from jaxcca._linalg import safe_svd
from jaxcca._whiten import cross_product, whiten

from .test_bad_inputs import BY_NAME, run_case


def pair(seed=0, n=60, d1=6, d2=5):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d1))
    y = np.tanh(x @ rng.standard_normal((d1, d2))) + 0.3 * rng.standard_normal((n, d2))
    return x, y


SCALARS = {
    "cca": jaxcca.cca_similarity,
    "svcca": jaxcca.svcca_similarity,
    "pwcca": jaxcca.pwcca_similarity,
    "cka": jaxcca.cka_similarity,
    "cka_rbf": lambda x, y: jaxcca.cka_similarity(x, y, kernel="rbf"),
    "procrustes": jaxcca.procrustes_similarity,
}


# 1. Magnitude -------------------------------------------------------------


@pytest.mark.parametrize("name", list(SCALARS))
def test_every_magnitude_and_one_huge_neuron_in_float32(name):
    f = SCALARS[name]
    x, y = pair()
    grad = jax.jit(jax.grad(f))
    for xs in (x * 1e-30, x * 1e30, x * 1e-12, x * 1e10, x * np.array([1e20, 1, 1, 1, 1, 1])):
        expected = float(f(xs, y))
        got = f(xs.astype(np.float32), y.astype(np.float32))
        np.testing.assert_allclose(float(got), expected, atol=2e-5)
        assert np.all(np.isfinite(grad(xs.astype(np.float32), y.astype(np.float32))))


def test_dft_cca_every_magnitude_and_one_huge_channel_in_float32():
    x, y = pair(n=64, d1=12, d2=8)
    cx, cy = x.reshape(64, 2, 2, 3), y.reshape(64, 2, 2, 2)
    f = jaxcca.dft_cca_similarity
    grad = jax.jit(jax.grad(f))
    huge = cx * np.array([1.0, 1e20, 1.0])
    for xs in (cx * 1e-30, cx * 1e30, cx * 1e-20, cx * 1e20, huge):
        expected = float(f(xs, cy))
        got = f(xs.astype(np.float32), cy.astype(np.float32))
        np.testing.assert_allclose(float(got), expected, atol=2e-5)
        assert np.all(np.isfinite(grad(xs.astype(np.float32), cy.astype(np.float32))))


@pytest.mark.parametrize(
    "name", ["svcca_similarity", "svcca_similarity_k3", "pwcca_similarity", "pwcca_distance"]
)
def test_svcca_and_pwcca_ignore_a_huge_constant_neuron(name):
    # Found by tests/battery_report.py: a constant neuron of 3.25e30 (dead) is
    # the largest; its centring round-off reached SVCCA's reduction and PWCCA's
    # weights in float32, and its scale pushed the live coordinates toward
    # underflow (NaN gradients).
    problem = run_case(BY_NAME[name], "dead", 30, 6060, paths=("jit", "grad"))
    assert problem is None, problem


@pytest.mark.parametrize("name", ["dft_cca_similarity", "dft_cca_projection"])
@pytest.mark.parametrize("e", [10, 20, 30])
def test_dft_cca_ignores_a_huge_constant_pixel(name, e):
    # Found by tests/battery_report.py: one pixel of a channel constant at
    # 3.25e10 (the channel's other pixels ~1) entered every frequency's
    # coefficient through the transform, so the live pixels survived only as
    # its round-off (float32 0.295 vs float64 0.413 at 1e10); the projection
    # weights took their unit from that channel (a silent 0 at 1e20, 1e30).
    problem = run_case(BY_NAME[name], "dead", e, 6000 + e + 30, paths=("eager", "jit", "grad"))
    assert problem is None, problem


@pytest.mark.parametrize("weighting", ["mean", "projection"])
def test_dft_cca_constant_pixel_and_dead_channel_are_exact(weighting):
    # A constant pixel contributes nothing once centred, at any magnitude and
    # in float64 too: the value equals that with the pixel zeroed. A dead
    # (zero) channel must not set the projection weights' unit (a silent 0 at
    # 1e-30 before). float32 against float64, eager and jit, finite gradient.
    rng = np.random.default_rng(3)
    x = rng.standard_normal((80, 6, 6, 4))
    y = np.tanh(x[..., :3] @ rng.standard_normal((3, 3))) + 0.3 * rng.standard_normal((80, 6, 6, 3))

    def f(a, b):
        return jaxcca.dft_cca_similarity(a, b, weighting=weighting)

    zeroed = x.copy()
    zeroed[:, 0, 0, 1] = 0.0
    dead = x.copy()
    dead[..., 0] = 0.0
    expected_pixel = float(f(zeroed, y))
    grad = jax.jit(jax.grad(f))
    for s in (1e10, 1e20, 1e30):
        xs = x.copy()
        xs[:, 0, 0, 1] = 3.25 * s
        np.testing.assert_allclose(float(f(xs, y)), expected_pixel, atol=1e-12)
    for xs in (dead * 1e-30, dead * 1e30, dead):
        expected = float(f(xs, y))
        x32, y32 = xs.astype(np.float32), y.astype(np.float32)
        for got in (f(x32, y32), jax.jit(f)(x32, y32)):
            np.testing.assert_allclose(float(got), expected, atol=2e-5)
        assert np.all(np.isfinite(grad(x32, y32)))
    x32 = x.copy()
    x32[:, 0, 0, 1] = 3.25e20
    x32 = x32.astype(np.float32)
    np.testing.assert_allclose(float(f(x32, y.astype(np.float32))), expected_pixel, atol=2e-5)
    assert np.all(np.isfinite(grad(x32, y.astype(np.float32))))


@pytest.mark.parametrize("e", [30, -20])
def test_rbf_cka_absolute_sigma_with_one_huge_neuron(e):
    # Found by tests/battery_report.py: with one neuron 1e20..1e30 larger than
    # the rest, the scaled sigma^2 underflows, and distances from the Gram
    # expansion turned two distinct samples into coinciding ones (float32
    # -0.0037 / -0.0045 where float64 gives 0).
    m = BY_NAME["cka_rbf_debiased_sigma"]
    problem = run_case(m, "huge_neuron", e, 1000 + e + 30, paths=("eager", "jit", "grad"))
    assert problem is None, problem


def _rbf_sigma3(debiased):
    def f(a, b):
        return jaxcca.cka_similarity(a, b, kernel="rbf", sigma=3.0, debiased=debiased)

    def mb(a, b):
        a, b = a.reshape(2, a.shape[0] // 2, -1), b.reshape(2, b.shape[0] // 2, -1)
        return jaxcca.minibatch_cka(a, b, kernel="rbf", sigma=3.0, debiased=debiased).similarity

    return f, mb


def test_rbf_cka_absolute_sigma_far_below_the_data_scale():
    # sigma^2 below the round-off of Gram-expanded distances: the kernel must
    # come from exact distances (float32 was 2.4e-4 off at 1e4 before), and
    # coinciding samples (duplicated rows) must be found at every magnitude.
    # minibatch_cka shares the kernel (hsic_terms): checked alongside.
    rng = np.random.default_rng(7)
    base, yb = rng.standard_normal((32, 5)), rng.standard_normal((32, 4))
    y = np.concatenate([yb, yb + 0.1 * rng.standard_normal((32, 4))])
    fns = [_rbf_sigma3(debiased) for debiased in (True, False)]
    jitted = [(f, jax.jit(f), mb, jax.jit(mb), jax.jit(jax.grad(f))) for f, mb in fns]
    for second in (base, rng.standard_normal((32, 5))):
        for s in (1e3, 1e4, 1e10, 1e30):
            x = np.concatenate([base, second])
            x[:, 1] *= s
            x32, y32 = x.astype(np.float32), y.astype(np.float32)
            for f, jf, mb, jmb, grad in jitted:
                for eager, jit in ((f, jf), (mb, jmb)):
                    expected = float(eager(x, y))
                    for got in (eager(x32, y32), jit(x32, y32)):
                        np.testing.assert_allclose(float(got), expected, atol=2e-5)
                assert np.all(np.isfinite(grad(x32, y32)))


def test_pairwise_cka_diagonal_at_large_and_small_magnitudes():
    x, _ = pair()
    for s in (1e10, 1e-12, 1e30):
        xs = (np.stack([x, x @ np.diag([1, 2, 3, 4, 5, 6.0])]) * s).astype(np.float32)
        sims = jaxcca.pairwise(xs, measure="cka")
        np.testing.assert_allclose(jnp.diagonal(sims), 1.0, atol=1e-5)
        np.testing.assert_allclose(sims[0, 1], jaxcca.cka_similarity(xs[0], xs[1]), atol=1e-5)


@pytest.mark.parametrize("e", [10, 20])
def test_pairwise_cka_ignores_a_huge_constant_neuron(e):
    # Found by tests/battery_report.py (session 6): pairwise's CKA basis kept
    # the centring residue of a constant neuron of 3.25e10 (float32 2e-8 vs
    # float64 0.607; at 3.25e20 float64 itself was wrong, 3e-11 vs 0.405).
    problem = run_case(BY_NAME["pairwise_cka"], "dead", e, 6000 + e + 30)
    assert problem is None, problem
    x, y = pair()
    x[:, 2] = 3.25 * 10.0**e
    for dtype in (np.float32, np.float64):
        xs = [x.astype(dtype), y.astype(dtype)]
        sims = jaxcca.pairwise(xs, measure="cka")
        expected = jaxcca.cka_similarity(xs[0], xs[1])
        np.testing.assert_allclose(float(sims[0, 1]), float(expected), atol=2e-6)


@pytest.mark.parametrize("name", ["streaming_svcca", "streaming_pwcca"])
def test_streaming_ignores_a_huge_constant_neuron(name):
    # Found by tests/battery_report.py (session 6): the moment whitening kept
    # a dead neuron's round-off coordinates, and its scale set the global unit
    # (float32 0.724 vs float64 0.619 at 3.25e20), as whiten once did.
    for e in (10, 20, 30):
        problem = run_case(BY_NAME[name], "dead", e, 6000 + e + 30)
        assert problem is None, problem
    x, y = pair()
    x[:, 2] = 3.25e20
    x32, y32 = x.astype(np.float32), y.astype(np.float32)
    state = st.update(st.init(6, 5), x32, y32)
    np.testing.assert_allclose(
        float(st.svcca(state).similarity), float(jaxcca.svcca_similarity(x, y)), atol=2e-5
    )


def test_scale_gradient_is_exact():
    # The power-of-two scales are held constant: check the gradient against
    # finite differences in float64 at a magnitude far from 1.
    x, y = pair(n=30, d1=4, d2=3)
    for f in (jaxcca.cca_similarity, jaxcca.pwcca_similarity, jaxcca.cka_similarity):
        xs = x * 1e12
        v = np.random.default_rng(5).standard_normal(x.shape) * 1e12
        h = 1e-6
        fd = (float(f(xs + h * v, y)) - float(f(xs - h * v, y))) / (2 * h)
        ad = float(np.sum(np.asarray(jax.grad(f)(xs, y)) * v))
        np.testing.assert_allclose(ad, fd, rtol=1e-5, atol=1e-9)


# 2. NaN in, NaN out --------------------------------------------------------


def test_nan_propagates_through_dft_cca_and_pairwise():
    x, y = pair(n=64, d1=8, d2=8)
    x[3, 2] = np.nan
    cx, cy = x.reshape(64, 2, 2, 2), y.reshape(64, 2, 2, 2)
    assert np.isnan(float(jaxcca.dft_cca_similarity(cx, cy)))
    assert np.isnan(float(jaxcca.dft_cca(cx, cy).weighted_similarity))
    g = jax.grad(jaxcca.dft_cca_similarity)(cx.astype(np.float32), cy.astype(np.float32))
    assert np.isnan(np.asarray(g)).any()
    for measure in ("cca", "svcca", "pwcca", "cka", "procrustes"):
        sims = jaxcca.pairwise([x, y, y + 1.0], measure=measure)
        assert np.isnan(sims[0]).all() and np.isnan(sims[:, 0]).all(), measure
        assert np.isfinite(sims[1:, 1:]).all(), measure


# 3. check_finite under jit ------------------------------------------------


def test_check_finite_raises_value_error_eagerly_and_under_jit():
    x, y = pair()
    x[0, 0] = np.inf
    for f in (jaxcca.cca_similarity, jaxcca.cka_similarity, jaxcca.procrustes_similarity):
        with pytest.raises(ValueError, match="NaN or Inf"):
            f(x, y, check_finite=True)
        with pytest.raises(ValueError, match="concrete"):
            jax.jit(lambda a, b, f=f: f(a, b, check_finite=True))(x, y)
    clean, _ = pair(1)
    g = jax.grad(lambda a: jaxcca.cca_similarity(a, y, check_finite=True))(clean)
    assert np.all(np.isfinite(g))  # eager grad still checks (values are concrete)


# 4. Streaming ---------------------------------------------------------------


@pytest.mark.parametrize("n,d", [(5, 10), (3, 4), (9, 8)])
def test_streaming_float32_rank_deficient_matches_direct(n, d):
    rng = np.random.default_rng(n)
    x, y = (rng.standard_normal((n, d)).astype(np.float32) for _ in range(2))
    s = st.update(st.update(st.init(d, d), x[:2], y[:2]), x[2:], y[2:])
    direct = jaxcca.cca(x, y)
    res = st.cca(s)
    assert int(res.rank_x) == int(direct.rank_x) == min(n - 1, d)
    assert int(res.n_trivial) == int(direct.n_trivial)
    np.testing.assert_allclose(res.similarity, direct.similarity, atol=1e-5)
    np.testing.assert_allclose(st.pwcca(s).similarity, jaxcca.pwcca_similarity(x, y), atol=1e-5)


def test_streaming_empty_batches_zero_samples_and_bad_inputs():
    s = st.init(3, 2)
    for f in (st.cca, st.svcca, st.pwcca):
        assert int(f(s).n_trivial) == 0 and float(f(s).similarity) == 0.0
    x = np.random.default_rng(0).standard_normal((10, 5)).astype(np.float32)
    s = st.update(s, x[:, :3], x[:, 3:])
    same = st.update(s, np.zeros((0, 3), np.float32), np.zeros((0, 2), np.float32))
    for a, b in zip(s, same, strict=True):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="different widths"):
        st.merge(st.init(3, 2), st.init(4, 2))
    for bad in (np.ones((4, 3), np.int32), np.ones((4, 3), bool), np.ones((4, 3), np.complex64)):
        with pytest.raises(TypeError, match="floating dtype"):
            st.update(st.init(3, 3), bad, bad)
    low = st.update(st.init(3, 2), x[:, :3].astype(np.float16), x[:, 3:].astype(np.float16))
    assert low.sxx.dtype == np.float32
    with pytest.raises(TypeError, match="float32 or float64"):
        st.init(3, 2, jnp.int32)


def test_float64_without_64bit_mode_raises_instead_of_truncating():
    x, y = pair()
    with jax.enable_x64(False):
        for call in (
            lambda: st.update(st.init(6, 5), x, y),
            lambda: st.init(6, 5, np.float64),
            lambda: jaxcca.cca_similarity(x, y),
            lambda: jaxcca.cka_similarity(x, y),
            lambda: jaxcca.minibatch_cka_update(jaxcca.minibatch_cka_init(), x, y),
        ):
            with pytest.raises(TypeError, match="64-bit mode"):
                call()


# 5. PWCCA at tied correlations ---------------------------------------------


@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-12), (np.float32, 1e-6)])
@pytest.mark.parametrize("convention", ["paper", "svcca"])
def test_pwcca_ties_depend_on_the_data_alone(dtype, tol, convention):
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((20, 15)).astype(dtype), rng.standard_normal((20, 15)).astype(dtype)
    assert int(jaxcca.cca(x, y).n_trivial) == 11  # eleven correlations exactly 1
    f = jaxcca.pwcca_similarity
    base = float(f(x, y, convention=convention))
    moved = float(f(x + dtype(3.0), y - dtype(2.0), convention=convention))
    paired = jaxcca.pairwise([x], [y], measure="pwcca", convention=convention)[0, 0]
    np.testing.assert_allclose(moved, base, atol=tol)
    np.testing.assert_allclose(float(paired), base, atol=tol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_pwcca_tie_rotation_without_ties_is_the_identity(dtype):
    # canonical_tie_basis skips its eigendecomposition when no correlations
    # tie; the skipped rotation must be what the eigendecomposition gives there.
    from jaxcca._pwcca import tie_rotation

    rng = np.random.default_rng(2)
    x, y = rng.standard_normal((200, 12)).astype(dtype), rng.standard_normal((200, 9)).astype(dtype)
    wx, wy = whiten(x), whiten(y)
    u, s, _ = safe_svd(cross_product(wx, wy))
    assert np.all(np.diff(np.asarray(s)) < -1e-3)  # distinct correlations: every block alone
    block = jnp.arange(s.shape[0], dtype=jnp.int32)
    full = tie_rotation(u, wx.r, block, jnp.asarray(True))
    skipped = tie_rotation(u, wx.r, block, jnp.asarray(False))
    np.testing.assert_array_equal(np.abs(np.asarray(full)), np.asarray(skipped))


# 6. Validation --------------------------------------------------------------


@pytest.mark.parametrize("eps", [float("nan"), float("inf"), -1e-6, 0.0, 1.0, 2.0])
def test_bad_epsilon_raises(eps):
    x, y = pair()
    for call in (
        lambda: jaxcca.cca_similarity(x, y, epsilon=eps),
        lambda: jaxcca.pwcca(x, y, epsilon=eps),
        lambda: jaxcca.pairwise([x, y], measure="svcca", epsilon=eps),
        lambda: st.cca(st.update(st.init(6, 5, np.float64), x, y), epsilon=eps),
    ):
        with pytest.raises(ValueError, match="epsilon"):
            call()
    with pytest.raises(TypeError, match="epsilon"):
        jaxcca.cca_similarity(x, y, epsilon="small")


def test_zero_neurons_lists_under_jit_and_symmetrize_lists():
    x, y = pair()
    with pytest.raises(ValueError, match="no neurons"):
        jaxcca.cca_similarity(x[:, :0], y)
    xl, yl = x.tolist(), y.tolist()
    np.testing.assert_allclose(
        jax.jit(jaxcca.cca_similarity)(xl, yl), jaxcca.cca_similarity(x, y), atol=1e-12
    )
    np.testing.assert_allclose(jaxcca.symmetrize([[1.0, 2.0], [0.0, 1.0]]), [[1, 1], [1, 1]])
    with pytest.raises(TypeError, match="float"):
        jaxcca.symmetrize([[1, 2], [0, 1]])
