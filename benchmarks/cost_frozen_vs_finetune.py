"""Training cost of a frozen backbone against fine-tuning, measured side by side.

Faster R-CNN R50-FPN and Cascade R-CNN R50 + NAS-FPN, each fine-tuned and frozen, one real
training step each on synthetic 1333x800 images (see ``tools/cost.py``): ratios of training
FLOPs, saved activations, memory and step time, frozen over fine-tuned. Prints the tables and
appends them to ``benchmarks/RESULTS.md`` with the machine named::

    OMP_NUM_THREADS=2 python benchmarks/cost_frozen_vs_finetune.py --steps 2 --warmup 0
"""
import argparse
import datetime
import os.path as osp
import sys

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, REPO)

import torch  # noqa: E402
from mmengine.logging import print_log  # noqa: E402

import mmfrozen  # noqa: E402,F401
from mmfrozen.cost import (  # noqa: E402
    add_ratios,
    format_cost_table,
    machine_name,  # noqa: E402
    measure_training_cost)

#: (name, fine-tuned config, frozen config), relative to the repository.
PAIRS = (
    ('Faster R-CNN R50-FPN', 'configs/faster_rcnn/faster-rcnn_r50-finetune_fpn_1x_coco.py',
     'configs/faster_rcnn/faster-rcnn_r50-frozen_fpn_1x_coco.py'),
    ('Cascade R-CNN R50 + NAS-FPN',
     'configs/cascade_rcnn/cascade-rcnn_r50-finetune_nasfpn_lsj-1x_coco.py',
     'configs/cascade_rcnn/cascade-rcnn_r50-frozen_nasfpn_lsj-1x_coco.py'),
)
#: The LSJ configs pad every batch to 1024x1024 (BatchFixedSizePad); without it every model
#: sees the requested shape, padded only to its pad_size_divisor.
SAME_INPUT = {'model.data_preprocessor.batch_augments': None}
SUMMARY = (('train_gflops_per_image',
            'training FLOPs'), ('train_gflops_backward_per_image',
                                'backward FLOPs'), ('saved_activations_mb', 'saved activations'),
           ('peak_memory_mb', 'peak memory'), ('step_time_s', 'step time'))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--device', default=None, help='default: cuda if available, else cpu')
    parser.add_argument('--shape', type=int, nargs=2, default=(800, 1333), metavar=('H', 'W'))
    parser.add_argument('--batch-size', type=int, default=1)
    parser.add_argument('--steps', type=int, default=3, help='timed steps (median reported)')
    parser.add_argument('--warmup', type=int, default=1, help='untimed steps before them')
    parser.add_argument(
        '--results',
        default=osp.join(REPO, 'benchmarks', 'RESULTS.md'),
        help='markdown file the tables are appended to')
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    device = args.device or ('cuda' if torch.cuda.is_available() else 'cpu')
    sections = []
    for name, finetune, frozen in PAIRS:
        results = []
        for config in (finetune, frozen):
            print_log(f'{name}: measuring {config}', logger='current')
            results.append(
                measure_training_cost(
                    osp.join(REPO, config),
                    device=device,
                    batch_size=args.batch_size,
                    shape=args.shape,
                    steps=args.steps,
                    warmup=args.warmup,
                    cfg_options=SAME_INPUT))
        add_ratios(results)
        ratios = results[1]['ratio_to_first']
        summary = ', '.join(f'{label} {ratios[key]:.2f}x' for key, label in SUMMARY
                            if ratios.get(key) is not None)
        sections.append(f'**{name}**, frozen / fine-tuned: {summary}.\n\n'
                        f'{format_cost_table(results)}\n')

    torch_threads = torch.get_num_threads()
    header = (f'## Training cost, frozen vs fine-tuned backbone '
              f'(`benchmarks/cost_frozen_vs_finetune.py`, {datetime.date.today()})\n\n'
              f'Machine: {machine_name()}; device {device}, {torch_threads} torch threads; '
              f'torch {torch.__version__}. One training step on synthetic '
              f'{args.shape[0]}x{args.shape[1]} images, batch {args.batch_size}; step time '
              f'is the median of {args.steps} steps after {args.warmup} warm-up step(s) and '
              'one counting step. The LSJ configs\' 1024x1024 BatchFixedSizePad is off, so '
              'both detectors see the same images. FLOPs per image: matmuls and convolutions '
              'as torch.utils.flop_counter counts them, and mmcv\'s RoIAlign, RoIPool and NMS '
              '(mmfrozen.cost.mmcv_ops); element-wise ops and the optimizer step not '
              'counted.\n')
    report = header + '\n' + '\n'.join(sections)
    print('\n' + report)
    with open(args.results, 'a') as f:
        f.write('\n' + report)
    print_log(f'appended to {args.results}', logger='current')


if __name__ == '__main__':
    main()
