"""The frozen path, timed: fine-tuned vs stock frozen vs fast frozen trunk, one process.

Faster R-CNN R50-FPN at 800x1333 and Cascade R-CNN R50 + NAS-FPN at LSJ 1024x1024, batch 2,
built from this repository's configs (no pretrained weights: ``init_cfg`` Pretrained dropped,
then ``init_weights``). Three arms per detector:

* **fine-tuned**: the ``-finetune_`` config;
* **stock frozen**: its ``-frozen_`` twin (mmdet's ``frozen_stages=4, norm_eval=True``);
* **fast frozen**: the same with the backbone built by ``FrozenModule`` with ``fast`` (no
  autograd, BatchNorm folded, channels-last; ``--compile``, ``--bf16`` add to it).

The arms train on the same synthetic batch, alternating step by step (the order rotating every
round) so that a machine's drift or a neighbour's load falls on all of them; after ``--warmup``
rounds, ``--steps`` rounds are timed. Reported per arm: the whole training step
(``model.train_step``: pre-processing, forward, backward, optimizer), the trunk's forward (the
backbone, between forward hooks) and the step's peak memory above what was allocated before it
(CUDA: ``max_memory_allocated``, and ``max_memory_reserved``; CPU: the process's peak resident
set, ``VmHWM`` reset through ``/proc/self/clear_refs``); median and interquartile range over the
timed steps, and the ratios against the targets (fast trunk <= 0.6x the stock frozen trunk,
fast frozen step <= 0.9x the stock frozen step)::

    OMP_NUM_THREADS=2 python benchmarks/frozen_path.py --device cpu --out frozen_path.md
    python benchmarks/frozen_path.py --device cuda --out gpu.md --amp --bf16
    python benchmarks/frozen_path.py --dry-run --out /tmp/frozen_path.md   # CPU, tiny, CI
"""
import argparse
import copy
import ctypes
import datetime
import gc
import logging
import os
import os.path as osp
import statistics
import sys
import time
from typing import Dict, List, Optional, Sequence

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, REPO)

import torch  # noqa: E402
from mmengine.logging import MMLogger, print_log  # noqa: E402

import mmfrozen  # noqa: E402,F401
from mmfrozen.cost import (build_model_for_training, load_config, machine_name,  # noqa: E402
                           synthetic_batch)
from mmfrozen.models.fast_frozen_trunk import (  # noqa: E402
    fast_options, fast_trunk_of, native_bf16)

#: The detectors: fine-tuned and frozen config, image shape (H, W), and the dry run's shape.
DETECTORS = {
    'faster':
    dict(
        name='Faster R-CNN R50-FPN',
        finetune='configs/faster_rcnn/faster-rcnn_r50-finetune_fpn_1x_coco.py',
        frozen='configs/faster_rcnn/faster-rcnn_r50-frozen_fpn_1x_coco.py',
        shape=(800, 1333),
        dry_shape=(128, 128)),
    'cascade':
    dict(
        name='Cascade R-CNN R50 + NAS-FPN (LSJ)',
        finetune='configs/cascade_rcnn/cascade-rcnn_r50-finetune_nasfpn_lsj-1x_coco.py',
        frozen='configs/cascade_rcnn/cascade-rcnn_r50-frozen_nasfpn_lsj-1x_coco.py',
        shape=(1024, 1024),
        dry_shape=(128, 128),
        fixed_pad=True),
}
ARMS = ('fine-tuned', 'stock frozen', 'fast frozen')
#: Targets of the fast arm against the stock frozen arm (issue 12).
TRUNK_TARGET = 0.6
STEP_TARGET = 0.9


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--device', default='cpu', help='cpu or cuda (default cpu)')
    parser.add_argument('--out', required=True, help='markdown file to write the report to')
    parser.add_argument('--models', nargs='+', choices=sorted(DETECTORS),
                        default=list(DETECTORS), help='detectors to run (default: both)')
    parser.add_argument('--batch-size', type=int, default=2)
    parser.add_argument('--steps', type=int, default=None,
                        help='timed rounds (default 3; dry run 1)')
    parser.add_argument('--warmup', type=int, default=None,
                        help='untimed rounds first, the fast trunk is built in them (default 1)')
    parser.add_argument('--amp', action='store_true',
                        help='mixed precision for every arm (AmpOptimWrapper, fp16; CUDA only)')
    parser.add_argument('--bf16', action='store_true',
                        help='fast arm: bf16 autocast for the trunk (a GPU, or a CPU with AMX '
                        'or AVX512-BF16)')
    parser.add_argument('--compile', action='store_true',
                        help='fast arm: torch.compile the trunk (inductor, freezing)')
    parser.add_argument('--torchvision-ops', action='store_true',
                        help="mmcv's RoIAlign/NMS on CUDA run torchvision's kernels (an mmcv "
                        'built without CUDA ops; mmfrozen.torchvision_ops)')
    parser.add_argument('--dry-run', action='store_true',
                        help='tiny images, fewer RoIs, 1 warm-up and 1 timed round: checks '
                        'that it runs')
    args = parser.parse_args(argv)
    if args.device.startswith('cuda') and not torch.cuda.is_available():
        parser.error(f'--device {args.device}: no CUDA device here')
    if args.amp and not args.device.startswith('cuda'):
        parser.error('--amp applies on a GPU only (--device cuda)')
    if args.bf16 and not native_bf16(torch.device(args.device).type):
        parser.error(f'--bf16: bf16 is not native on --device {args.device} (a GPU, or a CPU '
                     'with AMX or AVX512-BF16)')
    if args.torchvision_ops:
        import mmfrozen.torchvision_ops  # noqa: F401
    if args.steps is None:
        args.steps = 1 if args.dry_run else 3
    if args.warmup is None:
        args.warmup = 1
    if args.steps < 1 or args.warmup < 0:
        parser.error('--steps must be >= 1 and --warmup >= 0')
    return args


