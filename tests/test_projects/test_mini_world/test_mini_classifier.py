"""The mini world's classifier and the export of its backbone into MMDetection detectors."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import load_checkpoint, save_checkpoint

import projects.mini_world.mini_world  # noqa: F401  (registers the mini modules)
from mmdet.registry import METRICS, MODELS
from projects.mini_world.mini_world.backbone_export import export_backbone
from projects.mini_world.mini_world.pipeline import CONFIG_DIR

CLASSIFIER_CONFIG = osp.join(CONFIG_DIR, 'classifier_r18-w16_8e_mini-world.py')
FINETUNE_CONFIG = osp.join(CONFIG_DIR, 'faster-rcnn_r18-finetune_fpn_mini-lvis.py')


def build_classifier(num_classes: int = 5):
    cfg = Config.fromfile(CLASSIFIER_CONFIG)
    cfg.model.num_classes = num_classes
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model


def test_classifier_modes_and_metric():
    torch.manual_seed(0)
    model = build_classifier()
    batch = dict(inputs=[torch.randint(0, 255, (3, 64, 64), dtype=torch.uint8)
                         for _ in range(4)], data_samples=[0, 1, 2, 4])
    data = model.data_preprocessor(batch, training=True)
    losses = model(**data, mode='loss')
    assert set(losses) == {'loss'} and losses['loss'].item() > 0
    losses['loss'].backward()
    assert model.backbone.conv1.weight.grad is not None
    model.eval()
    with torch.no_grad():
        preds = model(**model.data_preprocessor(batch), mode='predict')
    assert [p['gt_label'] for p in preds] == [0, 1, 2, 4]
    assert all(0 <= p['pred_label'] < 5 and p['scores'].shape == (5, ) for p in preds)

    metric = METRICS.build(dict(type='MiniWorldAccuracy'))
    metric.process({}, [dict(pred_label=1, gt_label=1, scores=torch.tensor([.1, .9, 0, 0, 0])),
                        dict(pred_label=0, gt_label=2, scores=torch.tensor([.5, .1, .4, 0, 0]))])
    assert metric.compute_metrics(metric.results) == dict(top1=50.0, top5=100.0)
    with pytest.raises(ValueError, match='mode'):
        model(**data, mode='bogus')


def test_exported_backbone_loads_into_the_mini_detector(tmp_path):
    """Every key of the detector's backbone comes from the classifier, nothing is left over."""
    torch.manual_seed(1)
    classifier = build_classifier()
    classifier_file = str(tmp_path / 'epoch_1.pth')
    save_checkpoint(dict(state_dict=classifier.state_dict(), meta=dict(epoch=1)),
                    classifier_file)
    backbone_file = export_backbone(classifier_file, str(tmp_path / 'backbone.pth'),
                                    meta=dict(accuracy=dict(top1=12.5)))

    # strict: a missing or unexpected key raises.
    backbone = MODELS.build(dict(type='ResNet', depth=18, base_channels=16))
    checkpoint = load_checkpoint(backbone, backbone_file, strict=True)
    assert checkpoint['meta']['accuracy'] == dict(top1=12.5)
    assert not any(key.startswith('backbone.') for key in checkpoint['state_dict'])

    # The detector config's own init_cfg path, as the runner uses it.
    cfg = Config.fromfile(FINETUNE_CONFIG)
    cfg.model.backbone.init_cfg.checkpoint = backbone_file
    detector = MODELS.build(cfg.model)
    detector.init_weights()
    expected = classifier.backbone.state_dict()
    loaded = detector.backbone.state_dict()
    assert set(loaded) == set(expected)
    for key, value in expected.items():
        torch.testing.assert_close(loaded[key], value, msg=key)
