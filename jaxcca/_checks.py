"""Input checks for every entry point, run at trace time (before any tracing).

Arrays: rank, dtype and sample counts (:func:`as_single`, :func:`as_pair`),
NaN/Inf on request (:func:`raise_if_not_finite`). Static options: ``keep``,
``convention``, and the CKA kernel options. Each check raises ``ValueError``
or ``TypeError`` with a message that says how to fix the call.
"""

from __future__ import annotations

import numbers

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

__all__ = [
    "CONVENTIONS",
    "FLOATS",
    "KERNELS",
    "as_float_array",
    "as_pair",
    "as_single",
    "check_bandwidth",
    "raise_if_not_finite",
    "validate_cka_options",
    "validate_convention",
    "validate_keep",
]

FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
CONVENTIONS = ("paper", "svcca")
KERNELS = ("linear", "rbf")
DEFAULT_THRESHOLD = 1.0


def as_float_array(a: ArrayLike, name: str, *, ndim: int = 2) -> jax.Array:
    """Converts ``a`` to a jax array and checks rank and dtype at trace time."""
    if not hasattr(a, "dtype") or not hasattr(a, "shape"):
        a = np.asarray(a)
    if a.ndim != ndim:
        layout = "(n_samples, n_neurons)" if ndim == 2 else "(n_samples, height, width, channels)"
        hint = (
            " For a single neuron use x[:, None]; for conv activations (N, H, W, C) "
            "use jaxcca.dft_cca or jaxcca.conv_to_neurons."
            if ndim == 2
            else ""
        )
        raise ValueError(
            f"{name} must be a {ndim}-D array of shape {layout}, got shape "
            f"{tuple(a.shape)} ({a.ndim}-D).{hint} To compare a batch of pairs, "
            "wrap the call in jax.vmap."
        )
    dtype = np.dtype(a.dtype)
    if dtype not in FLOATS:
        raise TypeError(
            f"{name} must have dtype float32 or float64, got {dtype}. Cast it first, "
            f"e.g. {name}.astype(jnp.float32) (low-precision float16/bfloat16 "
            "activations are too coarse for CCA)."
        )
    if dtype == np.float64 and not jax.config.jax_enable_x64:
        raise TypeError(
            f"{name} is float64 but JAX's 64-bit mode is off, so it would be silently "
            "truncated to float32. Enable it with jax.config.update('jax_enable_x64', "
            f"True) or pass {name}.astype(np.float32)."
        )
    return jnp.asarray(a)


def as_single(x: ArrayLike, name: str = "x", *, ndim: int = 2) -> jax.Array:
    """Checks one representation and returns it as a jax array."""
    x = as_float_array(x, name, ndim=ndim)
    if x.shape[0] < 2:
        raise ValueError(
            f"{name} has {x.shape[0]} sample(s); at least 2 samples (rows) are needed "
            "to estimate covariances. Rows are samples and columns are neurons: if you "
            "passed the google/svcca layout (neurons x samples), pass x.T."
        )
    return x


def as_pair(x: ArrayLike, y: ArrayLike, *, ndim: int = 2) -> tuple[jax.Array, jax.Array]:
    """Checks a pair of representations and promotes them to a common dtype."""
    x = as_single(x, "x", ndim=ndim)
    y = as_single(y, "y", ndim=ndim)
    if x.shape[0] != y.shape[0]:
        raise ValueError(
            f"x and y must have the same number of samples (rows), got x.shape="
            f"{tuple(x.shape)} and y.shape={tuple(y.shape)}. Both representations must "
            "be taken on the same inputs in the same order; if your arrays are "
            "neurons x samples (the google/svcca layout), pass x.T and y.T."
        )
    dtype = np.promote_types(x.dtype, y.dtype)  # both float32/float64 here
    return x.astype(dtype), y.astype(dtype)


