"""Compare finished runs side by side: metrics by class frequency, and training cost.

Example::

    python tools/compare.py work_dirs/faster-rcnn_r50-finetune_fpn_1x_lvis-v1 \\
        'work_dirs/faster-rcnn_r50-frozen_*' --plot-dir work_dirs/compare

Each WORK_DIR is an MMEngine work dir (globs allowed); the work dir of a group run
(``DetectorGroup``, docs/shared_trunk.md) counts as one run per detector. Runs of the same
config (seeds) share a row: mean ± standard deviation. Differences are to the baseline row
(``--baseline``, default the first); costs are shown with their ratio to it.
"""
import argparse
import glob
import json
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from mmfrozen.compare import build_table, load_run  # noqa: E402
from mmfrozen.engine.hooks.group_checkpoint_hook import GROUP_INDEX  # noqa: E402
from mmfrozen.compare.plots import plot_metric_bars, plot_per_class_deltas  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Compare runs side by side')
    parser.add_argument('work_dirs', nargs='+', help='run work dirs (globs allowed)')
    parser.add_argument('--baseline', help='config name of the baseline row (default: first)')
    parser.add_argument('--format', choices=['markdown', 'csv', 'json'], default='markdown')
    parser.add_argument('--out', help='also write the table to this file')
    parser.add_argument('--plot-dir', help='write plots (PNG) to this folder')
    return parser.parse_args(argv)


def expand(patterns):
    dirs = []
    for pattern in patterns:
        found = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]
        if not found:
            raise SystemExit(f'compare: {pattern!r} matches no work dir')
        found = [run for d in found for run in group_members(d)]
        dirs += [d for d in found if d not in dirs]
    return dirs


def group_members(work_dir):
    """A group run's work dir as its detectors' folders (each written like a run's work dir);
    any other work dir as itself."""
    index = osp.join(work_dir, GROUP_INDEX)
    if not osp.isfile(index):
        return [work_dir]
    with open(index) as f:
        names = json.load(f)['detectors']
    return [osp.join(work_dir, name) for name in names]


def main(argv=None) -> int:
    args = parse_args(argv)
    runs = [load_run(d) for d in expand(args.work_dirs)]
    table = build_table(runs, baseline=args.baseline)
    text = {'markdown': table.to_markdown, 'csv': table.to_csv, 'json': table.to_json}[
        args.format]()
    print(text, end='')
    if args.out:
        os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
        with open(args.out, 'w') as f:
            f.write(text)
    if args.plot_dir:
        pngs = [plot_metric_bars(table, osp.join(args.plot_dir, 'metrics.png'))]
        per_class = {}
        for run in runs:
            if run.per_class_json:
                per_class.setdefault(run.name, run.per_class_json)
        pngs += plot_per_class_deltas(table, per_class, args.plot_dir)
        print('plots: ' + ', '.join(pngs))
    return 0


if __name__ == '__main__':
    sys.exit(main())
