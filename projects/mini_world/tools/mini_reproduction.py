"""The paper's idea end to end on a visual world this project renders itself; no downloads.

Upstream, a small ResNet classifier learns the mini world's classes (its "ImageNet");
downstream, Faster R-CNN detectors train on a long-tailed LVIS v1-format set of the same world:
fine-tuned, frozen, and frozen with added capacity (a wider FPN and box head). Each is
evaluated by frequency group (``LVISStratifiedMetric``), costed (``CostReportHook``) and
compared (``tools/compare.py``), whose table is printed at the end.

Example::

    python projects/mini_world/tools/mini_reproduction.py              # about 10 min on 2 CPU cores
    python projects/mini_world/tools/mini_reproduction.py --seeds 3    # mean and std over 3 seeds
    python projects/mini_world/tools/mini_reproduction.py --scale tiny --work-dir work_dirs/tiny

Finished steps are reused (``--force`` redoes them); an interrupted training resumes.
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
        description='Mini reproduction: classifier pre-training, then fine-tuned vs frozen '
        'detectors on a long-tailed LVIS-format set, all on generated data')
    parser.add_argument('--work-dir', default='work_dirs/mini_reproduction',
                        help='where data, checkpoints, logs and results go')
    add_run_arguments(parser, seeds=1,
                      seeds_help='runs of each detector (seeds 0..N-1); the table shows mean ± std')
    parser.add_argument('--extra-configs', nargs='+', default=[], metavar='CONFIG',
                        help='more detector configs to train beside the default three, e.g. '
                        'projects/mini_world/configs/'
                        'faster-rcnn_r18-finetune_wide-fpn_mini-lvis.py')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    jobs = set_up_run(args, 'mini_reproduction')

    import mmfrozen  # noqa: F401  (stack fixes)
    from projects.mini_world.mini_world.pipeline import DETECTOR_CONFIGS, SCALES, MiniReproduction
    from projects.mini_world.mini_world.seed_spread import single_seed_note

    extra = [osp.abspath(c) for c in args.extra_configs]
    for config in extra:
        if not osp.isfile(config):
            raise SystemExit(f'mini_reproduction: --extra-configs {config}: no such file')

    start = time.time()
    reproduction = MiniReproduction(args.work_dir, SCALES[args.scale], seeds=args.seeds,
                                    threads=args.threads, jobs=jobs, force=args.force,
                                    detector_configs=[*DETECTOR_CONFIGS, *extra])
    table = reproduction.run()
    print()
    print(f'Mini reproduction ({args.scale} scale, {args.seeds} seed(s)) finished in '
          f'{time.time() - start:.0f}s. Results in {reproduction.work_dir}:')
    print(table, end='')
    print(single_seed_note(args.seeds), end='')
    print(f'Table: {osp.join(reproduction.compare_dir, "table.md")}; plots: '
          f'{reproduction.compare_dir}/*.png; world: '
          f'{osp.join(reproduction.classification_dir, "world_classes.png")}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
