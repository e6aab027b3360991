"""Layer-by-layer comparison: capture, one pass, the command line and the figure."""

import json

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np
import pytest
from flax import nnx

import jaxcca
from jaxcca.__main__ import main as cli_main

matplotlib.use("Agg")


class TinyNet(nnx.Module):
    """conv -> sown pooled features -> two dense layers; a token layer when given ids."""

    def __init__(self, rngs):
        f64 = {"param_dtype": jnp.float64, "dtype": jnp.float64}  # jit == eager to round-off
        self.conv = nnx.Conv(2, 4, (3, 3), rngs=rngs, **f64)
        self.fc1 = nnx.Linear(4 * 6 * 6, 8, rngs=rngs, **f64)
        self.fc2 = nnx.Linear(8, 3, rngs=rngs, **f64)

    def __call__(self, x):
        h = nnx.relu(self.conv(x))
        self.sow(nnx.Intermediate, "relu_conv", h)
        h = nnx.tanh(self.fc1(h.reshape(h.shape[0], -1)))
        self.sow(nnx.Intermediate, "hidden", h)
        return self.fc2(h)


def _images(n, seed=0):
    return jnp.asarray(np.random.default_rng(seed).normal(size=(n, 6, 6, 2)))


def _layers(rng, n):
    """Related layers of different widths, one conv and one sequence layer."""
    base = rng.normal(size=(n, 6))
    a = {
        "a0": base + 0.3 * rng.normal(size=(n, 6)),
        "a1": np.tanh(base @ rng.normal(size=(6, 9))) + 0.2 * rng.normal(size=(n, 9)),
        "a2": rng.normal(size=(n, 4)),
    }
    b = {
        "b0": base[:, :3] ** 2 + rng.normal(size=(n, 3)),
        "b1": base @ rng.normal(size=(6, 5)) + rng.normal(size=(n, 5)),
    }
    return a, b


# ----------------------------------------------------------------------------
# Capture
# ----------------------------------------------------------------------------


def test_capture_equals_hand_written_forward():
    model = TinyNet(nnx.Rngs(0))
    x = _images(5)
    acts = jaxcca.capture_layers(model, x, outputs=True)
    conv = model.conv(x)
    relu = nnx.relu(conv)
    fc1 = model.fc1(relu.reshape(5, -1))
    hidden = nnx.tanh(fc1)
    fc2 = model.fc2(hidden)
    expected = {
        "output": fc2,
        "conv": conv,
        "fc1": fc1,
        "fc2": fc2,
        "relu_conv": relu,
        "hidden": hidden,
    }
    assert set(acts) == set(expected)
    for name, value in expected.items():
        np.testing.assert_array_equal(np.asarray(acts[name]), np.asarray(value), err_msg=name)
    # Without outputs=True only the sown intermediates come back.
    sown = jaxcca.capture_layers(model, x)
    assert set(sown) == {"relu_conv", "hidden"}


def test_capture_layer_selection():
    model = TinyNet(nnx.Rngs(0))
    x = _images(4)
    assert list(jaxcca.capture_layers(model, x, outputs=True, layers=["fc2", "conv"])) == [
        "fc2",
        "conv",
    ]
    assert set(jaxcca.capture_layers(model, x, outputs=True, layers=r"^fc")) == {"fc1", "fc2"}
    picked = jaxcca.capture_layers(model, x, outputs=True, layers=lambda n: n.endswith("conv"))
    assert set(picked) == {"conv", "relu_conv"}
    with pytest.raises(ValueError, match=r"unknown layer\(s\) \['fc9'\].*hidden"):
        jaxcca.capture_layers(model, x, layers=["fc9"])
    with pytest.raises(ValueError, match="no layer"):
        jaxcca.capture_layers(model, x, layers="nothing-matches")


