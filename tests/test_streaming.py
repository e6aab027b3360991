"""Streaming statistics: uneven batches, scan, merge, devices, gradients."""

import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxcca
from jaxcca import streaming as st

SPLITS = [0, 7, 300, 301, 1000]


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1000, 12)) * rng.uniform(0.5, 3, 12) + 5
    y = np.tanh(x @ rng.standard_normal((12, 8))) + 0.5 * rng.standard_normal((1000, 8))
    return x, y


def stream(x, y, dtype):
    s = st.init(x.shape[1], y.shape[1], dtype)
    for a, b in zip(SPLITS[:-1], SPLITS[1:], strict=True):
        s = st.update(s, x[a:b], y[a:b])
    return s


@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-10), (np.float32, 1e-4)])
def test_uneven_batches_equal_full_data(data, dtype, tol):
    x, y = (a.astype(dtype) for a in data)
    s = stream(x, y, dtype)
    full = jaxcca.cca(x, y)
    np.testing.assert_allclose(st.cca(s).rho, full.rho, atol=tol)
    np.testing.assert_allclose(st.cca(s).similarity, full.similarity, atol=tol)
    np.testing.assert_allclose(st.pwcca(s).similarity, jaxcca.pwcca_similarity(x, y), atol=tol)
    np.testing.assert_allclose(
        st.pwcca(s, convention="svcca").similarity,
        jaxcca.pwcca_similarity(x, y, convention="svcca"),
        atol=tol,
    )
    np.testing.assert_allclose(
        st.svcca(s, keep=0.9).similarity, jaxcca.svcca_similarity(x, y, keep=0.9), atol=tol
    )
    assert int(st.cca(s).rank_x) == 12


def test_weights_map_data_to_canonical_variates(data):
    x, y = data
    res = st.cca(stream(x, y, np.float64))
    hx = (x - x.mean(0)) @ np.asarray(res.x_weights)
    hy = (y - y.mean(0)) @ np.asarray(res.y_weights)
    np.testing.assert_allclose(hx.T @ hy, np.diag(np.asarray(res.rho)), atol=1e-10)
    assert res.x_variates.shape == (0, 8)


def test_merge_is_order_free_and_scan_works(data):
    x, y = data
    a = st.update(st.init(12, 8, np.float64), x[:400], y[:400])
    b = st.update(st.init(12, 8, np.float64), x[400:], y[400:])
    ab, ba = st.merge(a, b), st.merge(b, a)
    for f1, f2 in zip(ab, ba, strict=True):
        np.testing.assert_allclose(f1, f2, atol=1e-9)

    def body(s, batch):
        return st.update(s, *batch), None

    xb, yb = x.reshape(10, 100, 12), y.reshape(10, 100, 8)
    scanned, _ = jax.jit(lambda s: jax.lax.scan(body, s, (xb, yb)))(st.init(12, 8, np.float64))
    np.testing.assert_allclose(
        st.pwcca(scanned).similarity, jaxcca.pwcca_similarity(x, y), atol=1e-10
    )


def test_dead_neurons_and_gradients(data):
    x, y = data
    x = x.copy()
    x[:, 3] = 2.0
    s = stream(x, y, np.float64)
    assert int(st.cca(s).rank_x) == 11
    np.testing.assert_allclose(st.pwcca(s).similarity, jaxcca.pwcca_similarity(x, y), atol=1e-10)

    def f(xx):
        return st.pwcca(st.update(st.init(12, 12, np.float64), xx, xx)).similarity

    g = jax.grad(f)(jnp.asarray(x))
    assert np.all(np.isfinite(g))