def raise_if_not_finite(*arrays: jax.Array) -> None:
    """Raises ``ValueError`` if any array holds NaN or Inf (works under jit)."""

    def _raise(bad):
        if bool(np.asarray(bad).any()):
            raise ValueError(
                "jaxcca: input activations contain NaN or Inf (check_finite=True). "
                "Find the source with jnp.isfinite(x).all(axis=0) per neuron."
            )

    bad = jnp.zeros((), bool)
    for a in arrays:
        bad = bad | ~jnp.all(jnp.isfinite(a))
    try:
        concrete = bool(bad)
    except jax.errors.ConcretizationTypeError:
        jax.debug.callback(_raise, bad)
        return
    _raise(concrete)


def validate_keep(keep) -> float | int:
    """Checks SVCCA's ``keep`` argument (a static Python number)."""
    if isinstance(keep, bool) or not isinstance(keep, numbers.Real):
        raise TypeError(
            f"keep must be a float in (0, 1] (fraction of variance) or a positive int "
            f"(number of directions), got {keep!r} of type {type(keep).__name__}. It is "
            "static: pass a Python number, not an array."
        )
    if isinstance(keep, numbers.Integral):
        if keep < 1:
            raise ValueError(f"keep={keep}: an integer keep must be >= 1 directions.")
        return int(keep)
    keep = float(keep)
    if not 0.0 < keep <= 1.0:
        raise ValueError(
            f"keep={keep}: a float keep is the fraction of variance to keep and must lie "
            "in (0, 1]; use an int to keep a fixed number of directions."
        )
    return keep


def validate_convention(convention: str) -> str:
    """Checks PWCCA's static ``convention`` argument."""
    if convention not in CONVENTIONS:
        raise ValueError(
            f"convention must be one of {CONVENTIONS}, got {convention!r}. 'paper' follows "
            "Morcos et al. 2018 section 2.2; 'svcca' reproduces google/svcca's "
            "compute_pwcca numbers."
        )
    return convention


def check_bandwidth(value, name: str):
    """Checks an RBF bandwidth (``sigma`` or ``threshold``): a positive real scalar."""
    if value is None:
        return None
    if isinstance(value, bool) or not (
        isinstance(value, numbers.Real) or (hasattr(value, "shape") and np.ndim(value) == 0)
    ):
        raise TypeError(
            f"{name} must be a positive real scalar, got {value!r} of type {type(value).__name__}."
        )
    try:
        concrete = float(value)
    except (jax.errors.ConcretizationTypeError, TypeError):
        return value  # traced: the caller asked for a data-dependent bandwidth
    if not (np.isfinite(concrete) and concrete > 0.0):
        raise ValueError(f"{name}={concrete}: the RBF bandwidth must be a finite number > 0.")
    return value


def validate_cka_options(kernel, sigma, threshold, debiased, n: int):
    """Checks CKA's options; returns ``(mode, value)``, mode in {linear, sigma, threshold}."""
    if not isinstance(kernel, str) or kernel not in KERNELS:
        raise ValueError(f"kernel must be one of {KERNELS}, got {kernel!r}.")
    if not isinstance(debiased, bool):
        raise TypeError(f"debiased must be a Python bool (static), got {debiased!r}.")
    if kernel == "linear":
        if sigma is not None or threshold is not None:
            raise ValueError(
                "sigma and threshold set the RBF bandwidth and only apply with "
                f"kernel='rbf'; got kernel='linear' with sigma={sigma!r}, "
                f"threshold={threshold!r}. Drop them or pass kernel='rbf'."
            )
        mode, value = "linear", None
    else:
        if sigma is not None and threshold is not None:
            raise ValueError(
                f"pass either sigma (absolute bandwidth) or threshold (fraction of the "
                f"median pairwise distance), not both; got sigma={sigma!r}, "
                f"threshold={threshold!r}."
            )
        if sigma is not None:
            mode, value = "sigma", check_bandwidth(sigma, "sigma")
        else:
            t = DEFAULT_THRESHOLD if threshold is None else threshold
            mode, value = "threshold", check_bandwidth(t, "threshold")
    if debiased and n < 4:
        raise ValueError(
            f"debiased=True needs at least 4 samples (the unbiased HSIC estimator "
            f"divides by n (n - 3)), got n={n}. Use debiased=False (the biased "
            "estimator works from n = 2), or accumulate batches with "
            "jaxcca.minibatch_cka_update."
        )
    return mode, value
