"""Figures: a track's taggram and top tags, and a run's per-tag AUCs (the paper's Table 3).

Plotting is optional (the `plot` extra, matplotlib): `require_matplotlib` turns its absence into
a one-line error naming what to install. Figures are drawn with matplotlib's object-oriented API
(`matplotlib.figure.Figure`, no pyplot state, no display needed) and written atomically as PNG.
This module only draws what it is given; it computes no scores.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd

from emotion_keras.errors import ConfigError
from emotion_keras.fileio import atomic_path

INSTALL = "pip install 'emotion_keras[plot]'"
#: Tags shown in a taggram (the track's most probable ones).
TAGGRAM_TAGS = 10


def has_matplotlib() -> bool:
    return importlib.util.find_spec("matplotlib") is not None


def require_matplotlib(argument: str) -> None:
    """Raises a ConfigError naming `argument` when matplotlib is not installed."""
    if not has_matplotlib():
        raise ConfigError(
            f"{argument}: plotting needs matplotlib; install it with {INSTALL}",
            arguments=(argument,),
        )


def short(tag: str) -> str:
    return tag.rsplit("---", 1)[-1]


def _save(figure, path: Path) -> Path:
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=100, bbox_inches="tight")
    return path


def write_taggram(
    path: str | Path,
    timeline: pd.DataFrame,
    probabilities: pd.Series,
    *,
    title: str = "",
    top_k: int = 5,
    decided=(),
) -> Path:
    """One track's figure: its top tags over time (per-window probabilities) and its top-k bars.

    Args:
        timeline: `emotion_keras.serving.timeline.timeline`'s table (start_s, end_s, tags).
        probabilities: the track-level probability of each tag (crop-averaged).
        decided: tags decided present (drawn darker), if the model has thresholds.
    """
    from matplotlib.figure import Figure

    top = probabilities.sort_values(ascending=False, kind="stable")
    shown = list(top.index[:TAGGRAM_TAGS])
    starts = timeline.start_s.to_numpy(float)
    # A column per window, as wide as the hop (a single window: as wide as itself).
    hop_s = starts[1] - starts[0] if len(starts) > 1 else timeline.end_s.iloc[0] - starts[0]
    figure = Figure(figsize=(11, 4.5))
    grid = figure.add_gridspec(1, 2, width_ratios=(3, 1.3), wspace=0.45)
    taggram, bars = figure.add_subplot(grid[0]), figure.add_subplot(grid[1])
    image = taggram.imshow(
        timeline[shown].to_numpy().T,
        aspect="auto",
        interpolation="nearest",
        cmap="magma",
        vmin=0,
        vmax=1,
        extent=(starts[0], starts[-1] + hop_s, len(shown) - 0.5, -0.5),
    )
    taggram.set_yticks(range(len(shown)), [short(t) for t in shown])
    window_s = timeline.end_s.iloc[0] - starts[0]
    taggram.set_xlabel(f"window start (s); each window is {window_s:.1f} s, one model crop")
    taggram.set_title("taggram: probability per window")
    figure.colorbar(image, ax=taggram, fraction=0.03)
    best = top.iloc[:top_k][::-1]
    colours = ["tab:blue" if t in set(decided) else "tab:gray" for t in best.index]
    bars.barh([short(t) for t in best.index], best.to_numpy(), color=colours)
    bars.set_xlim(0, 1)
    bars.set_title(f"top {top_k} (track)" + (", blue: decided" if decided else ""))
    if title:
        figure.suptitle(title)
    return _save(figure, Path(path))


def write_per_tag_aucs(path: str | Path, per_tag: pd.DataFrame, title: str = "") -> Path:
    """Per-tag ROC-AUC and PR-AUC, each panel sorted (the paper's Table 3 as a picture).

    Args:
        per_tag: `evaluation.evaluate.read_per_tag`'s table (tag, roc_auc, pr_auc).
    """
    from matplotlib.figure import Figure

    figure = Figure(figsize=(11, 0.19 * len(per_tag) + 1.5))
    for i, (column, label) in enumerate((("roc_auc", "ROC-AUC"), ("pr_auc", "PR-AUC"))):
        axes = figure.add_subplot(1, 2, i + 1)
        table = per_tag.sort_values(column, kind="stable")
        values = table[column].to_numpy(float)
        axes.barh([short(t) for t in table.tag], np.nan_to_num(values), color="tab:blue")
        axes.set_xlim(0, 1)
        axes.tick_params(axis="y", labelsize=7)
        axes.set_title(f"{label} per tag (macro {np.nanmean(values):.3f})")
        if column == "roc_auc":
            axes.axvline(0.5, color="gray", linewidth=0.8, linestyle="--")
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    return _save(figure, Path(path))
