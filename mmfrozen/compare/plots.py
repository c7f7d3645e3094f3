"""Plots of a comparison: the main metrics side by side, and per-class AP differences."""
import os
import os.path as osp
from typing import List

from .table import ComparisonTable


def plot_metric_bars(table: ComparisonTable, out_png: str) -> str:
    """A grouped bar chart: one group per metric column, one bar per config (std as error).

    Args:
        table: the comparison table.
        out_png: where to write the PNG.

    Returns:
        str: ``out_png``.
    """
    from matplotlib.figure import Figure  # object-oriented: no pyplot state, no backend set
    import numpy as np

    columns = table.metric_columns
    width = 0.8 / max(len(table.rows), 1)
    fig = Figure(figsize=(max(6, 1.3 * len(columns) + 2), 4))
    ax = fig.subplots()
    x = np.arange(len(columns))
    for i, row in enumerate(table.rows):
        means = [100 * row.cells[c].mean if row.cells[c].mean is not None else np.nan
                 for c in columns]
        stds = [100 * row.cells[c].std if row.cells[c].std is not None else 0 for c in columns]
        ax.bar(x + (i - (len(table.rows) - 1) / 2) * width, means, width, yerr=stds,
               capsize=2, label=f'{row.name} ({row.arm})')
    ax.set_xticks(x)
    ax.set_xticklabels(columns)
    ax.set_ylabel('box AP (x100)')
    ax.set_title('AP by frequency group and training-annotation bin')
    ax.legend(fontsize=7, loc='upper left', bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    os.makedirs(osp.dirname(osp.abspath(out_png)), exist_ok=True)
    fig.savefig(out_png, dpi=120)
    return out_png


def plot_per_class_deltas(table: ComparisonTable, runs_per_class: dict, out_dir: str) -> List[str]:
    """For each config against the baseline: per-class AP difference vs training annotations.

    Args:
        table: the comparison table.
        runs_per_class: config name -> path of its first run's ``bbox_per_class.json``.
        out_dir: where the PNGs go (``delta_<config>.png``).

    Returns:
        list[str]: the PNGs written.
    """
    base = runs_per_class.get(table.baseline)
    written: List[str] = []
    if not base:
        return written
    from mmfrozen.evaluation import plot_per_class_delta
    for row in table.rows:
        other = runs_per_class.get(row.name)
        if row.name == table.baseline or not other:
            continue
        out_png = osp.join(out_dir, f'delta_{row.name}.png')
        plot_per_class_delta(base, other, out_png, label_a=table.baseline, label_b=row.name)
        written.append(out_png)
    return written
