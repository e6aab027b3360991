"""Orthogonal Procrustes: independent references (scipy, netrep's transcription),
invariances, metric properties, different widths, degenerate inputs, gradients."""

import jax
import numpy as np
import pytest
import scipy.linalg as sl
from jax.test_util import check_grads

import jaxcca


def unit(x):
    xc = np.asarray(x, np.float64) - np.mean(x, axis=0)
    return xc / np.linalg.norm(xc)


def pad_to(a, p):
    return np.pad(a, ((0, 0), (0, p - a.shape[1])))


def ref_procrustes(x, y):
    """(similarity, distance, angular) from scipy's orthogonal Procrustes solver."""
    xn, yn = unit(x), unit(y)
    p = max(xn.shape[1], yn.shape[1])
    xn, yn = pad_to(xn, p), pad_to(yn, p)
    r, _ = sl.orthogonal_procrustes(yn, xn)  # argmin_R ||yn R - xn||_F
    dist = np.linalg.norm(xn - yn @ r)
    nuc = np.linalg.svd(xn.T @ yn, compute_uv=False).sum()
    return nuc, dist, np.arccos(np.clip(nuc, -1, 1))


def netrep_angular(x, y):
    """Transcription of netrep's LinearMetric(alpha=1, center_columns=True,
    zero_pad=True, score_method="angular").fit_score: rotate both centred
    (zero-padded) representations by the SVD of x^T y, then the angle between
    the aligned matrices."""
    p = max(x.shape[1], y.shape[1])
    xc, yc = pad_to(x - x.mean(0), p), pad_to(y - y.mean(0), p)
    u, _, vt = np.linalg.svd(xc.T @ yc)
    tx, ty = xc @ u, yc @ vt.T
    cos = np.sum(tx * ty) / (np.linalg.norm(tx) * np.linalg.norm(ty))
    return np.arccos(np.clip(cos, -1, 1))


def related(rng, n, d1, d2, noise=0.5):
    x = rng.standard_normal((n, d1)) + 0.3
    y = np.tanh(x @ rng.standard_normal((d1, d2))) + noise * rng.standard_normal((n, d2))
    return x, y


def random_orthogonal(rng, d):
    q, r = np.linalg.qr(rng.standard_normal((d, d)))
    return q * np.sign(np.diag(r))[None, :]


procrustes = jax.jit(jaxcca.procrustes)


@pytest.mark.parametrize(
    "shape",
    [(40, 5, 5), (40, 6, 3), (30, 2, 7), (8, 12, 20)],
    ids=["same", "x_wider", "y_wider", "d_gt_n"],
)
def test_matches_scipy_and_netrep(shape):
    n, d1, d2 = shape
    x, y = related(np.random.default_rng(n + d1), n, d1, d2)
    res = procrustes(x, y)
    sim, dist, ang = ref_procrustes(x, y)
    np.testing.assert_allclose(res.similarity, sim, atol=1e-12)
    np.testing.assert_allclose(res.distance, dist, atol=1e-12)
    np.testing.assert_allclose(res.angular_distance, ang, atol=1e-12)
    np.testing.assert_allclose(res.angular_distance, netrep_angular(x, y), atol=1e-12)
    np.testing.assert_allclose(res.distance**2, 2 - 2 * res.similarity, atol=1e-12)
    np.testing.assert_allclose(np.cos(res.angular_distance), res.similarity, atol=1e-12)
    p = max(d1, d2)
    rot = np.asarray(res.rotation)
    assert rot.shape == (p, p)
    np.testing.assert_allclose(rot.T @ rot, np.eye(p), atol=1e-12)
    np.testing.assert_allclose(
        np.linalg.norm(pad_to(unit(x), p) - pad_to(unit(y), p) @ rot), dist, atol=1e-12
    )
    # The public scalars agree with the result.
    np.testing.assert_allclose(jaxcca.procrustes_similarity(x, y), sim, atol=1e-12)
    np.testing.assert_allclose(jaxcca.procrustes_distance(x, y), dist, atol=1e-12)
    np.testing.assert_allclose(jaxcca.procrustes_distance(x, y, angular=True), ang, atol=1e-12)


def test_float32_close_to_float64():
    x, y = related(np.random.default_rng(1), 50, 6, 4)
    r64 = procrustes(x, y)
    r32 = procrustes(x.astype(np.float32), y.astype(np.float32))
    assert r32.distance.dtype == np.float32
    for a, b in zip(r32[:3], r64[:3], strict=True):
        np.testing.assert_allclose(a, b, atol=3e-6)
    # Large activations do not overflow the float32 sum of squares.
    big = procrustes((1e20 * x).astype(np.float32), y.astype(np.float32))
    np.testing.assert_allclose(big.similarity, r64.similarity, atol=3e-6)


def test_invariances_and_symmetry():
    rng = np.random.default_rng(2)
    x, y = related(rng, 30, 5, 4)
    base = procrustes(x, y)
    variants = [
        (x @ random_orthogonal(rng, 5), y),  # rotation of x
        (x, y @ random_orthogonal(rng, 4)),  # rotation of y
        (3.0 * x - 2.0, y),  # scaling and translation
        (x, 0.01 * y + 100.0),
        (y, x),  # symmetry
    ]
    for a, b in variants:
        res = procrustes(a, b)
        for got, want in zip(res[:3], base[:3], strict=True):
            np.testing.assert_allclose(got, want, atol=1e-11)
    # Not invariant to a general invertible map.
    a = rng.standard_normal((5, 5)) + np.diag(np.arange(1.0, 6.0) * 3)
    assert abs(float(procrustes(x @ a, y).distance) - float(base.distance)) > 1e-3


