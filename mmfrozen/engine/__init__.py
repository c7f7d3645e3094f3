"""mmfrozen.engine: modules registered in MMDetection's registries."""
from . import hooks, runner  # noqa: F401  FrozenBackboneCheckHook, FrozenBackboneRunner
