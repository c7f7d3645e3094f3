"""Training-cost measurement: FLOPs, saved activations and parameters against exact counts."""
import copy

import pytest
import torch
from mmfrozen.testing import TINY_FASTER_RCNN
from mmengine.config import Config
from torch import nn

import mmfrozen  # noqa: F401
from mmfrozen.shipped_configs import config_path
from mmfrozen.cost import (SavedActivationTracker, TrainingFlopCounter, build_model_for_training,
                           count_parameters, load_config, measure_training_cost, synthetic_batch,
                           train_batch_size, train_image_shape, train_loads_masks)
from mmfrozen.models.freeze import freeze_module

BATCH, CHANNELS, SIDE = 2, 3, 16


def small_net() -> nn.Sequential:
    """conv(3->8) - relu - conv(8->16, stride 2) - relu - flatten - linear(1024->10)."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(CHANNELS, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 16, 3, stride=2, padding=1),
        nn.ReLU(), nn.Flatten(), nn.Linear(16 * 8 * 8, 10))


# Forward FLOPs, 2 per multiply-accumulate: batch x output positions x c_out x c_in x k x k.
CONV1 = 2 * BATCH * SIDE * SIDE * 8 * CHANNELS * 9
CONV2 = 2 * BATCH * 8 * 8 * 16 * 8 * 9
LINEAR = 2 * BATCH * 1024 * 10


def run_step(net: nn.Module, x: torch.Tensor):
    with TrainingFlopCounter() as counter, SavedActivationTracker(net.parameters()) as saved:
        loss = net(x).sum()
        counter.mark_backward_start()
        saved_bytes = saved.live_bytes()
        loss.backward()
        counter.mark_backward_end()
    return counter, saved_bytes


# Backward: a weight gradient costs the layer's forward FLOPs where the weight trains; an input
# gradient costs them again where anything before the layer trains. The image needs no gradient.
@pytest.mark.parametrize('frozen, backward', [
    ((), CONV1 + 2 * CONV2 + 2 * LINEAR),
    ((0, ), CONV2 + 2 * LINEAR),
    ((2, ), CONV1 + CONV2 + 2 * LINEAR),
    ((0, 2), LINEAR),
])
def test_flops_of_small_net_equal_analytic_count(frozen, backward):
    net = small_net()
    for index in frozen:
        freeze_module(net[index])
    counter, _ = run_step(net, torch.randn(BATCH, CHANNELS, SIDE, SIDE))
    assert counter.forward == CONV1 + CONV2 + LINEAR
    assert counter.backward == backward
    assert counter.total == counter.forward + counter.backward


def test_saved_activations_of_small_net():
    x = torch.randn(BATCH, CHANNELS, SIDE, SIDE)
    relu1 = BATCH * 8 * SIDE * SIDE * 4  # float32 bytes; conv2 saves the same tensor
    relu2 = BATCH * 16 * 8 * 8 * 4  # flatten is a view: the linear layer saves the same storage
    _, finetuned = run_step(small_net(), x)
    assert finetuned == x.nbytes + relu1 + relu2

    net = small_net()
    freeze_module(net[0])  # conv1 no longer needs its input for a weight gradient
    _, frozen = run_step(net, x)
    assert finetuned - frozen == x.nbytes


def test_count_parameters_splits_parts_and_respects_requires_grad():
    cfg = Config.fromfile(TINY_FASTER_RCNN)
    model, _ = build_model_for_training(cfg, 'cpu')
    counts = count_parameters(model)
    numel = {
        name: sum(p.numel() for p in getattr(model, name).parameters())
        for name in ('backbone', 'neck', 'rpn_head', 'roi_head')
    }
    assert counts['total'] == sum(p.numel() for p in model.parameters())
    assert counts['backbone']['total'] == numel['backbone']
    assert counts['neck']['total'] == numel['neck']
    assert counts['heads']['total'] == numel['rpn_head'] + numel['roi_head']
    assert counts['trainable'] == counts['total']

    model.backbone.layer1.requires_grad_(False)  # as ResNet's frozen_stages does
    counts = count_parameters(model)
    layer1 = sum(p.numel() for p in model.backbone.layer1.parameters())
    assert counts['backbone']['trainable'] == numel['backbone'] - layer1
    assert counts['trainable'] == counts['total'] - layer1


def frozen_variant(cfg: Config) -> Config:
    frozen = copy.deepcopy(cfg)
    frozen.merge_from_dict(dict(frozen=dict(modules=['backbone']),
                                model=dict(backbone=dict(frozen_stages=4, norm_eval=True))))
    return frozen


def backbone_alone(cfg: Config, batch_size: int) -> dict:
    """The backbone's own training cost, run on its own with a gradient at its outputs."""
    torch.manual_seed(0)
    model, _ = build_model_for_training(cfg, 'cpu')
    data = model.data_preprocessor(synthetic_batch(batch_size, (128, 128)), True)
    params = [*model.parameters(), *model.buffers()]
    with TrainingFlopCounter() as counter, SavedActivationTracker(params) as saved:
        outputs = model.backbone(data['inputs'])
        counter.mark_backward_start()
        saved_bytes = saved.live_bytes()
        torch.autograd.backward(outputs, [torch.ones_like(o) for o in outputs])
        counter.mark_backward_end()
    # FPN's 1x1 lateral convolutions: their input gradient is computed only when the
    # backbone trains.
    lateral = sum(2 * o.shape[0] * o.shape[2] * o.shape[3] * conv.conv.in_channels *
                  conv.conv.out_channels for o, conv in zip(outputs, model.neck.lateral_convs))
    return dict(
        forward=counter.forward,
        backward=counter.backward,
        saved=saved_bytes,
        outputs=sum(o.untyped_storage().nbytes() for o in outputs),
        lateral=lateral)


