"""mmfrozen.models: modules registered in MMDetection's registries (``FrozenModule``, ViTs,
the simple feature pyramid, adapters)."""
from . import freeze  # noqa: F401  registers the FrozenModule builder
from . import timm_weights  # noqa: F401  registers the timm:// checkpoint scheme
from . import layer_norm_2d  # noqa: F401  registers LN2d
from . import simple_feature_pyramid  # noqa: F401  registers SimpleFeaturePyramid
from . import vit_backbone  # noqa: F401  registers TimmViT
from . import adapters  # noqa: F401  registers LoRAAdapters and ResidualAdapters
from . import detector_group  # noqa: F401  registers DetectorGroup (one trunk, K detectors)
