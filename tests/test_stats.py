"""Permutation tests and bootstrap intervals (jaxcca.permutation_test, jaxcca.bootstrap)."""

import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

import jaxcca
from jaxcca._stats import permutation_indices

# (measure, options, single-pair similarity of (x, y) with those options); the
# first of each measure runs in float32 and float64, the variants in float64.
CASES = [
    ("cca", {}, jaxcca.cca_similarity),
    ("svcca", {"keep": 0.9}, jaxcca.svcca_similarity),
    ("pwcca", {}, jaxcca.pwcca_similarity),
    ("cka", {}, jaxcca.cka_similarity),
    ("procrustes", {}, jaxcca.procrustes_similarity),
]
VARIANTS = [
    ("cka", {"kernel": "rbf", "sigma": 3.0, "debiased": True}, jaxcca.cka_similarity),
    ("pwcca", {"convention": "svcca"}, jaxcca.pwcca_similarity),
    ("cka", {"debiased": True}, jaxcca.cka_similarity),
    ("cka", {"kernel": "rbf", "threshold": 0.8}, jaxcca.cka_similarity),
]
BOTH_DTYPES = [(*c, dt) for c in CASES for dt in (np.float32, np.float64)]
ALL_CASES = BOTH_DTYPES + [(*c, np.float64) for c in VARIANTS]
CONV_CASES = [
    ("dft_cca", {"weighting": "projection"}, jaxcca.dft_cca_similarity, np.float32),
    ("dft_cca", {}, jaxcca.dft_cca_similarity, np.float64),
]
# Factor-once vs recomputation differ by the round-off of two whitenings of
# the same data summed in different orders: ~1e-15 in float64; in float32 a
# few 1e-6 on values of order 1, more where d is close to n (condition).
ATOL = {np.float32: 2e-5, np.float64: 1e-10}
N_DRAWS = 12


def _ids(cases):
    return [
        f"{c[0]}-{'-'.join(f'{k}={v}' for k, v in c[1].items()) or 'default'}"
        + (f"-{np.dtype(c[3]).name}" if len(c) > 3 else "")
        for c in cases
    ]


def _data(rng, measure, opts):
    """Dead and duplicated neurons with d close to n (n=24, d1=20, d2=5).

    The ranks (18 and 4) sum to less than n - 1, so no correlation is 1 for
    any data: past that, PWCCA is not a function of the data (its weights
    depend on the arbitrary basis chosen inside the tied correlations).
    Linear CKA takes its feature form here; a pair with fewer samples than
    neurons (n=10) adds its Gram form.
    """
    x = rng.standard_normal((24, 20))
    x[:, 2] = 1.5  # dead (constant) neuron
    x[:, 4] = x[:, 0]  # duplicated neuron
    y = np.tanh(x[:, :5] @ rng.standard_normal((5, 5))) + rng.standard_normal((24, 5))
    y[:, 3] = 0.0
    pairs = [(x, y)]
    if measure == "cka" and opts.get("kernel", "linear") == "linear":
        pairs.append((x[:10], y[:10]))
    return pairs


def _naive(sim, x, y, key, n_draws, opts):
    """The single-pair function on (x, y[perm_i]), with the documented permutations."""
    perms = jnp.stack([permutation_indices(key, i, x.shape[0]) for i in range(n_draws)])
    x, y = jnp.asarray(x), jnp.asarray(y)
    return jax.vmap(lambda p: sim(x, y[p], **opts))(perms)


@pytest.mark.parametrize(("measure", "opts", "sim", "dtype"), ALL_CASES, ids=_ids(ALL_CASES))
def test_factor_once_equals_naive_draw_for_draw(measure, opts, sim, dtype):
    key = jax.random.key(7)
    for x, y in _data(np.random.default_rng(0), measure, opts):
        x, y = x.astype(dtype), y.astype(dtype)
        res = jaxcca.permutation_test(
            x, y, measure=measure, n_permutations=N_DRAWS, key=key, chunk_size=5, **opts
        )
        assert res.null.dtype == dtype and res.null.shape == (N_DRAWS,)
        want = _naive(sim, x, y, key, N_DRAWS, opts)
        np.testing.assert_allclose(res.null, want, rtol=0, atol=ATOL[dtype])
        np.testing.assert_allclose(res.statistic, sim(x, y, **opts), rtol=0, atol=ATOL[dtype])
        assert float(jnp.std(want)) > 10 * ATOL[dtype]  # the draws differ: a real check


@pytest.mark.parametrize(("measure", "opts", "sim", "dtype"), CONV_CASES, ids=_ids(CONV_CASES))
def test_dft_cca_permutes_samples(measure, opts, sim, dtype):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((30, 4, 4, 3)).astype(dtype)
    x[..., 1] = 2.0  # dead channel
    y = (np.roll(x, 1, axis=1) + rng.standard_normal(x.shape)).astype(dtype)
    key = jax.random.key(2)
    res = jaxcca.permutation_test(x, y, measure=measure, n_permutations=N_DRAWS, key=key, **opts)
    np.testing.assert_allclose(
        res.null, _naive(sim, x, y, key, N_DRAWS, opts), rtol=0, atol=ATOL[dtype]
    )
    np.testing.assert_allclose(res.statistic, sim(x, y, **opts), rtol=0, atol=ATOL[dtype])


