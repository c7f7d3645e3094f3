# The runner's side of a frozen config: verify the freeze when the model is built and check it
# during training (mmfrozen.engine.FrozenBackboneRunner, FrozenBackboneCheckHook).
# The freeze itself lives in the model, so that it holds whatever builds or runs the config
# (MODELS.build, MMEngine's Runner.from_cfg, MMDetection's tools, ours). A frozen config is its
# fine-tuned twin plus this file plus the backbone's own freezing options:
#   _base_ = ['./<twin>.py', '../_base_/frozen-backbone.py']
#   model = dict(backbone=dict(frozen_stages=4, norm_eval=True))   # mmdet's ResNet family
# or, for any other backbone, dict(type='FrozenModule', module=<its config>) in its place.
# (model and custom_imports of mmfrozen come from the twin: mmengine refuses a key set by two
# bases, so this file cannot set model itself.)
runner_type = 'FrozenBackboneRunner'
frozen = dict(modules=['backbone'], check=True, allow_uninitialized=False)
