"""The GPU check's measurements, written to one markdown file (run by ``gpu_check.sh``).

1. ``benchmarks/frozen_path.py`` (fine-tuned vs stock frozen vs fast frozen trunk), if present;
2. ``tools/cost.py`` on the fine-tuned and frozen R50 Faster R-CNN and Cascade R-CNN + NAS-FPN,
   without and with ``--amp``;
3. a frozen and a fine-tuned Faster R-CNN R50-FPN trained ``--iters`` iterations through
   ``tools/train.py`` on synthetic COCO-format data, with ``CostReportHook``.

With ``--torchvision-ops`` every config also imports ``mmfrozen.torchvision_ops`` (mmcv's
RoIAlign and NMS on CUDA tensors run torchvision's kernels). ``--dry-run``: CPU, tiny images,
a few steps, for CI; its figures say nothing about a GPU::

    python benchmarks/gpu_check.py --device cuda --out gpu_check.md
    python benchmarks/gpu_check.py --dry-run --out /tmp/gpu_check.md
"""
import argparse
import datetime
import json
import os
import os.path as osp
import subprocess
import sys
import time
from typing import List, Optional, Sequence

import numpy as np
from PIL import Image

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
COST_CONFIGS = (
    'configs/faster_rcnn/faster-rcnn_r50-finetune_fpn_1x_coco.py',
    'configs/faster_rcnn/faster-rcnn_r50-frozen_fpn_1x_coco.py',
    'configs/cascade_rcnn/cascade-rcnn_r50-finetune_nasfpn_lsj-1x_coco.py',
    'configs/cascade_rcnn/cascade-rcnn_r50-frozen_nasfpn_lsj-1x_coco.py',
)
TRAIN_ARMS = ('finetune', 'frozen')
TRAIN_CONFIG = 'configs/faster_rcnn/faster-rcnn_r50-{arm}_fpn_1x_coco.py'
STEPS = ('frozen_path', 'cost', 'training')
CATEGORIES = [dict(id=1, name='person'), dict(id=2, name='bicycle'), dict(id=3, name='car')]


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--out', required=True, help='the markdown file to write')
    parser.add_argument('--device', default='cuda', help='cuda (default) or cpu')
    parser.add_argument('--work-dir', default=None, help='default: <out>.work')
    parser.add_argument('--iters', type=int, default=100, help='training iterations per arm')
    parser.add_argument('--torchvision-ops', action='store_true',
                        help="route mmcv's RoIAlign/NMS on CUDA to torchvision's kernels")
    parser.add_argument('--setup-notes', default='',
                        help='a line about the set-up (gpu_check.sh: mmcv build, times)')
    parser.add_argument('--skip', nargs='+', action='extend', default=[], choices=STEPS,
                        help='steps to leave out (the markdown says so)')
    parser.add_argument('--dry-run', action='store_true',
                        help='CPU, tiny images, 2 iterations: checks the script, not a GPU')
    args = parser.parse_args(argv)
    if args.dry_run:
        args.device, args.iters = 'cpu', 2
    args.work_dir = args.work_dir or f'{args.out}.work'
    return args


def run(cmd: List[str], log_file: str, timeout: int = 3600) -> subprocess.CompletedProcess:
    """Run a command from the repository root, its output into ``log_file``."""
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get('PYTHONPATH', ''))
    with open(log_file, 'w') as log:
        proc = subprocess.run(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
                              text=True, timeout=timeout)
    if proc.returncode != 0:
        with open(log_file) as f:
            tail = f.read()[-3000:]
        raise RuntimeError(f'{" ".join(cmd)} exited {proc.returncode} (log {log_file}):\n{tail}')
    return proc


def imports_line(torchvision_ops: bool) -> str:
    imports = ['mmfrozen'] + (['mmfrozen.torchvision_ops'] if torchvision_ops else [])
    return f'custom_imports = dict(imports={imports!r}, allow_failed_imports=False)\n'


