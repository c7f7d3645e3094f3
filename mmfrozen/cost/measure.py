"""Measure the training cost of a config's model on one real training step, without data."""
import copy
import gc
import os.path as osp
import statistics
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import torch
from mmengine.config import Config
from mmengine.logging import print_log
from mmengine.optim import OptimWrapper, build_optim_wrapper
from mmengine.registry import init_default_scope
from torch import nn

from ..models.freeze import frozen_cfg_of, frozen_module_names
from .flops import TrainingFlopCounter, watch_backward
from .inputs import synthetic_batch, train_batch_size, train_image_shape, train_loads_masks
from .memory import MB, SavedActivationTracker, count_parameters, model_state_bytes

GIGA = 1e9
CUDA_PEAK = 'cuda_max_memory_allocated'
#: On a CPU: parameters + gradients + optimizer state + saved activations, not a measurement.
MODEL_ESTIMATE = 'model_estimate'


def resolve_config_path(config: str) -> str:
    """The file of a config path, which may name an installed package's config.

    Args:
        config: a file path, or ``'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'``.

    Returns:
        str: the file's path.

    Raises:
        FileNotFoundError: there is no such file.
    """
    path = config
    if '::' in config:
        from mmengine.utils import get_installed_path
        package, relative = config.split('::', 1)
        path = osp.join(get_installed_path(package), '.mim', 'configs', relative)
    if not osp.isfile(path):
        raise FileNotFoundError(f'config file not found: {config}')
    return path


