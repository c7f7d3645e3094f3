"""What one frozen trunk for K detectors saves: a DetectorGroup run vs K single runs.

K = 1, 2, 4 tiny frozen detectors on one trunk loaded from a checkpoint (the tests' ResNet-18
of width 16 on 128x128 images, or with ``--trunk r50`` a ResNet-50 of MMDetection's width,
and ``--size`` the images' side): Faster R-CNN FPN, RetinaNet, a Faster R-CNN with a wider FPN
and a RetinaNet with deeper heads (``mmfrozen/testing/configs/group_tiny*.py`` and variants
written here). Each run
trains on the same images in the same order for the same iterations, through MMEngine's runner
as ``tools/train.py`` builds it, one fresh process per run (no validation, no checkpoint); each
single run's detector config is the group member's own file.

Measured per run: the training loop's wall time from the end of its first iteration to the end
of its last (start-up and the first iteration's warm-up left out), per detector-iteration
(a group's iteration trains K detectors), and the process's peak resident memory. The table
compares a group of K with the K single runs of the same detectors: total time, and memory
against the largest single run (run one after another) and their sum (run side by side).

Usage::

    OMP_NUM_THREADS=2 python benchmarks/shared_trunk.py --out shared_trunk.md
    python benchmarks/shared_trunk.py --dry-run   # K = 1, 2; 2 iterations: a smoke test
"""
import argparse
import datetime
import json
import os
import os.path as osp
import resource
import subprocess
import sys
import tempfile
import time
from typing import Dict, List

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, REPO)

from mmfrozen.testing import write_config, write_tiny_coco  # noqa: E402
from mmfrozen.testing.detector_group import (GROUP_TINY, GROUP_TINY_FASTER,  # noqa: E402
                                             GROUP_TINY_RETINA, group_cfg_options,
                                             write_tiny_backbone)

#: The detectors, in the order a group of K takes its first K: name -> (base, extra lines).
DETECTORS = {
    'faster': (GROUP_TINY_FASTER, []),
    'retina': (GROUP_TINY_RETINA, []),
    'faster_wide': (GROUP_TINY_FASTER, [
        'model = dict(neck=dict(out_channels=64), rpn_head=dict(in_channels=64, '
        'feat_channels=64), roi_head=dict(bbox_roi_extractor=dict(out_channels=64), '
        'bbox_head=dict(in_channels=64, fc_out_channels=128)))']),
    'retina_deep': (GROUP_TINY_RETINA, ['model = dict(bbox_head=dict(stacked_convs=4))']),
}
#: Fields every run sets the same way: no validation and no checkpoint within the measured run.
#: The trunks: the backbone checkpoint's arguments, and each detector's fields.
TRUNKS = {
    'tiny': (dict(depth=18, base_channels=16), []),
    'r50': (dict(depth=50, base_channels=64), [
        'model.backbone.depth=50', 'model.backbone.base_channels=64',
        'model.neck.in_channels=[256,512,1024,2048]',
        'optim_wrapper.optimizer.lr=0.002']),  # the tiny configs' rates diverge on it
}
RUN_OPTIONS = ['train_cfg.val_interval=1000', 'default_hooks.checkpoint.interval=1000',
               'default_hooks.checkpoint.save_last=False', 'default_hooks.logger.interval=1000']


def write_detector_configs(folder: str) -> Dict[str, str]:
    """Each detector's config file (the variants inherit a group member's file)."""
    paths = {}
    for name, (base, lines) in DETECTORS.items():
        paths[name] = base if not lines else write_config(
            osp.join(folder, f'{name}.py'), base, lines, imports=('mmfrozen', ))
    return paths


def write_group_config(folder: str, names: List[str], paths: Dict[str, str]) -> str:
    """A group config of the named detectors (the tiny group's, other members)."""
    detectors = ', '.join(f"dict(name='{n}', config='{paths[n]}')" for n in names)
    return write_config(osp.join(folder, f'group_{len(names)}.py'), GROUP_TINY,
                        [f"model = dict(detectors=[{detectors}])"], imports=('mmfrozen', ))


