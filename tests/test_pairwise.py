"""pairwise(): agreement with the single-pair functions, blocking, devices, errors."""

import os
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest

import jaxcca

SINGLE = {
    "cca": jaxcca.cca_similarity,
    "svcca": lambda x, y: jaxcca.svcca_similarity(x, y, keep=0.9),
    "pwcca": jaxcca.pwcca_similarity,
    "cka": jaxcca.cka_similarity,
    "procrustes": jaxcca.procrustes_similarity,
}
OPTS = {"cca": {}, "svcca": {"keep": 0.9}, "pwcca": {}, "cka": {}, "procrustes": {}}


@pytest.fixture(scope="module")
def reps():
    """Five representations of 120 inputs, widths 5 and 7, one with a dead neuron."""
    rng = np.random.default_rng(0)
    base = rng.standard_normal((120, 4))
    widths = (5, 7, 5, 7, 5)
    out = [
        np.tanh(base @ rng.standard_normal((4, w))) + 0.4 * rng.standard_normal((120, w))
        for w in widths
    ]
    out[2][:, 1] = 0.0  # dead neuron
    return out


@pytest.fixture(scope="module")
def expected(reps):
    return {
        m: np.array([[SINGLE[m](a, b) for b in reps] for a in reps], dtype=np.float64)
        for m in SINGLE
    }


@pytest.mark.parametrize("measure", list(SINGLE))
def test_matches_single_pair_functions_with_different_widths(reps, expected, measure):
    # block_size=2 with 5 representations: diagonal, off-diagonal (mirrored) and
    # padded tiles all occur.
    got = np.asarray(jaxcca.pairwise(reps, measure=measure, block_size=2, **OPTS[measure]))
    np.testing.assert_allclose(got, expected[measure], rtol=0, atol=1e-12)


def test_pwcca_svcca_convention(reps):
    got = jaxcca.pairwise(reps, measure="pwcca", convention="svcca", block_size=2)
    want = [[jaxcca.pwcca_similarity(a, b, convention="svcca") for b in reps] for a in reps]
    np.testing.assert_allclose(got, np.array(want), rtol=0, atol=1e-12)


def test_float32_matches_single_pair_float32(reps):
    r32 = [r.astype(np.float32) for r in reps]
    got = jaxcca.pairwise(r32, measure="pwcca", block_size=2)
    assert got.dtype == np.float32
    want = np.array([[jaxcca.pwcca_similarity(a, b) for b in r32] for a in r32])
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)


def test_stacked_list_and_cross_matrix(reps, expected):
    stacked = np.stack([np.pad(r, ((0, 0), (0, 7 - r.shape[1]))) for r in reps])
    full = np.asarray(jaxcca.pairwise(stacked, measure="pwcca", block_size=2))
    np.testing.assert_allclose(full, expected["pwcca"], rtol=0, atol=1e-12)
    # Every one of the first two against every one of the last four (widths differ).
    cross = jaxcca.pairwise(reps[:2], reps[1:], measure="pwcca", block_size=2)
    assert cross.shape == (2, 4)
    np.testing.assert_allclose(cross, expected["pwcca"][:2, 1:], rtol=0, atol=1e-12)
    col = jaxcca.pairwise(stacked, stacked[-1:], measure="pwcca")
    np.testing.assert_allclose(col[:, 0], expected["pwcca"][:, -1], rtol=0, atol=1e-12)


def test_cross_matrix_with_a_wider_and_a_narrower_side(reps):
    # The cross matrix decomposes the narrower side's cross cross^T; x wider
    # than y takes the other branch (x's directions from y's).
    wide, narrow = [reps[1], reps[3]], [reps[0], reps[2], reps[4]]  # widths 7 and 5
    for xs, ys in ((wide, narrow), (narrow, wide)):
        got = jaxcca.pairwise(xs, ys, measure="pwcca", block_size=2)
        want = [[jaxcca.pwcca_similarity(a, b) for b in ys] for a in xs]
        np.testing.assert_allclose(got, np.array(want), rtol=0, atol=1e-12)


def test_float32_both_directions_match_float64_at_small_clustered_correlations():
    # Most canonical correlations small and close together: singular vectors
    # from eigh(C C^T), and the other side's derived from them, would leave
    # 3.6e-6 here; the SVD that gives both directions of the square matrix
    # (upper triangle: left vectors; lower: right vectors) stays at 1.4e-7.
    rng = np.random.default_rng(3)
    base = rng.standard_normal((600, 4))
    xs = base @ rng.standard_normal((6, 4, 24)) * 0.3 + rng.standard_normal((6, 600, 24))
    want = np.asarray(jaxcca.pairwise(xs, block_size=2))
    got = jaxcca.pairwise(xs.astype(np.float32), block_size=2)
    np.testing.assert_allclose(np.asarray(got, np.float64), want, rtol=0, atol=1e-6)


def test_float32_cross_matrix_matches_float64_at_small_clustered_correlations():
    # The cross matrix pairwise(xs, ys) (one direction per pair) takes the SVD
    # too: the eigendecomposition of C C^T it used before left 6.7e-6 here.
    rng = np.random.default_rng(3)
    base = rng.standard_normal((2000, 4))
    xs = base @ rng.standard_normal((4, 4, 64)) * 0.3 + rng.standard_normal((4, 2000, 64))
    for ys in (xs[:2], np.concatenate([xs[:2], xs[2:]], axis=2)):  # x as wide as y, narrower
        want = np.asarray(jaxcca.pairwise(xs[2:], ys, block_size=2))
        got = jaxcca.pairwise(xs[2:].astype(np.float32), ys.astype(np.float32), block_size=2)
        np.testing.assert_allclose(np.asarray(got, np.float64), want, rtol=0, atol=1e-6)


