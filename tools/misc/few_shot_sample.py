"""Write the K-shot training sets of the few-shot protocol as COCO-format files.

Draw groups of K shots from a COCO-format training file, one group per seed (exactly K counted
instances of every class; :mod:`mmfrozen.datasets.few_shot_sampler` says how), or read the
groups TFA published (``--published DIR``: ``box_{K}shot_{class}_train.txt`` for VOC,
``full_box_{K}shot_{class}_trainval.json`` for COCO; :mod:`mmfrozen.datasets.few_shot_lists`)::

    # Pascal VOC 07+12 (MMDetection's pascal_voc.py conversion), K = 1, 2, 3, 5, 10, 10 groups
    python tools/misc/few_shot_sample.py data/VOCdevkit/annotations/voc0712_trainval.json \\
        --shots 1 2 3 5 10 --seeds 0 1 2 3 4 5 6 7 8 9
    # COCO train2017, K = 10, 30
    python tools/misc/few_shot_sample.py data/coco/annotations/instances_train2017.json \\
        --shots 10 30 --seeds 0 1 2 3 4 5 6 7 8 9
    # TFA's published VOC groups (vocsplit/ is group "seed 0", vocsplit/seedS/ group S)
    python tools/misc/few_shot_sample.py data/VOCdevkit/annotations/voc0712_trainval.json \\
        --shots 1 2 3 5 10 --published vocsplit/seed1 --seeds 1

Each set is written to ``<out-dir>/<train file stem>_{K}shot_seed{S}.json`` (default out-dir:
``few_shot/`` next to the training file), the name the few-shot configs read. The sets hold
every class (TFA's generalized setting: K of each base and novel class); ``--classes`` draws
only those named. The same file, K, seed and classes always give the same bytes.
"""
import argparse
import os
import os.path as osp
import sys
from typing import List, Optional, Sequence

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from mmfrozen.datasets.few_shot_lists import read_published_shots  # noqa: E402
from mmfrozen.datasets.few_shot_sampler import (DEFAULT_MIN_SIZE, dump_coco,  # noqa: E402
                                                instance_counts, read_checked, sample_k_shot)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Write K-shot training sets (COCO format), by seed or from published lists')
    parser.add_argument('train_ann', help='the COCO-format training file to draw from')
    parser.add_argument('--shots', type=int, nargs='+', required=True, help='the K to write')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0],
                        help='one group per seed (default: 0); with --published, the seed of '
                        'the K-of-more draw and of the file name')
    parser.add_argument('--classes', nargs='+', default=None,
                        help='draw only these classes (default: every category)')
    parser.add_argument('--published', default=None,
                        help="a folder of TFA's published lists (one group) to read instead")
    parser.add_argument('--min-size', type=int, default=DEFAULT_MIN_SIZE,
                        help='leave out images whose shorter side is smaller (default: 32, '
                        "the configs' filter_cfg.min_size)")
    parser.add_argument('--out-dir', default=None,
                        help='where to write (default: few_shot/ next to the training file)')
    return parser.parse_args(argv)


def out_path(out_dir: str, train_ann: str, shots: int, seed: int) -> str:
    """The file of one K-shot group: ``<out_dir>/<train stem>_{K}shot_seed{S}.json``."""
    stem = osp.splitext(osp.basename(train_ann))[0]
    return osp.join(out_dir, f'{stem}_{shots}shot_seed{seed}.json')


def main(argv: Optional[Sequence[str]] = None) -> List[str]:
    args = parse_args(argv)
    data = read_checked(args.train_ann)
    out_dir = args.out_dir or osp.join(osp.dirname(osp.abspath(args.train_ann)), 'few_shot')
    os.makedirs(out_dir, exist_ok=True)
    written = []
    for seed in args.seeds:
        for shots in args.shots:
            if args.published:
                subset, found = read_published_shots(
                    data, args.published, shots, seed=seed, classes=args.classes,
                    source=osp.basename(args.train_ann), min_size=args.min_size)
                short = {name: n for name, n in found.items() if n < shots}
                if short:
                    print(f'note: {args.published} K={shots}: fewer than {shots} counted '
                          f'instances for {short} (crowd / difficult boxes do not count)')
            else:
                subset = sample_k_shot(data, shots, seed, classes=args.classes,
                                       source=osp.basename(args.train_ann),
                                       min_size=args.min_size)
            path = out_path(out_dir, args.train_ann, shots, seed)
            dump_coco(subset, path)
            per_class = instance_counts(subset, args.min_size)
            drawn = subset['info']['few_shot']['classes']
            print(f'{path}: {len(subset["images"])} images, '
                  f'{sum(per_class[c] for c in drawn)} instances of {len(drawn)} classes')
            written.append(path)
    return written


if __name__ == '__main__':
    main()