def without_pretrained(cfg):
    """``cfg`` with every ``init_cfg`` of type Pretrained removed (nothing is downloaded)."""
    if isinstance(cfg, dict):
        return type(cfg)((key, without_pretrained(value)) for key, value in cfg.items()
                         if not (key == 'init_cfg' and isinstance(value, dict)
                                 and value.get('type') == 'Pretrained'))
    if isinstance(cfg, (list, tuple)):
        return type(cfg)(without_pretrained(value) for value in cfg)
    return cfg


def arm_config(detector: dict, arm: str, args: argparse.Namespace, fast: dict):
    """The config of one arm: the repository's config, with the benchmark's overrides."""
    cfg = load_config(osp.join(REPO, detector['finetune' if arm == 'fine-tuned' else 'frozen']))
    cfg.model = without_pretrained(cfg.model)
    if arm == 'fast frozen':
        cfg.model.backbone = dict(type='FrozenModule', module=cfg.model.backbone, fast=fast)
    if detector.get('fixed_pad'):
        size = detector['dry_shape' if args.dry_run else 'shape']
        cfg.model.data_preprocessor.batch_augments = [dict(type='BatchFixedSizePad', size=size)]
    if args.dry_run:  # fewer proposals and RoIs: a check that it runs, in seconds
        cfg.model.train_cfg.rpn_proposal.update(nms_pre=200, max_per_img=100)
        rcnn = cfg.model.train_cfg.rcnn
        for stage in rcnn if isinstance(rcnn, (list, tuple)) else [rcnn]:
            stage.sampler.num = 64
    if args.amp:
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.loss_scale = 'dynamic'
    return cfg


class Clock:
    """Wall time of whole steps and of the trunk's forward (between forward hooks)."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.trunk_s = 0.0
        self._start = 0.0

    def sync(self) -> None:
        if self.device.type == 'cuda':
            torch.cuda.synchronize(self.device)

    def trunk_start(self, module, args) -> None:
        self.sync()
        self._start = time.perf_counter()

    def trunk_end(self, module, args, output) -> None:
        self.sync()
        self.trunk_s += time.perf_counter() - self._start


class PeakMemory:
    """Peak memory of a step above what was allocated when it began, in MB."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.source = ('cuda max_memory_allocated' if device.type == 'cuda' else
                       'peak resident set (VmHWM)')
        self._base = 0
        try:
            self._libc = ctypes.CDLL('libc.so.6')
        except OSError:
            self._libc = None

    @staticmethod
    def _status_kb(field: str) -> int:
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith(field + ':'):
                    return int(line.split()[1])
        raise KeyError(field)

    def start(self) -> None:
        gc.collect()
        if self.device.type == 'cuda':
            torch.cuda.reset_peak_memory_stats(self.device)
            self._base = torch.cuda.memory_allocated(self.device)
            return
        if self._libc is not None:
            self._libc.malloc_trim(0)  # return freed heap to the OS, so the base is this arm's
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')  # resets VmHWM to the current resident set
        self._base = self._status_kb('VmRSS') * 1024

    def stop(self) -> Dict[str, float]:
        if self.device.type == 'cuda':
            return dict(peak_mb=(torch.cuda.max_memory_allocated(self.device) - self._base) / 2**20,
                        reserved_mb=torch.cuda.max_memory_reserved(self.device) / 2**20)
        return dict(peak_mb=(self._status_kb('VmHWM') * 1024 - self._base) / 2**20)