def wrap_config(config: str, out_dir: str, body: str) -> str:
    """A config file that inherits ``config`` (repository-relative) and adds ``body``."""
    path = osp.join(out_dir, osp.basename(config))
    with open(path, 'w') as f:
        f.write(f'_base_ = {osp.join(REPO, config)!r}\n{body}')
    return path


def write_synthetic_coco(root: str, num_images: int, size: Sequence[int]) -> str:
    """Random images with 3-8 random boxes each, COCO layout; returns the annotation file."""
    rng = np.random.RandomState(0)
    height, width = size
    os.makedirs(osp.join(root, 'train2017'), exist_ok=True)
    os.makedirs(osp.join(root, 'annotations'), exist_ok=True)
    images, annotations = [], []
    for index in range(num_images):
        name = f'{index:06d}.jpg'
        Image.fromarray(rng.randint(0, 256, (height, width, 3), dtype=np.uint8)).save(
            osp.join(root, 'train2017', name))
        images.append(dict(id=index, file_name=name, height=height, width=width))
        for _ in range(rng.randint(3, 9)):
            w, h = rng.uniform(0.1, 0.5) * width, rng.uniform(0.1, 0.5) * height
            x, y = rng.uniform(0, width - w), rng.uniform(0, height - h)
            annotations.append(
                dict(id=len(annotations) + 1, image_id=index, category_id=int(rng.randint(1, 4)),
                     bbox=[x, y, w, h], area=w * h, iscrowd=0))
    path = osp.join(root, 'annotations', 'instances_train2017.json')
    with open(path, 'w') as f:
        json.dump(dict(images=images, annotations=annotations, categories=CATEGORIES), f)
    return path


def train_body(arm: str, data_root: str, iters: int, scale: Sequence[int],
               torchvision_ops: bool) -> str:
    """What a training run changes in its config: synthetic data, iterations, no validation."""
    frozen = 'frozen = dict(allow_uninitialized=True)  # no checkpoint without network\n'
    return (imports_line(torchvision_ops) + (frozen if arm == 'frozen' else '') + f'''
model = dict(backbone=dict(init_cfg=None))
train_dataloader = dict(
    batch_size=2, num_workers=2, persistent_workers=False,
    dataset=dict(
        data_root={data_root!r}, ann_file='annotations/instances_train2017.json',
        data_prefix=dict(img='train2017/'), filter_cfg=dict(filter_empty_gt=True, min_size=0),
        pipeline=[
            dict(type='LoadImageFromFile'),
            dict(type='LoadAnnotations', with_bbox=True),
            dict(type='Resize', scale={tuple(scale)!r}, keep_ratio=True),
            dict(type='RandomFlip', prob=0.5),
            dict(type='PackDetInputs'),
        ]))
train_cfg = dict(
    _delete_=True, type='IterBasedTrainLoop', max_iters={iters}, val_interval={iters + 1})
val_cfg = None
val_dataloader = None
val_evaluator = None
test_cfg = None
test_dataloader = None
test_evaluator = None
param_scheduler = [dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0,
                        end={min(50, iters)})]
default_hooks = dict(checkpoint=dict(interval={iters * 10}, by_epoch=False, save_last=False),
                     logger=dict(interval=10))
log_processor = dict(by_epoch=False)
custom_hooks = [
    dict(type='CostReportHook', interval=0, flops_iter=0, warmup_iters={min(10, iters - 1)})
]
''')


def section_frozen_path(args, work_dir: str) -> str:
    script = osp.join(REPO, 'benchmarks', 'frozen_path.py')
    if not osp.isfile(script):
        return ('## Frozen path\n\nskipped: benchmarks/frozen_path.py not found in this '
                'checkout.\n')
    texts = []
    # on a GPU a step takes a fraction of a second: more rounds for a stable median, and the
    # fast trunk once more with its bf16 autocast (a GPU-only option)
    variants = [('', [])] if args.dry_run else [('', []), ('_bf16', ['--bf16'])]
    for suffix, extra in variants:
        out = osp.join(work_dir, f'frozen_path{suffix}.md')
        cmd = [sys.executable, script, '--device', args.device, '--out', out, *extra]
        cmd += ['--torchvision-ops'] if args.torchvision_ops else []
        cmd += ['--dry-run'] if args.dry_run else ['--steps', '20', '--warmup', '3']
        run(cmd, osp.join(work_dir, f'frozen_path{suffix}.log'))
        with open(out) as f:
            texts.append(f'`{" ".join(cmd[1:])}`\n\n' + f.read().strip())
    return '## Frozen path (`benchmarks/frozen_path.py`)\n\n' + '\n\n'.join(texts) + '\n'


