"""tools/misc/frozen_config_for.py: a timm classifier's paired configs, written and trained.

The tool runs as a user runs it, on a small timm classifier (ConvNeXt-atto) whose seeded
``state_dict`` stands for the downloaded file; the two configs it writes are loaded, built with
the weights, and trained one step each on the CPU.
"""
import importlib.util
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope

import mmfrozen  # noqa: F401  (first: its compat fix lets timm import on a CPU torch)
from mmdet.registry import MODELS
from mmdet.testing import demo_mm_inputs
from mmfrozen.models.freeze import trainable_parameters

MODEL = 'convnext_atto.d2_in1k'
TOOL = 'tools/misc/frozen_config_for.py'


@pytest.fixture(scope='module')
def generated(tmp_path_factory, run_tool):
    """The two configs the tool writes for MODEL, its weights a seeded local file."""
    import timm
    from safetensors.torch import save_file
    out = tmp_path_factory.mktemp('generated')
    torch.manual_seed(0)
    model = timm.create_model(MODEL.split('.')[0])
    state = {key: value.contiguous() for key, value in model.state_dict().items()}
    weights = str(out / 'model.safetensors')
    save_file(state, weights)
    proc = run_tool([TOOL, MODEL, '--out-dir', str(out),
                     '--checkpoint', weights])
    names = sorted(p for p in proc.stderr.split() + proc.stdout.split() if p.endswith('.py'))
    assert [osp.basename(n) for n in names] == [
        'faster-rcnn_convnext-atto-d2-in1k-timm-finetune_fpn_1x_coco.py',
        'faster-rcnn_convnext-atto-d2-in1k-timm-frozen_fpn_1x_coco.py']
    return dict(finetune=names[0], frozen=names[1], state=state)


def _one_step(path: str):
    """Build the config's model with its weights, run one train_step through its optimizer;
    return the model, the tensors before, and the names of the tensors that changed."""
    cfg = Config.fromfile(path)
    cfg.model.data_preprocessor.pop('batch_augments', None)
    init_default_scope('mmdet')
    model = MODELS.build(cfg.model)
    model.init_weights()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    data = demo_mm_inputs(batch_size=2, image_shapes=[(3, 128, 128)] * 2, num_items=[3, 2],
                          num_classes=80)
    model.train()
    losses = model.train_step(data, build_optim_wrapper(model, cfg.optim_wrapper))
    assert all(torch.isfinite(v).all() for k, v in losses.items() if 'loss' in k)
    changed = [k for k, v in model.state_dict().items() if not torch.equal(before[k], v)]
    return model, before, changed


