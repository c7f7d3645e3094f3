# Freeze the whole backbone (stem, every stage, BN statistics and affine parameters) when the model
# is built, keep it in eval mode through model.train(), and verify it during training
# (mmfrozen.engine.FrozenBackboneRunner, FrozenBackboneCheckHook).
# A frozen config is its fine-tuned twin plus this file:
#   _base_ = ['./<twin>.py', '../_base_/frozen-backbone.py']
# (custom_imports of mmfrozen comes from the twin: mmengine refuses a key set by two bases.)
runner_type = 'FrozenBackboneRunner'
freeze = dict(modules=['backbone'], check=True, allow_uninitialized=False)
