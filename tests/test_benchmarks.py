"""The benchmark scripts' helpers: the README table, the pairwise floor, the solver table."""

import json
import pathlib
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxcca import _linalg

BENCH = pathlib.Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCH))

import bench_pairwise  # noqa: E402
import bench_solvers  # noqa: E402
import readme_table  # noqa: E402


def _result(path, hardware, label, value):
    res = {
        "title": "t",
        "command": "python benchmarks/x.py",
        "hardware": hardware,
        "jax": "0.0",
        "notes": [],
        "header": [],
        "rows": [],
        "readme": {"label": label, "value": value},
    }
    path.write_text(json.dumps(res))
    return str(path)


def test_readme_table_has_a_column_per_hardware_and_marks_gaps(tmp_path):
    paths = [
        _result(tmp_path / "a.json", "2 CPU cores", "core", "1.5x"),
        _result(tmp_path / "b.json", "2 CPU cores", "dft", "4.1x"),
        _result(tmp_path / "c.json", "NVIDIA H200", "core", "9.0x"),
        _result(tmp_path / "d.json", "NVIDIA H200", "", ""),  # no README row: skipped
    ]
    lines = readme_table.table(paths).splitlines()
    assert lines[0] == "| benchmark | 2 CPU cores (jax 0.0) | NVIDIA H200 (jax 0.0) |"
    assert lines[2] == "| core | 1.5x | 9.0x |"
    assert lines[3] == "| dft | 4.1x | not measured |"
    pending = readme_table.table(paths[:1], pending=["GPU"]).splitlines()
    assert pending[0] == "| benchmark | 2 CPU cores (jax 0.0) | GPU |"
    assert pending[2] == "| core | 1.5x | not measured |"


def test_pairwise_floor_is_the_tiles_pairwise_computes():
    m, n, d, block = 5, 30, 3, 2
    q = jnp.asarray(np.random.default_rng(0).standard_normal((n, m, d)))
    floor, n_tiles = bench_pairwise.blocked_floor(m, block)
    # 5 networks in blocks of 2 (padded to 6): 3 block rows, 6 tiles with I <= J.
    assert n_tiles == 6
    padded = jnp.concatenate([q, q[:, :1]], axis=1)  # pairwise pads by repeating
    got = np.asarray(floor(padded))
    flat = np.asarray(padded).reshape(n, -1)
    want = [
        np.abs(flat[:, 2 * i * d : 2 * (i + 1) * d].T @ flat[:, 2 * j * d : 2 * (j + 1) * d]).max()
        for i in range(3)
        for j in range(i, 3)
    ]
    np.testing.assert_allclose(got, want, rtol=1e-12)


@pytest.mark.parametrize("d", [8, 32])
def test_chosen_solvers_meet_the_solver_table_tolerance_in_float32(d):
    # The solvers jaxcca uses on this backend, on the solver table's test
    # matrices: float32 eigenvalues / singular values within 1e-6 (relative to
    # the largest) of float64, the criterion the table chooses solvers by.
    eigh = jax.jit(jax.vmap(_linalg.eigh_solver))
    mats = bench_solvers.make("eigh", 4, d)
    lam, vecs = eigh(jnp.asarray(mats))
    ref = np.linalg.eigvalsh(mats.astype(np.float64))
    assert np.max(np.abs(np.sort(np.asarray(lam), -1) - ref) / ref.max(-1, keepdims=True)) < 1e-6
    mats = bench_solvers.make("svd", 4, d)
    val_err, orth = bench_solvers.errors("svd", _linalg.svd_solver, mats, 4)
    assert val_err < 1e-6
    assert orth < 1e-5
    assert vecs.shape == (4, d, d)
