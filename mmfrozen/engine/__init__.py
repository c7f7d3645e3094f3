"""mmfrozen.engine: modules registered in MMDetection's registries."""
from . import hooks, runner  # noqa: F401  FrozenBackboneCheckHook, FrozenBackboneRunner
from . import loops  # noqa: F401  ExactResumeEpochBasedTrainLoop, EvaluationError
from . import optimizers  # noqa: F401  ViTLayerDecayOptimizerConstructor
