"""train.fit: resume after a kill mid-write, fallback from a damaged checkpoint, frozen groups."""

import json
import os
import shutil
import subprocess
import sys

import jax
import numpy as np
import pytest

pytest.importorskip("flax")
pytest.importorskip("sklearn")

from flax import nnx  # noqa: E402

from reproduce import __main__ as cli  # noqa: E402
from reproduce import configs, train  # noqa: E402


@pytest.fixture(autouse=True)
def standard_promotion():
    with jax.numpy_dtype_promotion("standard"):
        yield


def cli_train(out, kill=None):
    """``python -m reproduce train --config digits_convnet --preset smoke`` in a subprocess."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "JAX_PLATFORMS": "cpu"}
    env.pop("REPRODUCE_KILL_DURING", None)
    if kill:
        env["REPRODUCE_KILL_DURING"] = kill
    cmd = [sys.executable, "-m", "reproduce", "train", "--config", "digits_convnet"]
    cmd += ["--preset", "smoke", "--out", str(out)]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)


def final_state(run_dir):
    _, path = train.checkpoints(run_dir)[-1]
    with np.load(path) as f:
        return [f[k] for k in sorted(f.files)]


def assert_same_run(a, b):
    for x, y in zip(final_state(a), final_state(b), strict=True):
        np.testing.assert_array_equal(x, y)
    assert (a / "metrics.json").read_text() == (b / "metrics.json").read_text()


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted smoke run (4 steps, checkpoints at 0, 2, 4)."""
    out = tmp_path_factory.mktemp("reference")
    r = cli_train(out)
    assert r.returncode == 0, r.stderr
    return out / "train" / "digits_convnet_smoke"


def test_killed_during_checkpoint_then_metrics_write_resumes_identically(tmp_path, reference):
    run = tmp_path / "train" / "digits_convnet_smoke"
    # killed halfway through writing the step-2 checkpoint
    r = cli_train(tmp_path, kill="checkpoint:ckpt_000002.npz:1")
    assert r.returncode == -9
    names = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert names[0].startswith(".tmp-ckpt_000002.npz") and names[1:] == ["ckpt_000000.npz"]
    assert [s for s, _ in train.checkpoints(run)] == [0]  # the partial file is not a checkpoint
    # resumed from step 0, then killed during its second metrics write (step 4)
    r = cli_train(tmp_path, kill="metrics:metrics.json:2")
    assert r.returncode == -9
    assert "from step 0" in r.stdout  # step 0 was the latest complete checkpoint
    assert [s for s, _ in train.checkpoints(run)] == [0, 2]
    assert any(p.name.startswith(".tmp-metrics.json") for p in run.iterdir())
    r = cli_train(tmp_path)
    assert r.returncode == 0, r.stderr
    assert "resuming" in r.stdout and "from step 2" in r.stdout
    assert_same_run(run, reference)
    assert sorted(json.loads((run / "metrics.json").read_text())) == ["0", "2", "4"]
    # strict names: temporary and stray files are never read as activations or checkpoints
    (run / "activations" / "step_000002.npz.bak").write_bytes(b"x")
    steps, acts, how = train.read_activations(run)
    assert steps == [0, 2, 4] and acts["conv1"].shape[0] == 3
    assert how["conv1"].startswith("none")


def test_damaged_latest_checkpoint_falls_back_to_the_previous_one(tmp_path, reference):
    run = tmp_path / "train" / "digits_convnet_smoke"
    shutil.copytree(reference, run)
    (run / "done.json").unlink()
    ckpt = run / "checkpoints" / "ckpt_000004.npz"
    ckpt.write_bytes(ckpt.read_bytes()[:100])
    r = cli_train(tmp_path)
    assert r.returncode == 0, r.stderr
    assert f"checkpoint {ckpt} is unusable" in r.stdout and "falling back" in r.stdout
    assert "resuming" in r.stdout and "from step 2" in r.stdout
    assert_same_run(run, reference)


def test_frozen_groups_and_their_batch_norm_statistics(tmp_path):
    cfg = configs.get_config("svcca_convnet", "smoke")
    cfg.update(steps=4, every=4, batch=16, freeze={"conv/0": 2, "fc2": 0, "bn_fc2": 0})
    model, data = configs.build(cfg)
    saved = {
        "conv0": [np.array(model.conv[0].kernel[...])],
        "fc2": [np.array(model.fc2.kernel[...]), np.array(model.bn_fc2.mean[...])],
        "fc1": [np.array(model.fc1.kernel[...]), np.array(model.bn_fc1.mean[...])],
    }
    # conv/0 trains for two steps, then freezes: its kernel after step 2 is kept
    cfg2 = {**cfg, "steps": 2, "every": 2}
    model2, _ = configs.build(cfg2)
    train.fit(tmp_path / "two", model2, data, cfg2)
    train.fit(tmp_path / "four", model, data, cfg)
    np.testing.assert_array_equal(model.conv[0].kernel[...], model2.conv[0].kernel[...])
    assert not np.array_equal(model.conv[0].kernel[...], saved["conv0"][0])
    for a, b in zip(saved["fc2"], [model.fc2.kernel[...], model.bn_fc2.mean[...]], strict=True):
        np.testing.assert_array_equal(a, b)  # frozen from step 0: parameters and statistics
    for a, b in zip(saved["fc1"], [model.fc1.kernel[...], model.bn_fc1.mean[...]], strict=True):
        assert not np.array_equal(a, b)  # not frozen: both moved
    with pytest.raises(ValueError, match="no parameter under 'conv/9'"):
        train.make_optimizer(model, {**cfg, "freeze": {"conv/9": 1}})