def worker(config: str, work_dir: str, options: List[str], out: str) -> None:
    """Train ``config`` in this process; write loop time, iterations and peak memory to ``out``."""
    from mmengine.config import Config, DictAction
    from mmengine.hooks import Hook
    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner

    import mmfrozen  # noqa: F401

    cfg = Config.fromfile(config)
    # --cfg-options values are strings; numbers parsed as tools/train.py's DictAction does
    cfg.merge_from_dict({k: DictAction._parse_iterable(v) for k, v in
                         (o.split('=', 1) for o in options)})
    cfg.work_dir = work_dir
    times: List[float] = []
    cpu: List[float] = []

    class Clock(Hook):
        priority = 'LOWEST'

        def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
            times.append(time.perf_counter())
            cpu.append(time.process_time())

    runner = (Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg))
    runner.register_hook(Clock())
    runner.train()
    with open(out, 'w') as f:
        json.dump(dict(seconds=times[-1] - times[0], cpu_seconds=cpu[-1] - cpu[0],
                       iters=len(times) - 1,
                       peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
                  f)


def measure(config: str, options: List[str], folder: str, tag: str) -> dict:
    """Run :func:`worker` in a fresh process; what it measured."""
    out = osp.join(folder, f'{tag}.json')
    cmd = [sys.executable, osp.abspath(__file__), '--worker', config, osp.join(folder, tag),
           out, *options]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(f'{tag} failed:\n{proc.stderr[-4000:]}')
    with open(out) as f:
        return json.load(f)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--ks', default='1,2,4', help='group sizes (default 1,2,4)')
    parser.add_argument('--epochs', type=int, default=2, help='epochs of 6 iterations')
    parser.add_argument('--trunk', choices=list(TRUNKS), default='tiny',
                        help='the shared backbone (default tiny: ResNet-18 of width 16)')
    parser.add_argument('--size', type=int, default=128, help='image side after resizing')
    parser.add_argument('--dry-run', action='store_true', help='K = 1, 2; 1 epoch')
    parser.add_argument('--out', help='also write the markdown table here')
    parser.add_argument('--worker', nargs='+', help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        config, work_dir, out, *options = args.worker
        worker(config, work_dir, options, out)
        return 0
    ks = [1, 2] if args.dry_run else [int(k) for k in args.ks.split(',')]
    epochs = 1 if args.dry_run else args.epochs
    from mmfrozen.cost import machine_name
    folder = tempfile.mkdtemp(prefix='shared_trunk_')
    data = write_tiny_coco(osp.join(folder, 'coco'))
    backbone_args, trunk_fields = TRUNKS[args.trunk]
    backbone = write_tiny_backbone(osp.join(folder, 'backbone.pth'), **backbone_args)
    paths = write_detector_configs(folder)
    schedule = [f'train_cfg.max_epochs={epochs}',
                f'train_dataloader.dataset.pipeline.2.scale=({args.size},{args.size})']
    schedule_group = schedule + trunk_fields
    single_options = (group_cfg_options(data, backbone, group=False) + RUN_OPTIONS + schedule
                      + trunk_fields)
    group_options = (group_cfg_options(data, backbone) + RUN_OPTIONS + schedule + [
        f'model.cfg_options.{option}' for option in RUN_OPTIONS[:1] + schedule_group])
    names = list(DETECTORS)[:max(ks)]
    single = {name: measure(paths[name], single_options, folder, f'single_{name}')
              for name in names}
    rows = []
    for k in ks:
        group = measure(write_group_config(folder, names[:k], paths), group_options, folder,
                        f'group_{k}')
        singles = [single[name] for name in names[:k]]
        single_s = sum(s['seconds'] / s['iters'] for s in singles)  # K detector-iterations
        group_s = group['seconds'] / group['iters']
        single_cpu = sum(s['cpu_seconds'] / s['iters'] for s in singles)
        group_cpu = group['cpu_seconds'] / group['iters']
        rows.append(dict(
            k=k, detectors=', '.join(names[:k]), iters=group['iters'],
            single_ms=1000 * single_s / k, group_ms=1000 * group_s / k, ratio=group_s / single_s,
            single_cpu_ms=1000 * single_cpu / k, group_cpu_ms=1000 * group_cpu / k,
            cpu_ratio=group_cpu / single_cpu,
            group_mb=group['peak_rss_mb'], max_single_mb=max(s['peak_rss_mb'] for s in singles),
            sum_single_mb=sum(s['peak_rss_mb'] for s in singles)))
    lines = [
        f'Machine: {machine_name()}; torch threads: {os.environ.get("OMP_NUM_THREADS", "all")}; '
        f'{datetime.date.today()}; trunk {args.trunk} ({backbone_args}); {epochs} epoch(s) of 6 '
        f'iterations (batch 4, {args.size}x{args.size} images); time per iteration measured '
        'after the first; wall time, and the process\'s CPU time (less sensitive to other '
        'load on the machine).',
        '',
        '| K | detectors | wall ms per detector-iteration: K single runs / one group run | '
        'group / singles (wall) | CPU ms per detector-iteration: singles / group | '
        'group / singles (CPU) | group peak RSS MB | largest single MB | sum of singles MB |',
        '|---|---|---|---|---|---|---|---|---|',
    ]
    lines += [f"| {r['k']} | {r['detectors']} | {r['single_ms']:.0f} / {r['group_ms']:.0f} | "
              f"{r['ratio']:.2f} | {r['single_cpu_ms']:.0f} / {r['group_cpu_ms']:.0f} | "
              f"{r['cpu_ratio']:.2f} | {r['group_mb']:.0f} | {r['max_single_mb']:.0f} | "
              f"{r['sum_single_mb']:.0f} |" for r in rows]
    text = '\n'.join(lines) + '\n'
    print(text, end='')
    if args.out:
        with open(args.out, 'w') as f:
            f.write(text)
    return 0


if __name__ == '__main__':
    sys.exit(main())
