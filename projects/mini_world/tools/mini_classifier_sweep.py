"""Better classifier, better frozen detector? The paper's claim tested in the mini world.

The mini world's upstream classifier is trained for several epoch counts (1, 2, 4 and 8 by
default); each is exported and reused, frozen and fine-tuned, in the same detector (the narrow
FPN pair of ``configs/``), ``--seeds`` times each. It writes the table (classifier top-1,
AP/APr/APc/APf of both arms and their gap, mean ± std), ``sweep.json`` and a plot of detector AP
and APr against top-1 to ``<work-dir>/classifier_sweep/``. Not part of the default main job.

It works in a mini reproduction's work dir: the data, and at the scale's own epoch count the
classifier and the narrow pair's runs of ``mini_reproduction.py --seeds N`` are reused.

Example::

    python projects/mini_world/tools/mini_reproduction.py --seeds 3 \\
        --work-dir work_dirs/mini_seeds3
    python projects/mini_world/tools/mini_classifier_sweep.py --seeds 3 \\
        --work-dir work_dirs/mini_seeds3
    python projects/mini_world/tools/mini_classifier_sweep.py --scale tiny --epochs 1 2 \\
        --seeds 2 --work-dir work_dirs/sweep_tiny
"""
import argparse
import os.path as osp
import sys
import time

# Runs from a clone without installing: the repository root on the path.
sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))))

from projects.mini_world.mini_world.cli import add_run_arguments, set_up_run  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Mini world: the upstream classifier trained for several epoch counts, '
        'each reused frozen and fine-tuned in the same detector')
    parser.add_argument('--work-dir', default='work_dirs/mini_reproduction',
                        help='a mini reproduction work dir (its data and runs are reused)')
    parser.add_argument('--epochs', type=int, nargs='+', default=[1, 2, 4, 8],
                        help='classifier epoch counts, one sweep point each')
    add_run_arguments(parser, seeds=3,
                      seeds_help='detector runs per config and point (seeds 0..N-1)')
    parser.add_argument('--plot', default=None,
                        help='where the plot goes (default <work-dir>/classifier_sweep/sweep.png)')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if min(args.epochs) < 1 or len(set(args.epochs)) != len(args.epochs):
        raise SystemExit(f'mini_classifier_sweep: --epochs must be distinct counts >= 1, '
                         f'got {args.epochs}')
    jobs = set_up_run(args, 'mini_classifier_sweep')

    import mmfrozen  # noqa: F401  (stack fixes)
    from projects.mini_world.mini_world.classifier_sweep import ClassifierSweep
    from projects.mini_world.mini_world.pipeline import SCALES

    start = time.time()
    sweep = ClassifierSweep(args.work_dir, SCALES[args.scale], epochs=args.epochs,
                            seeds=args.seeds, threads=args.threads, jobs=jobs, force=args.force)
    table = sweep.run(plot_file=args.plot)
    print()
    print(f'Classifier sweep ({args.scale} scale, epochs {sorted(args.epochs)}, {args.seeds} '
          f'seed(s)) finished in {time.time() - start:.0f}s. Results in {sweep.out_dir}:')
    print(table, end='')
    print(f'Plot: {sweep.plot_file}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