def test_reduce_layer_modes():
    rng = np.random.default_rng(0)
    seq = rng.normal(size=(3, 4, 2))
    mask = np.array([[1, 1, 0, 0], [1, 1, 1, 1], [1, 0, 0, 0]])
    mean = np.stack([seq[i, mask[i] > 0].mean(axis=0) for i in range(3)])
    np.testing.assert_allclose(jaxcca.reduce_layer(seq, mask=mask), mean, rtol=1e-12)
    np.testing.assert_allclose(jaxcca.reduce_layer(seq), seq.mean(axis=1), rtol=1e-12)
    last = np.stack([seq[0, 1], seq[1, 3], seq[2, 0]])
    np.testing.assert_array_equal(jaxcca.reduce_layer(seq, tokens="last", mask=mask), last)
    np.testing.assert_array_equal(jaxcca.reduce_layer(seq, tokens=0), seq[:, 0])
    np.testing.assert_array_equal(jaxcca.reduce_layer(seq, tokens=-1), seq[:, -1])
    flat = (seq * mask[:, :, None]).reshape(3, 8)
    np.testing.assert_array_equal(jaxcca.reduce_layer(seq, tokens="flatten", mask=mask), flat)
    conv = rng.normal(size=(3, 2, 2, 5))
    for mode in ("spatial_mean", "flatten", "channels"):
        np.testing.assert_array_equal(
            jaxcca.reduce_layer(conv, conv=mode), jaxcca.conv_to_neurons(conv, mode=mode)
        )
    with pytest.raises(ValueError, match="expected"):
        jaxcca.reduce_layer(np.zeros((3, 2, 2, 2, 2)))
    with pytest.raises(ValueError, match="mask has shape"):
        jaxcca.reduce_layer(seq, mask=mask[:, :3])
    with pytest.raises(ValueError, match="tokens must be"):
        jaxcca.reduce_layer(seq, tokens="max")


# ----------------------------------------------------------------------------
# One pass == pairwise on the concatenated activations
# ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "measure, options",
    [("cca", {}), ("svcca", {"keep": 0.9}), ("pwcca", {}), ("cka", {}), ("procrustes", {})],
)
def test_one_pass_equals_pairwise(measure, options):
    rng = np.random.default_rng(1)
    a, b = _layers(rng, 230)
    # Uneven batches (the last one is 230 - 3 * 64 = 38 rows).
    res = jaxcca.compare_activations(a, b, measure=measure, batch_size=64, **options)
    expected = jaxcca.pairwise(list(a.values()), list(b.values()), measure=measure, **options)
    np.testing.assert_allclose(res.matrix, np.asarray(expected), rtol=1e-10, atol=1e-12)
    assert res.layers_a == tuple(a) and res.layers_b == tuple(b)
    assert res.n_samples == 230 and res.measure == measure
    assert all(res.options[k] == v for k, v in options.items())


@pytest.mark.parametrize("measure", ["pwcca", "cka"])
def test_one_pass_against_itself_equals_pairwise(measure):
    a, _ = _layers(np.random.default_rng(2), 150)
    res = jaxcca.compare_activations(a, measure=measure, batch_size=7)
    expected = jaxcca.pairwise(list(a.values()), measure=measure)
    np.testing.assert_allclose(res.matrix, np.asarray(expected), rtol=1e-10, atol=1e-12)
    assert res.layers_a == res.layers_b == tuple(a)


def test_minibatch_cka_equals_per_pair_minibatch_estimator():
    rng = np.random.default_rng(3)
    a, b = _layers(rng, 120)
    a.pop("a1")  # 2 x 2 pairs: each reference pair compiles on its own
    res = jaxcca.compare_activations(
        a, b, measure="minibatch_cka", batch_size=40, kernel="rbf", threshold=0.8
    )
    for i, x in enumerate(a.values()):
        for j, y in enumerate(b.values()):
            xs, ys = jnp.asarray(x).reshape(3, 40, -1), jnp.asarray(y).reshape(3, 40, -1)
            ref = jaxcca.minibatch_cka(xs, ys, kernel="rbf", threshold=0.8)
            np.testing.assert_allclose(res.matrix[i, j], float(ref.similarity), rtol=1e-10)
    assert res.measure == "minibatch_cka" and res.options["kernel"] == "rbf"


def test_compare_models_equals_pairwise_on_captured_activations():
    ma, mb = TinyNet(nnx.Rngs(0)), TinyNet(nnx.Rngs(1))
    x = _images(90, seed=4)
    batches = [x[:40], x[40:73], x[73:]]  # uneven
    res = jaxcca.compare(ma, mb, batches, measure="cka")
    full_a = jaxcca.capture_layers(ma, x)
    full_b = jaxcca.capture_layers(mb, x)
    xs = [jaxcca.reduce_layer(full_a[k]) for k in res.layers_a]
    ys = [jaxcca.reduce_layer(full_b[k]) for k in res.layers_b]
    expected = jaxcca.pairwise(xs, ys, measure="cka")
    np.testing.assert_allclose(res.matrix, np.asarray(expected), rtol=1e-9, atol=1e-12)
    assert res.n_samples == 90 and set(res.layers_a) == {"relu_conv", "hidden"}
    # Several statistics from one pass: accumulate once, finalise per measure.
    stats = jaxcca.accumulate_layers(ma, mb, batches, conv="flatten")
    for measure in ("cka", "procrustes"):
        got = jaxcca.similarity_matrix(stats, measure=measure).matrix
        xs = [jaxcca.reduce_layer(full_a[k], conv="flatten") for k in stats.layers_a]
        ys = [jaxcca.reduce_layer(full_b[k], conv="flatten") for k in stats.layers_b]
        ref = jaxcca.pairwise(xs, ys, measure=measure)
        np.testing.assert_allclose(got, np.asarray(ref), rtol=1e-9, atol=1e-12)


