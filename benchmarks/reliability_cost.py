"""What reliable runs cost: the NaN check and atomic checkpoints per training step, and the
checked LVIS dataset's load time, against MMEngine's and MMDetection's own.

Every shipped config turns them on (docs/reliable_runs.md); this prints what that costs:

1. **NaN check** (``NonFiniteLossHook``): a Faster R-CNN R50-FPN of this repository's configs,
   frozen and fine-tuned, trains on one synthetic batch through two optimizer wrappers of the
   same model, one guarded by the hook, alternating step by step. The check's own work (the
   finiteness of the loss, of every gradient and of every trained weight after the step, as the
   hook computes it) is also timed alone on the same tensors, as it may lie within the steps'
   noise.
2. **Atomic checkpoints** (``AtomicCheckpointHook``): the detector's checkpoint (weights and
   optimizer state) and ``last_checkpoint`` written as MMEngine's ``CheckpointHook`` writes them
   (in place) and as the shipped configs do (``NonFiniteLossHook``'s finiteness check of the
   weights, then each file through a temporary file, fsync, rename, fsync of the folder),
   alternating; the extra time per save, against a step, and per step at one save per COCO
   epoch (7,330 iterations of 8 GPUs x 2 images).
3. **Checked data** (``CheckedLVISV1Dataset``): an LVIS v1 train-sized annotation file
   (100,170 images, ~1.18M annotations against LVIS v1 train's 1.27M, 1,203 categories;
   ``benchmarks/lvis_synthetic.py``)
   loaded by ``LVISV1Dataset`` and by ``CheckedLVISV1Dataset`` as the LVIS configs build them
   (filters, serialised data list), each load in a fresh process, alternating; wall time and
   the process's peak resident memory.

Usage::

    OMP_NUM_THREADS=2 python benchmarks/reliability_cost.py --out reliability_cost.md
    python benchmarks/reliability_cost.py --dry-run --out /tmp/reliability_cost.md  # tiny, CI
"""
import argparse
import datetime
import json
import os
import os.path as osp
import statistics
import subprocess
import sys
import tempfile
import time
from types import SimpleNamespace
from typing import Any, Callable, Dict, List, Tuple

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, osp.dirname(osp.abspath(__file__)))

import torch  # noqa: E402
from mmengine.logging import MMLogger  # noqa: E402
from mmengine.optim import build_optim_wrapper  # noqa: E402
from mmengine.runner.checkpoint import save_checkpoint  # noqa: E402

import mmfrozen  # noqa: E402,F401
from mmfrozen.cost import (build_model_for_training, load_config, machine_name,  # noqa: E402
                           synthetic_batch)
from mmfrozen.engine.hooks.nonfinite_loss_hook import NonFiniteLossHook, _all_finite  # noqa: E402
from mmfrozen.utils import atomic_write  # noqa: E402

CONFIGS = {
    'frozen': 'configs/faster_rcnn/faster-rcnn_r50-frozen_fpn_1x_coco.py',
    'fine-tuned': 'configs/faster_rcnn/faster-rcnn_r50-finetune_fpn_1x_coco.py',
}
#: COCO train2017 (117,266 images with annotations) at batch 16: the iterations of an epoch.
COCO_EPOCH_ITERS = 7330
#: LVIS v1 train's size.
LVIS_TRAIN_IMAGES = 100170


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Cost of the reliable-runs features')
    parser.add_argument('--out', help='also write the report (markdown) here')
    parser.add_argument('--shape', type=int, nargs=2, default=(800, 1333),
                        help='training image height and width (default: COCO 1x, 800 1333)')
    parser.add_argument('--batch', type=int, default=2, help='images per step (default 2)')
    parser.add_argument('--steps', type=int, default=5,
                        help='timed steps per arm, after one warm-up step each (default 5)')
    parser.add_argument('--saves', type=int, default=5, help='timed saves per writer')
    parser.add_argument('--lvis-images', type=int, default=LVIS_TRAIN_IMAGES,
                        help='images of the synthetic LVIS file (default: LVIS v1 train)')
    parser.add_argument('--loads', type=int, default=2, help='timed loads per dataset class')
    parser.add_argument('--dry-run', action='store_true',
                        help='tiny everything (128x128, 2 steps, 300 LVIS images): a smoke test')
    parser.add_argument('--load-one', nargs=2, metavar=('CLASS', 'ANN_FILE'),
                        help=argparse.SUPPRESS)  # one dataset load, in a child process
    args = parser.parse_args()
    if args.dry_run:
        args.shape, args.steps, args.saves, args.lvis_images, args.loads = (128, 128), 2, 2, 300, 1
    return args


