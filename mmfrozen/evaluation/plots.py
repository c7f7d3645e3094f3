"""Per-class plots: AP against training annotations, and the two-run difference (the paper's).

Matplotlib's object-oriented ``Figure`` API (no display, no backend chosen for the user). The x
axis is symmetric-log so that classes without training annotations (x = 0) stay on the plot.
"""
import math
import os
import os.path as osp
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
from matplotlib.figure import Figure

from .per_class_report import read_per_class

_GROUP_COLOURS = dict(r='tab:red', c='tab:orange', f='tab:blue')


def _xy(rows: Sequence[Dict[str, Any]], key: str = 'AP') -> Tuple[np.ndarray, np.ndarray, list]:
    kept = [r for r in rows if r.get(key) is not None and not math.isnan(float(r[key]))]
    x = np.array([r['train_instances'] for r in kept], dtype=float)
    y = np.array([float(r[key]) for r in kept], dtype=float)
    return x, y, [r.get('frequency') for r in kept]


def _style_log_x(ax: Any) -> None:
    ax.set_xscale('symlog', linthresh=1)
    ax.set_xlim(left=0)
    ax.set_xlabel('training annotations of the class (log scale)')
    ax.grid(True, alpha=0.3)


def smoothed_trend(x: np.ndarray, y: np.ndarray, num_points: int = 50,
                   bandwidth: float = 0.35) -> Tuple[np.ndarray, np.ndarray]:
    """Gaussian-kernel (Nadaraya-Watson) smoothing of y against log10(1 + x).

    Args:
        x: training annotations per class.
        y: a per-class value (e.g. the AP difference).
        num_points: points of the returned curve.
        bandwidth: kernel width in decades.

    Returns:
        tuple: the curve's x (annotations) and y.
    """
    lx = np.log10(1 + x)
    grid = np.linspace(lx.min(), lx.max(), num_points)
    weights = np.exp(-0.5 * ((grid[:, None] - lx[None, :]) / bandwidth) ** 2)
    trend = (weights * y[None, :]).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-12)
    return 10 ** grid - 1, trend


def plot_per_class_ap(rows: Sequence[Dict[str, Any]], out_png: str,
                      title: Optional[str] = None) -> str:
    """Scatter per-class AP against training annotations, coloured by frequency group.

    Args:
        rows: per-class rows (``train_instances``, ``AP``, ``frequency``).
        out_png: the PNG to write.
        title: the plot's title.

    Returns:
        str: ``out_png``.
    """
    x, y, groups = _xy(rows)
    fig = Figure(figsize=(7, 4.5))
    ax = fig.subplots()
    for group, colour in _GROUP_COLOURS.items():
        mask = np.array([g == group for g in groups], dtype=bool)
        if mask.any():
            ax.scatter(x[mask], 100 * y[mask], s=14, alpha=0.7, color=colour,
                       label=f'{group} ({mask.sum()} classes)')
    if len(x) >= 2:
        tx, ty = smoothed_trend(x, y)
        ax.plot(tx, 100 * ty, color='black', lw=1.5, label='smoothed')
    _style_log_x(ax)
    ax.set_ylabel('AP (x100)')
    ax.set_title(title or 'Per-class AP')
    if len(x):
        ax.legend(fontsize=8)
    _save(fig, out_png)
    return out_png


def plot_per_class_delta(per_class_a_json: str, per_class_b_json: str, out_png: str,
                         label_a: str = 'A', label_b: str = 'B') -> str:
    """Plot per-class AP(B) - AP(A) against training annotations with a smoothed trend.

    This is the paper's per-class figure with A the fine-tuned and B the frozen run. Classes
    are matched by ``category_id``; a class without AP in either run is left out. The
    training annotations are taken from run B's file.

    Args:
        per_class_a_json: ``*_per_class.json`` of run A.
        per_class_b_json: ``*_per_class.json`` of run B.
        out_png: the PNG to write.
        label_a: run A's name on the plot.
        label_b: run B's name on the plot.

    Returns:
        str: ``out_png``.

    Raises:
        ValueError: the two files share no class.
    """
    rows_a = {r['category_id']: r for r in read_per_class(per_class_a_json)}
    rows_b = read_per_class(per_class_b_json)
    deltas: List[Dict[str, Any]] = []
    for row in rows_b:
        other = rows_a.get(row['category_id'])
        if other is None or math.isnan(row['AP']) or math.isnan(other['AP']):
            continue
        deltas.append(dict(row, AP=row['AP'] - other['AP']))
    if not deltas:
        raise ValueError(f'{per_class_a_json!r} and {per_class_b_json!r} share no class with '
                         'an AP in both (field "category_id").')
    x, y, groups = _xy(deltas)
    fig = Figure(figsize=(7, 4.5))
    ax = fig.subplots()
    colours = [_GROUP_COLOURS.get(g, 'tab:gray') for g in groups]
    ax.scatter(x, 100 * y, s=14, alpha=0.6, c=colours)
    ax.axhline(0, color='gray', lw=0.8)
    if len(x) >= 2:
        tx, ty = smoothed_trend(x, y)
        ax.plot(tx, 100 * ty, color='black', lw=2, label='smoothed trend')
        ax.legend(fontsize=8)
    _style_log_x(ax)
    ax.set_ylabel('per-class AP change (x100)')
    # Config names are long: one per line, small, so the title fits the figure.
    ax.set_title(f'{label_b}\nminus {label_a}\n'
                 f'({len(deltas)} classes, mean {100 * y.mean():+.1f})', fontsize=8)
    _save(fig, out_png)
    return out_png


def _save(fig: Any, out_png: str) -> None:
    os.makedirs(osp.dirname(osp.abspath(out_png)), exist_ok=True)
    fig.tight_layout()
    fig.savefig(out_png, dpi=120)
