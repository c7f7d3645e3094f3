# Two tiny detectors on one frozen backbone, trained as one run (mmfrozen.models.DetectorGroup):
# data, schedule and runtime from the first detector's config; each detector's optimizer,
# learning-rate schedule and gradient clipping from its own config. Point the shared backbone's
# checkpoint at a file with model.cfg_options.model.backbone.init_cfg.checkpoint=...
_base_ = './group_tiny_faster.py'

model = dict(
    _delete_=True,
    type='DetectorGroup',
    detectors=[
        dict(name='faster', config='{{fileDirname}}/group_tiny_faster.py'),
        dict(name='retina', config='{{fileDirname}}/group_tiny_retina.py'),
    ])
optim_wrapper = dict(_delete_=True, constructor='DetectorGroupOptimWrapperConstructor')
param_scheduler = None  # each detector's own, from its config (DetectorGroupHook)
val_evaluator = dict(
    _delete_=True, type='DetectorGroupEvaluator',
    metrics=dict(type='CocoMetric', metric='bbox', format_only=False, backend_args=None))
test_evaluator = val_evaluator
custom_hooks = [dict(type='DetectorGroupHook'), dict(type='DetectorGroupNonFiniteLossHook')]
