"""pairwise(): agreement with the single-pair functions, blocking, devices, errors."""

import os
import subprocess
import sys
import textwrap

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
    rng = np.random.default_rng(0)
    base = rng.standard_normal((120, 4))
    widths = (5, 7, 6, 7)
    return [
        np.tanh(base @ rng.standard_normal((4, w))) + 0.4 * rng.standard_normal((120, w))
        for w in widths
    ]


@pytest.mark.parametrize("measure", list(SINGLE))
def test_matches_single_pair_functions_with_different_widths(reps, measure):
    got = np.asarray(jaxcca.pairwise(reps, measure=measure, block_rows=3, **OPTS[measure]))
    want = np.array([[SINGLE[measure](a, b) for b in reps] for a in reps])
    np.testing.assert_allclose(got, want, atol=1e-12)


def test_stacked_and_cross_matrix(reps):
    stacked = np.stack([r[:, :5] for r in reps])
    full = jaxcca.pairwise(stacked, measure="pwcca")
    cross = jaxcca.pairwise(stacked[:2], stacked[1:], measure="pwcca")
    assert cross.shape == (2, 3)
    np.testing.assert_allclose(cross, np.asarray(full)[:2, 1:], atol=1e-12)


@pytest.mark.parametrize("block_rows", [1, 2, 5])
def test_block_size_does_not_change_the_result(reps, block_rows):
    ref = jaxcca.pairwise(reps, measure="cca", block_rows=4)
    got = jaxcca.pairwise(reps, measure="cca", block_rows=block_rows)
    np.testing.assert_allclose(got, ref, atol=1e-13)


def test_symmetry_and_symmetrize(reps):
    cca = np.asarray(jaxcca.pairwise(reps, measure="cca"))
    np.testing.assert_allclose(cca, cca.T, atol=1e-12)
    np.testing.assert_allclose(np.diag(cca), 1.0, atol=1e-10)
    pw = jaxcca.pairwise(reps, measure="pwcca")
    assert np.abs(np.asarray(pw) - np.asarray(pw).T).max() > 1e-4
    sym = np.asarray(jaxcca.symmetrize(pw))
    np.testing.assert_allclose(sym, sym.T, atol=0)


def test_same_result_on_eight_devices(reps):
    code = textwrap.dedent(
        """
        import os
        os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=8"
        import jax, numpy as np
        jax.config.update("jax_enable_x64", True)
        import jaxcca
        rng = np.random.default_rng(1)
        xs = rng.standard_normal((11, 100, 6))
        assert len(jax.devices()) == 8
        for m in ("cca", "svcca", "pwcca"):
            many = jaxcca.pairwise(xs, measure=m, block_rows=1)
            one = jaxcca.pairwise(xs, measure=m, devices=jax.devices()[:1], block_rows=3)
            np.testing.assert_allclose(many, one, atol=1e-13)
        print("ok")
        """
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().endswith("ok")


def test_errors(reps):
    with pytest.raises(ValueError, match="measure must be one of"):
        jaxcca.pairwise(reps, measure="cka_rbf_nope")
    with pytest.raises(ValueError, match="unknown option"):
        jaxcca.pairwise(reps, measure="cca", keep=3)
    with pytest.raises(ValueError, match="same number of samples"):
        jaxcca.pairwise([reps[0], reps[1][:50]])
    with pytest.raises(ValueError, match=r"\(m, n_samples, n_neurons\)"):
        jaxcca.pairwise(np.zeros((3, 4)))