def median_ms(values: List[float]) -> str:
    return f'{statistics.median(values) * 1e3:.1f}'


# ------------------------------------------------------------------------------------------
# 1 and 2: the NaN check and the atomic checkpoint, against a training step
# ------------------------------------------------------------------------------------------
def timed(fn: Callable[[], Any]) -> Tuple[float, Any]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def hook_work(loss: torch.Tensor, wrapper) -> None:
    """What NonFiniteLossHook computes around one step: the loss, every gradient and every
    trained weight checked finite (``_all_finite``, the hook's own test)."""
    bool(torch.isfinite(loss.detach()).all())
    params = [p for group in wrapper.optimizer.param_groups for p in group['params']]
    _all_finite([p.grad for p in params if p.grad is not None])
    _all_finite([p.detach() for p in params if p.requires_grad])


def measure_detector(arm: str, args: argparse.Namespace, folder: str) -> Dict[str, Any]:
    """Step times with and without the guard, the check alone, and checkpoint writes."""
    cfg = load_config(osp.join(REPO, CONFIGS[arm]))
    torch.manual_seed(0)
    model, plain = build_model_for_training(cfg, 'cpu')
    guarded = build_optim_wrapper(model, cfg.optim_wrapper)
    hook = NonFiniteLossHook()
    runner = SimpleNamespace(optim_wrapper=guarded, iter=0, epoch=0)
    hook.before_train(runner)
    batch = synthetic_batch(args.batch, tuple(args.shape), num_classes=80)
    trained = sum(p.numel() for p in model.parameters() if p.requires_grad)

    def step(wrapper) -> Dict[str, torch.Tensor]:
        losses = model.train_step(batch, wrapper)
        if wrapper is guarded:
            hook.after_train_iter(runner, 0, batch, losses)
        return losses

    times: Dict[str, List[float]] = {'plain': [], 'guarded': []}
    for index in range(args.steps + 1):  # the first round warms up
        order = ('plain', 'guarded') if index % 2 == 0 else ('guarded', 'plain')
        for name in order:
            elapsed, _ = timed(lambda: step(plain if name == 'plain' else guarded))
            if index:
                times[name].append(elapsed)
    # the check alone, on this step's loss, gradients and weights
    losses = model.train_step(batch, plain)
    loss = sum(v for k, v in losses.items() if 'loss' in k)
    check = [timed(lambda: hook_work(loss, plain))[0] for _ in range(max(5, args.steps * 4))]

    checkpoint = dict(meta=dict(epoch=1, iter=COCO_EPOCH_ITERS), state_dict=model.state_dict(),
                      optimizer=plain.state_dict())
    path = osp.join(folder, f'{arm}_epoch_1.pth')
    last = osp.join(folder, 'last_checkpoint')
    writes: Dict[str, List[float]] = {'MMEngine': [], 'atomic': []}

    def mmengine_save() -> None:
        """CheckpointHook's save: the checkpoint in place, then ``last_checkpoint``."""
        save_checkpoint(checkpoint, path)
        with open(last, 'w') as f:
            f.write(path)

    def reliable_save() -> None:
        """The shipped configs' save: NonFiniteLossHook's finiteness check of the weights
        (``before_save_checkpoint``), then AtomicCheckpointHook's writes (the checkpoint and
        ``last_checkpoint``, each through a temporary file, fsync and rename)."""
        hook.before_save_checkpoint(runner, checkpoint)
        with atomic_write(path) as tmp:
            save_checkpoint(checkpoint, tmp)
        with atomic_write(last) as tmp, open(tmp, 'w') as f:
            f.write(path)

    for index in range(args.saves):
        order = ('MMEngine', 'atomic') if index % 2 == 0 else ('atomic', 'MMEngine')
        for name in order:
            writes[name].append(
                timed(mmengine_save if name == 'MMEngine' else reliable_save)[0])
    size = osp.getsize(path)
    os.remove(path)
    return dict(arm=arm, config=CONFIGS[arm], trained=trained, step=times, check=check,
                writes=writes, checkpoint_bytes=size)


