"""tools/misc/few_shot_sample.py and tools/misc/few_shot_surgery.py, run as a user runs them
(their ``main`` with command-line arguments, in this process: no second import of the stack).

The sampler writes one file per K and seed under the names the configs read, the same bytes on
a second run; the surgery makes a checkpoint of the tiny Faster R-CNN trained on two classes
into one that the three-class model loads strictly.
"""
import copy
import importlib.util
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

import mmfrozen  # noqa: F401
from mmdet.registry import MODELS
from mmfrozen.datasets.few_shot_sampler import instance_counts
from mmfrozen.testing import TINY_FASTER_RCNN
from mmfrozen.testing.runs import load_json


def tool(repo_root: str, name: str):
    """A tool script of tools/misc as a module (its ``main(argv)``)."""
    spec = importlib.util.spec_from_file_location(
        name, osp.join(repo_root, 'tools', 'misc', f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_sample_tool_writes_each_k_and_seed_reproducibly(repo_root, tiny_coco, tmp_path):
    train = osp.join(tiny_coco, 'annotations', 'instances_train2017.json')
    sample = tool(repo_root, 'few_shot_sample')
    first = sample.main([train, '--shots', '1', '3', '--seeds', '0', '4', '--out-dir',
                         str(tmp_path / 'a')])
    assert [osp.basename(p) for p in first] == [
        'instances_train2017_1shot_seed0.json', 'instances_train2017_3shot_seed0.json',
        'instances_train2017_1shot_seed4.json', 'instances_train2017_3shot_seed4.json']
    second = sample.main([train, '--shots', '1', '3', '--seeds', '0', '4', '--out-dir',
                          str(tmp_path / 'b')])
    for a, b in zip(first, second):
        with open(a, 'rb') as fa, open(b, 'rb') as fb:
            assert fa.read() == fb.read()
    for path, shots in zip(first, (1, 3, 1, 3)):
        assert instance_counts(load_json(path)) == dict(person=shots, bicycle=shots, car=shots)
    only = sample.main([train, '--shots', '2', '--classes', 'car', '--out-dir',
                        str(tmp_path / 'c')])
    assert instance_counts(load_json(only[0])) == dict(person=0, bicycle=0, car=2)


def test_surgery_tool_extends_a_checkpoint_the_new_model_loads_strictly(repo_root, tmp_path):
    cfg = Config.fromfile(TINY_FASTER_RCNN)
    init_default_scope('mmdet')
    base_cfg = copy.deepcopy(cfg.model)
    base_cfg.roi_head.bbox_head.num_classes = 2
    torch.manual_seed(0)
    base = MODELS.build(base_cfg)
    base.init_weights()
    path = str(tmp_path / 'epoch_1.pth')
    torch.save(dict(state_dict=base.state_dict(),
                    meta=dict(dataset_meta=dict(classes=('person', 'car')))), path)
    out = tool(repo_root, 'few_shot_surgery').main(
        [path, '--classes', 'person', 'bicycle', 'car', '--novel', 'bicycle', '--seed', '3'])
    assert out == str(tmp_path / 'epoch_1_surgery_classes.pth')
    checkpoint = torch.load(out, map_location='cpu', weights_only=True)
    model = MODELS.build(cfg.model)  # three classes
    model.load_state_dict(checkpoint['state_dict'], strict=True)
    assert checkpoint['meta']['dataset_meta']['classes'] == ('person', 'bicycle', 'car')
    state, old = model.state_dict(), base.state_dict()
    assert all(torch.equal(state[k], v) for k, v in old.items()
               if not k.startswith(('roi_head.bbox_head.fc_cls', 'roi_head.bbox_head.fc_reg')))
    weight, old_weight = state['roi_head.bbox_head.fc_cls.weight'], old[
        'roi_head.bbox_head.fc_cls.weight']
    assert torch.equal(weight[[0, 2, 3]], old_weight)  # person, car, background
    with pytest.raises(SystemExit):
        tool(repo_root, 'few_shot_surgery').main([path, '--classes', 'person'])  # no --novel