def test_permutations_are_uniform():
    # every one of the 5! = 120 permutations about equally often (chi-square, seeded)
    perms = np.asarray(
        jax.vmap(lambda i: permutation_indices(jax.random.key(0), i, 5))(jnp.arange(12000))
    )
    assert (np.sort(perms, axis=1) == np.arange(5)).all()
    _, counts = np.unique(perms, axis=0, return_counts=True)
    assert counts.size == 120
    assert stats.chisquare(counts).pvalue > 0.001


def test_p_value_and_adjusted_follow_their_definitions():
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal((50, 4)), rng.standard_normal((50, 3))
    res = jaxcca.permutation_test(x, y, n_permutations=40, key=jax.random.key(0))
    null, stat = np.asarray(res.null), float(res.statistic)
    assert float(res.p_value) == (1 + np.sum(null >= stat)) / 41
    assert float(res.adjusted) == pytest.approx((stat - null.mean()) / (1 - null.mean()), abs=1e-12)


@pytest.mark.parametrize(("measure", "opts"), [("cca", {}), ("cka", {})])
def test_p_values_are_calibrated_under_independence(measure, opts):
    # 400 independent (x, y) pairs, one vmapped call. Under independence the
    # rows of y are exchangeable, so the permutation p-value is uniform on
    # {1/100, ..., 1}: a KS test against U(0, 1) (seeded, so deterministic)
    # and the rate of p <= 0.05 within its 99.9% binomial band.
    pairs, n_perm = 400, 99
    kx, ky, kp = jax.random.split(jax.random.key(11), 3)
    xs = jax.random.normal(kx, (pairs, 20, 3))
    ys = jax.random.normal(ky, (pairs, 20, 2))
    keys = jax.random.split(kp, pairs)
    test = jax.vmap(
        lambda x, y, k: (
            jaxcca.permutation_test(
                x, y, measure=measure, n_permutations=n_perm, key=k, **opts
            ).p_value
        )
    )
    p = np.asarray(test(xs, ys, keys), dtype=np.float64)
    assert p.min() >= 1 / (n_perm + 1) and p.max() <= 1.0
    assert stats.kstest(p, "uniform").pvalue > 0.01
    lo, hi = stats.binom.ppf([0.0005, 0.9995], pairs, 0.05)
    assert lo <= np.sum(p <= 0.05) <= hi
    # clearly dependent data: every p-value at its minimum
    dep = test(xs, xs[:, :, :2] + 0.3 * ys, keys)
    np.testing.assert_allclose(dep, 1 / (n_perm + 1), rtol=1e-6)


@pytest.mark.parametrize("measure", ["cca", "cka", "procrustes"])
def test_adjusted_is_flat_at_zero_across_widths_and_one_for_x_equals_y(measure):
    key = jax.random.key(5)
    raw = []
    for width in (4, 64):
        kx, ky = jax.random.split(jax.random.fold_in(key, width))
        x = jax.random.normal(kx, (240, width), jnp.float64)
        y = jax.random.normal(ky, (240, width), jnp.float64)
        res = jaxcca.permutation_test(x, y, measure=measure, n_permutations=200, key=key)
        null = np.asarray(res.null)
        # within 4 null standard deviations of 0, in adjusted units
        assert abs(float(res.adjusted)) < 4 * null.std() / (1 - null.mean())
        assert abs(float(res.adjusted)) < 0.05
        raw.append(float(res.statistic))
        same = jaxcca.permutation_test(x, x, measure=measure, n_permutations=200, key=key)
        np.testing.assert_allclose(same.adjusted, 1.0, atol=1e-9)
        assert float(same.p_value) == 1 / 201
    if measure != "cka":  # linear CKA of independent data is not width-driven the same way
        assert raw[0] < raw[1]  # raw similarity of unrelated data rises with width


def test_jit_vmap_and_chunking_give_the_same_numbers():
    rng = np.random.default_rng(4)
    x, y = rng.standard_normal((30, 5)), rng.standard_normal((30, 4))
    key = jax.random.key(9)

    def run(a, b, k, chunk=None):
        return jaxcca.permutation_test(
            a, b, measure="cca", n_permutations=23, key=k, chunk_size=chunk
        )

    eager = run(x, y, key)
    jitted = jax.jit(run)(x, y, key)
    one_by_one = run(x, y, key, chunk=1)
    for other in (jitted, one_by_one):
        for a, b in zip(eager, other, strict=True):
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-13)
    keys = jax.random.split(key, 3)
    batched = jax.vmap(lambda k: run(x, y, k))(keys)
    for i, k in enumerate(keys):
        np.testing.assert_allclose(batched.null[i], run(x, y, k).null, rtol=0, atol=1e-13)
    boot = jax.jit(lambda a, b, k: jaxcca.bootstrap(a, b, measure="cka", n_resamples=17, key=k))(
        x, y, key
    )
    np.testing.assert_allclose(
        boot.samples,
        jaxcca.bootstrap(x, y, measure="cka", n_resamples=17, key=key, chunk_size=4).samples,
        rtol=0,
        atol=1e-13,
    )


