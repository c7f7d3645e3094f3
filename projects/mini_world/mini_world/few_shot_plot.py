"""The few-shot experiment's plot: novel AP against K, one line per arm (mean ± std over
groups)."""
import os
import os.path as osp
import statistics
from typing import Any, Dict, Sequence

#: arm -> (label, colour, marker)
ARM_STYLE = {
    'frozen': ('frozen backbone (paper)', 'tab:blue', 'o'),
    'finetune': ('fine-tuned', 'tab:orange', 's'),
    'lastlayers': ('last layers only (TFA)', 'tab:green', '^'),
}


def _std(values: Sequence[float]) -> float:
    return statistics.stdev(values) if len(values) > 1 else 0.0


def plot_few_shot(results: Dict[str, Any], out_png: str) -> str:
    """Two panels against K: novel AP and base AP, each arm's mean over groups with its std.

    Args:
        results: as :meth:`.few_shot.MiniFewShot.results` gives them.
        out_png: where to write the PNG.

    Returns:
        str: ``out_png``.
    """
    from matplotlib.figure import Figure  # object-oriented: no pyplot state, no backend set

    shots = results['shots']
    fig = Figure(figsize=(9, 3.6))
    axes = fig.subplots(1, 2)
    for ax, metric, title in ((axes[0], 'nAP', 'novel classes: nAP'),
                              (axes[1], 'bAP', 'base classes: bAP')):
        for index, arm in enumerate(results['arms']):
            label, colour, marker = ARM_STYLE[arm]
            ks = [k for k in shots if results['kshot'][arm][str(k)][metric]]
            values = [results['kshot'][arm][str(k)][metric] for k in ks]
            # a small offset along K so that the error bars do not hide each other
            xs = [k * (1 + 0.04 * (index - 1)) for k in ks]
            ax.errorbar(xs, [statistics.fmean(v) for v in values],
                        yerr=[_std(v) for v in values], color=colour, marker=marker,
                        capsize=3, label=label)
        ax.set_xscale('log')
        ax.set_xticks(shots)
        ax.set_xticklabels([str(k) for k in shots])
        ax.set_xlabel('K (annotated instances per class)')
        ax.set_ylabel('box AP (x100)')
        ax.set_title(title)
        ax.grid(alpha=0.3)
    for arm, value in sorted(results['base_AP'].items()):
        axes[1].axhline(value, color=ARM_STYLE[arm][1], linestyle=':', linewidth=1)
    axes[0].legend(fontsize=8)
    fig.suptitle('Mini world, few-shot: mean ± std over K-shot groups '
                 '(dotted: base detectors before the K-shot stage)', fontsize=9)
    fig.tight_layout()
    os.makedirs(osp.dirname(osp.abspath(out_png)), exist_ok=True)
    fig.savefig(out_png, dpi=120)
    return out_png
