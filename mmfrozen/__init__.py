"""mmfrozen: frozen-backbone object detection for MMDetection 3.x.

``import mmfrozen`` (or ``custom_imports = dict(imports=['mmfrozen'])`` in a config) registers
mmfrozen's modules in MMDetection's registries (scope ``mmdet``) and applies the fixes in
:mod:`mmfrozen.compat` that the installed versions need. Nothing else: the mini world
(:mod:`mmfrozen.mini`) is imported by its own configs.
"""
from .compat import apply_all
from .version import __version__

apply_all()

from . import datasets, engine, evaluation, models  # noqa: E402,F401  register modules

__all__ = ['__version__']
