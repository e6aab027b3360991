"""Heat maps of layer-by-layer similarity (matplotlib, the optional ``[plot]`` extra)."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["plot_similarity"]


def plot_similarity(
    result,
    *,
    ax=None,
    annotate: bool = False,
    pvalues: Any = None,
    alpha: float = 0.05,
    cmap: str = "magma",
    vmin: float | None = 0.0,
    vmax: float | None = 1.0,
    title: str | None = None,
    label_a: str = "model a",
    label_b: str = "model b",
):
    """Draws a :class:`jaxcca.Comparison` as a heat map with layer names on both axes.

    Rows are ``result.layers_a`` (top to bottom), columns ``result.layers_b``;
    a colour bar shows the scale and the title names the measure and the
    number of samples. Needs matplotlib (``pip install jaxcca[plot]``),
    imported only when this function is called.

    Args:
      result: a :class:`jaxcca.Comparison` (or anything with ``matrix``,
        ``layers_a``, ``layers_b``, ``measure`` and ``n_samples``).
      ax: matplotlib axes to draw on (default: a new figure).
      annotate: write each value in its cell.
      pvalues: optional ``(La, Lb)`` p-values (e.g. from a permutation test);
        cells with ``p >= alpha`` are hatched and, with ``annotate``, the
        p-value is written under the value.
      alpha: significance level for the hatching.
      cmap: matplotlib colour map.
      vmin: lower end of the colour scale (None: the data's minimum).
      vmax: upper end of the colour scale (None: the data's maximum).
      title: the title (default: measure and number of samples).
      label_a: the y-axis label (the rows' model).
      label_b: the x-axis label (the columns' model).

    Returns:
      The matplotlib ``Figure``.

    Raises:
      ImportError: matplotlib is not installed.
      ValueError: ``pvalues`` of a shape other than the matrix's.

    Example:
      >>> import matplotlib
      >>> matplotlib.use("Agg")
      >>> import jax, jaxcca
      >>> x = jax.random.normal(jax.random.key(0), (100, 3))
      >>> res = jaxcca.compare_activations({"x": x, "x^2": x**2})
      >>> fig = jaxcca.plot_similarity(res, annotate=True)
      >>> [t.get_text() for t in fig.axes[0].get_xticklabels()]
      ['x', 'x^2']
    """
    try:
        import matplotlib.pyplot as plt
        from matplotlib.patches import Rectangle
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("plot_similarity needs matplotlib: pip install 'jaxcca[plot]'.") from e
    matrix = np.asarray(result.matrix, dtype=float)
    la, lb = matrix.shape
    if pvalues is not None:
        pvalues = np.asarray(pvalues, dtype=float)
        if pvalues.shape != matrix.shape:
            raise ValueError(
                f"pvalues has shape {pvalues.shape} but the matrix has {matrix.shape}."
            )
    if ax is None:
        size = (max(4.0, 0.45 * lb + 2.5), max(3.5, 0.4 * la + 1.5))
        fig, ax = plt.subplots(figsize=size, constrained_layout=True)
    else:
        fig = ax.figure
    image = ax.imshow(matrix, cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto")
    fig.colorbar(image, ax=ax, label=result.measure)
    ax.set_xticks(range(lb), labels=list(result.layers_b), rotation=60, ha="right")
    ax.set_yticks(range(la), labels=list(result.layers_a))
    ax.set_xlabel(label_b)
    ax.set_ylabel(label_a)
    ax.set_title(title if title is not None else f"{result.measure} (n = {result.n_samples})")
    if pvalues is not None:
        for i, j in zip(*np.nonzero(~(pvalues < alpha)), strict=True):
            ax.add_patch(
                Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, hatch="///", edgecolor="0.6", lw=0)
            )
    if annotate:
        lo, hi = np.nanmin(matrix), np.nanmax(matrix)
        mid = 0.5 * ((vmin if vmin is not None else lo) + (vmax if vmax is not None else hi))
        for i in range(la):
            for j in range(lb):
                text = f"{matrix[i, j]:.2f}"
                if pvalues is not None:
                    text += f"\np={pvalues[i, j]:.2g}"
                colour = "black" if matrix[i, j] > mid else "white"
                ax.text(j, i, text, ha="center", va="center", fontsize=7, color=colour)
    return fig
