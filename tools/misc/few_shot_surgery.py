"""Make a base-training checkpoint into the K-shot stage's starting point: the weight surgery.

Every weight of the base detector is kept; its last layers get rows for the novel classes,
initialised as TFA does (:mod:`mmfrozen.models.few_shot_surgery` says how), and its classes
become the split's, in the data set's order::

    python tools/misc/few_shot_surgery.py \\
        work_dirs/faster-rcnn_r101-frozen_fpn_base-training_voc0712-split1/epoch_18.pth \\
        --split voc-split1
    # -> .../epoch_18_surgery_voc-split1.pth; then the K-shot stage, whose config loads it from
    # there (its load_from; another checkpoint: --cfg-options load_from=...):
    python tools/train.py \\
        configs/few_shot/faster-rcnn_r101-frozen_fpn_1shot-fine-tuning_voc0712-split1.py

The base classes are read from the checkpoint (MMEngine saves the training set's classes in
``meta.dataset_meta``); ``--base-classes`` gives them for a checkpoint without. ``--classes`` and
``--novel`` replace ``--split`` for a split of one's own.
"""
import argparse
import os.path as osp
import sys
from typing import Optional, Sequence

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

import torch  # noqa: E402

import mmfrozen  # noqa: E402,F401  torch.load(weights_only=True) reads MMEngine checkpoints
from mmfrozen.datasets.few_shot_splits import SPLITS, few_shot_split  # noqa: E402
from mmfrozen.models.few_shot_surgery import DEFAULT_STD, surgery_checkpoint  # noqa: E402
from mmfrozen.utils import atomic_write  # noqa: E402


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Extend a base detector checkpoint to the base and novel classes')
    parser.add_argument('checkpoint', help='the base-training checkpoint')
    parser.add_argument('--split', choices=list(SPLITS),
                        help="the protocol's split (its classes, in the data set's order)")
    parser.add_argument('--classes', nargs='+', help='instead of --split: every class of the '
                        "K-shot stage, in the data set's order")
    parser.add_argument('--novel', nargs='+', help='with --classes: the novel ones')
    parser.add_argument('--base-classes', nargs='+', default=None,
                        help="the base detector's classes in its order (default: the "
                        "checkpoint's meta.dataset_meta.classes)")
    parser.add_argument('--std', type=float, default=DEFAULT_STD,
                        help="standard deviation of the novel rows' weights (default: 0.01)")
    parser.add_argument('--seed', type=int, default=0, help='seed of the novel rows (default 0)')
    parser.add_argument('--out', default=None,
                        help='output file (default: <checkpoint>_surgery_<split>.pth)')
    args = parser.parse_args(argv)
    if bool(args.split) == bool(args.classes) or bool(args.classes) != bool(args.novel):
        parser.error('give --split, or --classes with --novel')
    return args


def main(argv: Optional[Sequence[str]] = None) -> str:
    args = parse_args(argv)
    if args.split:
        split = few_shot_split(args.split)
        classes, novel, tag = split.classes, split.novel, args.split
    else:
        classes, novel, tag = args.classes, args.novel, 'classes'
    checkpoint = torch.load(args.checkpoint, map_location='cpu', weights_only=True)
    out = surgery_checkpoint(checkpoint, list(classes), list(novel), args.base_classes,
                             std=args.std, seed=args.seed, source=args.checkpoint)
    path = args.out or f'{osp.splitext(args.checkpoint)[0]}_surgery_{tag}.pth'
    with atomic_write(path) as tmp:
        torch.save(out, tmp)
    record = out['meta']['few_shot_surgery']
    print(f'{path}: {len(record["base_classes"])} base classes kept, {len(novel)} novel classes '
          f'added to {", ".join(record["layers"])} ({record["init"]}, seed {args.seed})')
    return path


if __name__ == '__main__':
    main()
