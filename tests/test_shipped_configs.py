"""mmfrozen.shipped_configs: the configs in the package, found by name, copied standalone."""
import os.path as osp

import pytest
from mmengine.config import Config

from mmfrozen.shipped_configs import config_path, configs_dir, copy_config, list_configs, main


def test_every_config_of_the_repository_is_shipped(repo_root):
    """The package's configs are the repository's configs/ (MMDetection's .mim layout)."""
    assert osp.samefile(configs_dir(), osp.join(repo_root, 'configs'))
    names = list_configs()
    assert 'faster_rcnn/faster-rcnn_r50-frozen_fpn_1x_coco.py' in names
    assert not any(name.startswith('_base_/') for name in names)
    assert '_base_/frozen-backbone.py' in list_configs(include_bases=True)
    assert list_configs('*frozen*lvis-v1.py') == [n for n in names if
                                                  '-frozen_' in n and n.endswith('lvis-v1.py')]


def test_a_config_is_found_by_its_name_or_path():
    path = config_path('faster_rcnn/faster-rcnn_r50-frozen_fpn_1x_coco.py')
    assert config_path('faster-rcnn_r50-frozen_fpn_1x_coco') == path
    assert config_path('faster-rcnn_r50-frozen_fpn_1x_coco.py') == path
    with pytest.raises(FileNotFoundError, match=r"closest: faster-rcnn_r50-frozen_fpn_1x_coco"):
        config_path('faster-rcnn_r50-frozen_fpn_1x_cocoo')


def test_a_copy_stands_alone_and_means_the_same(tmp_path):
    written = copy_config('retinanet_r50-frozen_fpn_1x_coco', str(tmp_path / 'mine'))
    assert osp.dirname(written) == str(tmp_path / 'mine')
    copy = Config.fromfile(written).to_dict()
    original = Config.fromfile(config_path('retinanet_r50-frozen_fpn_1x_coco')).to_dict()
    assert copy == original


def test_command_line(tmp_path, capsys):
    assert main(['list', 'nasfpn']) == 0
    listed = capsys.readouterr().out.split()
    assert listed and all('nasfpn' in name for name in listed)
    assert main(['path', 'no-such-config']) == 2
    assert 'no shipped config' in capsys.readouterr().err
    assert main(['copy', 'faster-rcnn_r50-frozen_fpn_1x_coco', str(tmp_path / 'x.py')]) == 0
    assert osp.isfile(tmp_path / 'x.py')