def test_eight_devices_merge_across_matches_one_device():
    code = textwrap.dedent(
        """
        import os
        os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=8"
        import jax, jax.numpy as jnp, numpy as np
        from jax.sharding import Mesh, PartitionSpec as P
        jax.config.update("jax_enable_x64", True)
        import jaxcca
        from jaxcca import streaming as st
        rng = np.random.default_rng(2)
        x = rng.standard_normal((800, 6)) + 3
        y = x @ rng.standard_normal((6, 5)) + rng.standard_normal((800, 5))
        mesh = Mesh(np.array(jax.devices()), ("data",))

        def local(xb, yb):
            s = st.update(st.init(6, 5, jnp.float64), xb, yb)
            return st.merge_across(s, "data")

        merged = jax.jit(jax.shard_map(local, mesh=mesh, in_specs=(P("data"), P("data")),
                                       out_specs=P(), check_vma=False))(x, y)
        one = st.update(st.init(6, 5, jnp.float64), x, y)
        for a, b in zip(merged, one):
            np.testing.assert_allclose(a, b, atol=1e-9)
        np.testing.assert_allclose(st.pwcca(merged).similarity,
                                   jaxcca.pwcca_similarity(x, y), atol=1e-10)
        print("ok")
        """
    )
    # simulated CPU devices, also on a machine with an accelerator
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path), JAX_PLATFORMS="cpu")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().endswith("ok")


def test_bad_batches():
    s = st.init(3, 2)
    with pytest.raises(ValueError, match="same batch"):
        st.update(s, np.ones((4, 3), np.float32), np.ones((5, 2), np.float32))
    with pytest.raises(ValueError, match="do not match"):
        st.update(s, np.ones((4, 2), np.float32), np.ones((4, 2), np.float32))


def _case(data, case):
    x, y = (a.copy() for a in data)
    if case == "tiny":
        x, y = x * 1e-30, y * 1e-30
    elif case == "huge":
        x, y = x * 1e30, y * 1e-30
    elif case == "huge_neuron":
        x[:, 1] *= 1e20
    elif case == "grows":  # later batches need a smaller scale: the state is rescaled
        x[:301, 2] = 0.0  # and a neuron first seen at zero takes the later batches' scale
        x[301:, :] *= 1e20
    return x, y


@pytest.mark.parametrize("case", ["tiny", "huge", "huge_neuron", "grows"])
def test_float32_state_right_at_any_magnitude(data, case):
    x, y = _case(data, case)
    s = stream(x.astype(np.float32), y.astype(np.float32), np.float32)
    assert s.sxx.dtype == np.float32
    np.testing.assert_allclose(st.cca(s).similarity, jaxcca.cca_similarity(x, y), atol=1e-4)
    np.testing.assert_allclose(st.svcca(s).similarity, jaxcca.svcca_similarity(x, y), atol=1e-4)
    np.testing.assert_allclose(st.pwcca(s).similarity, jaxcca.pwcca_similarity(x, y), atol=1e-4)
    # Weights in the units of the data (finite wherever the float32 variates are).
    if case in ("tiny", "huge_neuron"):
        res = st.cca(s)
        hx = (x - x.mean(0)) @ np.asarray(res.x_weights, np.float64)
        hy = (y - y.mean(0)) @ np.asarray(res.y_weights, np.float64)
        np.testing.assert_allclose(hx.T @ hy, np.diag(np.asarray(res.rho)), atol=1e-3)


def test_merge_of_states_with_different_scales(data):
    x, y = _case(data, "grows")
    x32, y32 = x.astype(np.float32), y.astype(np.float32)
    a = st.update(st.init(12, 8), x32[:500], y32[:500])
    b = st.update(st.init(12, 8), x32[500:], y32[500:])
    assert not np.array_equal(np.asarray(a.scale_x), np.asarray(b.scale_x))
    whole = st.from_arrays(x, y)
    for merged in (st.merge(a, b), st.merge(b, a)):
        np.testing.assert_array_equal(merged.scale_x, np.minimum(a.scale_x, b.scale_x))
        np.testing.assert_allclose(
            st.pwcca(merged).similarity, st.pwcca(whole).similarity, atol=1e-4
        )
