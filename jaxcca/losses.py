"""Similarity measures as differentiable loss terms for training.

    loss = task_loss + lam * jaxcca.losses.similarity_loss(h, h_ref, measure="svcca", keep=16)

``direction="pull"`` (default) returns ``1 - similarity`` (minimising it makes
the two representations alike); ``direction="push"`` returns ``similarity``
(minimising it makes them different). Gradients are finite everywhere,
including when the two inputs are identical or have dead/duplicated neurons.

Cost per call: ``O(n d**2 + d**3)`` for a batch of ``n`` samples and ``d``
neurons (a few matrix products plus small eigen/singular value
decompositions), i.e. comparable to one dense layer's forward and backward pass
for ``d`` up to a few hundred.

Caveat, CCA on a minibatch: with ``rank_x + rank_y > batch - 1`` (e.g. batch
64, layers of 64 neurons) some canonical correlations are 1 whatever the
weights (``n_trivial`` in the results), so ``cca``/``pwcca`` losses become flat
and meaningless. Use ``measure="svcca"`` with ``keep`` well below the batch
size, ``measure="cka"``, or larger batches.
"""

from __future__ import annotations

import jax

from jaxcca._cca import cca_similarity
from jaxcca._cka import cka_similarity
from jaxcca._pwcca import pwcca_similarity
from jaxcca._svcca import svcca_similarity

__all__ = ["similarity_loss"]

_SIMILARITIES = {
    "cca": cca_similarity,
    "svcca": svcca_similarity,
    "pwcca": pwcca_similarity,
    "cka": cka_similarity,
}


def similarity_loss(
    x, y, *, measure: str = "svcca", direction: str = "pull", **options
) -> jax.Array:
    """A loss term from a similarity measure (see the module docstring).

    Args:
      x: ``(n, d1)`` activations (rows are samples).
      y: ``(n, d2)`` activations, e.g. a frozen reference network's layer
        (wrap it in ``jax.lax.stop_gradient`` if it must not move).
      measure: ``"cca"``, ``"svcca"``, ``"pwcca"`` or ``"cka"``.
      direction: ``"pull"`` (``1 - similarity``) or ``"push"`` (``similarity``).
      **options: passed to the measure (``keep``, ``epsilon``, ``convention``, ...).

    Returns:
      Scalar loss in [0, 1].

    Example:
      >>> import jax, jaxcca
      >>> x = jax.random.normal(jax.random.key(0), (128, 16))
      >>> g = jax.grad(jaxcca.losses.similarity_loss)(x, x, keep=8)
      >>> bool(jax.numpy.isfinite(g).all())
      True
    """
    if measure not in _SIMILARITIES:
        raise ValueError(f"measure must be one of {sorted(_SIMILARITIES)}, got {measure!r}.")
    if direction not in ("pull", "push"):
        raise ValueError(f"direction must be 'pull' or 'push', got {direction!r}.")
    sim = _SIMILARITIES[measure](x, y, **options)
    return 1.0 - sim if direction == "pull" else sim
