"""Write configs/README.md: a table of every config, read from the configs themselves.

Each config is loaded and its model built on the CPU (no weights loaded): the table gives the
detector, backbone, neck, arm (``mmfrozen.utils.config_arm``: frozen, finetune, scratch,
stage2, lastlayers), dataset, schedule, the backbone's own freezing options
(``frozen_stages``/``norm_eval``, or the ``FrozenModule`` builder), and total and trainable
parameters of the model as ``MODELS.build`` makes it (a frozen config's model freezes itself).
Beside the rows the paper has, its COCO box AP and trained parameters.

Usage::

    python tools/misc/config_table.py [--configs-dir configs] [--out configs/README.md]
"""
import argparse
import glob
import os.path as osp
import sys
from typing import Dict, List, Optional, Tuple

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

import torch  # noqa: E402
from mmengine.config import Config  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402
from mmengine.utils import track_iter_progress  # noqa: E402

import mmfrozen  # noqa: E402,F401
from mmdet.registry import MODELS  # noqa: E402
from mmfrozen.cost import count_parameters  # noqa: E402
from mmfrozen.utils import FINETUNE, FROZEN, config_arm  # noqa: E402

# Vasconcelos et al., CVPR 2022, COCO val box AP with an ImageNet backbone (fine-tuned, frozen)
# and the parameters trained with the backbone frozen, keyed by (detector, depth, neck).
PAPER_COCO: Dict[Tuple[str, int, str], Dict[str, str]] = {
    ('FasterRCNN', 101, 'FPN'): dict(finetune='48.6', frozen='42.1', trained='21.9M of 83.5M'),
    ('FasterRCNN', 101, 'NASFPN'): dict(finetune='49.0', frozen='49.1',
                                        trained='40.9M of 102.6M'),
    ('CascadeRCNN', 50, 'NASFPN'): dict(finetune='50.3', frozen='51.0', trained=''),
    ('CascadeRCNN', 101, 'NASFPN'): dict(finetune='51.1', frozen='51.8',
                                         trained='71.3M of 132.9M'),
}
DATASETS = {'coco': 'COCO', 'lvis-v1': 'LVIS v1', 'voc0712': 'VOC 07+12'}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Write the table of configs (configs/README.md)')
    parser.add_argument('--configs-dir', default='configs', help='the configs folder')
    parser.add_argument('--out', default=None,
                        help='output file (default: <configs-dir>/README.md)')
    return parser.parse_args()


def list_configs(configs_dir: str) -> List[str]:
    """Config files under ``configs_dir``, without the ``_base_/`` fragments.

    Args:
        configs_dir: the configs folder.

    Returns:
        list[str]: paths relative to ``configs_dir``, sorted.
    """
    paths = glob.glob(osp.join(configs_dir, '**', '*.py'), recursive=True)
    rels = (osp.relpath(p, configs_dir) for p in paths)
    return sorted(r for r in rels if not r.startswith('_base_' + osp.sep))


def schedule_of(name: str, cfg: Config) -> str:
    """The schedule token of the config name and the passes over the data it makes."""
    stem = osp.splitext(osp.basename(name))[0]
    token = stem.split('_')[-2]
    epochs = cfg.train_cfg.get('max_epochs')
    dataset = cfg.train_dataloader.dataset
    times = dataset.get('times', 1) if dataset.get('type') == 'RepeatDataset' else 1
    if epochs is None:
        return token
    return f'{token} ({epochs * times} ep)'


def dataset_of(name: str) -> str:
    """The data set of the config name's last token (few-shot VOC: ``voc0712-split1``)."""
    token = osp.splitext(osp.basename(name))[0].split('_')[-1]
    data, _, split = token.partition('-split')
    if split and data in DATASETS:
        return f'{DATASETS[data]} split {split}'
    return DATASETS.get(token, token)


def model_parameters(cfg: Config) -> Tuple[int, int]:
    """Total and trainable parameters of the config's model as ``MODELS.build`` makes it.

    Args:
        cfg: the loaded config.

    Returns:
        tuple[int, int]: total and trainable parameter counts.
    """
    counts = count_parameters(MODELS.build(cfg.model))
    return counts['total'], counts['trainable']


