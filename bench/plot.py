"""Cost curves as PNG files under bench/results/: one figure, one panel per quantity, each
plotted against the number of connections (or peers) the scenario held. matplotlib draws
them without a screen (the Agg backend); it is a dev dependency, imported only here."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.report import RESULTS_DIR


@dataclass(frozen=True)
class Panel:
    """One quantity: its title, its unit, and one series of y values per label (each the
    same length as the x values of the figure; None where a size was not measured)."""

    title: str
    unit: str
    series: Mapping[str, Sequence[float | None]]


def curves(
    name: str, x_label: str, sizes: Sequence[int], panels: Sequence[Panel], *, log_x: bool = True
) -> Path:
    """Write bench/results/<name>.png and return its path."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot, ticker

    columns = min(2, len(panels))
    rows = (len(panels) + columns - 1) // columns
    figure, axes = pyplot.subplots(rows, columns, figsize=(6 * columns, 3.6 * rows), squeeze=False)
    for index, panel in enumerate(panels):
        axis = axes[index // columns][index % columns]
        for label, values in panel.series.items():
            points = [(x, y) for x, y in zip(sizes, values, strict=True) if y is not None]
            if points:
                axis.plot(*zip(*points, strict=True), marker="o", label=label)
        axis.set_title(panel.title)
        axis.set_xlabel(x_label)
        axis.set_ylabel(panel.unit)
        if log_x:
            axis.set_xscale("log")
            axis.xaxis.set_major_formatter(ticker.ScalarFormatter())  # 1000, not 10^3
        axis.set_ylim(bottom=0)
        axis.grid(True, alpha=0.3)
        if len(panel.series) > 1:
            axis.legend(fontsize="small")
    for index in range(len(panels), rows * columns):
        axes[index // columns][index % columns].set_visible(False)
    figure.tight_layout()
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.png"
    figure.savefig(path, dpi=100)
    pyplot.close(figure)
    return path
