"""Plot the per-class AP difference of two runs against training annotations (paper's figure).

    python tools/analysis/per_class_delta.py \\
        work_dirs/finetuned/stratified_eval/bbox_per_class.json \\
        work_dirs/frozen/stratified_eval/bbox_per_class.json \\
        --out delta.png --labels fine-tuned frozen

draws AP(B) - AP(A) per class (B: the second file) on a log axis of training annotations,
with a smoothed trend.
"""
import argparse
import os.path as osp
import sys
from typing import Optional, Sequence

# Runs from a clone without installing: the repository root on the path.
sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from mmfrozen.evaluation.plots import plot_per_class_delta  # noqa: E402


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Per-class AP difference of two runs against training annotations.')
    parser.add_argument('per_class_a', help='run A: a *_per_class.json (e.g. fine-tuned)')
    parser.add_argument('per_class_b', help='run B: a *_per_class.json (e.g. frozen)')
    parser.add_argument('--out', default='per_class_delta.png', help='the PNG to write')
    parser.add_argument('--labels', nargs=2, default=['A', 'B'], metavar=('A', 'B'),
                        help='names of the two runs on the plot')
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> str:
    args = parse_args(argv)
    out = plot_per_class_delta(args.per_class_a, args.per_class_b, args.out,
                               label_a=args.labels[0], label_b=args.labels[1])
    print(f'Wrote {out}')
    return out


if __name__ == '__main__':
    main()
