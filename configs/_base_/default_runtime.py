# MMDetection's runtime with mmfrozen's reliable-runs hooks on (docs/reliable_runs.md):
# - AtomicCheckpointHook: MMEngine's CheckpointHook, every argument kept, that writes each
#   checkpoint to a temporary file and renames it into place: never a broken checkpoint.
#   Off: default_hooks = dict(checkpoint=dict(type='CheckpointHook'))
# - NonFiniteLossHook: a NaN or infinite loss or gradient stops the run, naming the iteration,
#   before the step is applied or a checkpoint written. Off: custom_hooks = []
# A config that adds hooks keeps this one by listing the base's first:
#   custom_hooks = [*_base_.custom_hooks, dict(type='MyHook')]
# (a list in a child config replaces its base's: custom_hooks = [dict(type='MyHook')] alone
# drops NonFiniteLossHook).
_base_ = 'mmdet::_base_/default_runtime.py'

default_hooks = dict(checkpoint=dict(type='AtomicCheckpointHook'))
custom_hooks = [dict(type='NonFiniteLossHook')]
