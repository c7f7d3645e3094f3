"""mmfrozen.models: modules registered in MMDetection's registries (``FrozenModule``)."""
from . import freeze  # noqa: F401  registers the FrozenModule builder
from . import timm_weights  # noqa: F401  registers the timm:// checkpoint scheme