def cost_cells(result: dict) -> List[str]:
    reserved = result.get('peak_memory_reserved_mb')
    mmcv_ops = sum(p['forward'] + p['backward']
                   for op, p in result['train_gflops_by_op_per_image'].items()
                   if op.startswith('mmcv.'))
    return [
        osp.splitext(osp.basename(result['config']))[0], f'{result["input_shape"][0]}x'
        f'{result["input_shape"][1]}', f'{result["params"]["trainable"] / 1e6:.1f}',
        f'{result["train_gflops_per_image"]:.1f}', f'{mmcv_ops:.3f}',
        f'{result["peak_memory_mb"]:.0f}', '-' if reserved is None else f'{reserved:.0f}',
        f'{result["step_time_s"]:.3f}'
    ]


def section_cost(args, work_dir: str) -> str:
    # the dry run keeps one of NAS-FPN's 7 cells (the same code, a fraction of the time) and
    # does not pad LSJ batches to 1024x1024
    one_cell = ('model = dict(neck=dict(stack_times=1), '
                'data_preprocessor=dict(batch_augments=None))\n')
    wrapped = [
        wrap_config(c, work_dir, imports_line(args.torchvision_ops) +
                    (one_cell if args.dry_run and 'nasfpn' in c else '')) for c in COST_CONFIGS
    ]
    lines = ['## Training cost (`tools/cost.py`)', '']
    for amp in (False, True):
        out = osp.join(work_dir, f'cost{"_amp" if amp else ""}.json')
        cmd = [sys.executable, 'tools/cost.py', *wrapped, '--device', args.device, '--out', out]
        if amp:
            cmd.append('--amp')
        if args.dry_run:  # small images, one step
            cmd += ['--shape', '128', '160', '--batch-size', '1', '--steps', '1', '--warmup', '0']
        run(cmd, osp.join(work_dir, f'cost{"_amp" if amp else ""}.log'))
        with open(out) as f:
            report = json.load(f)
        lines += [
            f'**{"with --amp" if amp else "full precision"}** ({report["machine"]}; '
            f'{len(report["results"][0]["step_times_s"])} timed steps, median):', '',
            '| config | input | trainable params (M) | train GFLOPs/img | of which mmcv ops | '
            'peak allocated (MB) | peak reserved (MB) | step (s) |', '|---' * 8 + '|'
        ]
        lines += ['| ' + ' | '.join(cost_cells(r)) + ' |' for r in report['results']]
        lines.append('')
    lines.append('FLOPs counted: ' + '; '.join(report['flops_counted']) + '. Not counted: ' +
                 '; '.join(report['flops_not_counted']) + '.')
    return '\n'.join(lines) + '\n'


def number(value: Optional[float], decimals: int) -> str:
    return '-' if value is None else f'{value:.{decimals}f}'


