"""Few-shot detection in the mini world: is a frozen classifier backbone better when a class has
K annotated instances? (the paper's second hard case, TFA's protocol).

Base training on the frequent and common classes of a few-shot mini-LVIS, with the mini world's
classifier backbone frozen and fine-tuned; K-shot fine-tuning on K instances of every class
(the rare tier are the novel classes), K in {1, 5, 10}, three arms (frozen backbone, everything
fine-tuned, last layers only), ``--groups`` K-shot groups per point. It writes the table (nAP,
nAP50, bAP, mean ± std over groups), ``results.json`` and a plot of nAP against K to
``<work-dir>/few_shot/``; ``projects/mini_world/mini_world/few_shot.py`` says how. Not part of
the default main job.

Example::

    OMP_NUM_THREADS=1 python projects/mini_world/tools/mini_few_shot.py --groups 3 \\
        --work-dir work_dirs/mini_few_shot
    python projects/mini_world/tools/mini_few_shot.py --scale tiny --groups 2 \\
        --work-dir work_dirs/few_shot_tiny

In a mini reproduction's work dir it reuses its classifier (the same world and seed).
"""
import argparse
import os.path as osp
import sys
import time
from dataclasses import replace

# Runs from a clone without installing: the repository root on the path.
sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))))

from projects.mini_world.mini_world.cli import add_run_arguments, set_up_run  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Mini world: few-shot detection, frozen vs fine-tuned vs last layers only')
    parser.add_argument('--work-dir', default='work_dirs/mini_few_shot',
                        help='where everything goes (a mini reproduction work dir shares its '
                        'classifier)')
    add_run_arguments(parser, seeds=3, seeds_help='K-shot groups per K (alias of --groups)')
    parser.add_argument('--groups', type=int, default=None,
                        help='K-shot groups per K and arm: sampler seeds 0..N-1 (default 3)')
    parser.add_argument('--shots', type=int, nargs='+', default=None,
                        help="the K to run (default: the scale's, 1 5 10)")
    parser.add_argument('--arms', nargs='+', default=None,
                        help='the K-shot arms (default: frozen finetune lastlayers)')
    parser.add_argument('--report-only', action='store_true',
                        help='train nothing: the table and plot of the runs finished so far')
    parser.add_argument('--plot', default=None,
                        help='where the plot goes (default <work-dir>/few_shot/few_shot_nap.png)')
    args = parser.parse_args(argv)
    if args.groups is not None:
        args.seeds = args.groups
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.shots is not None and (min(args.shots) < 1 or len(set(args.shots)) != len(args.shots)):
        raise SystemExit(f'mini_few_shot: --shots must be distinct counts >= 1, got {args.shots}')
    jobs = set_up_run(args, 'mini_few_shot')

    import mmfrozen  # noqa: F401  (stack fixes)
    from projects.mini_world.mini_world.few_shot import ARMS, FEW_SHOT_SCALES, MiniFewShot
    from projects.mini_world.mini_world.pipeline import SCALES

    few_shot = FEW_SHOT_SCALES[args.scale]
    if args.shots:
        few_shot = replace(few_shot, shots=tuple(sorted(args.shots)))
    start = time.time()
    experiment = MiniFewShot(args.work_dir, SCALES[args.scale], few_shot,
                             groups=args.seeds, arms=args.arms or ARMS, threads=args.threads,
                             jobs=jobs, force=args.force)
    table = experiment.run(plot_file=args.plot, train=not args.report_only)
    print()
    print(f'Few-shot ({args.scale} scale, K {list(experiment.few_shot.shots)}, {args.seeds} '
          f'group(s), arms {experiment.arms}) finished in {time.time() - start:.0f}s. Results in '
          f'{experiment.out_dir}:')
    print(table, end='')
    print(f'Plot: {experiment.plot_file}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
