"""Smoke tests of reproduce.zoo on tiny models: one training step, capture, width, BN modes."""

import jax
import numpy as np
import pytest

pytest.importorskip("flax")
optax = pytest.importorskip("optax")

from flax import nnx  # noqa: E402

from reproduce import zoo  # noqa: E402

IMAGE = (8, 8, 1)
VOCAB, T = 20, 12


@pytest.fixture(autouse=True)
def standard_promotion():
    # flax/optax are not written for the suite's strict promotion mode.
    with jax.numpy_dtype_promotion("standard"):
        yield


def _images(n=8, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, *IMAGE)).astype(np.float32), (np.arange(n) % 10).astype(np.int32)


def _tokens(b=4, seed=0):
    ids = np.random.default_rng(seed).integers(0, VOCAB, (b, T + 1)).astype(np.int32)
    return ids[:, :-1], ids[:, 1:]


# name -> (factory(width), batch, loss kind, expected {layer: shape} at width 0.25)
CASES = {
    "svcca_convnet": (
        lambda w: zoo.SVCCAConvNet(w, in_shape=IMAGE, rngs=nnx.Rngs(0)),
        _images,
        "classify",
        {
            "conv1": (8, 8, 8, 16),
            "conv2": (8, 8, 8, 16),
            "conv3": (8, 4, 4, 32),
            "conv4": (8, 4, 4, 32),
            "conv5": (8, 4, 4, 32),
            "fc1": (8, 64),
            "fc2": (8, 64),
            "logits": (8, 10),
        },
    ),
    "resnet": (
        lambda w: zoo.ResNet(w, blocks=(1, 1, 1), in_shape=IMAGE, rngs=nnx.Rngs(0)),
        _images,
        "classify",
        {
            "stem": (8, 8, 8, 4),
            "block1": (8, 8, 8, 4),
            "block2": (8, 4, 4, 8),
            "block3": (8, 2, 2, 16),
            "pool": (8, 16),
            "logits": (8, 10),
        },
    ),
    "lstm": (
        lambda w: zoo.LSTMLanguageModel(VOCAB, embed=8, hidden=16, layers=2, rngs=nnx.Rngs(0)),
        _tokens,
        "lm",
        {"lstm1": (4, T, 16), "lstm2": (4, T, 16), "logits": (4, T, VOCAB)},
    ),
}


def _params(model):
    return [np.array(v) for v in jax.tree.leaves(nnx.state(model, nnx.Param))]


@pytest.mark.parametrize("name", list(CASES))
def test_one_training_step_then_capture(name):
    make, batch, kind, shapes = CASES[name]
    model = make(0.25)
    x, y = batch()
    before = _params(model)
    stats_before = [np.array(v) for v in jax.tree.leaves(nnx.state(model, nnx.BatchStat))]
    opt = nnx.Optimizer(model, optax.adam(1e-2), wrt=nnx.Param)
    losses = zoo.train_steps(model, opt, [(x, y)], loss_kind=kind)
    assert losses.shape == (1,) and np.isfinite(losses).all()
    after = _params(model)
    assert all(not np.array_equal(a, b) for a, b in zip(before, after, strict=True))
    # batch norm trained in train mode: its running statistics moved
    stats_after = [np.array(v) for v in jax.tree.leaves(nnx.state(model, nnx.BatchStat))]
    assert len(stats_after) == len(stats_before)
    assert all(not np.array_equal(a, b) for a, b in zip(stats_before, stats_after, strict=True))
    # training never sows
    assert not nnx.state(model, nnx.Intermediate)

    acts = zoo.capture(model, x)
    assert tuple(acts) == zoo.layer_names(model)
    assert {k: v.shape for k, v in acts.items()} == shapes
    assert all(np.isfinite(v).all() for v in acts.values())
    assert not nnx.state(model, nnx.Intermediate)


def test_layer_name_constants():
    assert zoo.SVCCA_CONVNET_LAYERS == tuple(CASES["svcca_convnet"][3])
    assert zoo.RESNET_LAYERS == tuple(CASES["resnet"][3])
    assert zoo.lstm_layers(2) == tuple(CASES["lstm"][3])
    assert zoo.resnet_layers((2, 1)) == ("stem", "block1", "block2", "block3", "pool", "logits")


@pytest.mark.parametrize("name", ["svcca_convnet", "resnet"])
def test_width_multiplier_changes_every_layer(name):
    make, batch, _, _ = CASES[name]
    x, _ = batch(n=2)
    narrow, wide = zoo.capture(make(0.25), x), zoo.capture(make(0.5), x)
    for layer in zoo.layer_names(make(0.25)):
        if layer != "logits":
            assert wide[layer].shape[-1] == 2 * narrow[layer].shape[-1], layer
        else:
            assert wide[layer].shape == narrow[layer].shape


@pytest.mark.parametrize("name", ["svcca_convnet", "resnet"])
def test_capture_uses_eval_mode_and_restores_the_mode(name):
    make, batch, kind, _ = CASES[name]
    model = make(0.25)
    x, y = batch()
    opt = nnx.Optimizer(model, optax.adam(1e-2), wrt=nnx.Param)
    zoo.train_steps(model, opt, [(x, y)] * 2, loss_kind=kind)  # running stats != init
    bns = [m for _, m in nnx.iter_modules(model) if isinstance(m, nnx.BatchNorm)]
    assert bns and all(not bn.use_running_average for bn in bns)

    # eval mode: an example's activations do not depend on the rest of the batch
    full, part = zoo.capture(model, x), zoo.capture(model, x[:3])
    for layer in full:
        np.testing.assert_allclose(part[layer], full[layer][:3], rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(zoo.capture(model, x)["logits"], full["logits"])
    assert all(not bn.use_running_average for bn in bns)  # train mode restored

    # batch statistics (train mode) would make them depend on the batch
    train_logits = np.asarray(model(x)[:3])
    assert not np.allclose(train_logits, np.asarray(model(x[:3])), atol=1e-5)

    model.eval()
    zoo.capture(model, x)
    assert all(bn.use_running_average for bn in bns)  # eval mode kept


def test_errors():
    with pytest.raises(ValueError, match="loss_kind must be one of"):
        zoo.make_train_step("regression")
    make, batch, _, _ = CASES["lstm"]
    model = make(0.25)
    opt = nnx.Optimizer(model, optax.adam(1e-2), wrt=nnx.Param)
    x, y = batch()
    with pytest.raises(ValueError, match="loss_kind='classify' expects"):
        zoo.train_steps(model, opt, [(x, y)], loss_kind="classify")
    with pytest.raises(TypeError, match="integer"):
        zoo.train_steps(model, opt, [(x, y.astype(np.float32))], loss_kind="lm")
    with pytest.raises(TypeError, match="layer_names"):
        zoo.layer_names(nnx.Linear(2, 2, rngs=nnx.Rngs(0)))
