"""Strict JAX settings for the whole suite (after lineax's tests/conftest.py)."""

import os
import pathlib

# jax 0.10 on CPU can deadlock running vmapped linear algebra when OpenMP
# spawns several threads (seen here: batched SVD/eigh graphs that never
# return); one OpenMP thread avoids it and costs nothing measurable, since
# XLA's CPU backend uses its own thread pool. Must be set before jax loads.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import jax  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_dtype_promotion", "strict")
jax.config.update("jax_numpy_rank_promotion", "raise")

SHARED_DATA = pathlib.Path(
    os.environ.get(
        "JAXCCA_SHARED_DATA",
        pathlib.Path(__file__).resolve().parents[1].parent / "shared" / "data",
    )
)
TUTORIAL_NPZ = SHARED_DATA / "svcca_tutorial_activations.npz"


@pytest.fixture(scope="session")
def tutorial_activations():
    """Real activations from google/svcca's tutorial data (skips when absent)."""
    if not TUTORIAL_NPZ.exists():
        pytest.skip(
            f"real-activation data not found at {TUTORIAL_NPZ}: it ships beside the "
            "project in CI (../shared/data), not in a fresh clone; set "
            "JAXCCA_SHARED_DATA to a folder holding svcca_tutorial_activations.npz"
        )
    with np.load(TUTORIAL_NPZ) as data:
        return {k: data[k] for k in data.files}


@pytest.fixture
def rng():
    return np.random.default_rng(0)