def test_one_pass_traces_once_per_batch_shape_and_leaves_the_model_alone():
    shapes = []

    class Counting(TinyNet):
        def __call__(self, x):
            shapes.append(x.shape[0])  # runs only while tracing inside the pass
            return super().__call__(x)

    model = Counting(nnx.Rngs(0))
    before = jax.tree.map(np.asarray, nnx.state(model))
    x = _images(107, seed=9)
    counts = []
    for k in (3, 6):
        shapes.clear()
        batches = [x[16 * i : 16 * (i + 1)] for i in range(k)] + [x[100:]]
        jaxcca.compare(model, None, batches)
        counts.append(len(shapes))
        assert set(shapes) == {16, 7}
    assert counts[0] == counts[1]  # twice the batches, no more traces
    after = jax.tree.map(np.asarray, nnx.state(model))
    jax.tree.map(np.testing.assert_array_equal, before, after)


def test_compare_checkpoints_and_self():
    models = [TinyNet(nnx.Rngs(s)) for s in range(2)]
    x = _images(60, seed=5)
    res = jaxcca.compare(models, None, [x[:25], x[25:]], layers_a=["hidden"], measure="cka")
    assert res.layers_a == ("0:hidden", "1:hidden") == res.layers_b
    np.testing.assert_allclose(np.diag(res.matrix), 1.0, rtol=1e-12)
    h = [jaxcca.capture_layers(m, x)["hidden"] for m in models]
    np.testing.assert_allclose(
        res.matrix[0, 1], float(jaxcca.cka_similarity(h[0], h[1])), rtol=1e-10
    )


def test_compare_errors():
    rng = np.random.default_rng(6)
    a, b = _layers(rng, 50)
    with pytest.raises(ValueError, match="different numbers of samples"):
        jaxcca.compare_activations(a, {"short": b["b0"][:40]})
    with pytest.raises(ValueError, match="measure must be one of"):
        jaxcca.compare_activations(a, measure="rbf_cka")
    with pytest.raises(ValueError, match="unknown option"):
        jaxcca.compare_activations(a, measure="cka", keep=3)
    with pytest.raises(ValueError, match="same H\\*W"):
        conv = {"c1": rng.normal(size=(50, 2, 2, 3)), "c2": rng.normal(size=(50, 3, 3, 3))}
        jaxcca.compare_activations(conv, conv="channels")
    stats = jaxcca.accumulate_activations(a, b)
    with pytest.raises(ValueError, match="minibatch_cka=True"):
        jaxcca.similarity_matrix(stats, measure="minibatch_cka")


# ----------------------------------------------------------------------------
# Command line and figure
# ----------------------------------------------------------------------------


@pytest.fixture
def npz_files(tmp_path):
    rng = np.random.default_rng(7)
    a, b = _layers(rng, 80)
    a["conv"] = rng.normal(size=(80, 3, 3, 2))
    b["seq"] = rng.normal(size=(80, 5, 4))
    ids = np.arange(80)
    np.savez(tmp_path / "a.npz", sample_ids=ids, **a)
    np.savez(tmp_path / "b.npz", sample_ids=ids, **b)
    return tmp_path, a, b


