"""The schedule sweep's plot: frozen minus fine-tuned AP and APr against schedule length."""
import os
import os.path as osp
import statistics
from typing import Sequence

from .sweep_results import ScheduleResult

PAIR_STYLE = {
    'fpn': ('FPN', 'tab:blue', 'o'),
    'wide-fpn': ('wide FPN', 'tab:cyan', 'v'),
    'nasfpn': ('NAS-FPN', 'tab:orange', 's'),
    'cascade-nasfpn': ('Cascade + NAS-FPN', 'tab:red', 'D'),
}


def _std(values: Sequence[float]) -> float:
    return statistics.stdev(values) if len(values) > 1 else 0.0


def plot_schedule_gaps(results: Sequence[ScheduleResult], out_png: str) -> str:
    """Two panels, AP and APr: frozen minus fine-tuned against the schedule's epochs, one line
    per neck; each marker the mean over seeds, its bar the std.

    Args:
        results: the sweep's pairs at each schedule length.
        out_png: where to write the PNG.

    Returns:
        str: ``out_png``.
    """
    from matplotlib.figure import Figure  # object-oriented: no pyplot state, no backend set

    fig = Figure(figsize=(9, 3.8))
    axes = fig.subplots(1, 2, sharey=True)
    pairs = list(dict.fromkeys(r.pair for r in results))
    epochs = sorted({r.epochs for r in results})
    for ax, metric in zip(axes, ('AP', 'APr')):
        for pair in pairs:
            label, colour, marker = PAIR_STYLE.get(pair, (pair, None, 'o'))
            rows = sorted((r for r in results if r.pair == pair), key=lambda r: r.epochs)
            gaps = [r.gap(metric) for r in rows]
            ax.errorbar([r.epochs for r in rows], [statistics.fmean(g) for g in gaps],
                        yerr=[_std(g) for g in gaps], color=colour, marker=marker, capsize=3,
                        label=label)
        ax.axhline(0.0, color='grey', linewidth=0.8)
        ax.set_xscale('log', base=2)
        ax.set_xticks(epochs)
        ax.set_xticklabels([str(e) for e in epochs])
        ax.set_title(f'box {metric}: frozen - fine-tuned')
        ax.set_xlabel('detector training epochs')
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    axes[0].set_ylabel('points (x100); above 0: frozen leads')
    seeds = len(results[0].frozen.values['AP']) if results else 0
    fig.suptitle('Mini world: frozen vs fine-tuned twin (equal necks and heads) by schedule '
                 f'length (mean ± std over {seeds} seed(s))', fontsize=10)
    fig.tight_layout()
    os.makedirs(osp.dirname(osp.abspath(out_png)), exist_ok=True)
    fig.savefig(out_png, dpi=90)
    return out_png
