"""Pictures of a run, drawn with matplotlib at its end: the training curves and the confusion matrix."""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Sequence

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

__all__ = ["plot_curves", "plot_confusion_matrix"]


def plot_curves(train_log: List[Dict[str, float]], eval_log: List[Dict[str, float]], metric: str,
                path: Path) -> None:
    """Three panels against the optimizer step: training loss, learning rate, and `metric` of each evaluation."""
    figure, axes = plt.subplots(1, 3, figsize=(13, 3.6), sharex=True, constrained_layout=True)
    steps = [row["step"] for row in train_log]
    axes[0].plot(steps, [row["loss"] for row in train_log], color="tab:blue")
    axes[0].set(title="training loss", xlabel="step")
    axes[1].plot(steps, [row["lr"] for row in train_log], color="tab:orange")
    axes[1].set(title="learning rate", xlabel="step")
    axes[1].ticklabel_format(axis="y", style="sci", scilimits=(-2, 2))
    for key, style in ((metric, "o-"), (f"ema_{metric}", "s--")):
        points = [(row["step"], row[key]) for row in eval_log if row.get(key) is not None]
        if points:
            axes[2].plot(*zip(*points), style, label=key)
    axes[2].set(title=f"evaluation: {metric} (%)", xlabel="step")
    if eval_log:
        axes[2].legend()
    for ax in axes:
        ax.grid(alpha=0.3)
    figure.savefig(path, dpi=100)
    plt.close(figure)


def plot_confusion_matrix(confusion: np.ndarray, label_names: Sequence[str], path: Path) -> None:
    """Rows (ground truth) normalised to percent; cells annotated when there are at most 25 classes."""
    confusion = np.asarray(confusion, dtype=np.float64)
    rows = confusion.sum(1, keepdims=True)
    percent = np.divide(100 * confusion, rows, out=np.zeros_like(confusion), where=rows > 0)
    n = len(label_names)
    side = min(max(4.0, 0.45 * n + 2), 40.0)
    figure, ax = plt.subplots(figsize=(side + 1.2, side), constrained_layout=True)
    image = ax.imshow(percent, cmap="Blues", vmin=0, vmax=100)
    figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="% of the ground-truth class")
    ticks = np.arange(n)
    ax.set_xticks(ticks, label_names, rotation=90, fontsize=8 if n <= 40 else 5)
    ax.set_yticks(ticks, label_names, fontsize=8 if n <= 40 else 5)
    ax.set(xlabel="prediction", ylabel="ground truth", title="confusion matrix (row-normalised, %)")
    if n <= 25:
        for i in range(n):
            for j in range(n):
                if percent[i, j] >= 0.5:
                    ax.text(j, i, f"{percent[i, j]:.0f}", ha="center", va="center", fontsize=7,
                            color="white" if percent[i, j] > 50 else "black")
    figure.savefig(path, dpi=100)
    plt.close(figure)
