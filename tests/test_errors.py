"""Bad input raises at trace time with a message that says how to fix the call."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxcca

FUNCS = [
    jaxcca.cca,
    jaxcca.cca_similarity,
    jaxcca.svcca,
    jaxcca.svcca_distance,
    jaxcca.pwcca,
    jaxcca.pwcca_similarity,
]


@pytest.mark.parametrize("fn", FUNCS, ids=lambda f: f.__name__)
def test_wrong_rank(fn):
    with pytest.raises(ValueError, match=r"2-D array of shape \(n_samples, n_neurons\)"):
        fn(np.zeros((4, 3, 2)), np.zeros((4, 3)))
    with pytest.raises(ValueError, match=r"x\[:, None\]"):
        fn(np.zeros(10), np.zeros((10, 3)))


@pytest.mark.parametrize("fn", FUNCS, ids=lambda f: f.__name__)
def test_sample_mismatch_mentions_layout(fn):
    with pytest.raises(ValueError, match=r"same number of samples.*x\.T"):
        fn(np.ones((10, 3)), np.ones((11, 3)))


def test_too_few_samples():
    with pytest.raises(ValueError, match="at least 2 samples"):
        jaxcca.cca(np.ones((1, 3)), np.ones((1, 3)))


@pytest.mark.parametrize("dtype", [np.int32, np.complex64, bool])
def test_unsupported_dtype(dtype):
    x = np.ones((10, 3)).astype(dtype)
    with pytest.raises(TypeError, match=r"float32 or float64.*astype"):
        jaxcca.cca_similarity(x, np.ones((10, 3), np.float32))


@pytest.mark.parametrize("dtype", [np.float16, jnp.bfloat16])
def test_low_precision_is_computed_in_float32(dtype):
    x = np.random.default_rng(0).standard_normal((40, 3))
    y = x @ np.random.default_rng(1).standard_normal((3, 3))
    low_x, low_y = x.astype(dtype), y.astype(dtype)
    res = jaxcca.cca_similarity(low_x, low_y)
    assert res.dtype == np.float32
    exact = jaxcca.cca_similarity(np.asarray(low_x, np.float64), np.asarray(low_y, np.float64))
    np.testing.assert_allclose(res, exact, atol=1e-5)


def test_mixed_precision_promotes():
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((30, 3)), rng.standard_normal((30, 2)).astype(np.float32)
    assert jaxcca.cca_similarity(x, y).dtype == np.float64


def test_lists_are_accepted():
    x = [[0.0, 1.0], [1.0, 0.5], [2.0, 3.0], [0.5, 0.1]]
    assert 0 <= float(jaxcca.cca_similarity(x, x)) <= 1


@pytest.mark.parametrize("keep", [0.0, 1.5, -2, 0])
def test_bad_keep_value(keep):
    with pytest.raises(ValueError, match="keep"):
        jaxcca.svcca(np.ones((10, 3)), np.ones((10, 3)), keep=keep)


@pytest.mark.parametrize("keep", ["all", None, True, jnp.asarray(0.5)])
def test_bad_keep_type(keep):
    with pytest.raises(TypeError, match="keep must be"):
        jaxcca.svcca(np.ones((10, 3)), np.ones((10, 3)), keep=keep)


def test_bad_convention():
    with pytest.raises(ValueError, match="convention must be one of"):
        jaxcca.pwcca(np.ones((10, 3)), np.ones((10, 3)), convention="anatome")


def test_errors_raise_at_trace_time_under_jit_and_vmap():
    with pytest.raises(ValueError, match="same number of samples"):
        jax.jit(jaxcca.cca_similarity)(np.ones((10, 3)), np.ones((12, 3)))
    with pytest.raises(ValueError, match="2-D array"):
        jax.vmap(jaxcca.cca_similarity)(np.ones((10, 3)), np.ones((10, 3)))
