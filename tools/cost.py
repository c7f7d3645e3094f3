"""Training cost of detector configs: parameters, training FLOPs, memory and step time.

Measures one real training step (forward, backward, optimizer step) of each config's model on
synthetic images at the config's training scale and batch size, and prints a markdown table
with each config's ratio to the first::

    python tools/cost.py configs/faster_rcnn/faster-rcnn_r50-finetune_fpn_1x_coco.py \
        configs/faster_rcnn/faster-rcnn_r50-frozen_fpn_1x_coco.py --out cost.json
"""
import argparse
import json
import os
import os.path as osp
import sys

# Runs from a clone without installing: the repository root on the path.
sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from mmengine.config import DictAction  # noqa: E402
from mmengine.logging import print_log  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Measure the training cost of detector configs (one real training step '
        'on synthetic data) and compare them to the first')
    parser.add_argument(
        'configs',
        nargs='+',
        metavar='CONFIG',
        help="config files; mmdet::PATH names one of MMDetection's")
    parser.add_argument(
        '--device',
        default=None,
        help='device to measure on (default: cuda if available, else cpu)')
    parser.add_argument(
        '--batch-size',
        type=int,
        default=None,
        help="images per step (default: the config's train batch size)")
    parser.add_argument(
        '--shape',
        type=int,
        nargs=2,
        metavar=('H', 'W'),
        default=None,
        help="image height and width (default: the config's training scale)")
    parser.add_argument(
        '--steps', type=int, default=3, help='timed steps; their median is reported (default: 3)')
    parser.add_argument(
        '--warmup', type=int, default=1, help='untimed steps before the timed ones (default: 1)')
    parser.add_argument(
        '--amp',
        action='store_true',
        help='mixed precision, as tools/train.py --amp (AmpOptimWrapper; needs a GPU, a CPU '
        'measures full precision)')
    parser.add_argument('--out', default=None, help='write the measurements to this JSON file')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings of every config, as in tools/train.py')
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    import mmfrozen  # noqa: F401  compat fixes and registrations
    from mmfrozen.cost import (COUNTED, NOT_COUNTED, add_ratios, format_cost_table, machine_name,
                               measure_training_cost, resolve_config_path)

    for config in args.configs:
        resolve_config_path(config)  # fail now on a missing file, not after measuring others
    cfg_options = dict(args.cfg_options or {})
    if args.amp:  # as MMDetection's tools/train.py --amp
        cfg_options.update({'optim_wrapper.type': 'AmpOptimWrapper',
                            'optim_wrapper.loss_scale': 'dynamic'})
    results = []
    for index, config in enumerate(args.configs, 1):
        print_log(f'[{index}/{len(args.configs)}] measuring {config}', logger='current')
        results.append(
            measure_training_cost(
                config,
                device=args.device,
                batch_size=args.batch_size,
                shape=args.shape,
                steps=args.steps,
                warmup=args.warmup,
                cfg_options=cfg_options or None))
    add_ratios(results)
    table = format_cost_table(results)
    first = results[0]
    print(f'\nTraining cost on {first["device"]} ({machine_name()}), batch '
          f'{first["batch_size"]}, image {first["shape"][0]}x{first["shape"][1]}, '
          f'median of {args.steps} steps; ratios to {osp.basename(args.configs[0])}\n')
    print(table)
    if args.out:
        os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
        with open(args.out, 'w') as f:
            json.dump(
                dict(
                    machine=machine_name(),
                    amp=args.amp,
                    flops_counted=list(COUNTED),
                    flops_not_counted=list(NOT_COUNTED),
                    results=results),
                f,
                indent=2)
        print_log(f'wrote {args.out}', logger='current')


if __name__ == '__main__':
    main()