@pytest.mark.parametrize("block_size", [1, 3, 64])
def test_block_size_does_not_change_the_result(reps, expected, block_size):
    got = jaxcca.pairwise(reps, measure="pwcca", block_size=block_size)
    np.testing.assert_allclose(got, expected["pwcca"], rtol=0, atol=1e-12)


@pytest.mark.parametrize("measure", ["pwcca", "svcca"])
def test_tiles_batched_as_on_an_accelerator_give_the_same_result(
    reps, expected, measure, monkeypatch
):
    # On GPU several tiles go through each pair's decomposition as one batch
    # (_tiles_at_once); force that path here: 4 tiles at once over the 6 tiles
    # of the square matrix (block_size 2, 5 representations) leaves a remainder
    # of 2, and the 3 tiles of the cross matrix are fewer than one batch.
    pw = sys.modules[jaxcca.pairwise.__module__]  # the module that defines pairwise
    monkeypatch.setattr(pw, "_tiles_at_once", lambda pairs_per_tile, platform: 4)
    # ... and the accelerators' vmapped per-pair functions, not the CPU's whole
    # tile (PWCCA: two eigendecompositions per pair, not one).
    monkeypatch.setattr(pw, "_whole_tile_on_cpu", lambda platform: False)
    pw._compiled_step.cache_clear()
    try:
        got = np.asarray(jaxcca.pairwise(reps, measure=measure, block_size=2, **OPTS[measure]))
        cross = jaxcca.pairwise(reps[:2], reps, measure=measure, block_size=2, **OPTS[measure])
    finally:
        pw._compiled_step.cache_clear()
    np.testing.assert_allclose(got, expected[measure], rtol=0, atol=1e-12)
    np.testing.assert_allclose(cross, expected[measure][:2], rtol=0, atol=1e-12)


def test_symmetry_and_symmetrize(reps, expected):
    cca = np.asarray(jaxcca.pairwise(reps, measure="cca", block_size=2))
    np.testing.assert_array_equal(cca, cca.T)  # mirrored, not recomputed
    np.testing.assert_allclose(np.diag(cca), 1.0, atol=1e-12)
    pw = jaxcca.pairwise(reps, measure="pwcca", block_size=2)
    assert np.abs(np.asarray(pw) - np.asarray(pw).T).max() > 1e-3
    sym = np.asarray(jaxcca.symmetrize(pw))
    np.testing.assert_array_equal(sym, sym.T)
    np.testing.assert_allclose(sym, (expected["pwcca"] + expected["pwcca"].T) / 2, atol=1e-12)


def test_under_jit_and_with_progress(reps, expected):
    stacked = np.stack([r[:, :5] for r in reps])
    want = np.array([[jaxcca.pwcca_similarity(a, b) for b in stacked] for a in stacked])
    jitted = jax.jit(lambda xs: jaxcca.pairwise(xs, block_size=2, progress=True))
    np.testing.assert_allclose(jitted(stacked), want, rtol=0, atol=1e-12)
    shown = jaxcca.pairwise(stacked, block_size=2, progress=True)  # tqdm if installed
    np.testing.assert_allclose(shown, want, rtol=0, atol=1e-12)


def test_same_result_on_eight_devices():
    code = textwrap.dedent(
        """
        import os
        os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=8"
        import jax, numpy as np
        jax.config.update("jax_enable_x64", True)
        import jaxcca
        assert len(jax.devices()) == 8
        rng = np.random.default_rng(1)
        xs = rng.standard_normal((11, 100, 6))
        for m, opts in (("cca", {}), ("svcca", {"keep": 0.9}), ("pwcca", {})):
            for ys in (None, xs[3:]):
                one = jaxcca.pairwise(xs, ys, measure=m, devices=jax.devices()[:1], **opts)
                many = jaxcca.pairwise(xs, ys, measure=m, block_size=2, **opts)
                assert many.is_fully_replicated
                np.testing.assert_allclose(many, one, rtol=0, atol=1e-13)
        print("ok")
        """
    )
    # simulated CPU devices, also on a machine with an accelerator
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path), JAX_PLATFORMS="cpu")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().endswith("ok")


def test_errors(reps):
    with pytest.raises(ValueError, match="measure must be one of"):
        jaxcca.pairwise(reps, measure="nope")
    with pytest.raises(ValueError, match="unknown option"):
        jaxcca.pairwise(reps, measure="cca", keep=3)
    with pytest.raises(ValueError, match="keep"):
        jaxcca.pairwise(reps, measure="svcca", keep=1.5)
    with pytest.raises(ValueError, match="convention"):
        jaxcca.pairwise(reps, measure="pwcca", convention="anatome")
    with pytest.raises(ValueError, match="same number of samples"):
        jaxcca.pairwise([reps[0], reps[1][:50]])
    with pytest.raises(ValueError, match="same number of samples"):
        jaxcca.pairwise(reps, [reps[0][:50]])
    with pytest.raises(ValueError, match=r"\(m, n_samples, n_neurons\)"):
        jaxcca.pairwise(np.zeros((3, 4)))
    with pytest.raises(ValueError, match="empty"):
        jaxcca.pairwise([])
    with pytest.raises(ValueError, match="block_size"):
        jaxcca.pairwise(reps, block_size=0)
    with pytest.raises(TypeError, match="float32 or float64"):
        jaxcca.pairwise(np.zeros((2, 10, 3), dtype=np.int32))
    with pytest.raises(ValueError, match="square"):
        jaxcca.symmetrize(np.zeros((2, 3)))
