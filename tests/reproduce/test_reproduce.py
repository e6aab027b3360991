"""Smoke tests of the reproduce package on tiny settings."""

import json

import jax
import numpy as np
import pytest

pytest.importorskip("flax")
pytest.importorskip("sklearn")

from flax import nnx  # noqa: E402

from reproduce import __main__ as cli  # noqa: E402
from reproduce.data import load_digits_splits, random_labels  # noqa: E402
from reproduce.models import LAYERS, ConvNet, capture_activations  # noqa: E402
from reproduce.train import probe_activations, train_convnet  # noqa: E402


@pytest.fixture(autouse=True)
def standard_promotion():
    # flax/optax are not written for the suite's strict promotion mode.
    with jax.numpy_dtype_promotion("standard"):
        yield


def test_splits_and_shared_random_labels():
    data = load_digits_splits()
    assert data["train"].images.shape == (1200, 8, 8, 1)
    assert data["probe"].images.shape == (300, 8, 8, 1)
    a = random_labels(data["train"].labels, seed=7)
    b = random_labels(data["train"].labels, seed=7)
    np.testing.assert_array_equal(a, b)  # one labelling shared by a group
    assert np.mean(a == data["train"].labels) < 0.3
    assert sorted(np.bincount(a)) == sorted(np.bincount(data["train"].labels))


def test_one_training_step_and_capture_shapes():
    data = load_digits_splits()
    model = train_convnet(data["train"].images[:64], data["train"].labels[:64], seed=0, steps=1)
    acts = capture_activations(model, data["probe"].images[:10])
    assert set(acts) == set(LAYERS)
    assert acts["conv1"].shape == (10, 8, 8, 16) and acts["fc"].shape == (10, 64)
    reduced = probe_activations(model, data["probe"].images[:10])
    assert reduced["conv2"].shape == (10, 32)
    # training never sows: nothing piles up on the module
    assert not nnx.state(model, nnx.Intermediate)


def test_width_multiplier_changes_every_layer():
    acts = capture_activations(ConvNet(2.0, rngs=nnx.Rngs(0)), np.zeros((3, 8, 8, 1), np.float32))
    assert acts["conv1"].shape[-1] == 32 and acts["fc"].shape[-1] == 128


def test_cli_smoke_run_writes_report_and_resumes(tmp_path, capsys):
    """Every experiment at the smoke preset: results, figures, report, and skip on rerun."""
    from reproduce.experiments import EXPERIMENTS

    cli.main(["all", "--preset", "smoke", "--out", str(tmp_path)])
    report = (tmp_path / "report.md").read_text()
    assert report.startswith("# jaxcca reproduction report")
    for name in EXPERIMENTS:
        results = json.loads((tmp_path / name / "results.json").read_text())
        assert results["claims"] and all(isinstance(c["held"], bool) for c in results["claims"])
        for c in results["claims"]:
            assert c["claim"] in report
        for fig in results["figures"]:
            assert (tmp_path / name / fig).stat().st_size > 0
    mem = json.loads((tmp_path / "memorize" / "results.json").read_text())
    assert set(mem["pwcca_distance"]) == set(LAYERS)
    for d in mem["pwcca_distance"].values():
        assert all(0.0 <= v <= 1.0 for v in d.values())
    capsys.readouterr()
    cli.main(["all", "--preset", "smoke", "--out", str(tmp_path), "--only", "synthetic"])
    assert "skipping" in capsys.readouterr().out


def test_dynamics_checkpoints_on_disk_layout_and_resume(tmp_path):
    from reproduce import dynamics

    cfg = dynamics.PRESETS["smoke"]
    record = dynamics.train_with_checkpoints(tmp_path, cfg, log=lambda *a: None)
    assert [r["step"] for r in record] == list(range(0, cfg["steps"] + 1, cfg["every"]))
    back, stacks = dynamics.load_checkpoints(tmp_path)
    assert back == record
    assert stacks["conv1"].shape == (len(record), 300, 16)  # spatial mean per channel
    assert stacks["fc"].shape == (len(record), 300, 64)
    # the analysis reuses the written checkpoints: training is not redone
    mtime = (tmp_path / "activations" / record[-1]["file"]).stat().st_mtime_ns
    res = dynamics.run(tmp_path, preset="smoke", log=lambda *a: None)
    assert (tmp_path / "activations" / record[-1]["file"]).stat().st_mtime_ns == mtime
    assert set(res["distance_to_final"]["pwcca"]) == set(LAYERS)
    np.testing.assert_allclose(
        [d[-1] for d in res["distance_to_final"]["pwcca"].values()], 0.0, atol=1e-4
    )


def test_synthetic_measures_order_at_low_signal(tmp_path):
    from reproduce import synthetic

    res = synthetic.run(tmp_path, preset="smoke", log=lambda *a: None)
    sim = res["similarity"]
    # with every dimension shared signal, every measure says identical
    assert sim["cca"][-1] > 0.999 and sim["pwcca"][-1] > 0.999
    # with 10% signal, the unweighted mean is the lowest
    assert sim["cca"][0] < sim["pwcca"][0]


def test_regularizer_pulls_and_pushes(tmp_path):
    """The issue-5 demonstration at a reduced setting: the similarity term moves the layer."""
    from reproduce import regularize

    regularize.PRESETS["test"] = {"steps": 120, "lam": 1.0, "keep": 16, "batch": 256}
    try:
        res = regularize.run(tmp_path, preset="test", log=lambda *a: None)
    finally:
        del regularize.PRESETS["test"]
    s = res["students"]
    assert s["pull"]["svcca_similarity"] > s["baseline"]["svcca_similarity"] + 0.05
    assert s["push"]["svcca_similarity"] < s["baseline"]["svcca_similarity"] - 0.05
    assert min(r["test_accuracy"] for r in s.values()) > 0.85


def test_lstm_language_model_layers_and_one_step():
    import optax

    from reproduce.models import LSTMLanguageModel

    model = LSTMLanguageModel(20, embed=8, hidden=12, layers=3, rngs=nnx.Rngs(0))
    ids = np.random.default_rng(0).integers(0, 20, (4, 9)).astype(np.int32)
    acts = capture_activations(model, ids)
    assert model.layer_names == ("lstm1", "lstm2", "lstm3", "logits")
    assert acts["lstm2"].shape == (4, 9, 12) and acts["logits"].shape == (4, 9, 20)
    opt = nnx.Optimizer(model, optax.adam(1e-2), wrt=nnx.Param)
    before = np.asarray(model.out_layer.kernel[...]).copy()

    def loss_fn(m):
        return optax.softmax_cross_entropy_with_integer_labels(m(ids[:, :-1]), ids[:, 1:]).mean()

    loss, grads = nnx.value_and_grad(loss_fn)(model)
    opt.update(model, grads)
    assert np.isfinite(float(loss))
    assert not np.allclose(before, np.asarray(model.out_layer.kernel[...]))
    with pytest.raises(ValueError, match="layers must be 1, 2 or 3"):
        LSTMLanguageModel(20, layers=4, rngs=nnx.Rngs(0))