def test_identity_self_distance_and_triangle_inequality():
    rng = np.random.default_rng(3)
    xs = [related(rng, 20, 4, 4, noise=s)[1] for s in (0.1, 0.5, 1.0, 2.0)]
    d = np.array([[float(procrustes(a, b).distance) for b in xs] for a in xs])
    ang = np.array([[float(procrustes(a, b).angular_distance) for b in xs] for a in xs])
    for m in (d, ang):
        np.testing.assert_allclose(np.diag(m), 0.0, atol=1e-12)
        np.testing.assert_allclose(m, m.T, atol=1e-12)
        for i in range(4):
            for j in range(4):
                assert np.all(m[i, j] <= m[i, :] + m[:, j] + 1e-12)
    x = xs[0]
    q = random_orthogonal(rng, 4)
    res = procrustes(x, 2.0 * x @ q + 1.0)
    assert float(res.similarity) == pytest.approx(1.0, abs=1e-14)
    assert float(res.distance) < 1e-13 and float(res.angular_distance) < 1e-13


def test_self_distance_float32_and_wide():
    rng = np.random.default_rng(4)
    x32 = rng.standard_normal((30, 5)).astype(np.float32)
    assert float(procrustes(x32, x32).distance) < 1e-6
    wide = rng.standard_normal((6, 15))  # d > n: x^T x is singular
    res = procrustes(wide, wide)
    assert float(res.similarity) == pytest.approx(1.0, abs=1e-12)
    assert float(res.distance) < 1e-6


def test_constant_and_nan_inputs():
    x, y = related(np.random.default_rng(5), 10, 3, 3)
    const = np.full((10, 3), -4.0)
    res = procrustes(const, y)
    assert float(res.similarity) == 0.0
    np.testing.assert_allclose(res.distance, np.sqrt(2.0))
    np.testing.assert_allclose(res.angular_distance, np.pi / 2)
    g = jax.grad(lambda a, b: jaxcca.procrustes_distance(a, b), argnums=(0, 1))(const, y)
    assert all(np.all(np.isfinite(t)) for t in g)
    x[3, 1] = np.nan
    res = procrustes(x, y)
    assert all(np.isnan(float(v)) for v in res[:3])
    with pytest.raises(ValueError, match="NaN"):
        jaxcca.procrustes(x, y, check_finite=True)


def test_check_grads_float64():
    x, y = related(np.random.default_rng(6), 15, 4, 3)
    for angular in (False, True):
        f = jax.jit(lambda a, b, angular=angular: jaxcca.procrustes_distance(a, b, angular=angular))
        check_grads(f, (x, y), order=1, modes=("fwd", "rev"), atol=1e-6, rtol=1e-6)
    check_grads(
        jax.jit(jaxcca.procrustes_similarity),
        (x, y),
        order=1,
        modes=("fwd", "rev"),
        atol=1e-6,
        rtol=1e-6,
    )


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_gradients_finite_at_identical_and_degenerate_inputs(dtype):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((12, 4)).astype(dtype)
    dup = x.copy()
    dup[:, 3] = dup[:, 0]
    fns = {
        "similarity": jaxcca.procrustes_similarity,
        "distance": jaxcca.procrustes_distance,
        "angular": lambda a, b: jaxcca.procrustes_distance(a, b, angular=True),
    }
    for name, f in fns.items():
        grad = jax.jit(jax.grad(f, argnums=(0, 1)))
        for a, b in [(x, x), (x, 3.0 * x + 1.0), (dup, dup), (x, dup)]:
            ga, gb = grad(a, b)
            assert np.all(np.isfinite(ga)) and np.all(np.isfinite(gb)), name
        if name == "similarity":  # maximal at x == y: zero gradient
            ga, gb = grad(x, x)
            np.testing.assert_allclose(ga, 0.0, atol=1e-5 if dtype == np.float32 else 1e-10)


def test_gradient_descent_on_distance_aligns():
    x, y = related(np.random.default_rng(8), 20, 3, 3, noise=1.0)
    f = jax.jit(jaxcca.procrustes_distance)
    g = jax.jit(jax.grad(jaxcca.procrustes_distance, argnums=1))
    before = float(f(x, y))
    for _ in range(30):
        y = y - 2.0 * g(x, y)
    assert float(f(x, y)) < 0.5 * before


def test_errors():
    x, y = related(np.random.default_rng(9), 10, 3, 3)
    with pytest.raises(TypeError, match="angular"):
        jaxcca.procrustes_distance(x, y, angular="yes")
    with pytest.raises(ValueError, match="same number of samples"):
        jaxcca.procrustes(x, y[:4])
    with pytest.raises(ValueError, match="2-D"):
        jaxcca.procrustes(x[:, 0], y)
    with pytest.raises(TypeError, match="float32 or float64"):
        jaxcca.procrustes_similarity(x.astype(np.int32), y)
