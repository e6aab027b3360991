"""The SVCCA-paper experiments' own pieces: each is checked against an independent computation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

pytest.importorskip("flax")
pytest.importorskip("sklearn")

import jaxcca  # noqa: E402
from reproduce import configs  # noqa: E402
from reproduce.experiments import (  # noqa: E402
    architectures,
    bottom_up,
    class_sensitivity,
    freeze_training,
    svcca_projection,
)


@pytest.fixture(autouse=True)
def standard_promotion():
    with jax.numpy_dtype_promotion("standard"):
        yield


def _related(n=400, d1=12, d2=9, seed=0):
    rng = np.random.default_rng(seed)
    s = rng.standard_normal((n, 4))
    a = s @ rng.standard_normal((4, d1)) + 0.3 * rng.standard_normal((n, d1))
    b = s @ rng.standard_normal((4, d2)) + 0.3 * rng.standard_normal((n, d2))
    return a, b


def test_svcca_directions_have_jaxccas_correlations_and_project_to_them():
    a, b = _related()
    w, rho = svcca_projection.svcca_directions(a, b)
    ref = jaxcca.svcca(a.astype(np.float32), b.astype(np.float32), keep=0.99)
    p = int(min(ref.keep_x, ref.keep_y))
    np.testing.assert_allclose(rho[:p], np.asarray(ref.rho)[:p], atol=2e-4)
    # the directions' variates are uncorrelated with unit norm (CCA's whitening)
    z = (a - a.mean(0)) @ w[:, :p]
    np.testing.assert_allclose(z.T @ z, np.eye(p), atol=1e-8)


def test_logits_with_identity_is_the_network_and_a_projection_changes_it():
    cfg = configs.get_config("svcca_convnet", "smoke")
    model, data = configs.build(cfg)
    model.eval()
    x = jnp.asarray(data["probe_x"][:32])
    feats = model.features(x)
    base = svcca_projection.identity(feats)
    np.testing.assert_allclose(
        svcca_projection.logits_with(model, x, base), feats["logits"], rtol=1e-5, atol=1e-5
    )
    a = svcca_projection.rows(feats["fc1"])
    one = svcca_projection.projection(a, np.eye(a.shape[1])[:, :1])
    out = svcca_projection.logits_with(model, x, {**base, "fc1": one})
    assert not np.allclose(out, feats["logits"], atol=1e-4)


def test_participation_counts_neurons():
    w = np.zeros((10, 2))
    w[3, 0] = 1.0
    w[:, 1] = 1.0
    np.testing.assert_array_equal(svcca_projection.participation(w), [1, 9])


def test_class_sensitivity_zero_frequency_is_dft_cca_of_the_whole_map():
    rng = np.random.default_rng(0)
    layer = rng.standard_normal((120, 4, 4, 5)).astype(np.float32)
    logit = (layer[:, 1:3, :, 2].sum((1, 2)) + rng.standard_normal(120)).astype(np.float32)
    y = logit[:, None, None, None]
    whole = float(jaxcca.dft_cca_similarity(layer, y))
    pooled = float(jaxcca.dft_cca_similarity(class_sensitivity.zero_frequency(layer, 8), y))
    assert whole == pytest.approx(pooled, abs=1e-5)


def test_pooled_rows_and_padding_keep_svcca():
    rng = np.random.default_rng(1)
    a = rng.standard_normal((50, 4, 4, 3)).astype(np.float32)
    b = (a.mean(axis=(1, 2)) @ rng.standard_normal((3, 6))).astype(np.float32)
    b = b + 0.5 * rng.standard_normal(b.shape).astype(np.float32)
    x, y = bottom_up.pooled_rows(a, 1, 8), bottom_up.pooled_rows(b, 1, 8)
    assert x.shape == (50, 8) and y.shape == (50, 8)
    direct = jaxcca.svcca_similarity(a.mean(axis=(1, 2)), b, keep=0.99)
    np.testing.assert_allclose(jaxcca.svcca_similarity(x, y, keep=0.99), direct, atol=1e-5)
    assert bottom_up.pooled_rows(a, 4, 3).shape == (800, 3)  # channels over positions


def test_convergence_time_orders_fast_and_slow_layers():
    fast = [0.2, 0.9, 0.95, 1.0, 1.0]
    slow = [0.2, 0.3, 0.5, 0.8, 1.0]
    assert bottom_up.convergence_time(fast) < bottom_up.convergence_time(slow) < 1.0


def test_architecture_statistics_on_known_matrices():
    diag = np.eye(5) * 0.5 + 0.4
    assert architectures.depth_agreement(diag) == pytest.approx(1.0)
    declining = np.full((4, 4), 0.5)
    np.fill_diagonal(declining, [0.9, 0.8, 0.7, 0.6])
    assert architectures.decline(declining) == pytest.approx(1.0)
    low = np.full((3, 3), 0.6)
    low[0, -1] = 0.1
    assert architectures.top_bottom(low) == pytest.approx(0.5)


def test_freezing_lower_layers_cuts_the_step_flops():
    cfg = configs.get_config("svcca_convnet", "smoke")
    cfg["layer_groups"] = cfg["layer_groups"][:2]
    _, data = configs.build(cfg)
    phases = freeze_training.phase_costs(cfg, data, reps=1)
    flops = [p["flops"] for p in phases]
    assert len(flops) == 3 and flops[0] > flops[1] > flops[2] > 0
    assert freeze_training.saved(phases, "flops")[0] == pytest.approx(1 - np.mean(flops) / flops[0])


def test_early_separation_sees_a_class_apart_in_the_lower_layers():
    adj = np.tile(np.linspace(0.1, 0.9, 6)[:, None], (1, 10))
    assert class_sensitivity.early_separation(adj, 0) == pytest.approx(0.0)
    apart = adj.copy()
    apart[:3, 0] += 0.5  # class 0 apart in the lower half only
    late = adj.copy()
    late[3:, 4] += 0.5  # class 4 apart in the upper half only
    # class 0 is 0.5 from the others' mean, every other class 0.5 / 9 from its others' mean
    assert class_sensitivity.early_separation(apart, 0) == pytest.approx(0.5 - 0.5 / 9)
    assert class_sensitivity.early_separation(late, 4) == pytest.approx(0.0)
    assert class_sensitivity.early_separation(apart, 3) < 0


def test_batch_norm_and_stripe_statistics_on_made_up_pairs():
    pairs = [["conv1", "bn_in", 0.6], ["bn_in", "bn", 0.99], ["bn", "conv2", 0.8]]
    bn, others = bottom_up.batch_norm_gap(pairs)
    assert bn == pytest.approx(0.99)
    assert sorted(others) == [0.6, 0.8]
    layers = ["stem", "block1_branch", "block1", "block2_branch", "block2"]
    sim = {
        ("stem", "block1"): 0.9,
        ("block1", "block2"): 0.8,
        ("block1_branch", "block2_branch"): 0.3,
    }
    pairs = [[a, b, sim.get((a, b), 0.5)] for i, a in enumerate(layers) for b in layers[i + 1 :]]
    # separation 2: stream 0.9, 0.8 against branch 0.3; separation 4: stream only (skipped)
    assert bottom_up.stripe_contrast(pairs, layers) == pytest.approx(0.85 - 0.3)
    swapped = bottom_up.stripe_contrast(pairs, layers, relabel=lambda _, k: ~k)
    assert swapped == pytest.approx(0.3 - 0.85)


def test_stripes_restricted_to_identity_skips():
    layers = ["stem", "block1_branch", "block1", "block2_branch", "block2", "block3_branch"]
    layers += ["block3"]
    identity = ["block1", "block3"]  # block2 starts a stage: a projection skip
    assert bottom_up.identity_joined("stem", "block1", layers, identity)
    assert not bottom_up.identity_joined("block1", "block2", layers, identity)
    assert not bottom_up.identity_joined("stem", "block3", layers, identity)  # through block2
    assert bottom_up.identity_joined("block2", "block3", layers, identity)
    sim = {("stem", "block1"): 0.9, ("block1", "block2"): 0.2, ("block2", "block3"): 0.7}
    pairs = [[a, b, sim.get((a, b), 0.5)] for i, a in enumerate(layers) for b in layers[i + 1 :]]
    pairs = [p for p in pairs if bottom_up._stream(p[0]) == bottom_up._stream(p[1])]
    # separation 2: every stream pair 0.9, 0.2, 0.7 (mean 0.6) or the identity-joined ones
    # 0.9, 0.7 (mean 0.8) against branch pairs 0.5; separation 4: stream 0.5 (stem/block2,
    # block1/block3: not identity-joined) against branch 0.5
    assert bottom_up.stripe_contrast(pairs, layers) == pytest.approx((0.1 + 0.0) / 2)
    only = bottom_up.stripe_contrast(pairs, layers, identity=identity)
    assert only == pytest.approx(0.8 - 0.5)  # separation 4 has no identity-joined stream pair