def run_detector(detector: dict, args: argparse.Namespace, device: torch.device,
                 fast: dict) -> Dict[str, Dict[str, List[float]]]:
    """Build the three arms and time them alternately; per arm the samples of each metric."""
    models = {}
    clocks = {}
    for arm in ARMS:
        cfg = arm_config(detector, arm, args, fast)
        torch.manual_seed(0)
        model, optim_wrapper = build_model_for_training(cfg, device)
        logger = MMLogger.get_current_instance()
        level = logger.level
        logger.setLevel(logging.WARNING)  # init_weights logs every tensor
        try:
            model.init_weights()
        finally:
            logger.setLevel(level)
        clock = Clock(device)
        model.backbone.register_forward_pre_hook(clock.trunk_start)
        model.backbone.register_forward_hook(clock.trunk_end)
        models[arm], clocks[arm] = (model, optim_wrapper), clock
    shape = detector['dry_shape' if args.dry_run else 'shape']
    batch = synthetic_batch(args.batch_size, shape)
    memory = PeakMemory(device)
    samples = {arm: dict(step_s=[], trunk_s=[], peak_mb=[], reserved_mb=[]) for arm in ARMS}
    rounds = args.warmup + args.steps
    for index in range(rounds):
        order = ARMS[index % len(ARMS):] + ARMS[:index % len(ARMS)]
        timed = index >= args.warmup
        for arm in order:
            model, optim_wrapper = models[arm]
            clock = clocks[arm]
            step_batch = copy.deepcopy(batch)
            memory.start()
            clock.trunk_s = 0.0
            clock.sync()
            start = time.perf_counter()
            model.train_step(step_batch, optim_wrapper)
            clock.sync()
            step_s = time.perf_counter() - start
            peak = memory.stop()
            print_log(f'{detector["name"]} round {index + 1}/{rounds}'
                      f'{"" if timed else " (warm-up)"} {arm}: step {step_s:.3f} s, trunk '
                      f'{clock.trunk_s:.3f} s, peak {peak["peak_mb"]:.0f} MB', logger='current')
            if timed:
                samples[arm]['step_s'].append(step_s)
                samples[arm]['trunk_s'].append(clock.trunk_s)
                for key, value in peak.items():
                    samples[arm][key].append(value)
    trunk = fast_trunk_of(models['fast frozen'][0].backbone)
    samples['fast frozen']['folded_norms'] = [trunk.folded_norms]
    samples['fast frozen']['copy_mb'] = [trunk.copy_bytes / 2**20]
    del models
    gc.collect()
    if device.type == 'cuda':
        torch.cuda.empty_cache()
    return samples


def median_iqr(values: Sequence[float]) -> tuple:
    """Median and interquartile range (exclusive quartiles; min and max below 4 values)."""
    if len(values) < 4:
        return statistics.median(values), min(values), max(values)
    q1, q2, q3 = statistics.quantiles(values, n=4)
    return q2, q1, q3


def _cell(values: Sequence[float], digits: int = 3, unit: str = '') -> str:
    mid, low, high = median_iqr(values)
    return f'{mid:.{digits}f}{unit} [{low:.{digits}f}-{high:.{digits}f}]'