def paper_cells(cfg: Config, name: str) -> Tuple[str, str]:
    """The paper's box AP and trained parameters for this row, or empty cells."""
    if dataset_of(name) != 'COCO' or name.startswith(('classifiers/', 'few_shot/')):
        # classifiers/: other backbones or weights than the paper's; few_shot/: other classes
        return '', ''
    model = cfg.model
    key = (model.type, model.backbone.get('depth'), neck_name(model.neck))
    row: Optional[Dict[str, str]] = PAPER_COCO.get(key)
    arm = config_arm(name)
    if row is None or arm not in (FROZEN, FINETUNE):
        return '', ''
    return row[arm], row['trained'] if arm == FROZEN else ''


def table_rows(configs_dir: str) -> List[List[str]]:
    """One row of cells per config."""
    init_default_scope('mmdet')
    rows = []
    for name in track_iter_progress(list_configs(configs_dir)):
        cfg = Config.fromfile(osp.join(configs_dir, name))
        with torch.no_grad():
            total, trainable = model_parameters(cfg)
        backbone = cfg.model.backbone
        box_ap, trained = paper_cells(cfg, name)
        rows.append([
            f'[{osp.basename(name)}]({name})', cfg.model.type,
            backbone_name(backbone), neck_name(cfg.model.neck),
            backbone_freeze_cell(backbone), config_arm(name) or 'other', dataset_of(name),
            schedule_of(name, cfg), f'{total / 1e6:.1f}M',
            f'{trainable / 1e6:.1f}M', box_ap, trained
        ])
    return rows


def backbone_name(backbone: dict) -> str:
    """The backbone as the table names it: type and depth or arch, timm's model name."""
    if backbone.get('type') == 'FrozenModule':
        return backbone_name(backbone['module'])
    if backbone.get('type') == 'mmpretrain.TIMMBackbone':
        return f"timm {backbone['model_name']}"
    detail = backbone.get('depth', backbone.get('arch', ''))
    return f"{backbone['type']}-{detail}".rstrip('-')


def neck_name(neck: dict) -> str:
    """The neck's type, through a ``FrozenModule`` builder (few-shot ``lastlayers``)."""
    return neck['module']['type'] if neck.get('type') == 'FrozenModule' else neck['type']


def backbone_freeze_cell(backbone: dict) -> str:
    """How the backbone's config freezes it: its own options, or the FrozenModule builder."""
    if backbone.get('type') == 'FrozenModule':
        return 'FrozenModule'
    options = [f'{key}={backbone[key]}' for key in ('frozen_stages', 'norm_eval')
               if key in backbone]
    return ', '.join(options)


HEADER = ['config', 'detector', 'backbone', 'neck', 'backbone freeze', 'arm', 'dataset',
          'schedule', 'params', 'trainable', 'paper box AP', 'paper trained params']

