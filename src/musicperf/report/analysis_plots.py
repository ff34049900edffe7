"""Figures of the audio-visual analyses (002 Sections IV-B, V-B, VI-B).

matplotlib's object API on the Agg canvas (no pyplot, no global state); PNGs are written
atomically. matplotlib is imported inside the functions only.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from musicperf._util import atomic_path
from musicperf.errors import require

__all__ = ["vibrato_figure", "save_vibrato_plot", "playing_figure", "save_playing_plot"]

_METHOD_COLOURS = {"motion-autocorr": "tab:red", "motion-svm": "tab:purple", "audio": "tab:green"}


def _figure(w: float, h: float):
    require("matplotlib", purpose="plots")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(w, h))
    FigureCanvasAgg(fig)
    return fig


def _shade_segments(ax, segs, *, label_rates: bool) -> None:
    """Shade vibrato segments on ``ax`` (one colour per method) and write rate/extent inside."""
    seen = set()
    for s in segs:
        colour = _METHOD_COLOURS.get(s["method"], "tab:orange")
        lab = s["method"] if s["method"] not in seen else None
        seen.add(s["method"])
        ax.axvspan(s["start"], s["end"], color=colour, alpha=0.18, label=lab, lw=0)
        if label_rates and s["rate_hz"] is not None:
            ext = f"\n{s['extent_cents']:.0f} cents" if s["extent_cents"] is not None else ""
            ax.text((s["start"] + s["end"]) / 2, 0.97, f"{s['rate_hz']:.2f} Hz{ext}",
                    transform=ax.get_xaxis_transform(), ha="center", va="top", fontsize=7, color=colour,
                    bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="none", alpha=0.8))
    if seen:
        ax.legend(loc="lower right", fontsize=7, title="vibrato found by", title_fontsize=7, framealpha=0.8)


def vibrato_figure(result):
    """Draw a :class:`~musicperf.analysis.vibrato.VibratoResult`.

    Panels: the hand displacement curve ``X(t)`` with the notes and the vibrato notes of the
    motion method (shaded, rate and Equation 1 extent written inside); the pitch contour in
    MIDI numbers with the vibrato notes of the audio method; the scatter of refined motion
    vectors ``v(t)`` with the PCA direction (the right panel of Figure 4 of 002). Each method
    gets its own panel so that agreeing detections do not hide each other. Panels without data
    are omitted (an audio file has no motion).

    Returns
    -------
    matplotlib.figure.Figure
    """
    curve, pitch = result.curve, result.pitch
    rows = (curve is not None) + (pitch is not None)
    fig = _figure(11, 2.6 * max(rows, 1) + 0.8)
    gs = fig.add_gridspec(max(rows, 1), 4 if curve is not None else 1)
    axes = []
    r = 0
    segs = result.segments()
    motion_segs = [s for s in segs if s["method"].startswith("motion")]
    audio_segs = [s for s in segs if s["method"] == "audio"]
    title = Path(result.media).name
    if result.region is not None:
        g = result.region
        title += (f": fingering hand box {g.x:.0f},{g.y:.0f},{g.w:.0f}x{g.h:.0f} px"
                  + (f" ({result.region_source})" if getattr(result, "region_source", "") else ""))
    fig.suptitle(title, fontsize=10)
    if curve is not None:
        ax = fig.add_subplot(gs[r, :3])
        ax.plot(curve.times, curve.displacement - np.median(curve.displacement), lw=0.8, color="k")
        ax.set_ylabel("hand displacement\nX(t) (px)")
        ax.set_title("motion of the fingering hand, vibrato notes from X(t)", fontsize=9)
        _shade_segments(ax, motion_segs, label_rates=True)
        axes.append(ax)
        sc = fig.add_subplot(gs[:, 3])
        v = curve.refined
        sc.scatter(v[:, 0], v[:, 1], s=3, alpha=0.4)
        lim = float(np.percentile(np.abs(v), 99) or 1.0)
        d = curve.direction * lim
        sc.plot([-d[0], d[0]], [-d[1], d[1]], color="tab:red", lw=2, label="principal direction")
        sc.set_xlim(-lim * 1.2, lim * 1.2)
        sc.set_ylim(lim * 1.2, -lim * 1.2)  # image y points down
        sc.set_aspect("equal")
        sc.set_xlabel("v_x (px/frame)")
        sc.set_ylabel("v_y (px/frame)")
        sc.set_title("refined motion v(t)", fontsize=9)
        sc.legend(loc="lower right", fontsize=7)
        r += 1
    if pitch is not None:
        ax = fig.add_subplot(gs[r, :3] if curve is not None else gs[r, 0], sharex=axes[0] if axes else None)
        ax.plot(pitch.times, pitch.midi, lw=0.8, color="tab:blue")
        ax.set_ylabel("pitch (MIDI)")
        ax.set_title("pitch contour (pYIN/YIN), vibrato notes from the audio alone", fontsize=9)
        _shade_segments(ax, audio_segs, label_rates=True)
        axes.append(ax)
    for ax in axes:
        for n in result.notes:
            ax.axvline(n.onset, color="0.75", lw=0.5, zorder=0)
    if axes:
        axes[-1].set_xlabel("time (s)")
    if not axes:
        ax = fig.add_subplot(gs[0, 0])
        ax.text(0.5, 0.5, "no motion and no pitch", ha="center", va="center")
        ax.set_axis_off()
    fig.tight_layout()
    return fig


def save_vibrato_plot(result, path, *, dpi: int = 110) -> Path:
    """Write :func:`vibrato_figure` as a PNG, atomically; returns the path."""
    path = Path(path)
    fig = vibrato_figure(result)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)
    return path


def playing_figure(times: np.ndarray, playing: np.ndarray, *, names=None, activity: np.ndarray | None = None,
                   truth: np.ndarray | None = None, title: str = ""):
    """Timeline of playing (1), non-playing (0) and unknown (-1) per performer.

    Parameters
    ----------
    times : np.ndarray, shape (T,)
        Seconds.
    playing : np.ndarray, shape (T, P)
        1/True playing, 0/False non-playing, -1 unknown.
    names : list of str, optional
    activity : np.ndarray, shape (T, P), optional
        Motion activity drawn under each lane (scaled to the lane).
    truth : np.ndarray, shape (T, P), optional
        Ground truth drawn as a thin bar above the estimate.
    """
    from matplotlib.colors import ListedColormap

    p = np.asarray(playing).astype(int)
    P = p.shape[1]
    names = names or [f"performer {i + 1}" for i in range(P)]
    fig = _figure(10, 0.8 + 0.7 * P)
    ax = fig.add_subplot(1, 1, 1)
    cmap = ListedColormap(["0.85", "white", "tab:green"])
    dt = float(times[1] - times[0]) if len(times) > 1 else 1.0
    ext = (float(times[0]), float(times[-1] + dt))
    for i in range(P):
        ax.imshow(p[None, :, i] + 1, aspect="auto", cmap=cmap, vmin=0, vmax=2, interpolation="nearest",
                  extent=(ext[0], ext[1], i + 0.4, i - 0.3))
        if truth is not None:
            ax.imshow(np.asarray(truth)[None, :, i].astype(int) + 1, aspect="auto", cmap=cmap, vmin=0, vmax=2,
                      interpolation="nearest", extent=(ext[0], ext[1], i - 0.3, i - 0.45))
        if activity is not None:
            a = np.asarray(activity)[:, i]
            a = a / (a.max() or 1.0)
            ax.plot(times, i + 0.35 - 0.6 * a, color="k", lw=0.6)
    ax.set_ylim(P - 0.5, -0.5)
    ax.set_yticks(range(P))
    ax.set_yticklabels(names)
    ax.set_xlabel("time (s)")
    ax.set_title(title or ("playing (green) / non-playing (white) / unknown (grey)"
                           + ("; thin bar: truth" if truth is not None else "")))
    fig.tight_layout()
    return fig


def save_playing_plot(path, times, playing, *, dpi: int = 110, **kwargs) -> Path:
    """Write :func:`playing_figure` as a PNG, atomically; returns the path."""
    path = Path(path)
    fig = playing_figure(times, playing, **kwargs)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)
    return path
