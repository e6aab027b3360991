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
    cli.main(["all", "--preset", "smoke", "--out", str(tmp_path)])
    results = json.loads((tmp_path / "generalize_vs_memorize" / "results.json").read_text())
    assert set(results["pwcca_distance"]) == set(LAYERS)
    for d in results["pwcca_distance"].values():
        assert all(0.0 <= v <= 1.0 for v in d.values())
    assert (tmp_path / "report.md").read_text().startswith("# jaxcca reproduction report")
    assert (tmp_path / "generalize_vs_memorize" / "pwcca_distance_by_layer.png").stat().st_size > 0
    capsys.readouterr()
    cli.main(["all", "--preset", "smoke", "--out", str(tmp_path)])
    assert "skipping" in capsys.readouterr().out
