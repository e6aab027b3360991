"""The networks: one training step, capture in eval mode, layer names, width multiplier."""

import jax
import numpy as np
import pytest

pytest.importorskip("flax")
optax = pytest.importorskip("optax")

from flax import nnx  # noqa: E402

from reproduce import models, train  # noqa: E402

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


# name -> (factory(width), batch, expected {layer: shape} at width 0.25)
CASES = {
    "svcca_convnet": (
        lambda w: models.SVCCAConvNet(w, in_shape=IMAGE, rngs=nnx.Rngs(0)),
        _images,
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
        lambda w: models.ResNet(w, blocks=(1, 1, 1), in_shape=IMAGE, rngs=nnx.Rngs(0)),
        _images,
        {
            "stem": (8, 8, 8, 4),
            "block1": (8, 8, 8, 4),
            "block2": (8, 4, 4, 8),
            "block3": (8, 2, 2, 16),
            "pool": (8, 16),
            "logits": (8, 10),
        },
    ),
    "convnet": (
        lambda w: models.ConvNet(w, rngs=nnx.Rngs(0)),
        _images,
        {"conv1": (8, 8, 8, 4), "conv2": (8, 8, 8, 8), "fc": (8, 16), "logits": (8, 10)},
    ),
    "lstm": (
        lambda w: models.LSTMLanguageModel(VOCAB, embed=8, hidden=16, layers=2, rngs=nnx.Rngs(0)),
        _tokens,
        {"lstm1": (4, T, 16), "lstm2": (4, T, 16), "logits": (4, T, VOCAB)},
    ),
}


def _params(model):
    return [np.array(v) for v in jax.tree.leaves(nnx.state(model, nnx.Param))]


@pytest.mark.parametrize("name", list(CASES))
def test_one_training_step_then_capture(name):
    make, batch, shapes = CASES[name]
    model = make(0.25)
    x, y = batch()
    before = _params(model)
    stats_before = [np.array(v) for v in jax.tree.leaves(nnx.state(model, nnx.BatchStat))]
    opt = nnx.Optimizer(model, optax.adam(1e-2), wrt=nnx.Param)
    model.train()
    loss = train.make_train_step()(model, opt, x, y, 0)
    assert np.isfinite(float(loss))
    after = _params(model)
    assert all(not np.array_equal(a, b) for a, b in zip(before, after, strict=True))
    # batch norm trained in train mode: its running statistics moved
    stats_after = [np.array(v) for v in jax.tree.leaves(nnx.state(model, nnx.BatchStat))]
    assert all(not np.array_equal(a, b) for a, b in zip(stats_before, stats_after, strict=True))
    assert not nnx.state(model, nnx.Intermediate)  # training never sows

    acts = models.capture(model, x)
    assert tuple(acts) == model.layer_names
    assert {k: v.shape for k, v in acts.items()} == shapes
    assert all(np.isfinite(v).all() for v in acts.values())
    assert not nnx.state(model, nnx.Intermediate)


@pytest.mark.parametrize("name", ["svcca_convnet", "resnet", "convnet"])
def test_width_multiplier_changes_every_layer(name):
    make, batch, _ = CASES[name]
    x, _ = batch(n=2)
    narrow, wide = models.capture(make(0.25), x), models.capture(make(0.5), x)
    for layer in make(0.25).layer_names:
        if layer != "logits":
            assert wide[layer].shape[-1] == 2 * narrow[layer].shape[-1], layer
        else:
            assert wide[layer].shape == narrow[layer].shape


@pytest.mark.parametrize("name", ["svcca_convnet", "resnet"])
def test_capture_uses_eval_mode_and_restores_the_mode(name):
    make, batch, _ = CASES[name]
    model = make(0.25)
    x, y = batch()
    opt = nnx.Optimizer(model, optax.adam(1e-2), wrt=nnx.Param)
    model.train()
    step = train.make_train_step()
    for t in range(2):  # running stats != init
        step(model, opt, x, y, t)
    bns = [m for _, m in nnx.iter_modules(model) if isinstance(m, nnx.BatchNorm)]
    assert bns and all(not bn.use_running_average for bn in bns)

    # eval mode: an example's activations do not depend on the rest of the batch
    full, part = models.capture(model, x), models.capture(model, x[:3])
    for layer in full:
        np.testing.assert_allclose(part[layer], full[layer][:3], rtol=1e-5, atol=1e-5)
    assert all(not bn.use_running_average for bn in bns)  # train mode restored

    # batch statistics (train mode) would make them depend on the batch
    train_logits = np.asarray(model(x)[:3])
    assert not np.allclose(train_logits, np.asarray(model(x[:3])), atol=1e-5)


def test_errors():
    with pytest.raises(ValueError, match="layers must be 1, 2 or 3"):
        models.LSTMLanguageModel(20, layers=4, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="divisible by 4"):
        models.SVCCAConvNet(1.0, in_shape=(6, 6, 1), rngs=nnx.Rngs(0))


def test_extra_layers_keep_the_features_and_add_what_they_name():
    x, _ = _images()
    conv = CASES["svcca_convnet"][0](0.25)
    conv.eval()
    base, extra = conv.features(x), conv.features(x, batch_norm=True)
    for k in base:
        np.testing.assert_array_equal(base[k], extra[k])
    # in eval mode a batch norm is a per-channel affine map of its input, then the ReLU
    bn = conv.bn_conv2
    mean, var = np.asarray(bn.mean[...]), np.asarray(bn.var[...])
    scale = np.asarray(bn.scale[...]) / np.sqrt(var + bn.epsilon)
    z = extra["bn_conv2_in"]
    np.testing.assert_allclose(
        extra["bn_conv2"], (np.asarray(z) - mean) * scale + np.asarray(bn.bias[...]), atol=1e-5
    )
    np.testing.assert_allclose(base["conv2"], np.maximum(extra["bn_conv2"], 0), atol=1e-6)
    order = list(extra)
    assert order.index("bn_conv2_in") < order.index("bn_conv2") < order.index("conv2")
    res = CASES["resnet"][0](0.25)
    res.eval()
    base, extra = res.features(x), res.features(x, branches=True)
    for k in base:
        np.testing.assert_array_equal(base[k], extra[k])
    assert [k for k in extra if k.endswith("_branch")] == [
        "block1_branch",
        "block2_branch",
        "block3_branch",
    ]
    assert extra["block2_branch"].shape == (8, 4, 4, 8)


def test_lstm_states_give_the_hidden_states_of_features_and_the_cell_states():
    ids, _ = _tokens()
    lstm = CASES["lstm"][0](1.0)
    feats, states = lstm.features(ids), lstm.states(ids)
    for k in ("lstm1", "lstm2"):
        np.testing.assert_allclose(states[k], feats[k], atol=1e-6)
        assert states[f"{k}_cell"].shape == feats[k].shape
    # the hidden state is o * tanh(c): it can not exceed tanh(|c|) in size
    c, h = np.asarray(states["lstm2_cell"]), np.asarray(states["lstm2"])
    assert np.all(np.abs(h) <= np.tanh(np.abs(c)) + 1e-6)
    assert not np.allclose(c, h, atol=1e-3)
