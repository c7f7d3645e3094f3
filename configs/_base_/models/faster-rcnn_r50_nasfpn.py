# Faster R-CNN R50 with the NAS-FPN neck of ./nasfpn.py (defined there once, for both detectors).
_base_ = 'mmdet::_base_/models/faster-rcnn_r50_fpn.py'
# after _base_: mmengine reads a config that starts with an import as a lazy-import one
import mmengine  # noqa: E402  a module, so not a field of the config

model = mmengine.Config.fromfile('{{ fileDirname }}/nasfpn.py').model
