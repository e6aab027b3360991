"""``python -m reproduce all --jobs N``: which experiments share a process, and failures."""

import pytest

pytest.importorskip("flax")

from reproduce import __main__ as cli  # noqa: E402
from reproduce import experiments  # noqa: E402


def test_experiments_that_share_networks_run_in_one_chain():
    chains = experiments.chains(experiments.NAMES)
    assert sorted(n for c in chains for n in c) == sorted(experiments.NAMES)
    where = {n: i for i, c in enumerate(chains) for n in c}
    for a, shared_a in experiments.SHARED_NETWORKS.items():
        for b, shared_b in experiments.SHARED_NETWORKS.items():
            if set(shared_a) & set(shared_b):
                assert where[a] == where[b], (a, b)
    for c in chains:  # one after another in the registry's order
        assert c == sorted(c, key=experiments.NAMES.index)
        if len(c) == 1:
            assert c[0] not in experiments.SHARED_NETWORKS or all(
                not set(experiments.SHARED_NETWORKS[c[0]]) & set(v)
                for k, v in experiments.SHARED_NETWORKS.items()
                if k != c[0]
            )
    assert [len(c) for c in chains] == sorted((len(c) for c in chains), reverse=True)
    # a subset keeps only its own members, still grouped by what they share
    assert experiments.chains(["timesteps", "synthetic", "memorize", "dynamics"]) == [
        ["memorize", "dynamics", "timesteps"],
        ["synthetic"],
    ]


def test_a_failed_job_ends_with_one_line_naming_its_log(tmp_path, capsys):
    # a file where each experiment's folder should be: both jobs fail when they save
    for name in ("synthetic", "toy_regression"):
        (tmp_path / name).write_text("not a folder")
    with pytest.raises(SystemExit) as e:
        cli.main(
            ["all", "--preset", "smoke", "--out", str(tmp_path), "--jobs", "2"]
            + ["--only", "synthetic", "toy_regression"]
        )
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "experiments failed" in err
    for name in ("synthetic", "toy_regression"):
        assert str(tmp_path / "logs" / f"{name}.log") in err
        assert "FileExistsError" in (tmp_path / "logs" / f"{name}.log").read_text()
    assert not (tmp_path / "report.md").exists()


def test_jobs_must_be_positive(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["all", "--preset", "smoke", "--out", str(tmp_path), "--jobs", "0"])
    assert e.value.code == 2 and "--jobs must be at least 1" in capsys.readouterr().err