INTRO = """# Configs

Generated by `python tools/misc/config_table.py` from the configs themselves (do not edit by
hand). Each frozen config is its fine-tuned twin plus
[`_base_/frozen-backbone.py`](_base_/frozen-backbone.py), which sets
`runner_type = 'FrozenBackboneRunner'` and `frozen = dict(modules=['backbone'], ...)`, plus the
backbone's own freezing options, `frozen_stages=4, norm_eval=True` for mmdet's ResNet (column
*backbone freeze*): the whole backbone (stem, every stage, BN statistics and affine parameters)
is frozen by the model itself, whatever builds it, and the runner verifies it at build time and
during training. Fine-tuned twins follow MMDetection's recipe (stem and first
stage frozen, BN in eval mode); the scratch twin trains a randomly initialised backbone.

*params* and *trainable* count the model as `MODELS.build(cfg.model)` builds it. *paper box AP*
and *paper trained params* are Vasconcelos et al. (CVPR 2022), COCO val, ImageNet backbone,
for the same detector, backbone and neck: the paper trains with its own long large-scale-jitter
schedule and heads, so it is a reference point, not the expected result of a shorter schedule.
The paper's parameter totals include parts MMDetection's models do not have.

Every config runs reliably by default ([docs/reliable_runs.md](../docs/reliable_runs.md)): the
exact-resume loop, atomic checkpoints, a NaN loss that stops the run and checked annotation
files, from the shared bases ([`_base_/default_runtime.py`](_base_/default_runtime.py),
[`_base_/schedules/`](_base_/schedules/), [`_base_/datasets/`](_base_/datasets/) and
[`_base_/common/`](_base_/common/), which wraps MMDetection's one-file recipes); one line in a
config that inherits one of these turns each off. A config that adds hooks keeps ours with
`custom_hooks = [*_base_.custom_hooks, dict(type='MyHook')]`.

[`classifiers/`](classifiers/) takes other image classifiers as the backbone, each with the
recipe MMDetection uses for it: timm's ConvNeXt-T through mmpretrain's `TIMMBackbone`
(weights by `init_cfg` from `timm://`, mmfrozen's checkpoint scheme for a timm `state_dict`),
mmpretrain's ConvNeXt-T and Swin-T, torchvision's new-recipe ResNet-50 weights in mmdet's
ResNet-50, and EfficientNet-B3 through mmdet's EfficientNet. A fine-tuned config is its R50
config with the backbone, the neck's input channels and the optimizer written over it, as
MMDetection's configs (and `tools/misc/frozen_config_for.py MODEL`, which writes such a pair for
any timm classifier) write them. Their frozen configs build the backbone with the
`FrozenModule` builder (every weight, norm affine parameters and statistics, eval mode), but
the ResNet-50 ones, which use mmdet's own options. For mmpretrain's ConvNeXt and Swin,
`frozen.modules` names the classifier's parts
([`_base_/classifiers/`](_base_/classifiers/)): the norms they add on stages 0-2 for the FPN
are in no classifier checkpoint, so they stay frozen at their identity affine, outside the check
that every frozen tensor came from the checkpoint.

LVIS stage 2 configs retrain only the final classification layer from a stage-1 checkpoint,
given with `--cfg-options load_from=...` (the freeze check refuses to run without it), in two
variants: `stage2-cls-sample1e-2`, repeat-factor resampling of the images (threshold 1e-2), and
`stage2-cls-cbloss`, the paper's class-balanced loss (plain sampling; `ClassBalancedLossHook`
weighs class j by (1 - beta) / (1 - beta^n_j) from the training counts, `class_balanced_beta`).

[`few_shot/`](few_shot/) is few-shot detection's standard protocol (Wang et al., 2020) with
Faster R-CNN R101-FPN, written by `tools/misc/few_shot_configs.py`
([docs/few_shot.md](../docs/few_shot.md)): `base-training` on the base classes of Pascal VOC
splits 1-3 or COCO's 60 (arms `finetune` and `frozen`), then `{K}shot-fine-tuning` on K shots of
every class (VOC K = 1, 2, 3, 5, 10; COCO K = 10, 30) from the base checkpoint after the weight
surgery (`load_from`), in three arms: `finetune`, `frozen` and `lastlayers` (only the box
classifier and regressor train, the other parts built frozen and verified: TFA's fine-tuning).
Their *schedule* counts passes over the K-shot set (repeated 100 times an epoch); they are
scored on novel and base classes (`class_groups`).
"""


def render(rows: List[List[str]]) -> str:
    """The README text: an introduction and one table per config folder."""
    lines = [INTRO]
    folders: Dict[str, List[List[str]]] = {}
    for row in rows:
        folder = row[0].split('](')[1].split('/')[0]
        folders.setdefault(folder, []).append(row)
    for folder, folder_rows in folders.items():
        lines += [f'## {folder}', '', '| ' + ' | '.join(HEADER) + ' |',
                  '|' + '---|' * len(HEADER)]
        lines += ['| ' + ' | '.join(row) + ' |' for row in folder_rows]
        lines.append('')
    return '\n'.join(lines)


def main() -> None:
    args = parse_args()
    out = args.out or osp.join(args.configs_dir, 'README.md')
    text = render(table_rows(args.configs_dir))
    with open(out, 'w') as f:
        f.write(text)
    print(f'\nwrote {out}')


if __name__ == '__main__':
    main()
