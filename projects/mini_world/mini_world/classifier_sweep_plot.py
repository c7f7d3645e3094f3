"""The classifier sweep's plot: detector AP and APr against the upstream classifier's top-1."""
import os
import os.path as osp
import statistics
from typing import Sequence

from .sweep_results import PointResult

ARM_STYLE = (('finetune', 'fine-tuned', 'tab:orange', 's'), ('frozen', 'frozen', 'tab:blue', 'o'))


def _std(values: Sequence[float]) -> float:
    return statistics.stdev(values) if len(values) > 1 else 0.0


def plot_sweep(results: Sequence[PointResult], out_png: str) -> str:
    """Three panels against the classifier's top-1: AP, APr, and the gap (fine-tuned - frozen).

    Each marker is a mean over detector seeds, its bar the std; each point is labelled with its
    classifier's epochs.

    Args:
        results: the sweep points.
        out_png: where to write the PNG.

    Returns:
        str: ``out_png``.
    """
    from matplotlib.figure import Figure  # object-oriented: no pyplot state, no backend set

    results = sorted(results, key=lambda r: r.top1)
    top1 = [r.top1 for r in results]
    fig = Figure(figsize=(11, 3.6))
    axes = fig.subplots(1, 3)
    for ax, metric in zip(axes[:2], ('AP', 'APr')):
        for attr, label, colour, marker in ARM_STYLE:
            arms = [getattr(r, attr) for r in results]
            ax.errorbar(top1, [statistics.fmean(a.values[metric]) for a in arms],
                        yerr=[_std(a.values[metric]) for a in arms], color=colour,
                        marker=marker, capsize=3, label=label)
        ax.set_title(f'detector box {metric}')
        ax.set_ylabel(f'{metric} (x100)')
    gap_ax = axes[2]
    for metric, colour, marker in (('AP', 'tab:green', 'o'), ('APr', 'tab:purple', '^')):
        gaps = [r.gap(metric) for r in results]
        gap_ax.errorbar(top1, [statistics.fmean(g) for g in gaps], yerr=[_std(g) for g in gaps],
                        color=colour, marker=marker, capsize=3, label=metric)
    gap_ax.axhline(0.0, color='grey', linewidth=0.8)
    gap_ax.set_title('gap: fine-tuned - frozen')
    gap_ax.set_ylabel('AP points (x100)')
    for ax in axes:
        ax.set_xlabel('upstream classifier top-1 (%)')
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    for result in results:  # the epochs beside each point, once, on the AP panel
        axes[0].annotate(f'{result.epochs} ep', (result.top1, statistics.fmean(
            result.frozen.values['AP'])), textcoords='offset points', xytext=(4, -12),
            fontsize=7)
    seeds = len(results[0].frozen.values['AP']) if results else 0
    fig.suptitle(f'Mini world: classifier trained 1-{max(r.epochs for r in results)} epochs, '
                 f'each reused in the same Faster R-CNN (mean ± std over {seeds} seeds)',
                 fontsize=10)
    fig.tight_layout()
    os.makedirs(osp.dirname(osp.abspath(out_png)), exist_ok=True)
    fig.savefig(out_png, dpi=90)
    return out_png
