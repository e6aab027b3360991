"""Input checks for every entry point, run at trace time (before any tracing).

Arrays: rank, dtype and sample counts (:func:`as_single`, :func:`as_pair`),
NaN/Inf on request (:func:`raise_if_not_finite`). Static options: ``keep``,
``convention``, and the CKA kernel options. Each check raises ``ValueError``
or ``TypeError`` with a message that says how to fix the call.
"""

from __future__ import annotations

import numbers
from typing import Any

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
    "as_stack",
    "check_bandwidth",
    "raise_if_not_finite",
    "validate_cka_options",
    "validate_convention",
    "validate_epsilon",
    "validate_keep",
]

FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
# Accepted and computed in float32: rounding them to 8 (bfloat16) or 11
# (float16) significant bits was the caller's choice; squaring them in that
# precision would be ours.
LOW_PRECISION = (np.dtype(np.float16), np.dtype(jnp.bfloat16))
CONVENTIONS = ("paper", "svcca")
KERNELS = ("linear", "rbf")
DEFAULT_THRESHOLD = 1.0


def as_float_array(a: ArrayLike, name: str, *, ndim: int = 2) -> jax.Array:
    """Converts ``a`` to a float32/float64 jax array, checking rank and dtype at trace time.

    float16 and bfloat16 are accepted and converted to float32 (exactly).
    Python lists and tuples (also of traced scalars, as ``jit`` passes them)
    become arrays of JAX's default float type. Integer, bool and complex
    arrays raise ``TypeError``; float64 with JAX's 64-bit mode off too (it
    would be silently truncated).
    """
    arr: Any = a
    if isinstance(arr, (list, tuple)):
        arr = jnp.asarray(arr)
    elif not hasattr(arr, "dtype") or not hasattr(arr, "shape"):
        arr = np.asarray(arr)
    if arr.ndim != ndim:
        layout = "(n_samples, n_neurons)" if ndim == 2 else "(n_samples, height, width, channels)"
        hint = (
            " For arr single neuron use x[:, None]; for conv activations (N, H, W, C) "
            "use jaxcca.dft_cca or jaxcca.conv_to_neurons."
            if ndim == 2
            else ""
        )
        raise ValueError(
            f"{name} must be arr {ndim}-D array of shape {layout}, got shape "
            f"{tuple(arr.shape)} ({arr.ndim}-D).{hint} To compare arr batch of pairs, "
            "wrap the call in jax.vmap."
        )
    if ndim == 2 and arr.shape[1] == 0:
        raise ValueError(
            f"{name} has no neurons (shape {tuple(arr.shape)}); every representation needs "
            "at least one column."
        )
    dtype = np.dtype(arr.dtype)
    if dtype in LOW_PRECISION:
        return jnp.asarray(arr).astype(jnp.float32)
    if dtype not in FLOATS:
        raise TypeError(
            f"{name} must have a floating dtype (float32 or float64; float16 and bfloat16 "
            f"are computed in float32), got {dtype}. Cast it first, e.g. "
            f"{name}.astype(jnp.float32)."
        )
    if dtype == np.float64 and not jax.config.read("jax_enable_x64"):
        raise TypeError(
            f"{name} is float64 but JAX's 64-bit mode is off, so it would be silently "
            "truncated to float32. Enable it with jax.config.update('jax_enable_x64', "
            f"True) or pass {name}.astype(np.float32)."
        )
    return jnp.asarray(arr)


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
    """Raises ``ValueError`` if any array holds NaN or Inf (``check_finite=True``).

    The check needs the values: it works eagerly (also under eager
    ``jax.grad``). Under ``jit`` or ``vmap`` the values do not exist yet, and
    JAX cannot raise a ``ValueError`` from inside a compiled program (a
    runtime callback surfaces as ``JaxRuntimeError``), so a traced input
    raises ``ValueError`` at trace time, saying so, whatever its values.
    """
    bad = jnp.zeros((), bool)
    for a in arrays:
        bad = bad | ~jnp.all(jnp.isfinite(a))
    try:
        concrete = bool(bad)
    except jax.errors.ConcretizationTypeError:
        raise ValueError(
            "check_finite=True needs concrete inputs, but they are traced (inside jax.jit, "
            "jax.vmap or another transformation), where JAX cannot raise a ValueError. "
            "Check the activations before the transformed call, e.g. "
            "bool(jnp.isfinite(x).all()), or drop check_finite (NaN input then gives "
            "NaN output)."
        ) from None
    if concrete:
        raise ValueError(
            "jaxcca: input activations contain NaN or Inf (check_finite=True). "
            "Find the source with jnp.isfinite(x).all(axis=0) per neuron."
        )


def validate_epsilon(epsilon) -> float | None:
    """Checks the static relative rank tolerance: None or a real number in (0, 1)."""
    if epsilon is None:
        return None
    if isinstance(epsilon, bool) or not isinstance(epsilon, numbers.Real):
        raise TypeError(
            f"epsilon must be None or a Python float in (0, 1) (static), got {epsilon!r} "
            f"of type {type(epsilon).__name__}."
        )
    eps = float(epsilon)
    if not (np.isfinite(eps) and 0.0 < eps < 1.0):
        raise ValueError(
            f"epsilon={eps}: the relative rank tolerance must be a finite number in (0, 1) "
            "(directions with variance below epsilon times the largest are dropped; "
            "None picks 1e-10 for float32 and 1e-13 for float64)."
        )
    return eps


def as_stack(xs, name: str) -> jax.Array:
    """Checks a stack ``(m, n, d)`` of representations (dtype and sample count)."""
    if not hasattr(xs, "ndim"):
        xs = np.asarray(xs)
    if xs.ndim != 3:
        raise ValueError(
            f"{name} must be a stacked array of shape (m, n_samples, n_neurons) or a list "
            f"of (n_samples, n_neurons_i) arrays, got shape {tuple(xs.shape)}."
        )
    if xs.shape[0] == 0:
        raise ValueError(f"{name} holds no representations (shape {tuple(xs.shape)}).")
    first = as_single(xs[0], f"{name}[0]")  # dtype, width and sample-count checks
    return jnp.asarray(xs).astype(first.dtype)


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
