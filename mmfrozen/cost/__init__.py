"""Training cost of a detector: parameters, training FLOPs, memory and step time.

:func:`measure_training_cost` measures one real training step of a config's model on a
synthetic batch (``tools/cost.py`` prints and saves it for several configs);
:class:`mmfrozen.engine.hooks.CostReportHook` records the cost of a real run.

A measurement (one dict per config, also in ``tools/cost.py --out`` JSON under ``results``)::

    config, device, batch_size, shape [H, W] (images), input_shape [H, W] (padded batch),
    frozen_modules
    params: {total, trainable, backbone: {total, trainable}, neck: {...}, heads: {...},
             adapters: {...}}  # adapters: also in their part (LoRA, residual adapters)
    train_gflops_per_image, train_gflops_forward_per_image, train_gflops_backward_per_image
    train_gflops_by_op_per_image: {op: {forward, backward}}  # 'aten.convolution', 'mmcv.nms'
    saved_activations_mb          # activations autograd keeps for backward, whole batch
    params_mb, grads_mb, optimizer_state_mb
    peak_memory_mb, peak_memory_source   # 'cuda_max_memory_allocated' or 'model_estimate'
    peak_memory_reserved_mb              # torch.cuda.max_memory_reserved; null on a CPU
    step_time_s (median), step_times_s

What the FLOPs include: :data:`mmfrozen.cost.flops.COUNTED` (and ``NOT_COUNTED``).

Modules: :mod:`~mmfrozen.cost.flops` (FLOPs of a step, forward and backward),
:mod:`~mmfrozen.cost.mmcv_ops` (FLOPs of mmcv's RoIAlign, RoIPool and NMS),
:mod:`~mmfrozen.cost.memory` (parameters, their state, saved activations),
:mod:`~mmfrozen.cost.inputs` (a config's training input, synthetic batches),
:mod:`~mmfrozen.cost.measure` (one measured step of a config) and
:mod:`~mmfrozen.cost.report` (tables and ratios).
"""
from .flops import COUNTED, NOT_COUNTED, TrainingFlopCounter, watch_backward
from .inputs import synthetic_batch, train_batch_size, train_image_shape, train_loads_masks
from .measure import (build_model_for_training, load_config, measure_training_cost,
                      resolve_config_path)
from .memory import SavedActivationTracker, count_parameters, model_state_bytes
from .report import add_ratios, format_cost_table, machine_name

__all__ = [
    'COUNTED', 'NOT_COUNTED',
    'SavedActivationTracker', 'TrainingFlopCounter', 'add_ratios', 'build_model_for_training',
    'count_parameters', 'format_cost_table', 'load_config', 'machine_name', 'measure_training_cost',
    'model_state_bytes', 'resolve_config_path', 'synthetic_batch', 'train_batch_size',
    'train_image_shape', 'train_loads_masks', 'watch_backward'
]
