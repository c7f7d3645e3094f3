"""mmfrozen.models: modules registered in MMDetection's registries (``FrozenModule``)."""
from . import freeze  # noqa: F401  registers the FrozenModule builder