def detector_section(results: List[Dict[str, Any]], args: argparse.Namespace) -> List[str]:
    lines = [
        f'### NaN check and atomic checkpoints: Faster R-CNN R50-FPN, {args.shape[0]}x'
        f'{args.shape[1]}, batch {args.batch}', '',
        f'Medians over {args.steps} alternating steps per arm and {args.saves} saves per writer '
        f'(the check alone: {max(5, args.steps * 4)} times).', '',
        '| arm | trained params (M) | step (ms) | step, guarded (ms) | NaN check alone (ms) | '
        'check / step | checkpoint (MB) | save, MMEngine (ms) | save, atomic (ms) | '
        'extra per save / step | extra per step at 1 save / epoch |',
        '|---|---|---|---|---|---|---|---|---|---|---|'
    ]
    for r in results:
        step = statistics.median(r['step']['plain'])
        check = statistics.median(r['check'])
        extra = statistics.median(r['writes']['atomic']) - statistics.median(
            r['writes']['MMEngine'])
        lines.append(
            f"| {r['arm']} | {r['trained'] / 1e6:.1f} | {median_ms(r['step']['plain'])} | "
            f"{median_ms(r['step']['guarded'])} | {check * 1e3:.2f} | {check / step:.2%} | "
            f"{r['checkpoint_bytes'] / 2**20:.0f} | {median_ms(r['writes']['MMEngine'])} | "
            f"{median_ms(r['writes']['atomic'])} | {extra / step:.2f}x | "
            f"{extra / step / COCO_EPOCH_ITERS:.4%} |")
    lines += ['', '*check / step*: the NaN check\'s own work against the unguarded step (the '
              'guarded/unguarded step difference is within the steps\' noise). *save, atomic*: '
              'NonFiniteLossHook\'s check of the weights, then the checkpoint and '
              '`last_checkpoint` each written through a temporary file, fsync and rename; *save, '
              'MMEngine*: both written in place. *extra per save*: atomic minus MMEngine save, '
              f'against one step; *per step*: the same spread over a COCO epoch '
              f'({COCO_EPOCH_ITERS:,} iterations of 8 GPUs x 2 images, one checkpoint each).', '']
    return lines


# ------------------------------------------------------------------------------------------
# 3: the checked LVIS dataset's load time
# ------------------------------------------------------------------------------------------
def write_lvis_file(path: str, num_images: int) -> Dict[str, int]:
    """An LVIS v1-format train file: benchmarks/lvis_synthetic.py's ground truth, with the
    ``coco_url`` LVIS v1 names its images by."""
    from lvis_synthetic import make_dataset
    gt, _ = make_dataset(num_images, seed=0, max_dets=0)
    for image in gt['images']:
        image['coco_url'] = f"http://images.cocodataset.org/train2017/{image['id']:012d}.jpg"
    with open(path, 'w') as f:
        json.dump(gt, f)
    return dict(images=len(gt['images']), annotations=len(gt['annotations']),
                categories=len(gt['categories']), bytes=osp.getsize(path))


