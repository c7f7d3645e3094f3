# Cascade R-CNN R50 with the NAS-FPN neck of ./nasfpn.py (defined there once, for both detectors).
_base_ = 'mmdet::_base_/models/cascade-rcnn_r50_fpn.py'
import mmengine  # a module: not part of the config

model = mmengine.Config.fromfile('{{ fileDirname }}/nasfpn.py').model
