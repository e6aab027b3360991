"""Agreement with independent float64 references (tests/reference.py)."""

import numpy as np
import pytest

import jaxcca

from . import reference as ref


def correlated_pair(rng, n=400, d1=12, d2=9, noise=0.7):
    x = rng.standard_normal((n, d1)) * rng.uniform(0.5, 3.0, d1) + rng.uniform(-2, 2, d1)
    y = np.tanh(x @ rng.standard_normal((d1, d2))) + noise * rng.standard_normal((n, d2))
    return x, y


def conditioned(rng, n, d, cond):
    """Data whose centred singular values span ``cond`` (log-spaced), mean 5."""
    q, _ = np.linalg.qr(rng.standard_normal((n, d)))
    o, _ = np.linalg.qr(rng.standard_normal((d, d)))
    return (q * np.logspace(0, -np.log10(cond), d)) @ o * 3.0 + 5.0


@pytest.mark.parametrize("widths", [(12, 9), (9, 12), (10, 10)])
def test_cca_matches_principal_angles(rng, widths):
    x, y = correlated_pair(rng, d1=widths[0], d2=widths[1])
    res = jaxcca.cca(x, y)
    expected = ref.canonical_correlations(x, y)
    np.testing.assert_allclose(res.rho, expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(res.similarity, expected.mean(), rtol=0, atol=1e-12)
    assert int(res.rank_x) == widths[0] and int(res.rank_y) == widths[1]
    assert int(res.n_trivial) == 0


def test_cca_weights_and_variates_are_canonical(rng):
    x, y = correlated_pair(rng)
    res = jaxcca.cca(x, y)
    xc, yc = x - x.mean(0), y - y.mean(0)
    np.testing.assert_allclose(xc @ res.x_weights, res.x_variates, atol=1e-10)
    np.testing.assert_allclose(yc @ res.y_weights, res.y_variates, atol=1e-10)
    p = res.rho.shape[0]
    np.testing.assert_allclose(res.x_variates.T @ res.x_variates, np.eye(p), atol=1e-10)
    np.testing.assert_allclose(res.y_variates.T @ res.y_variates, np.eye(p), atol=1e-10)
    np.testing.assert_allclose(
        res.x_variates.T @ res.y_variates, np.diag(np.asarray(res.rho)), atol=1e-10
    )


@pytest.mark.parametrize("keep", [0.5, 0.9, 0.99, 3, 7])
def test_svcca_matches_pca_then_cca(rng, keep):
    x, y = correlated_pair(rng)
    res = jaxcca.svcca(x, y, keep=keep)
    np.testing.assert_allclose(res.similarity, ref.svcca(x, y, keep), rtol=0, atol=1e-12)
    if isinstance(keep, int):
        assert int(res.keep_x) == int(res.keep_y) == keep


def test_svcca_keep_counts_variance_not_singular_value_mass():
    # Singular values 4, 2, 1, 1/2 (up to the rotation): variance fractions are
    # 16/21.25, 4/21.25, ...; 99% of variance needs 4 directions but 75% needs 1.
    rng = np.random.default_rng(3)
    q, _ = np.linalg.qr(rng.standard_normal((200, 4)) - 0.0)
    q -= q.mean(0)
    q, _ = np.linalg.qr(q)
    x = q * np.array([4.0, 2.0, 1.0, 0.5])
    res = jaxcca.svcca(x, x, keep=0.75)
    assert int(res.keep_x) == 1  # 16/21.25 = 0.753 >= 0.75
    np.testing.assert_allclose(res.explained_x, 16 / 21.25, atol=1e-12)
    res = jaxcca.svcca(x, x, keep=0.76)
    assert int(res.keep_x) == 2  # singular-value mass would give 4/7.5 < 0.76 too
    assert int(jaxcca.svcca(x, x, keep=1.0).keep_x) == 4


@pytest.mark.parametrize("widths", [(12, 9), (9, 12)])
def test_pwcca_paper_matches_transcription(rng, widths):
    x, y = correlated_pair(rng, d1=widths[0], d2=widths[1])
    res = jaxcca.pwcca(x, y)
    sim, alpha, rho = ref.pwcca_paper(x, y)
    np.testing.assert_allclose(res.similarity, sim, rtol=0, atol=1e-12)
    np.testing.assert_allclose(res.weights, alpha, rtol=0, atol=1e-12)
    np.testing.assert_allclose(res.rho, rho, rtol=0, atol=1e-12)
    np.testing.assert_allclose(res.mean_rho, rho.mean(), atol=1e-12)


def test_pwcca_svcca_convention_matches_google_svcca_on_centred_data(rng):
    x, y = correlated_pair(rng, d1=9, d2=12)  # reference weights the narrower side
    x = x - x.mean(0)
    res = jaxcca.pwcca(x, y, convention="svcca")
    sim, weights, rho = ref.svcca_convention_pwcca(x, y)
    np.testing.assert_allclose(res.similarity, sim, rtol=0, atol=1e-12)
    np.testing.assert_allclose(res.weights, weights, rtol=0, atol=1e-12)
    # The two conventions really are different measures.
    assert abs(float(jaxcca.pwcca(x, y).similarity) - sim) > 1e-4


def test_pwcca_wider_first_layer_works(rng):
    # google/svcca's compute_pwcca crashes here (its PR 9).
    x, y = correlated_pair(rng, d1=15, d2=6)
    res = jaxcca.pwcca(x, y)
    assert res.weights.shape == (6,) and res.rho.shape == (6,)
    np.testing.assert_allclose(res.weights.sum(), 1.0, atol=1e-12)
    np.testing.assert_allclose(res.similarity, ref.pwcca_paper(x, y)[0], atol=1e-12)


# Tolerances reached (float32 vs float64 on the same float32-rounded input,
# 2000 x 32 / 24, log-spaced singular values). CCA and SVCCA stay near 1e-6.
# PWCCA depends on singular *vectors* of the cross-covariance, whose float32
# error grows like eps32 * cond / gap: ~5e-5 at cond 1e2 and up to ~2e-4 at
# cond 1e3 (the float32 round-off of forming the whitened basis, not the SVD:
# doing the SVD in float64 does not change it).
F32_TOL = {
    10.0: {"cca": 1e-6, "svcca": 1e-6, "pwcca": 1e-5},
    1e2: {"cca": 1e-6, "svcca": 1e-6, "pwcca": 1e-4},
    1e3: {"cca": 1e-5, "svcca": 1e-5, "pwcca": 3e-4},
}


@pytest.mark.parametrize("cond", sorted(F32_TOL))
def test_float32_agrees_with_float64(cond):
    rng = np.random.default_rng(1)
    x = conditioned(rng, 2000, 32, cond)
    y = 0.5 * x @ rng.standard_normal((32, 24)) + conditioned(rng, 2000, 24, cond)
    x32, y32 = x.astype(np.float32), y.astype(np.float32)
    x64, y64 = x32.astype(np.float64), y32.astype(np.float64)
    rho32 = jaxcca.cca(x32, y32).rho
    np.testing.assert_allclose(rho32, ref.canonical_correlations(x64, y64), atol=1e-4)
    fns = {
        "cca": jaxcca.cca_similarity,
        "svcca": jaxcca.svcca_similarity,
        "pwcca": jaxcca.pwcca_similarity,
    }
    for name, fn in fns.items():
        np.testing.assert_allclose(fn(x32, y32), fn(x64, y64), rtol=0, atol=F32_TOL[cond][name])


def test_tutorial_activations_match_references(tutorial_activations):
    d = tutorial_activations
    for a, b in [
        ("mnist_logits_net0", "mnist_logits_net1"),
        ("svhn_fc200_net0", "svhn_fc200_net1"),
    ]:
        x, y = d[a].astype(np.float64), d[b].astype(np.float64)
        np.testing.assert_allclose(
            jaxcca.cca(x, y).rho, ref.canonical_correlations(x, y), atol=1e-10
        )
        np.testing.assert_allclose(
            jaxcca.pwcca(x, y).similarity, ref.pwcca_paper(x, y)[0], atol=1e-10
        )
        np.testing.assert_allclose(
            jaxcca.pwcca(x, y, convention="svcca").similarity,
            ref.svcca_convention_pwcca(x - x.mean(0), y)[0],
            atol=1e-10,
        )
        # float32 inputs as stored: agreement with the float64 computation.
        x32, y32 = d[a], d[b]
        for fn in (jaxcca.cca_similarity, jaxcca.pwcca_similarity, jaxcca.svcca_similarity):
            np.testing.assert_allclose(fn(x32, y32), fn(x, y), atol=1e-4)


def test_tutorial_values(tutorial_activations):
    """Pinned values on the real activations (float64), checked against references above."""
    d = tutorial_activations
    x, y = d["svhn_fc200_net0"].astype(np.float64), d["svhn_fc200_net1"].astype(np.float64)
    np.testing.assert_allclose(jaxcca.cca_similarity(x, y), 0.5481822298951835, atol=1e-10)
    np.testing.assert_allclose(jaxcca.pwcca_similarity(x, y), 0.665170975856071, atol=1e-10)