@pytest.mark.runs
def test_neck_takes_the_backbone_levels(generated):
    cfg = Config.fromfile(generated['finetune'])
    init_default_scope('mmdet')
    backbone = MODELS.build(cfg.model.backbone)
    outputs = backbone(torch.rand(1, 3, 64, 64))
    assert [o.shape[1] for o in outputs] == cfg.model.neck.in_channels
    assert [64 // o.shape[2] for o in outputs] == [4, 8, 16, 32]


@pytest.mark.runs
def test_frozen_config_trains_one_step_with_the_trunk_as_loaded(generated):
    model, before, changed = _one_step(generated['frozen'])
    assert trainable_parameters(model.backbone) == []
    assert not any(k.startswith('backbone.') for k in changed)
    assert any(k.startswith('neck.') for k in changed)
    loaded = {k: v for k, v in before.items() if k.startswith('backbone.')}
    assert loaded and all(
        torch.equal(value, generated['state'][k.split('.', 2)[2].replace('_', '.', 1)])
        for k, value in loaded.items())


@pytest.mark.runs
def test_finetuned_config_trains_one_step_backbone_included(generated):
    _, _, changed = _one_step(generated['finetune'])
    assert any(k.startswith('backbone.') for k in changed)
    assert any(k.startswith('neck.') for k in changed)


def _tool():
    """The tool's module, loaded from its file as ``python TOOL`` runs it."""
    spec = importlib.util.spec_from_file_location('frozen_config_for', TOOL)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    return tool


def test_a_model_without_a_pyramid_is_refused_naming_its_strides():
    with pytest.raises(ValueError, match=r'vit_tiny_patch16_224: timm gives features at '
                                         r'strides \[16, 16'):
        _tool().feature_levels('vit_tiny_patch16_224')


def test_the_shipped_timm_pair_is_what_the_tool_writes(tmp_path):
    """configs/classifiers/'s timm ConvNeXt-T pair resolves to the tool's pair for
    convnext_tiny.fb_in1k plus the drop-path rate of MMDetection's ConvNeXt-T configs."""
    from mmfrozen.shipped_configs import config_path
    texts = _tool().render('convnext_tiny.fb_in1k', 'faster-rcnn', 'coco', str(tmp_path))
    for name, text in texts.items():
        (tmp_path / name).write_text(text)
    for arm, name in zip(('finetune', 'frozen'), texts):
        generated = Config.fromfile(str(tmp_path / name)).to_dict()
        shipped = Config.fromfile(config_path(
            f'classifiers/faster-rcnn_convnext-t-timm-{arm}_fpn_1x_coco.py')).to_dict()
        backbone = generated['model']['backbone']
        (backbone['module'] if arm == 'frozen' else backbone)['drop_path_rate'] = 0.4
        assert generated == shipped, arm


#: the ViT behind each backbone token of configs/vitdet/
VIT_TOKENS = {
    'vit-s-dinov2': 'vit_small_patch14_dinov2.lvd142m',
    'vit-b-dinov2': 'vit_base_patch14_dinov2.lvd142m',
    'vit-b-clip': 'vit_base_patch16_clip_quickgelu_224.openai',
    'vit-b-mae': 'vit_base_patch16_224.mae',
    'vit-b-in21k': 'vit_base_patch16_224.augreg2_in21k_ft_in1k',
}


def test_a_plain_vit_gets_vitdet_configs_by_default():
    tool = _tool()
    args = tool.parse_args(['vit_small_patch14_dinov2.lvd142m'])
    assert (args.detector, osp.relpath(args.out_dir, tool.CONFIGS)) == ('mask-rcnn', 'vitdet')
    args = tool.parse_args(['convnext_atto.d2_in1k'])
    assert (args.detector, osp.relpath(args.out_dir, tool.CONFIGS)) == ('faster-rcnn',
                                                                        'classifiers')


def test_a_plain_vit_with_an_fpn_detector_is_refused(capsys):
    with pytest.raises(SystemExit):
        _tool().parse_args(['vit_base_patch16_224.mae', '--detector', 'retinanet'])
    assert ('no retinanet config for coco with a plain ViT (simple feature pyramid): choose '
            'one of mask-rcnn on coco') in capsys.readouterr().err


def test_every_vit_config_is_one_the_tool_writes():
    from mmfrozen.shipped_configs import list_configs
    tool = _tool()
    written = {f'vitdet/{name}' for token, model in VIT_TOKENS.items()
               for detector, dataset in tool.VIT_BASES
               for name in tool.config_names(model, detector, dataset, token)}
    assert written == {name for name in list_configs() if name.startswith('vitdet/')}


@pytest.mark.parametrize('token', [t if t == 'vit-s-dinov2' else pytest.param(
    t, marks=pytest.mark.configs) for t in VIT_TOKENS])
def test_the_shipped_vit_configs_are_what_the_tool_writes(token):
    """Each config of configs/vitdet/ is, byte for byte, what the tool writes for its ViT,
    detector and data set (with the folder's short backbone token)."""
    from mmfrozen.shipped_configs import config_path
    tool = _tool()
    for detector, dataset in tool.VIT_BASES:
        texts = tool.render(VIT_TOKENS[token], detector, dataset,
                            osp.join(tool.CONFIGS, 'vitdet'), token=token)
        for name, text in texts.items():
            with open(config_path(f'vitdet/{name}')) as f:
                assert f.read() == text, name
