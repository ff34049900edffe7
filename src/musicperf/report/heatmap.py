"""Class inter-correlation heatmaps (Figures 1 and 2 of ``001``).

Uses matplotlib's object API with the Agg canvas (no pyplot, no global backend state), so it
works headless and in threads. NaN cells (classes that are constant over the frames, whose
correlation is undefined) are drawn blank. Imports matplotlib inside the functions only.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from musicperf._util import atomic_path
from musicperf.errors import ParameterError, require


def correlation_figure(corr: np.ndarray, classes: Sequence[str], *, title: str = "", annotate: bool | None = None):
    """Draw a correlation matrix as a heatmap.

    Parameters
    ----------
    corr : ndarray, shape (K, K)
        Correlations in [-1, 1]; NaN cells are left blank.
    classes : sequence of str, length K
        Row and column labels.
    title : str
        Figure title.
    annotate : bool or None
        Write each value in its cell; by default when ``K <= 10`` (drawing 324 labels for the
        18 classes costs seconds; the values are in the CSV written beside the figure).

    Returns
    -------
    matplotlib.figure.Figure
        With an Agg canvas attached, ready for ``savefig``.
    """
    c = np.asarray(corr, dtype=float)
    k = len(classes)
    if c.shape != (k, k):
        raise ParameterError(f"correlation matrix of shape {c.shape} does not match {k} class names")
    require("matplotlib", purpose="heatmap figures")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    import matplotlib

    size = min(2.5 + 0.45 * k, 30.0)  # inches; capped so that huge taxonomies stay drawable
    fig = Figure(figsize=(size + 1.5, size))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    cmap = matplotlib.colormaps["RdBu_r"].with_extremes(bad="white")
    im = ax.imshow(np.ma.masked_invalid(c), cmap=cmap, vmin=-1.0, vmax=1.0, interpolation="nearest")
    ax.set_xticks(range(k), labels=list(classes), rotation=60, ha="right", rotation_mode="anchor", fontsize=8)
    ax.set_yticks(range(k), labels=list(classes), fontsize=8)
    if annotate is None:
        annotate = k <= 10
    if annotate:
        for i in range(k):
            for j in range(k):
                if np.isfinite(c[i, j]):
                    ax.text(j, i, f"{c[i, j]:.2f}", ha="center", va="center", fontsize=6,
                            color="white" if abs(c[i, j]) > 0.6 else "black")
    fig.colorbar(im, ax=ax, shrink=0.8, label="Pearson correlation of per-frame labels")
    if title:
        ax.set_title(title, fontsize=10)
    return fig


def write_correlation_heatmap(path: str | Path, corr: np.ndarray, classes: Sequence[str], *, title: str = "", dpi: int = 120) -> Path:
    """Draw :func:`correlation_figure` and write it as PNG, atomically.

    Parameters
    ----------
    path : str or Path
        Output ``.png`` file; parent folders are created.
    corr, classes, title
        As in :func:`correlation_figure`.
    dpi : int
        Resolution of the PNG.

    Returns
    -------
    Path
        ``path``.
    """
    path = Path(path)
    fig = correlation_figure(corr, classes, title=title)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight")
    return path