def load_one(cls_name: str, ann_file: str) -> None:
    """Child process: build one dataset as the LVIS configs do; print seconds, peak RSS, size."""
    from mmdet.registry import DATASETS
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet')
    MMLogger.get_instance('mmengine', log_level='WARNING')
    start = time.perf_counter()
    dataset = DATASETS.build(dict(
        type=cls_name, ann_file=ann_file, data_root='', data_prefix=dict(img=''),
        filter_cfg=dict(filter_empty_gt=True, min_size=32), pipeline=[]))
    seconds = time.perf_counter() - start
    with open('/proc/self/status') as f:
        peak_kb = next(int(line.split()[1]) for line in f if line.startswith('VmHWM'))
    print(json.dumps(dict(seconds=seconds, peak_mb=peak_kb / 1024, images=len(dataset))))


def measure_datasets(args: argparse.Namespace, folder: str) -> Dict[str, Any]:
    ann_file = osp.join(folder, 'lvis_v1_train_synthetic.json')
    start = time.perf_counter()
    sizes = write_lvis_file(ann_file, args.lvis_images)
    sizes['write_s'] = time.perf_counter() - start
    runs: Dict[str, List[Dict[str, float]]] = {'LVISV1Dataset': [], 'CheckedLVISV1Dataset': []}
    for index in range(args.loads):
        order = list(runs) if index % 2 == 0 else list(reversed(list(runs)))
        for cls_name in order:
            proc = subprocess.run(
                [sys.executable, osp.abspath(__file__), '--load-one', cls_name, ann_file],
                capture_output=True, text=True, check=True)
            runs[cls_name].append(json.loads(proc.stdout.strip().splitlines()[-1]))
    os.remove(ann_file)
    return dict(sizes=sizes, runs=runs)


def dataset_section(result: Dict[str, Any], args: argparse.Namespace) -> List[str]:
    sizes, runs = result['sizes'], result['runs']
    plain = statistics.median(r['seconds'] for r in runs['LVISV1Dataset'])
    lines = [
        f"### Checked data: an LVIS v1 train-sized file ({sizes['images']:,} images, "
        f"{sizes['annotations']:,} annotations, {sizes['categories']:,} categories, "
        f"{sizes['bytes'] / 2**20:.0f} MB)", '',
        f'Each load in a fresh process, {args.loads} per class, alternating; medians.', '',
        '| dataset | load (s) | / LVISV1Dataset | peak memory (MB) | images kept |',
        '|---|---|---|---|---|'
    ]
    for cls_name, values in runs.items():
        seconds = statistics.median(r['seconds'] for r in values)
        lines.append(f"| {cls_name} | {seconds:.1f} | {seconds / plain:.2f}x | "
                     f"{statistics.median(r['peak_mb'] for r in values):.0f} | "
                     f"{values[0]['images']:,} |")
    lines += ['', 'The synthetic polygons are boxes (8 numbers); LVIS\'s own are longer, which '
              'makes its file larger (about 1.1 GB) but adds nothing the check reads.', '']
    return lines


def main() -> None:
    args = parse_args()
    if args.load_one:
        load_one(*args.load_one)
        return
    MMLogger.get_instance('mmengine', log_level='WARNING')
    date = datetime.date.today().isoformat()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix='reliability_cost_') as folder:
        detectors = [measure_detector(arm, args, folder) for arm in CONFIGS]
        datasets = measure_datasets(args, folder)
    load_after = os.getloadavg()
    command = ' '.join(['python', 'benchmarks/reliability_cost.py', *sys.argv[1:]])
    report = [
        f'## Reliable runs, what they cost (`{command}`, {date})', '',
        f'Machine: {machine_name()}, torch {torch.__version__}, '
        f'{torch.get_num_threads()} thread(s); load average {load_before[0]:.1f} before, '
        f'{load_after[0]:.1f} after.', '',
        *detector_section(detectors, args), *dataset_section(datasets, args)
    ]
    text = '\n'.join(report)
    print(text)
    if args.out:
        with open(args.out, 'w') as f:
            f.write(text + '\n')


if __name__ == '__main__':
    main()
