"""CKA: the Kornblith et al. notebook's printed values, independent references,
invariances, small batches, negative debiased estimates, minibatch CKA, errors,
gradients."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import jaxcca
from jaxcca import _hsic

# ----------------------------------------------------------------------------
# Independent float64 NumPy references (trace formulas, not U-centring)
# ----------------------------------------------------------------------------


def np_linear_gram(x):
    x = np.asarray(x, np.float64)
    return x @ x.T


def np_rbf_gram(x, threshold=None, sigma=None):
    x = np.asarray(x, np.float64)
    d2 = np.sum((x[:, None, :] - x[None, :, :]) ** 2, axis=-1)
    s2 = sigma**2 if sigma is not None else threshold**2 * np.median(d2)
    return np.exp(-d2 / (2 * s2))


def np_hsic_biased(k, m):
    """Gretton et al. 2005: tr(K H L H) / (n - 1)^2."""
    n = k.shape[0]
    h = np.eye(n) - np.ones((n, n)) / n
    return np.trace(k @ h @ m @ h) / (n - 1) ** 2


def np_hsic_unbiased(k, m):
    """Song et al. 2012, eq. 5, with the diagonals of K and L set to 0."""
    n = k.shape[0]
    k, m = k.copy(), m.copy()
    np.fill_diagonal(k, 0.0)
    np.fill_diagonal(m, 0.0)
    one = np.ones(n)
    return (
        np.trace(k @ m)
        + (one @ k @ one) * (one @ m @ one) / ((n - 1) * (n - 2))
        - 2.0 / (n - 2) * (one @ k @ m @ one)
    ) / (n * (n - 3))


def np_cka(kx, ky, debiased=False):
    h = np_hsic_unbiased if debiased else np_hsic_biased
    hxy, hxx, hyy = h(kx, ky), h(kx, kx), h(ky, ky)
    return hxy / np.sqrt(hxx * hyy), (hxy, hxx, hyy)


@functools.cache
def grad_fn(kernel="linear", debiased=False):
    """Jitted gradient of CKA w.r.t. both inputs (one compile per shape)."""

    def f(a, b):
        return jaxcca.cka_similarity(a, b, kernel=kernel, debiased=debiased)

    return jax.jit(jax.grad(f, argnums=(0, 1)))


def assert_finite_grads(kernel, debiased, a, b):
    ga, gb = grad_fn(kernel, debiased)(a, b)
    assert np.all(np.isfinite(ga)) and np.all(np.isfinite(gb)), (kernel, debiased)
    return ga, gb


def related(rng, n, d1, d2, noise=1.0):
    x = rng.standard_normal((n, d1)) + 0.3
    y = np.tanh(x @ rng.standard_normal((d1, d2))) + noise * rng.standard_normal((n, d2))
    return x, y


def random_orthogonal(rng, d):
    q, r = np.linalg.qr(rng.standard_normal((d, d)))
    return q * np.sign(np.diag(r))[None, :]


# ----------------------------------------------------------------------------
# The notebook's printed values
# ----------------------------------------------------------------------------


def notebook_inputs():
    # google-research/google-research, representation_similarity/Demo.ipynb
    # (commit 10bf941a5a0625bf27bb8443aa849e9b48fdd5f9), cell "zeI3il6JRM-L":
    #   np.random.seed(1337); X = np.random.randn(100, 10)
    #   Y = np.random.randn(100, 10) + X
    # (numpy's legacy global RandomState; regenerated exactly here).
    rs = np.random.RandomState(1337)
    x = rs.randn(100, 10)
    y = rs.randn(100, 10) + x
    return x, y


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_matches_kornblith_notebook_printed_values(dtype):
    x, y = (a.astype(dtype) for a in notebook_inputs())
    tol = 1e-10 if dtype == np.float64 else 2e-6
    # Printed by the notebook (same file and commit as above):
    #   cell "45qb6zdSsHj6": "Linear CKA from Examples: 0.55761"
    #                        "Linear CKA from Features: 0.55761"
    #   cell "2iHcuAMQs7RM": cka(gram_rbf(X, 0.5), gram_rbf(Y, 0.5)) -> "RBF CKA: 0.65483"
    #   cell "jInZLKpx3fV8": "Linear CKA from Examples (Debiased): 0.51346"
    linear = jaxcca.cka_similarity(x, y)
    rbf = jaxcca.cka_similarity(x, y, kernel="rbf", threshold=0.5)
    debiased = jaxcca.cka_similarity(x, y, debiased=True)
    assert f"{float(linear):.5f}" == "0.55761"
    assert f"{float(rbf):.5f}" == "0.65483"
    assert f"{float(debiased):.5f}" == "0.51346"
    # And to full precision against the independent reference on the same inputs.
    x64, y64 = (np.asarray(a, np.float64) for a in (x, y))
    kx, ky = np_linear_gram(x64), np_linear_gram(y64)
    np.testing.assert_allclose(linear, np_cka(kx, ky)[0], rtol=0, atol=tol)
    np.testing.assert_allclose(debiased, np_cka(kx, ky, True)[0], rtol=0, atol=tol)
    rx, ry = np_rbf_gram(x64, 0.5), np_rbf_gram(y64, 0.5)
    np.testing.assert_allclose(rbf, np_cka(rx, ry)[0], rtol=0, atol=tol)


# ----------------------------------------------------------------------------
# Independent references, both linear forms, HSIC fields
# ----------------------------------------------------------------------------

# (n, d1, d2): feature form, Gram form (d > n), mixed widths.
SHAPES = [(40, 5, 3), (9, 12, 20), (25, 2, 30)]


@pytest.mark.parametrize("shape", SHAPES, ids=["features", "gram_wide", "mixed"])
@pytest.mark.parametrize("debiased", [False, True], ids=["biased", "debiased"])
def test_linear_matches_reference(shape, debiased):
    n, d1, d2 = shape
    x, y = related(np.random.default_rng(n), n, d1, d2)
    res = jaxcca.cka(x, y, debiased=debiased)
    ref, (hxy, hxx, hyy) = np_cka(
        np_linear_gram(x - x.mean(0)), np_linear_gram(y - y.mean(0)), debiased
    )
    np.testing.assert_allclose(res.similarity, ref, rtol=0, atol=1e-12)
    np.testing.assert_allclose([res.hsic_xy, res.hsic_xx, res.hsic_yy], [hxy, hxx, hyy], rtol=1e-10)
    assert float(res.sigma_x) == 0.0 and float(res.sigma_y) == 0.0


@pytest.mark.parametrize("debiased", [False, True], ids=["biased", "debiased"])
def test_feature_and_gram_forms_agree(debiased):
    assert _hsic.use_feature_form(40, 5, 3) and not _hsic.use_feature_form(9, 12, 20)
    x, y = related(np.random.default_rng(1), 30, 6, 4)
    xc, yc = x - x.mean(0), y - y.mean(0)
    a = _hsic.linear_hsic_features(xc, yc, debiased)
    b = _hsic.hsic_from_grams(xc @ xc.T, yc @ yc.T, debiased)
    np.testing.assert_allclose(np.array(a), np.array(b), rtol=1e-12)


@pytest.mark.parametrize("debiased", [False, True], ids=["biased", "debiased"])
def test_rbf_matches_reference(debiased):
    x, y = related(np.random.default_rng(2), 20, 4, 3)
    for kw, ref_kw in [({}, {"threshold": 1.0}), ({"threshold": 0.7}, {"threshold": 0.7})]:
        res = jaxcca.cka(x, y, kernel="rbf", debiased=debiased, **kw)
        kx, ky = np_rbf_gram(x, **ref_kw), np_rbf_gram(y, **ref_kw)
        ref, hs = np_cka(kx, ky, debiased)
        np.testing.assert_allclose(res.similarity, ref, rtol=0, atol=1e-12)
        np.testing.assert_allclose([res.hsic_xy, res.hsic_xx, res.hsic_yy], hs, rtol=1e-10)
        d2 = np.sum((x[:, None] - x[None]) ** 2, -1)
        np.testing.assert_allclose(res.sigma_x, ref_kw["threshold"] * np.sqrt(np.median(d2)))
    res = jaxcca.cka(x, y, kernel="rbf", sigma=1.5, debiased=debiased)
    ref, _ = np_cka(np_rbf_gram(x, sigma=1.5), np_rbf_gram(y, sigma=1.5), debiased)
    np.testing.assert_allclose(res.similarity, ref, rtol=0, atol=1e-12)
    assert float(res.sigma_x) == 1.5 == float(res.sigma_y)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_sort_free_median_equals_numpy(dtype):
    rng = np.random.default_rng(20)
    f = jax.jit(_hsic.median_nonneg)
    for size in (1, 2, 3, 4, 25, 36):
        for v in (rng.random(size) ** 3, rng.integers(0, 3, size) * 0.37):  # distinct, tied
            v = v.astype(dtype)
            assert float(f(v)) == float(np.median(v)), v
    v = rng.random(16)
    np.testing.assert_allclose(jax.grad(_hsic.median_nonneg)(v), jax.grad(jnp.median)(v))
    assert np.isnan(float(f(np.array([1.0, np.nan, 2.0], dtype))))


def test_float32_close_to_float64():
    x, y = related(np.random.default_rng(3), 50, 8, 6)
    for kw in [{}, {"debiased": True}, {"kernel": "rbf"}, {"kernel": "rbf", "debiased": True}]:
        r64 = jaxcca.cka_similarity(x, y, **kw)
        r32 = jaxcca.cka_similarity(x.astype(np.float32), y.astype(np.float32), **kw)
        assert r32.dtype == np.float32
        np.testing.assert_allclose(r32, r64, rtol=0, atol=2e-6)


def test_large_activations_float32_do_not_overflow():
    # Fourth powers of 1e6 overflow float32; the scaling keeps them away.
    x, y = related(np.random.default_rng(4), 60, 5, 5)
    ref = jaxcca.cka_similarity(x, y)
    big = jaxcca.cka_similarity((1e6 * x).astype(np.float32), (1e6 * y).astype(np.float32))
    np.testing.assert_allclose(big, ref, atol=2e-6)


# ----------------------------------------------------------------------------
# Properties
# ----------------------------------------------------------------------------

VARIANTS = {
    "linear": {"kernel": "linear", "debiased": False},
    "linear_debiased": {"kernel": "linear", "debiased": True},
    "rbf": {"kernel": "rbf", "debiased": False},
    "rbf_debiased": {"kernel": "rbf", "debiased": True},
}


@pytest.mark.parametrize("name", list(VARIANTS))
def test_symmetric_self_one_and_invariances(name):
    kw = VARIANTS[name]
    rng = np.random.default_rng(5)
    x, y = related(rng, 30, 6, 4)
    f = jax.jit(lambda a, b: jaxcca.cka_similarity(a, b, **kw))
    base = float(f(x, y))
    np.testing.assert_allclose(f(y, x), base, atol=1e-13)
    np.testing.assert_allclose(f(x, x), 1.0, atol=1e-14)
    np.testing.assert_allclose(f(y, y), 1.0, atol=1e-14)
    q = random_orthogonal(rng, 6)
    np.testing.assert_allclose(f(x @ q, y), base, atol=1e-12)  # orthogonal
    np.testing.assert_allclose(f(2.5 * x - 3.0, y), base, atol=1e-12)  # scale, shift
    np.testing.assert_allclose(f(x, 0.1 * y + 7.0), base, atol=1e-12)
    # Not invariant to a general invertible map (unlike CCA).
    a = rng.standard_normal((6, 6)) + np.diag(np.arange(1.0, 7.0) * 3)
    assert abs(float(f(x @ a, y)) - base) > 1e-3


def test_absolute_bandwidth_is_not_scale_invariant():
    x, y = related(np.random.default_rng(6), 30, 4, 4)
    f = lambda a, b: float(jaxcca.cka_similarity(a, b, kernel="rbf", sigma=2.0))  # noqa: E731
    assert abs(f(10.0 * x, y) - f(x, y)) > 1e-3
    np.testing.assert_allclose(f(x + 5.0, y), f(x, y), atol=1e-12)


def test_self_similarity_is_one_in_float32():
    x = np.random.default_rng(7).standard_normal((40, 6)).astype(np.float32)
    for kw in VARIANTS.values():
        v = jaxcca.cka_similarity(x, x, **kw)
        assert abs(float(v) - 1.0) <= 2e-7, kw


def test_cka_distance_is_one_minus_similarity():
    x, y = related(np.random.default_rng(8), 20, 3, 3)
    np.testing.assert_allclose(
        jaxcca.cka_distance(x, y, debiased=True),
        1.0 - jaxcca.cka_similarity(x, y, debiased=True),
        atol=1e-15,
    )


# ----------------------------------------------------------------------------
# Small batches and negative debiased estimates
# ----------------------------------------------------------------------------


@pytest.mark.parametrize("n", [2, 3, 4])
def test_small_batches_values_and_finite_gradients(n):
    # Biased from n = 2; debiased from n = 4 (smaller n raises, see test_errors).
    rng = np.random.default_rng(n)
    x, y = rng.standard_normal((n, 3)), rng.standard_normal((n, 3))
    for kernel in ("linear", "rbf"):
        kx = np_linear_gram(x) if kernel == "linear" else np_rbf_gram(x, 1.0)
        ky = np_linear_gram(y) if kernel == "linear" else np_rbf_gram(y, 1.0)
        for debiased in (False, True) if n >= 4 else (False,):
            value = jaxcca.cka_similarity(x, y, kernel=kernel, debiased=debiased)
            np.testing.assert_allclose(value, np_cka(kx, ky, debiased)[0], atol=1e-12)
            if n == 2:  # one centred direction only: every pair is perfectly aligned
                np.testing.assert_allclose(value, 1.0, atol=1e-12)
            for a, b in [(x, y), (x, x)]:
                assert_finite_grads(kernel, debiased, a, b)


def test_negative_debiased_estimate_is_reported_not_clamped():
    # Independent draws, few samples: the unbiased HSIC(x, y) fluctuates around 0.
    rng = np.random.default_rng(4)
    x, y = rng.standard_normal((6, 3)), rng.standard_normal((6, 3))
    res = jaxcca.cka(x, y, debiased=True)
    ref, (hxy, _, _) = np_cka(np_linear_gram(x), np_linear_gram(y), True)
    assert ref < -0.05 and hxy < 0  # this seed gives a clearly negative estimate
    np.testing.assert_allclose(res.similarity, ref, atol=1e-12)
    np.testing.assert_allclose(res.hsic_xy, hxy, rtol=1e-10)
    assert float(res.hsic_xx) > 0 and float(res.hsic_yy) > 0
    assert_finite_grads("linear", True, x, y)
    # The biased estimator on the same data stays in [0, 1].
    assert 0.0 <= float(jaxcca.cka_similarity(x, y)) <= 1.0


def test_constant_representation_gives_zero_and_finite_gradients():
    x, y = related(np.random.default_rng(11), 12, 3, 3)  # shapes shared with the next test
    const = np.full((12, 3), 2.5)
    for kw in VARIANTS.values():
        assert float(jaxcca.cka_similarity(const, y, **kw)) == 0.0
        assert_finite_grads(kw["kernel"], kw["debiased"], const, y)


def test_nan_in_nan_out_and_check_finite():
    x, y = related(np.random.default_rng(12), 10, 3, 3)
    x[0, 0] = np.nan
    for kw in VARIANTS.values():
        assert np.isnan(float(jaxcca.cka_similarity(x, y, **kw)))
    with pytest.raises(ValueError, match="NaN"):
        jaxcca.cka(x, y, check_finite=True)


# ----------------------------------------------------------------------------
# Gradients
# ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(VARIANTS))
def test_check_grads_float64(name):
    kw = VARIANTS[name]
    x, y = related(np.random.default_rng(13), 12, 3, 2)
    f = jax.jit(lambda a, b: jaxcca.cka_similarity(a, b, **kw))
    check_grads(f, (x, y), order=1, modes=("fwd", "rev"), atol=1e-6, rtol=1e-6)


def test_gradient_at_identical_inputs_is_zero():
    # CKA is maximal (1) at x == y, so both gradients vanish there.
    x, _ = related(np.random.default_rng(14), 12, 3, 2)
    for kw in VARIANTS.values():
        ga, gb = assert_finite_grads(kw["kernel"], kw["debiased"], x, x)
        np.testing.assert_allclose(ga, 0.0, atol=1e-8)
        np.testing.assert_allclose(gb, 0.0, atol=1e-8)


def test_traced_sigma_is_differentiable():
    x, y = related(np.random.default_rng(15), 12, 3, 3)
    f = jax.jit(lambda s: jaxcca.cka_similarity(x, y, kernel="rbf", sigma=s))
    np.testing.assert_allclose(f(1.3), jaxcca.cka_similarity(x, y, kernel="rbf", sigma=1.3))
    check_grads(f, (1.3,), order=1, modes=("rev",), atol=1e-6, rtol=1e-6)


# ----------------------------------------------------------------------------
# Minibatch CKA
# ----------------------------------------------------------------------------


def np_minibatch_cka(xs, ys):
    hs = np.array(
        [
            [np_hsic_unbiased(np_linear_gram(a), np_linear_gram(b)) for a, b in pairs]
            for pairs in (
                zip(xs, ys, strict=True),
                zip(xs, xs, strict=True),
                zip(ys, ys, strict=True),
            )
        ]
    ).mean(axis=1)
    return hs[0] / np.sqrt(hs[1] * hs[2])


def test_minibatch_matches_reference_and_update_loop():
    x, y = related(np.random.default_rng(16), 48, 5, 4)
    xs, ys = x.reshape(4, 12, 5), y.reshape(4, 12, 4)
    res = jaxcca.minibatch_cka(xs, ys)
    np.testing.assert_allclose(res.similarity, np_minibatch_cka(xs, ys), atol=1e-12)
    state = jaxcca.minibatch_cka_init(jnp.float64)
    for a, b in zip(xs, ys, strict=True):
        state = jaxcca.minibatch_cka_update(state, a, b)
    assert int(state.n_batches) == 4
    looped = jaxcca.minibatch_cka_finalize(state)
    for got, want in zip(looped, res, strict=True):
        np.testing.assert_allclose(got, want, atol=1e-12)
    # One batch: the debiased CKA of that batch.
    one = jaxcca.minibatch_cka(xs[:1], ys[:1])
    np.testing.assert_allclose(one.similarity, jaxcca.cka_similarity(xs[0], ys[0], debiased=True))


def test_minibatch_states_merge_and_sizes_may_differ():
    x, y = related(np.random.default_rng(17), 30, 3, 3)
    s0 = jaxcca.minibatch_cka_init(jnp.float64)
    a = jaxcca.minibatch_cka_update(s0, x[:10], y[:10], kernel="rbf")
    b = jaxcca.minibatch_cka_update(s0, x[10:], y[10:], kernel="rbf")  # 20 samples
    both = jaxcca.minibatch_cka_update(a, x[10:], y[10:], kernel="rbf")
    for got, want in zip(jaxcca.minibatch_cka_merge(a, b), both, strict=True):
        np.testing.assert_allclose(got, want, atol=1e-13)
    h = [
        np_hsic_unbiased(np_rbf_gram(p, 1.0), np_rbf_gram(q, 1.0))
        for p, q in [(x[:10], y[:10]), (x[10:], y[10:])]
    ]
    np.testing.assert_allclose(jaxcca.minibatch_cka_finalize(both).hsic_xy, np.mean(h), rtol=1e-10)


MAGNITUDES = [1e-30, 1e-20, 1e-10, 1e10, 1e20, 1e30]


def _looped(xs, ys, dtype, **options):
    state = jaxcca.minibatch_cka_init(dtype)
    for a, b in zip(xs, ys, strict=True):
        state = jaxcca.minibatch_cka_update(state, a.astype(dtype), b.astype(dtype), **options)
    return jaxcca.minibatch_cka_finalize(state)


@pytest.mark.parametrize("kernel", ["linear", "rbf"])
def test_minibatch_float32_state_right_at_any_magnitude(kernel):
    # Before the state kept its sums in power-of-two scales, a float32 linear
    # state gave NaN at 1e10 and a silent 0 at 1e-10.
    x, y = related(np.random.default_rng(20), 48, 5, 4)
    xs, ys = x.reshape(3, 16, 5), y.reshape(3, 16, 4)
    for e in MAGNITUDES:
        sx, sy = xs * e, ys / e  # each side at its own magnitude
        want = _looped(sx, sy, np.float64, kernel=kernel).similarity
        got = _looped(sx, sy, np.float32, kernel=kernel).similarity
        stacked = jaxcca.minibatch_cka(sx.astype(np.float32), sy.astype(np.float32), kernel=kernel)
        assert np.isfinite(got) and np.isfinite(stacked.similarity), e
        np.testing.assert_allclose(got, want, atol=1e-5, err_msg=str(e))
        np.testing.assert_allclose(stacked.similarity, want, atol=1e-5, err_msg=str(e))
    # One huge neuron, and batches whose magnitudes differ by 1e20 (the state
    # rescales exactly when a later batch needs a smaller scale).
    huge = xs.copy()
    huge[:, :, 1] *= 1e20
    spread = xs * np.array([1e-10, 1.0, 1e10])[:, None, None]
    for data in (huge, spread):
        want = _looped(data, ys, np.float64, kernel=kernel).similarity
        got = _looped(data, ys, np.float32, kernel=kernel).similarity
        assert np.isfinite(got)
        np.testing.assert_allclose(got, want, atol=1e-5)


def test_minibatch_merge_across_devices_equals_one_state():
    # vmap with an axis name runs the same collectives as shard_map/pmap.
    x, y = related(np.random.default_rng(21), 64, 4, 3)
    xs = x.reshape(4, 16, 4) * np.array([1e-20, 1.0, 1e15, 1e30])[:, None, None]
    ys = y.reshape(4, 16, 3)

    def per_device(a, b):
        s = jaxcca.minibatch_cka_update(jaxcca.minibatch_cka_init(jnp.float32), a, b)
        return jaxcca.minibatch_cka_merge_across(s, "devices")

    merged = jax.vmap(per_device, axis_name="devices")(xs.astype(np.float32), ys.astype(np.float32))
    got = jaxcca.minibatch_cka_finalize(jax.tree.map(lambda v: v[0], merged))
    want = _looped(xs, ys, np.float64)
    assert int(got.hsic_xy.size) == 1 and np.isfinite(got.similarity)
    np.testing.assert_allclose(got.similarity, want.similarity, atol=1e-5)
    with pytest.raises(TypeError, match="MinibatchCKAState"):
        jaxcca.minibatch_cka_merge(merged, (1.0,))


def test_minibatch_gradients_and_jit():
    x, y = related(np.random.default_rng(18), 24, 3, 3)
    f = jax.jit(
        lambda a, b: jaxcca.minibatch_cka(a.reshape(3, 8, 3), b.reshape(3, 8, 3)).similarity
    )
    for a, b in [(x, y), (x, x)]:
        ga, gb = jax.grad(f, argnums=(0, 1))(a, b)
        assert np.all(np.isfinite(ga)) and np.all(np.isfinite(gb))
    check_grads(f, (x, y), order=1, modes=("rev",), atol=1e-6, rtol=1e-6)


# ----------------------------------------------------------------------------
# Errors
# ----------------------------------------------------------------------------


def test_errors():
    rng = np.random.default_rng(19)
    x, y = rng.standard_normal((10, 3)), rng.standard_normal((10, 2))
    with pytest.raises(ValueError, match="at least 4 samples"):
        jaxcca.cka(x[:3], y[:3], debiased=True)
    with pytest.raises(ValueError, match="at least 4 samples"):
        jaxcca.minibatch_cka_update(jaxcca.minibatch_cka_init(jnp.float64), x[:3], y[:3])
    with pytest.raises(ValueError, match="kernel must be one of"):
        jaxcca.cka(x, y, kernel="poly")
    with pytest.raises(ValueError, match="only apply with kernel='rbf'"):
        jaxcca.cka(x, y, sigma=1.0)
    with pytest.raises(ValueError, match="not both"):
        jaxcca.cka(x, y, kernel="rbf", sigma=1.0, threshold=0.5)
    with pytest.raises(ValueError, match="> 0"):
        jaxcca.cka(x, y, kernel="rbf", sigma=-1.0)
    with pytest.raises(ValueError, match="> 0"):
        jaxcca.cka(x, y, kernel="rbf", threshold=0.0)
    with pytest.raises(TypeError, match="debiased"):
        jaxcca.cka(x, y, debiased=1)
    with pytest.raises(TypeError, match="float32 or float64"):
        jaxcca.cka(x.astype(np.int32), y)
    with pytest.raises(ValueError, match="same number of samples"):
        jaxcca.cka(x, y[:5])
    with pytest.raises(ValueError, match="at least 2 samples"):
        jaxcca.cka(x[:1], y[:1])
    with pytest.raises(ValueError, match="num_batches"):
        jaxcca.minibatch_cka(x, y)
    with pytest.raises(TypeError, match="float32 or float64"):
        jaxcca.minibatch_cka_init(jnp.int32)