@pytest.mark.parametrize(
    ("measure", "opts", "sim"),
    [CASES[0], VARIANTS[0]],
    ids=_ids([CASES[0], VARIANTS[0]]),
)
def test_bootstrap_resamples_pairs_of_rows(measure, opts, sim):
    rng = np.random.default_rng(6)
    x = jnp.asarray(rng.standard_normal((40, 4)))
    y = x[:, :3] + jnp.asarray(rng.standard_normal((40, 3)))
    key = jax.random.key(4)
    res = jaxcca.bootstrap(x, y, measure=measure, n_resamples=15, key=key, confidence=0.8, **opts)
    idx = jnp.stack(
        [jax.random.randint(jax.random.fold_in(key, i), (40,), 0, 40) for i in range(15)]
    )
    want = jax.vmap(lambda i: sim(x[i], y[i], **opts))(idx)
    np.testing.assert_allclose(res.samples, want, rtol=0, atol=1e-10)
    np.testing.assert_allclose(res.statistic, sim(x, y, **opts), rtol=0, atol=1e-12)
    np.testing.assert_allclose(
        [res.low, res.high], np.quantile(np.asarray(want), [0.1, 0.9]), rtol=0, atol=1e-12
    )


def test_bootstrap_is_biased_upward_for_cca_when_d_is_close_to_n():
    # The bias the docstring warns about: a resample holds ~0.63 n distinct
    # rows, and CCA of unrelated data grows with neurons per sample.
    rng = np.random.default_rng(8)
    x, y = rng.standard_normal((60, 15)), rng.standard_normal((60, 15))
    res = jaxcca.bootstrap(x, y, n_resamples=60, key=jax.random.key(0))
    assert float(res.low) > float(res.statistic)
    narrow = jaxcca.bootstrap(x[:, :2], y[:, :2], n_resamples=60, key=jax.random.key(0))
    assert float(narrow.low) < float(narrow.statistic) < float(narrow.high)


def test_same_numbers_on_eight_devices():
    code = textwrap.dedent(
        """
        import os
        os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=8"
        import jax, numpy as np
        jax.config.update("jax_enable_x64", True)
        import jaxcca
        assert len(jax.devices()) == 8
        rng = np.random.default_rng(1)
        x, y = rng.standard_normal((40, 5)), rng.standard_normal((40, 4))
        key = jax.random.key(3)
        one_dev = jax.devices()[:1]
        for m, o in (("pwcca", {}),):
            one = jaxcca.permutation_test(x, y, measure=m, n_permutations=37, key=key,
                                          devices=one_dev, **o)
            many = jaxcca.permutation_test(x, y, measure=m, n_permutations=37, key=key, **o)
            assert many.null.is_fully_replicated
            for a, b in zip(one, many):
                np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)
        b1 = jaxcca.bootstrap(x, y, n_resamples=21, key=key, devices=one_dev)
        b8 = jaxcca.bootstrap(x, y, n_resamples=21, key=key)
        for a, b in zip(b1, b8):
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)
        keys = jax.random.split(key, 3)
        v = jax.vmap(lambda k: jaxcca.permutation_test(x, y, n_permutations=37, key=k).null)(keys)
        for i, k in enumerate(keys):
            np.testing.assert_allclose(
                v[i], jaxcca.permutation_test(x, y, n_permutations=37, key=k,
                                              devices=one_dev).null, rtol=0, atol=1e-12)
        print("ok")
        """
    )
    # simulated CPU devices, also on a machine with an accelerator
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path), JAX_PLATFORMS="cpu")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().endswith("ok")


def test_errors():
    x = np.zeros((10, 3))
    key = jax.random.key(0)
    with pytest.raises(ValueError, match="measure must be one of"):
        jaxcca.permutation_test(x, x, measure="rsa", key=key)
    with pytest.raises(ValueError, match="unknown option"):
        jaxcca.permutation_test(x, x, measure="cca", keep=3, key=key)
    with pytest.raises(TypeError, match="PRNG key"):
        jaxcca.permutation_test(x, x, key=None)
    with pytest.raises(ValueError, match="n_permutations must be >= 1"):
        jaxcca.permutation_test(x, x, n_permutations=0, key=key)
    with pytest.raises(TypeError, match="n_resamples must be a Python int"):
        jaxcca.bootstrap(x, x, n_resamples=10.0, key=key)
    with pytest.raises(ValueError, match="confidence"):
        jaxcca.bootstrap(x, x, confidence=1.5, key=key)
    with pytest.raises(ValueError, match="same number of samples"):
        jaxcca.permutation_test(x, x[:5], key=key)
    with pytest.raises(ValueError, match="debiased=True needs at least 4"):
        jaxcca.permutation_test(x[:3], x[:3], measure="cka", debiased=True, key=key)
    with pytest.raises(ValueError, match="4-D"):
        jaxcca.permutation_test(x, x, measure="dft_cca", key=key)