def load_config(config: Union[str, Config], cfg_options: Optional[dict] = None) -> Config:
    """Read a config file (mmfrozen's, MMDetection's or any user's) and apply overrides.

    Args:
        config: path of the config (``mmdet::...`` names one of MMDetection's), or a loaded
            ``Config``.
        cfg_options: ``--cfg-options`` style overrides, merged into the config.

    Returns:
        Config: the config, its ``custom_imports`` imported.
    """
    if isinstance(config, str):
        cfg = Config.fromfile(resolve_config_path(config))
    else:
        cfg = copy.deepcopy(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    return cfg


def build_model_for_training(cfg: Config,
                             device: Union[str, torch.device]) -> Tuple[nn.Module, OptimWrapper]:
    """Build a config's model, untrained, as a training step runs it, and its optimizer wrapper.

    The model is built by the registry (a frozen config's model freezes itself: ``frozen_stages``
    and ``norm_eval``, or the ``FrozenModule`` builder) and put in train mode. Weights are
    random, not loaded from checkpoints: the cost does not depend on them.

    Args:
        cfg: the config.
        device: where to put the model.

    Returns:
        tuple: ``(model, optim_wrapper)``.
    """
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules

    register_all_modules(init_default_scope=False)
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    if 'model' not in cfg:
        raise KeyError(f'{cfg.filename}: the config has no `model` field to measure')
    model = MODELS.build(cfg.model)  # a frozen config's model freezes itself
    model.to(device)
    model.train()

    optim_cfg = copy.deepcopy(cfg.get('optim_wrapper', dict(optimizer=dict(type='SGD', lr=0.01))))
    if torch.device(device).type != 'cuda' and 'Amp' in str(optim_cfg.get('type', '')):
        print_log(
            f'{cfg.filename}: {optim_cfg["type"]} needs a GPU; measuring with '
            'OptimWrapper (full precision) on the CPU',
            logger='current')
        optim_cfg['type'] = 'OptimWrapper'
        optim_cfg.pop('loss_scale', None)
    return model, build_optim_wrapper(model, optim_cfg)


def _synchronize(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def _instrumented_step(model: nn.Module, optim_wrapper: OptimWrapper,
                       batch: dict) -> Tuple[TrainingFlopCounter, int, List[int]]:
    """One training step that counts FLOPs and the activations saved for backward.

    Returns:
        tuple: the FLOP counter, the saved activation bytes, and the ``[H, W]`` of the batch
        the model saw (after the data pre-processor's padding).
    """
    input_shapes: List[List[int]] = []

    def record_input_shape(module: nn.Module, args: Any, output: dict) -> None:
        input_shapes.append(list(output['inputs'].shape[-2:]))

    counter = TrainingFlopCounter()
    saved = SavedActivationTracker([*model.parameters(), *model.buffers()])
    saved_bytes: List[int] = []

    def on_backward_start() -> None:
        counter.mark_backward_start()
        saved_bytes.append(saved.live_bytes())

    handle = model.data_preprocessor.register_forward_hook(record_input_shape)
    try:
        with watch_backward(optim_wrapper, on_backward_start, counter.mark_backward_end):
            with counter, saved:
                model.train_step(batch, optim_wrapper)
    finally:
        handle.remove()
    if not saved_bytes:
        raise RuntimeError('the training step never called optim_wrapper.backward; cannot split '
                           'forward from backward')
    return counter, saved_bytes[0], input_shapes[0]


def measure_training_cost(config: Union[str, Config],
                          device: Union[str, torch.device, None] = None,
                          batch_size: Optional[int] = None,
                          shape: Optional[Sequence[int]] = None,
                          steps: int = 3,
                          warmup: int = 1,
                          cfg_options: Optional[dict] = None,
                          seed: int = 0) -> Dict[str, object]:
    """Measure what one training step of a config's model costs.

    One instrumented step counts FLOPs (``FlopCounterMode``, split at the backward pass) and
    the activations saved for backward; then ``warmup`` plain steps, then ``steps`` timed
    steps. Images are synthetic (:func:`synthetic_batch`), with masks where the config's
    pipeline loads them.

    Args:
        config: config path or ``Config``.
        device: ``'cpu'``, ``'cuda'``, ...; default CUDA when available.
        batch_size: images per step; default the config's ``train_dataloader.batch_size``.
        shape: ``(height, width)``; default the training scale of the config's pipeline.
        steps: timed steps; the median is reported.
        warmup: untimed steps after the instrumented one.
        cfg_options: overrides merged into the config.
        seed: torch seed set before the model is built, so that measurements repeat.

    Returns:
        dict: the measurement (format in :mod:`mmfrozen.cost`): ``params``,
        ``train_gflops_per_image`` (+ ``_forward_``/``_backward_``),
        ``saved_activations_mb``, ``params_mb``, ``grads_mb``, ``optimizer_state_mb``,
        ``peak_memory_mb`` + ``peak_memory_source`` (+ ``peak_memory_reserved_mb`` on a
        GPU), ``train_gflops_by_op_per_image``, ``step_time_s`` (median) and more.
    """
    cfg = load_config(config, cfg_options)
    device = torch.device(device or ('cuda' if torch.cuda.is_available() else 'cpu'))
    batch_size = batch_size or train_batch_size(cfg) or 1
    if shape is None:
        shape = train_image_shape(cfg)
        if shape is None:
            raise ValueError(f'{cfg.filename}: cannot read the training image size from '
                             'train_dataloader.dataset.pipeline (no Resize/RandomResize '
                             'scale); give the shape explicitly (--shape H W)')
    shape = (int(shape[0]), int(shape[1]))
    if steps < 1:
        raise ValueError(f'steps must be at least 1, got {steps}')

    torch.manual_seed(seed)
    model, optim_wrapper = build_model_for_training(cfg, device)
    frozen_modules = frozen_module_names(frozen_cfg_of(cfg), cfg.filename or 'the config')
    batch = synthetic_batch(batch_size, shape, with_mask=train_loads_masks(cfg))

    counter, saved_bytes, input_shape = _instrumented_step(model, optim_wrapper,
                                                           copy.deepcopy(batch))
    state_bytes = model_state_bytes(model, optim_wrapper.optimizer)
    for _ in range(warmup):
        model.train_step(copy.deepcopy(batch), optim_wrapper)

    if device.type == 'cuda':
        torch.cuda.reset_peak_memory_stats(device)
    times = []
    for _ in range(steps):
        step_batch = copy.deepcopy(batch)
        _synchronize(device)
        start = time.perf_counter()
        model.train_step(step_batch, optim_wrapper)
        _synchronize(device)
        times.append(time.perf_counter() - start)

    peak_reserved_mb = None
    if device.type == 'cuda':
        peak_mb, peak_source = torch.cuda.max_memory_allocated(device) / MB, CUDA_PEAK
        peak_reserved_mb = torch.cuda.max_memory_reserved(device) / MB
    else:
        peak_mb, peak_source = (sum(state_bytes.values()) + saved_bytes) / MB, MODEL_ESTIMATE
    per_image = GIGA * batch_size
    result = dict(
        config=str(cfg.filename),
        device=str(device),
        batch_size=batch_size,
        shape=list(shape),
        input_shape=input_shape,
        frozen_modules=frozen_modules,
        params=count_parameters(model),
        train_gflops_per_image=counter.forward / per_image + counter.backward / per_image,
        train_gflops_forward_per_image=counter.forward / per_image,
        train_gflops_backward_per_image=counter.backward / per_image,
        train_gflops_by_op_per_image={
            op: {phase: flops / per_image
                 for phase, flops in phases.items()}
            for op, phases in counter.by_op().items()
        },
        saved_activations_mb=saved_bytes / MB,
        params_mb=state_bytes['params'] / MB,
        grads_mb=state_bytes['grads'] / MB,
        optimizer_state_mb=state_bytes['optimizer_state'] / MB,
        peak_memory_mb=peak_mb,
        peak_memory_source=peak_source,
        peak_memory_reserved_mb=peak_reserved_mb,
        step_time_s=statistics.median(times),
        step_times_s=times,
    )
    del model, optim_wrapper
    gc.collect()
    if device.type == 'cuda':
        torch.cuda.empty_cache()
    return result