def test_a_frozen_layer_normalises_with_its_running_averages():
    # frozen whole: from its freeze step a batch norm uses its (frozen) running averages in
    # training too, so the layers above train on what the frozen layer gives at evaluation
    model, _ = configs.build(configs.get_config("svcca_convnet", "smoke"))
    freeze = {"conv/1": 2, "bn_conv2": 2, "bn_fc2": 0}
    bns = {"bn_conv2": model.bn_conv2, "bn_fc1": model.bn_fc1, "bn_fc2": model.bn_fc2}
    train.train_mode(model, freeze, 1)
    assert {k: m.use_running_average for k, m in bns.items()} == {
        "bn_conv2": False,
        "bn_fc1": False,
        "bn_fc2": True,
    }
    train.train_mode(model, freeze, 2)
    assert {k: m.use_running_average for k, m in bns.items()} == {
        "bn_conv2": True,
        "bn_fc1": False,
        "bn_fc2": True,
    }
    model.eval()
    train.train_mode(model, None, 5)
    assert not any(m.use_running_average for m in bns.values())


def test_a_frozen_resnet_block_stops_whole_and_kept_checkpoints_stay(tmp_path):
    # freeze training's resnet arm: the experiment's own schedule (stem at 0, blocks at 1, 2,
    # 3 of 4 steps); a block frozen at step 2 ends as a 2-step run of the same seed left it:
    # its convolutions, batch-norm scales and batch-norm statistics (and it is in eval mode)
    from reproduce.experiments import freeze_training

    cfg = configs.get_config("resnet", "smoke")
    cfg.update(batch=16, freeze=freeze_training.schedule(cfg), keep_checkpoints=[0])
    assert cfg["freeze"] == {"stem": 0, "bn_stem": 0, "blocks/0": 1, "blocks/1": 2, "blocks/2": 3}
    model, data = configs.build(cfg)
    init = nnx.clone(model)
    two, _ = configs.build(cfg)
    train.fit(tmp_path / "two", two, data, {**cfg, "steps": 2})
    train.fit(tmp_path / "four", model, data, cfg)

    def flat(m, prefix):
        state = nnx.state(m, nnx.Any(nnx.Param, nnx.BatchStat))
        leaves = jax.tree_util.tree_flatten_with_path(state)[0]
        return {
            train._path(p): np.asarray(v) for p, v in leaves if train._path(p).startswith(prefix)
        }

    block = flat(model, "blocks/1/")
    assert any("/bn_proj/mean" in k for k in block) and any("/bn1/var" in k for k in block)
    for k, v in flat(two, "blocks/1/").items():
        np.testing.assert_array_equal(block[k], v, err_msg=k)  # frozen at step 2: unchanged
    for k, v in flat(init, "stem").items():  # frozen from step 0: still the initial values
        np.testing.assert_array_equal(flat(model, "stem")[k], v, err_msg=k)
    for prefix in ("blocks/2/", "out_layer"):  # still training after step 2: moved
        after, before = flat(model, prefix), flat(two, prefix)
        assert any(not np.array_equal(after[k], before[k]) for k in after), prefix
    train.train_mode(model, cfg["freeze"], 2)
    blocks = model.blocks
    assert blocks[1].bn_proj.use_running_average and blocks[1].bn2.use_running_average
    assert not blocks[2].bn1.use_running_average
    # the checkpoint at a kept step survives; the others but the latest two are removed
    kept = [s for s, _ in train.checkpoints(tmp_path / "four")]
    assert kept == [0, 2, 4]
    assert [s for s, _ in train.checkpoints(tmp_path / "two")] == [0, 2]


def test_custom_loss_goes_through_fit(tmp_path):
    cfg = configs.get_config("digits_convnet", "smoke")
    cfg.update(width=0.25, steps=2, every=2, batch=8)
    model, data = configs.build(cfg)
    seen = []

    def loss_fn(m, x, y):
        seen.append(x.shape)  # traced once
        return train.cross_entropy(m, x, y) + 0.0 * jax.numpy.sum(m.features(x)["fc"])

    train.fit(tmp_path, model, data, cfg, loss_fn=loss_fn)
    assert seen == [(8, 8, 8, 1)]
    assert not nnx.state(model, nnx.Intermediate)


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["train", "--config", "lstm_ptb", "--preset", "smoke"], "pass --data-dir"),
        (["train", "--config", "digits_convnet", "--data-dir", "."], "drop --data-dir"),
        (["train"], "train needs --config NAME, one of: digits_convnet"),
        (["train", "--config", "vgg"], "unknown config 'vgg'"),
        (["all", "--preset", "smoke", "--data-dir", "."], "drop --data-dir"),
        (["report"], "run `python -m reproduce all --out"),
    ],
)
def test_cli_bad_inputs_give_one_line_errors(argv, says, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        cli.main([*argv, "--out", str(tmp_path / "out")])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and says in err, err
