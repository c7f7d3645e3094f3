"""Training cost of a detector: parameters, training FLOPs, memory and step time.

:func:`measure_training_cost` measures one real training step of a config's model on a
synthetic batch (``tools/cost.py`` prints and saves it for several configs);
:class:`mmfrozen.engine.hooks.CostReportHook` records the cost of a real run.

A measurement (one dict per config, also in ``tools/cost.py --out`` JSON under ``results``)::

    config, device, batch_size, shape [H, W] (images), input_shape [H, W] (padded batch),
    frozen_modules
    params: {total, trainable, backbone: {total, trainable}, neck: {...}, heads: {...}}
    train_gflops_per_image, train_gflops_forward_per_image, train_gflops_backward_per_image
    saved_activations_mb          # activations autograd keeps for backward, whole batch
    params_mb, grads_mb, optimizer_state_mb
    peak_memory_mb, peak_memory_source   # 'cuda_max_memory_allocated' or 'model_estimate'
    step_time_s (median), step_times_s
"""
from .flops import TrainingFlopCounter
from .measure import (build_trained_model, load_config, measure_training_cost, resolve_config_path)
from .memory import SavedActivationTracker, model_state_bytes
from .params import count_parameters
from .phases import watch_backward
from .report import add_ratios, format_cost_table, machine_name
from .synthetic_batch import synthetic_batch
from .train_settings import train_batch_size, train_image_shape, train_loads_masks

__all__ = [
    'SavedActivationTracker', 'TrainingFlopCounter', 'add_ratios', 'build_trained_model',
    'count_parameters', 'format_cost_table', 'load_config', 'machine_name', 'measure_training_cost',
    'model_state_bytes', 'resolve_config_path', 'synthetic_batch', 'train_batch_size',
    'train_image_shape', 'train_loads_masks', 'watch_backward'
]