def format_detector(detector: dict, samples: Dict[str, dict], device: torch.device) -> str:
    """A detector's table and its ratios against the targets, in markdown."""
    cuda = device.type == 'cuda'
    header = ('| arm | step (s) | trunk forward (s) | trunk share of step | peak memory of the '
              'step (MB) |' + (' peak reserved (MB) |' if cuda else ''))
    lines = [header, '|---' * (5 + cuda) + '|']
    med = {arm: {key: statistics.median(v) for key, v in s.items() if v} for arm, s in
           samples.items()}
    for arm in ARMS:
        s, m = samples[arm], med[arm]
        row = (f'| {arm} | {_cell(s["step_s"])} | {_cell(s["trunk_s"])} | '
               f'{m["trunk_s"] / m["step_s"]:.2f} | {_cell(s["peak_mb"], 0)} |')
        if cuda:
            row += f' {_cell(s["reserved_mb"], 0)} |'
        lines.append(row)
    stock, fast, tuned = med['stock frozen'], med['fast frozen'], med['fine-tuned']
    trunk_ratio = fast['trunk_s'] / stock['trunk_s']
    step_ratio = fast['step_s'] / stock['step_s']

    def verdict(ratio: float, target: float) -> str:
        return ('meets the target' if ratio <= target else
                f'misses it by {ratio - target:.2f} ({ratio / target:.2f}x the target)')

    lines += [
        '',
        f'- fast trunk forward / stock frozen trunk forward: **{trunk_ratio:.2f}x** (target '
        f'<= {TRUNK_TARGET}x: {verdict(trunk_ratio, TRUNK_TARGET)})',
        f'- fast frozen step / stock frozen step: **{step_ratio:.2f}x** (target <= '
        f'{STEP_TARGET}x: {verdict(step_ratio, STEP_TARGET)})',
        f'- stock frozen trunk share of its step: {stock["trunk_s"] / stock["step_s"]:.2f}; '
        f'stock frozen step / fine-tuned step: {stock["step_s"] / tuned["step_s"]:.2f}x; '
        f'fast frozen step / fine-tuned step: {fast["step_s"] / tuned["step_s"]:.2f}x',
        f'- peak memory of the step, fast / stock frozen: '
        f'{fast["peak_mb"] / max(stock["peak_mb"], 1e-9):.2f}x; stock frozen / fine-tuned: '
        f'{stock["peak_mb"] / max(tuned["peak_mb"], 1e-9):.2f}x',
        f'- BatchNorms folded in the fast trunk: {samples["fast frozen"]["folded_norms"][0]}; '
        f'its folded copy holds {samples["fast frozen"]["copy_mb"][0]:.0f} MB (the trunk\'s '
        'weights once more, outside the step\'s peak)',
    ]
    return '\n'.join(lines)


def main(argv: Optional[Sequence[str]] = None) -> None:
    args = parse_args(argv)
    device = torch.device(args.device)
    fast = fast_options(dict(compile=args.compile, bf16=args.bf16), 'benchmarks/frozen_path.py')
    sections = []
    started = time.perf_counter()
    load_start = os.getloadavg()[0]
    for key in args.models:
        detector = DETECTORS[key]
        print_log(f'{detector["name"]}: building {", ".join(ARMS)}', logger='current')
        samples = run_detector(detector, args, device, fast)
        shape = detector['dry_shape' if args.dry_run else 'shape']
        sections.append(f'### {detector["name"]}, {shape[0]}x{shape[1]}, batch '
                        f'{args.batch_size}\n\n{format_detector(detector, samples, device)}\n')
    minutes = (time.perf_counter() - started) / 60
    load = f'{load_start:.1f} at the start, {os.getloadavg()[0]:.1f} at the end'
    memory_source = PeakMemory(device).source
    card = torch.cuda.get_device_name(device) if device.type == 'cuda' else machine_name()
    header = (
        f'## The frozen path: fine-tuned vs stock frozen vs fast frozen '
        f'(`benchmarks/frozen_path.py{" --dry-run" if args.dry_run else ""}`, '
        f'{datetime.date.today()})\n\n'
        f'Machine: {card}; device {device}, {torch.get_num_threads()} torch threads; torch '
        f'{torch.__version__}. Fast trunk options: {fast}; mixed precision (AMP): '
        f'{"fp16" if args.amp else "off"}. Synthetic images, the same batch for every arm; '
        f'{args.warmup} warm-up round(s), then {args.steps} timed rounds, the arms alternating '
        f'(order rotated each round). Cells: median [interquartile range; min-max below 4 '
        f'samples]. Peak memory of the step: {memory_source}, above what was allocated when '
        f'the step began. {minutes:.1f} min in all; load average (1 min) {load}.\n')
    report = header + '\n' + '\n'.join(sections)
    print('\n' + report)
    with open(args.out, 'w') as f:
        f.write(report)
    print_log(f'written to {args.out}', logger='current')


if __name__ == '__main__':
    main()
