"""Does added capacity and a longer schedule close the frozen detector's gap? The paper's remedy
tested in the mini world.

Each pair of detectors (fine-tuned, and its frozen twin with identical neck and heads) trains at
1x, 2x and 4x the mini schedule by default, ``--seeds`` times each, through ``tools/train.py``;
the default pairs are the plain FPN (``fpn``) and Cascade R-CNN + NAS-FPN
(``cascade-nasfpn``), the paper's strongest trained parts; ``nasfpn`` and ``wide-fpn`` can be
added. It writes the table (AP, APr, APc, APf of both arms and frozen minus fine-tuned, mean ±
std), ``sweep.json`` (with each run's time) and a plot of frozen minus fine-tuned AP and APr
against schedule length to ``<work-dir>/schedule_sweep/``. Not part of the default main job.

It works in a mini reproduction's work dir: the data and classifier, and at 1x the runs of
``mini_reproduction.py --seeds N`` (and ``--extra-configs``) are reused.

Example::

    python projects/mini_world/tools/mini_schedule_sweep.py --seeds 3 \\
        --work-dir work_dirs/mini_seeds3
    python projects/mini_world/tools/mini_schedule_sweep.py --schedules 1 --seeds 1 \\
        --pairs fpn nasfpn cascade-nasfpn --work-dir work_dirs/mini_seeds3
"""
import argparse
import os.path as osp
import sys
import time

# Runs from a clone without installing: the repository root on the path.
sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))))

from projects.mini_world.mini_world.cli import add_run_arguments, set_up_run  # noqa: E402

PAIRS = ('fpn', 'wide-fpn', 'nasfpn', 'cascade-nasfpn')


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Mini world: frozen and fine-tuned twins (equal necks and heads) trained '
        'at several multiples of the mini schedule')
    parser.add_argument('--work-dir', default='work_dirs/mini_reproduction',
                        help='a mini reproduction work dir (its data and runs are reused)')
    parser.add_argument('--schedules', type=int, nargs='+', default=[1, 2, 4],
                        help='multiples of the mini schedule (6 epochs), one sweep point each')
    parser.add_argument('--pairs', nargs='+', choices=PAIRS, default=['fpn', 'cascade-nasfpn'],
                        help='the detector pairs, by neck')
    add_run_arguments(parser, seeds=3,
                      seeds_help='detector runs per config and schedule (seeds 0..N-1)')
    parser.add_argument('--plot', default=None,
                        help='where the plot goes (default <work-dir>/schedule_sweep/gap.png)')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if min(args.schedules) < 1 or len(set(args.schedules)) != len(args.schedules):
        raise SystemExit(f'mini_schedule_sweep: --schedules must be distinct multiples >= 1, '
                         f'got {args.schedules}')
    if len(set(args.pairs)) != len(args.pairs):
        raise SystemExit(f'mini_schedule_sweep: --pairs named twice: {args.pairs}')
    jobs = set_up_run(args, 'mini_schedule_sweep')

    import mmfrozen  # noqa: F401  (stack fixes)
    from projects.mini_world.mini_world.pipeline import SCALES
    from projects.mini_world.mini_world.schedule_sweep import ScheduleSweep

    start = time.time()
    sweep = ScheduleSweep(args.work_dir, SCALES[args.scale], schedules=args.schedules,
                          pairs=args.pairs, seeds=args.seeds, threads=args.threads, jobs=jobs,
                          force=args.force)
    table = sweep.run(plot_file=args.plot)
    print()
    print(f'Schedule sweep ({args.scale} scale, schedules {sorted(args.schedules)}x, pairs '
          f'{", ".join(args.pairs)}, {args.seeds} seed(s)) finished in '
          f'{time.time() - start:.0f}s. Results in {sweep.out_dir}:')
    print(table, end='')
    print(f'Plot: {sweep.plot_file}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
