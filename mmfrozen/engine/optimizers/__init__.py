"""Optimizer-wrapper constructors registered in MMDetection's registry."""
from .layer_decay_optimizer_constructor import (  # noqa: F401
    ViTLayerDecayOptimizerConstructor, vit_layer_id)