def test_frozen_backbone_saves_backward_flops_and_activations():
    cfg = Config.fromfile(TINY_FASTER_RCNN)
    batch = 2
    finetuned = measure_training_cost(cfg, 'cpu', batch_size=batch, steps=1, warmup=0)
    frozen = measure_training_cost(frozen_variant(cfg), 'cpu', batch_size=batch, steps=1, warmup=0)
    backbone = backbone_alone(cfg, batch)
    giga = 1e9 * batch

    assert frozen['params']['backbone']['trainable'] == 0
    assert frozen['params']['trainable'] == (
        finetuned['params']['trainable'] - finetuned['params']['backbone']['total'])
    # The same weights (same seed) and the same forward pass.
    assert frozen['train_gflops_forward_per_image'] == finetuned['train_gflops_forward_per_image']
    # A trainable backbone costs about twice its forward in backward (not the stem's input
    # gradient: the image needs none), and FPN's lateral convolutions pass gradients into it.
    assert backbone['backward'] < 2 * backbone['forward']
    saved_flops = (backbone['backward'] + backbone['lateral']) / giga
    assert (finetuned['train_gflops_backward_per_image'] -
            frozen['train_gflops_backward_per_image'] == pytest.approx(saved_flops, rel=1e-6))
    # The frozen backbone saves nothing but its outputs, which the neck keeps for its own
    # weight gradients either way.
    expected_mb = (backbone['saved'] - backbone['outputs']) / 2**20
    assert (finetuned['saved_activations_mb'] - frozen['saved_activations_mb'] == pytest.approx(
        expected_mb, rel=1e-6))
    assert frozen['grads_mb'] < finetuned['grads_mb']
    assert frozen['peak_memory_source'] == 'model_estimate'
    assert frozen['peak_memory_mb'] < finetuned['peak_memory_mb']


@pytest.mark.parametrize('config, shape, masks', [
    ('mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py', (800, 1333), False),
    ('mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py', (800, 1333), True),
    ('mmdet::mask_rcnn/mask-rcnn_r50_fpn_ms-poly-3x_coco.py', (800, 1333), True),
    ('mmdet::nas_fpn/retinanet_r50_nasfpn_crop640-50e_coco.py', (640, 640), False),
    ('mmdet::strong_baselines/'
     'mask-rcnn_r50-caffe_fpn_rpn-2conv_4conv1fc_syncbn-all_lsj-100e_coco.py', (1024, 1024), True),
    (config_path('cascade_rcnn/cascade-rcnn_r50-frozen_nasfpn_lsj-1x_coco.py'), (1024, 1024),
     False),
])
def test_training_settings_read_from_configs(config, shape, masks):
    cfg = load_config(config)
    assert train_image_shape(cfg) == shape
    assert train_loads_masks(cfg) is masks
    assert train_batch_size(cfg) == cfg.train_dataloader.batch_size


# Every detector family the project's configs use, from MMDetection's own configs, measured on
# small images so that the whole step runs in seconds.
# NAS-FPN keeps one of its 7 cells and the RetinaNet head one of its 4 convolutions: the same
# code, a fifth of the time.
@pytest.mark.parametrize('config, options', [
    ('mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py', None),
    *(pytest.param(config, options, marks=pytest.mark.configs) for config, options in (
        ('mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py', None),
        ('mmdet::cascade_rcnn/cascade-mask-rcnn_r50_fpn_1x_coco.py', None),
        ('mmdet::retinanet/retinanet_r50_fpn_1x_coco.py', None),
        ('mmdet::nas_fpn/retinanet_r50_nasfpn_crop640-50e_coco.py', {
            'model.neck.stack_times': 1,
            'model.bbox_head.stacked_convs': 1
        }))),
])
def test_every_detector_family_measures(config, options):
    result = measure_training_cost(
        config, 'cpu', batch_size=1, shape=(128, 128), steps=1, warmup=0, cfg_options=options)
    assert result['train_gflops_forward_per_image'] > 0
    assert result['train_gflops_backward_per_image'] > 0
    assert result['saved_activations_mb'] > 0
    assert result['step_time_s'] > 0
    # frozen_stages=1 in these configs: the stem and layer1 do not train
    assert 0 < result['params']['backbone']['trainable'] < result['params']['backbone']['total']


def test_input_shape_is_the_padded_batch():
    result = measure_training_cost(
        TINY_FASTER_RCNN, 'cpu', batch_size=1, shape=(100, 150), steps=1, warmup=0)
    assert result['shape'] == [100, 150]
    assert result['input_shape'] == [128, 160]  # the config's pad_size_divisor=32
