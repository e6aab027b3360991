"""The custom derivatives of the kernel: identities and finite differences.

Matrices are built with controlled condition numbers and tied singular values,
``a = U diag(s) V^T`` with random orthogonal ``U``, ``V``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import jaxcca
from jaxcca._linalg import (
    cholesky_and_inverse,
    complex_singular_values,
    safe_svd,
    singular_values,
)
from jaxcca._whiten import whiten


def orth(rng, n, k):
    q, _ = np.linalg.qr(rng.standard_normal((n, k)))
    return q


def with_spectrum(rng, s, m=None, k=None):
    m, k = m or len(s), k or len(s)
    return orth(rng, m, len(s)) @ np.diag(s) @ orth(rng, k, len(s)).T


SPECTRA = {
    "cond10": np.geomspace(1.0, 0.1, 5),
    "cond1e4": np.geomspace(1.0, 1e-4, 5),
    "ties": np.array([1.0, 1.0, 1.0, 0.5, 0.2]),
}


@pytest.mark.parametrize("name", list(SPECTRA))
def test_safe_svd_identities_and_invariant_gradients(name):
    rng = np.random.default_rng(0)
    a = with_spectrum(rng, SPECTRA[name], m=7)
    u, s, vt = safe_svd(a)
    np.testing.assert_allclose(u @ np.diag(s) @ vt, a, atol=1e-12)
    np.testing.assert_allclose(u.T @ u, np.eye(5), atol=1e-12)
    np.testing.assert_allclose(s, SPECTRA[name], atol=1e-12)
    # Functions invariant to rotations inside tied blocks have exact derivatives.
    f = lambda a: jnp.sum(safe_svd(a)[1] ** 3)  # noqa: E731
    check_grads(f, (a,), order=1, modes=("fwd", "rev"), atol=1e-6, rtol=1e-6, eps=1e-7)

    # The projector onto the first three left singular vectors: a union of
    # whole blocks in every spectrum here (the tie is 1, 1, 1).
    def proj(a):
        u3 = safe_svd(a)[0][:, :3]
        return jnp.sum(jnp.sin(u3 @ u3.T))

    check_grads(proj, (a,), order=1, modes=("fwd", "rev"), atol=1e-5, rtol=1e-5, eps=1e-7)
    # Inside a tied block the vectors are not differentiable; the gradient is finite.
    g = jax.grad(lambda a: jnp.sum(safe_svd(a)[2][0] ** 3))(a)
    assert np.all(np.isfinite(g))


@pytest.mark.parametrize("name", list(SPECTRA))
def test_singular_values_real_and_complex(name):
    rng = np.random.default_rng(1)
    s = SPECTRA[name]
    a = with_spectrum(rng, s, m=6)
    np.testing.assert_allclose(singular_values(a), s, atol=1e-12)
    # Symmetric functions of the singular values are differentiable at ties too.
    cubes = lambda a: jnp.sum(singular_values(a) ** 3)  # noqa: E731
    check_grads(cubes, (a,), order=1, modes=("fwd", "rev"), atol=1e-6, rtol=1e-6, eps=1e-7)
    # complex: a unitary-equivalent complex matrix with the same spectrum
    q, _ = np.linalg.qr(rng.standard_normal((6, 6)) + 1j * rng.standard_normal((6, 6)))
    c = q[:, :5] @ np.diag(s) @ orth(rng, 5, 5).T
    re, im = np.real(c), np.imag(c)
    np.testing.assert_allclose(complex_singular_values(re, im), s, atol=1e-12)
    f = lambda re, im: jnp.sum(complex_singular_values(re, im) ** 2)  # noqa: E731
    check_grads(f, (re, im), order=1, modes=("fwd", "rev"), atol=1e-6, rtol=1e-6, eps=1e-7)
    # sum of squared singular values is the squared Frobenius norm: gradient 2 * c
    gre, gim = jax.grad(f, argnums=(0, 1))(re, im)
    np.testing.assert_allclose(gre, 2 * re, atol=1e-10)
    np.testing.assert_allclose(gim, 2 * im, atol=1e-10)


@pytest.mark.parametrize("cond", [1.0, 1e3, 1e6])
def test_cholesky_and_inverse(cond):
    rng = np.random.default_rng(2)
    b = with_spectrum(rng, np.geomspace(1.0, 1.0 / np.sqrt(cond), 4))
    a = b @ b.T
    l_factor, l_inv = cholesky_and_inverse(a)
    np.testing.assert_allclose(l_factor @ l_factor.T, a, atol=1e-12)
    np.testing.assert_allclose(l_inv @ l_factor, np.eye(4), atol=1e-9 * cond)

    def f(m):
        m = 0.5 * (m + m.T)
        lf, li = cholesky_and_inverse(m)
        return jnp.sum(jnp.tril(lf) * np.arange(16.0).reshape(4, 4)) + jnp.sum(li[0])

    # Finite differences lose accuracy like the factorisation: step and
    # tolerance follow the condition number.
    rel = 1e-6 * cond
    check_grads(f, (a,), order=1, modes=("fwd", "rev"), atol=rel, rtol=rel, eps=1e-7 / cond)


@pytest.mark.parametrize("cond", [1.0, 1e2, 1e4])
def test_whiten_basis_and_subspace_gradient(cond):
    rng = np.random.default_rng(3)
    x = orth(rng, 40, 4) @ np.diag(np.geomspace(1.0, 1.0 / cond, 4)) @ orth(rng, 4, 4).T
    x = x + 2.0  # a mean to remove
    w = whiten(jnp.asarray(x))
    assert int(w.rank) == 4
    xc = x - x.mean(0)
    # float64 whitening forms the Gram matrix: orthonormal to ~eps * cond**2.
    tol = 1e-14 * cond**2 + 1e-12
    np.testing.assert_allclose(w.q.T @ w.q, np.eye(4), atol=tol)
    np.testing.assert_allclose(w.q @ (w.q.T @ xc), xc, atol=tol)
    np.testing.assert_allclose((x - np.asarray(w.mean)[None, :]) @ w.w, w.q, atol=1e-10)
    z = jnp.asarray(rng.standard_normal((40, 2)))

    def proj(x):  # depends on the spanned subspace only
        q = whiten(x).q
        return jnp.sum((q.T @ z) ** 2)

    if cond <= 1e2:  # central differences of the basis lose ~cond**2 digits beyond that
        check_grads(
            proj, (jnp.asarray(x),), order=1, modes=("fwd", "rev"), atol=1e-6, rtol=1e-6, eps=1e-7
        )
    else:
        assert np.all(np.isfinite(jax.grad(proj)(jnp.asarray(x))))


def test_whiten_rank_deficient_gradient_is_finite():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((30, 3))
    x = np.concatenate([x, x[:, :1], np.zeros((30, 1))], axis=1)  # duplicate and dead
    w = whiten(jnp.asarray(x))
    assert int(w.rank) == 3
    g = jax.grad(lambda x: jnp.sum(whiten(x).q[:, :3] ** 3))(jnp.asarray(x))
    assert np.all(np.isfinite(g))


def test_gram_is_exactly_symmetric_and_equals_the_product():
    from jaxcca._numerics import gram

    rng = np.random.default_rng(3)
    for d in (10, 300, 450):  # one product, 2 blocks, 3 blocks
        a = rng.standard_normal((40, d))
        g = np.asarray(gram(a))
        np.testing.assert_array_equal(g, g.T)
        np.testing.assert_allclose(g, a.T @ a, rtol=1e-12, atol=1e-10)


def test_whiten_gram_form_matches_two_pass_in_float32(monkeypatch):
    import jaxcca._whiten as whiten_module

    rng = np.random.default_rng(4)
    well = rng.standard_normal((2000, 30))  # cond(G) ~ 1.5
    ill = well @ np.diag(np.geomspace(1.0, 1e-2, 30)) @ orth(rng, 30, 30).T  # cond(G) >> 100
    y = np.tanh(well @ rng.standard_normal((30, 30)) / 6.0) + 0.3 * rng.standard_normal((2000, 30))
    x32, ill32, y32 = (jnp.asarray(a, jnp.float32) for a in (well, ill, y))
    for a, expect in ((x32, True), (ill32, False)):
        w = whiten(a)
        assert bool(whiten_module.gram_form_is_accurate(w.precond, w.mask)) == expect
        np.testing.assert_allclose(w.q.T @ w.q, np.eye(30), atol=2e-6)
    for a in (x32, ill32):
        a64 = np.asarray(a, np.float64)
        rho64 = jaxcca.cca(a64, np.asarray(y32, np.float64)).rho
        rho_fast = jaxcca.cca(a, y32).rho
        monkeypatch.setattr(whiten_module, "GRAM_FORM_MAX_COND", 0.0)  # always two passes
        jax.clear_caches()
        rho_two_pass = jaxcca.cca(a, y32).rho
        monkeypatch.setattr(whiten_module, "GRAM_FORM_MAX_COND", 100.0)
        jax.clear_caches()
        np.testing.assert_allclose(rho_fast, rho64, atol=1e-6)
        np.testing.assert_allclose(rho_two_pass, rho64, atol=1e-6)
