"""The shipped configs are written in MMDetection's style, and say only what differs.

Every shipped config and base (``configs/``, the classifier configs of ``configs/classifiers/``
included) is a list of assignments over ``_base_``, as MMDetection's configs and
``tools/misc/frozen_config_for.py`` write them: no ``import``, no ``globals()``, no
``Config.fromfile`` of another file. Each fine-tuned config changes its R50 base only where the
classifier needs it (backbone, the neck's input channels, optimizer, imports), and makes the same
change to each detector it comes with, so that a classifier's definition cannot drift between its
copies. Each frozen config is its twin plus the frozen-backbone fragment
(``test_config_builds.py``).

Loading a config that names ``mmdet::`` bases takes 1-4 s here (mmengine reads mmdet's metafiles
for each), so the fast suite checks the style of every file and the changes of one config; the
full suite (``configs``) the changes of every one.
"""
import ast
import functools
import os.path as osp
from typing import Any, Dict, List, Tuple

import pytest
from mmengine.config import Config

from mmfrozen.shipped_configs import config_path, configs_dir, list_configs

#: Every shipped config and base: MMDetection's style, plain assignments.
STYLE_CHECKED = list_configs(include_bases=True)
CLASSIFIER_CONFIGS = [name for name in STYLE_CHECKED if name.startswith('classifiers/')]
FINETUNED = [name for name in CLASSIFIER_CONFIGS if '-finetune_' in name]
CLASSIFIERS = sorted({osp.basename(name).split('_')[1][:-len('-finetune')] for name in FINETUNED})
#: the one fine-tuned config whose changes the fast suite checks
FAST = 'classifiers/faster-rcnn_convnext-t-timm-finetune_fpn_1x_coco.py'
#: Builtins and attributes through which a config would run code or read another file.
CALLS_REFUSED = {'globals', 'locals', 'vars', 'exec', 'eval', 'compile', '__import__', 'open',
                 'getattr', 'setattr'}
ATTRIBUTES_REFUSED = {'fromfile', 'update', '__dict__'}
#: Where a classifier's fine-tuned config may differ from the R50 config it derives from.
CLASSIFIER_FIELDS = (('model', 'backbone'), ('model', 'neck', 'in_channels'), ('optim_wrapper', ),
                     ('custom_imports', ))
ABSENT = '<absent>'


def style_problems(path: str) -> List[str]:
    """What in the config file at ``path`` is not a plain assignment of data.

    Args:
        path: a config file.

    Returns:
        list[str]: one ``path:line: problem`` per finding; empty for a config in style.
    """
    with open(path) as f:
        tree = ast.parse(f.read(), filename=path)
    problems = [f'{path}:{node.lineno}: top-level {type(node).__name__}, not an assignment'
                for node in tree.body if not isinstance(node, ast.Assign)]
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            problems.append(f'{path}:{node.lineno}: import')
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                and node.func.id in CALLS_REFUSED:
            problems.append(f'{path}:{node.lineno}: call of {node.func.id}()')
        elif isinstance(node, ast.Attribute) and node.attr in ATTRIBUTES_REFUSED:
            problems.append(f'{path}:{node.lineno}: .{node.attr}')
    return problems


def base_of(path: str) -> str:
    """The single ``_base_`` a fine-tuned classifier config names, as a path."""
    with open(path) as f:
        tree = ast.parse(f.read(), filename=path)
    bases = [node.value for node in tree.body if isinstance(node, ast.Assign)
             and [getattr(t, 'id', None) for t in node.targets] == ['_base_']]
    assert len(bases) == 1 and isinstance(bases[0], ast.Constant), \
        f'{path}: _base_ is not one file name'
    return osp.normpath(osp.join(osp.dirname(path), bases[0].value))


def leaf_changes(config: Any, base: Any, prefix: Tuple = ()) -> Dict[Tuple, Any]:
    """The leaves where ``config`` differs from ``base``: path -> value in ``config``
    (``ABSENT`` where ``config`` dropped a key of ``base``)."""
    if isinstance(config, dict) and isinstance(base, dict):
        changes: Dict[Tuple, Any] = {}
        for key in set(config) | set(base):
            changes.update(leaf_changes(config.get(key, ABSENT), base.get(key, ABSENT),
                                        prefix + (key, )))
        return changes
    if type(config) is not type(base) or config != base:
        return {prefix: config}
    return {}


@functools.lru_cache(maxsize=None)
def _resolved(path: str) -> Dict[str, Any]:
    return Config.fromfile(path).to_dict()


def classifier_change(name: str) -> Dict[Tuple, Any]:
    """How the fine-tuned classifier config ``name`` changes the config it derives from."""
    path = config_path(name)
    return leaf_changes(_resolved(path), _resolved(base_of(path)))


def test_the_classifier_configs_are_found():
    assert len(CLASSIFIER_CONFIGS) == 30
    assert len(FINETUNED) == 15
    assert CLASSIFIERS == ['convnext-t-mmpt', 'convnext-t-timm', 'effb3', 'r50-tnr', 'swin-t-mmpt']
    assert config_path('_base_/classifiers/convnext-t_mmpretrain_frozen.py').startswith(
        configs_dir())


@pytest.mark.parametrize('name', STYLE_CHECKED)
def test_config_is_plain_assignments(name):
    assert style_problems(config_path(name)) == []


def test_style_check_finds_the_old_tricks(tmp_path):
    """The check names each trick the classifier configs used to pull a backbone in."""
    config = tmp_path / 'tricks.py'
    config.write_text("_base_ = './base.py'\n"
                      'import mmengine\n'
                      "globals().update(mmengine.Config.fromfile('other.py'))\n"
                      "checkpoint = 'x'\n"
                      'del checkpoint\n')
    problems = style_problems(str(config))
    assert f'{config}:2: import' in problems
    assert f'{config}:3: call of globals()' in problems
    assert f'{config}:3: .fromfile' in problems and f'{config}:3: .update' in problems
    assert f'{config}:5: top-level Delete, not an assignment' in problems


def test_leaf_changes_tell_list_from_tuple_and_dropped_keys():
    changes = leaf_changes(dict(a=[0, 1], b=dict(c=1)), dict(a=(0, 1), b=dict(c=1, d=2)))
    assert changes == {('a', ): [0, 1], ('b', 'd'): ABSENT}


@pytest.mark.parametrize('name', [
    name if name == FAST else pytest.param(name, marks=pytest.mark.configs) for name in FINETUNED
])
def test_finetuned_config_changes_only_the_classifier_fields(name):
    changes = classifier_change(name)
    assert changes, f'{name}: no change to {base_of(config_path(name))}'
    outside = [path for path in changes
               if not any(path[:len(field)] == field for field in CLASSIFIER_FIELDS)]
    assert outside == [], f'{name} changes more than its classifier'


@pytest.mark.configs
@pytest.mark.parametrize('token', CLASSIFIERS)
def test_each_classifier_changes_its_detectors_alike(token):
    """A classifier's backbone, neck channels, optimizer and imports are the same change to
    Faster R-CNN and RetinaNet on COCO and Faster R-CNN on LVIS."""
    names = [name for name in FINETUNED if f'_{token}-finetune_' in name]
    assert len(names) == 3, names
    first, *others = names
    for other in others:
        assert classifier_change(other) == classifier_change(first), \
            f'{other} changes its base otherwise than {first}'
