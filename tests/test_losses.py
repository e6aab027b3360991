"""Loss terms: finite gradients at degenerate inputs, and use in an nnx.jit train step."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxcca
from jaxcca.losses import similarity_loss


@pytest.mark.parametrize("measure", ["cca", "svcca", "pwcca", "cka"])
def test_finite_gradients_at_identical_and_degenerate_inputs(measure):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 10)).astype(np.float32)
    dead = x.copy()
    dead[:, 0] = 0.0
    for a, b in [(x, x), (dead, x), (x, np.concatenate([x, x[:, :2]], axis=1))]:
        g = jax.grad(lambda u, b=b: similarity_loss(u, b, measure=measure))(a)
        assert np.all(np.isfinite(g)), measure
    pull = similarity_loss(x, x, measure=measure)
    push = similarity_loss(x, x, measure=measure, direction="push")
    np.testing.assert_allclose(pull + push, 1.0, atol=1e-6)


def test_bad_arguments():
    x = np.ones((8, 2), np.float32)
    with pytest.raises(ValueError, match="measure must be one of"):
        similarity_loss(x, x, measure="mmd")
    with pytest.raises(ValueError, match="direction"):
        similarity_loss(x, x, direction="away")


def test_pulling_a_layer_towards_a_reference_in_an_nnx_train_step():
    nnx = pytest.importorskip("flax.nnx")
    optax = pytest.importorskip("optax")
    # optax/flax internals are not written for the suite's strict promotion mode.
    with jax.numpy_dtype_promotion("standard"):
        _train_and_check(nnx, optax)


def _train_and_check(nnx, optax):
    rng = np.random.default_rng(1)
    inputs = jnp.asarray(rng.standard_normal((256, 8)), jnp.float32)
    reference = jnp.tanh(inputs @ jnp.asarray(rng.standard_normal((8, 6)), jnp.float32))

    model = nnx.Linear(8, 6, rngs=nnx.Rngs(0))
    opt = nnx.Optimizer(model, optax.adam(0.05), wrt=nnx.Param)

    @nnx.jit
    def step(model, opt):
        def loss_fn(m):
            return similarity_loss(jnp.tanh(m(inputs)), reference, measure="svcca", keep=4)

        loss, grads = nnx.value_and_grad(loss_fn)(model)
        opt.update(model, grads)
        return loss

    def sim():
        return float(jaxcca.svcca_similarity(jnp.tanh(model(inputs)), reference, keep=4))

    before = sim()
    for _ in range(40):
        step(model, opt)
    assert sim() > before + 0.05
    assert sim() > 0.9