def section_training(args, work_dir: str) -> str:
    size = (64, 80) if args.dry_run else (480, 640)
    scale = (160, 128) if args.dry_run else (1333, 800)
    data_root = osp.join(work_dir, 'synthetic_coco')
    write_synthetic_coco(data_root, 8 if args.dry_run else 64, size)
    rows = []
    for arm in TRAIN_ARMS:
        config = wrap_config(TRAIN_CONFIG.format(arm=arm), work_dir,
                             train_body(arm, data_root, args.iters, scale, args.torchvision_ops))
        run_dir = osp.join(work_dir, f'train_{arm}')
        start = time.perf_counter()
        cmd = [sys.executable, 'tools/train.py', config, '--work-dir', run_dir]
        if args.device == 'cpu':
            cmd = ['env', 'CUDA_VISIBLE_DEVICES='] + cmd
        run(cmd, osp.join(work_dir, f'train_{arm}.log'))
        wall = time.perf_counter() - start
        with open(osp.join(run_dir, 'cost.json')) as f:
            cost = json.load(f)
        reserved = cost.get('peak_memory_reserved_mb')
        rows.append([
            arm, str(cost['iters']), f'{cost["params"]["trainable"] / 1e6:.1f}',
            f'{cost["train_gflops_per_image"]:.1f}', number(cost['time_per_iter_s'], 3),
            number(cost['data_time_s'], 3), f'{cost["peak_memory_mb"]:.0f}',
            '-' if reserved is None else f'{reserved:.0f}', f'{wall:.0f}'
        ])
    lines = [
        f'## Training, {args.iters} iterations (`tools/train.py`, synthetic data)', '',
        f'Faster R-CNN R50-FPN, batch 2, {size[1]}x{size[0]} random images resized to '
        f'{scale[0]}x{scale[1]} (keep ratio), random weights; s/iter and data time are '
        "MMEngine's (CostReportHook: FLOPs counted on the first iteration, times are means "
        f'after {min(10, args.iters - 1)} warm-up iteration(s)).',
        '', '| arm | iters | trainable params (M) | train GFLOPs/img | s/iter | data s/iter | '
        'peak memory (MB) | peak reserved (MB) | wall (s) |', '|---' * 9 + '|'
    ]
    lines += ['| ' + ' | '.join(row) + ' |' for row in rows]
    return '\n'.join(lines) + '\n'


def environment_line(args) -> str:
    import torch
    import mmcv
    from mmfrozen.cuda_ops import mmcv_cuda_version
    device = torch.cuda.get_device_name() if args.device == 'cuda' else 'CPU'
    return (f'{device}; torch {torch.__version__} (CUDA {torch.version.cuda}), mmcv '
            f'{mmcv.__version__} (ops compiled with CUDA: {mmcv_cuda_version() or "no"}); '
            f'RoIAlign/NMS on CUDA: '
            f'{"torchvision kernels" if args.torchvision_ops else "mmcv kernels"}.')


def main(argv: Optional[Sequence[str]] = None) -> None:
    args = parse_args(argv)
    sys.path.insert(0, REPO)
    os.makedirs(args.work_dir, exist_ok=True)
    start = time.perf_counter()
    title = f'# GPU check ({datetime.date.today()})' + (' - DRY RUN on CPU' if args.dry_run else '')
    sections = [title, '', environment_line(args)]
    if args.setup_notes:
        sections.append(args.setup_notes)
    if args.dry_run:
        sections.append('Dry run: tiny images, few steps, on a CPU; no figure below is a GPU '
                        'measurement.')
    sections.append('')
    failed = []
    for name, step in zip(STEPS, (section_frozen_path, section_cost, section_training)):
        if name in args.skip:
            sections.append(f'## {name}\n\nskipped (--skip {name}).\n')
            continue
        print(f'[gpu_check] {name} ...', flush=True)
        # a GPU machine is lent for minutes: one failing step must not cost the others' figures
        try:
            sections.append(step(args, args.work_dir))
        except Exception as exc:  # noqa: BLE001  (reported in the markdown and the exit code)
            failed.append(name)
            sections.append(f'## {name}\n\nFAILED:\n\n```\n{exc}\n```\n')
            print(f'[gpu_check] {name} FAILED: {exc}', flush=True)
        write_markdown(args.out, sections)
    sections.append(f'Measurements took {time.perf_counter() - start:.0f} s.')
    write_markdown(args.out, sections)
    print(f'[gpu_check] wrote {args.out}', flush=True)
    if failed:
        raise SystemExit(f'[gpu_check] failed: {", ".join(failed)} (see {args.out})')


def write_markdown(path: str, sections: List[str]) -> None:
    with open(path, 'w') as f:
        f.write('\n'.join(sections) + '\n')


if __name__ == '__main__':
    main()