def test_cli_writes_json_and_figure(npz_files, capsys):
    tmp, a, b = npz_files
    out = tmp / "out"
    args = ["compare", str(tmp / "a.npz"), str(tmp / "b.npz"), "--out", str(out)]
    assert cli_main([*args, "--tokens", "last"]) == 0
    record = json.loads((out / "similarity.json").read_text())
    ref = jaxcca.compare_activations(a, b, measure="cka", tokens="last")
    np.testing.assert_allclose(record["matrix"], ref.matrix, rtol=1e-12)
    assert record["layers_a"] == list(a) and record["layers_b"] == list(b)
    assert record["measure"] == "cka" and record["options"]["tokens"] == "last"
    assert record["jaxcca_version"] == jaxcca.__version__ and record["n_samples"] == 80
    assert record["p_values"] is None
    # p-values: jaxcca.permutation_test of each pair, rows of B's layer shuffled.
    sel = ["--layers-a", "a0", "--layers-b", "b0,b1", "--permutations", "19", "--seed", "3"]
    assert cli_main([*args, *sel]) == 0
    record = json.loads((out / "similarity.json").read_text())
    key = jax.random.key(3)
    for j, name in enumerate(("b0", "b1")):
        ref = jaxcca.permutation_test(
            a["a0"], b[name], measure="cka", n_permutations=19, key=jax.random.fold_in(key, j)
        )
        np.testing.assert_allclose(record["p_values"][0][j], float(ref.p_value), rtol=1e-12)
    assert record["p_values"][0][1] == pytest.approx(1 / 20)  # b1 is a noisy map of a0's base
    png = (out / "similarity.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_layout_and_folder_of_npy(npz_files):
    tmp, a, _ = npz_files
    folder = tmp / "transposed"
    folder.mkdir()
    for name in ("a0", "a1"):
        np.save(folder / f"{name}.npy", a[name].T)  # google/svcca's neurons x samples
    out = tmp / "out_t"
    argv = ["compare", str(folder), "--layout", "neurons-by-samples", "--out", str(out)]
    assert cli_main(argv) == 0
    record = json.loads((out / "similarity.json").read_text())
    ref = jaxcca.compare_activations({k: a[k] for k in ("a0", "a1")})
    np.testing.assert_allclose(record["matrix"], ref.matrix, rtol=1e-12)


@pytest.mark.parametrize(
    "case, message",
    [
        ("short", "has 60 samples but"),
        ("order", "same samples in a different order .*reorder the rows"),
        ("other_ids", "share 70 of 80 samples"),
        ("rank", r"shape \(80,\) \(1-D\)"),
        ("unknown", r"unknown layer\(s\) \['zz'\] in --layers-b"),
        ("missing", "no such file"),
    ],
)
def test_cli_bad_input_is_one_line(npz_files, capsys, case, message):
    tmp, a, b = npz_files
    ids = np.arange(80)
    bad = tmp / "bad.npz"
    extra = []
    if case == "short":
        np.savez(bad, b0=b["b0"][:60])
    elif case == "order":
        np.savez(bad, sample_ids=np.r_[ids[1::-1], ids[2:]], **b)
    elif case == "other_ids":
        np.savez(bad, sample_ids=np.r_[ids[:70], ids[70:] + 1000], **b)
    elif case == "rank":
        np.savez(bad, b0=b["b0"][:, 0])
    elif case == "unknown":
        np.savez(bad, **b)
        extra = ["--layers-b", "b0,zz"]
    else:
        bad = tmp / "nothing.npz"
    code = cli_main(["compare", str(tmp / "a.npz"), str(bad), "--out", str(tmp / "o"), *extra])
    err = capsys.readouterr().err.strip()
    assert code == 1
    assert len(err.splitlines()) == 1 and err.startswith("jaxcca compare: error:")
    assert __import__("re").search(message, err), err
    assert not (tmp / "o" / "similarity.json").exists()


def test_plot_has_layer_names_colour_bar_and_title():
    rng = np.random.default_rng(8)
    a, b = _layers(rng, 60)
    res = jaxcca.compare_activations(a, b, measure="cca")
    pvalues = np.full(res.matrix.shape, 0.5)
    fig = jaxcca.plot_similarity(res, annotate=True, pvalues=pvalues)
    ax, cbar = fig.axes
    assert [t.get_text() for t in ax.get_xticklabels()] == list(res.layers_b)
    assert [t.get_text() for t in ax.get_yticklabels()] == list(res.layers_a)
    assert "cca" in ax.get_title() and cbar.get_ylabel() == "cca"
    assert len(ax.texts) == res.matrix.size and "p=0.5" in ax.texts[0].get_text()
    with pytest.raises(ValueError, match="pvalues has shape"):
        jaxcca.plot_similarity(res, pvalues=pvalues[:1])
    matplotlib.pyplot.close("all")


@pytest.mark.parametrize("measure", ["minibatch_cka", "cka", "procrustes"])
def test_float32_state_at_any_magnitude(measure):
    # The minibatch HSIC sums and the exact CKA/Procrustes blocks are kept in
    # power-of-two scales: before, float32 gave NaN or a silent 0 far from 1.
    rng = np.random.default_rng(5)
    x = rng.standard_normal((64, 5))
    acts = {"x": x, "tanh": np.tanh(x @ rng.standard_normal((5, 3)))}
    huge = dict(acts, x=x * np.array([1.0, 1e20, 1.0, 1.0, 1.0]))
    cases = [{k: v * s for k, v in acts.items()} for s in (1e-30, 1e-12, 1e12, 1e30)] + [huge]
    for data in cases:
        ref = jaxcca.compare_activations(data, measure=measure, batch_size=16)
        as32 = {k: v.astype(np.float32) for k, v in data.items()}
        res = jaxcca.compare_activations(as32, measure=measure, batch_size=16, dtype=jnp.float32)
        assert np.all(np.isfinite(res.matrix))
        np.testing.assert_allclose(res.matrix, ref.matrix, atol=1e-5)
