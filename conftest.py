"""Applies to every test location: tests/, the doctests in jaxcca/ and reproduce/, notebooks/."""

import gc

import pytest


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_programs():
    """Drops JAX's compiled programs after each module.

    The suite compiles thousands of programs in one process; keeping them all
    grows memory for nothing (each module's functions are its own), and a
    full run once crashed inside XLA's compiler late in the run.
    """
    yield
    import jax

    jax.clear_caches()
    gc.collect()
