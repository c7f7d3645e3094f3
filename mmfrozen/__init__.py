"""mmfrozen: frozen-backbone object detection for MMDetection 3.x.

``import mmfrozen`` (or ``custom_imports = dict(imports=['mmfrozen'])`` in a config) applies
the stack fixes in :mod:`mmfrozen.compat` and registers mmfrozen's modules in MMDetection's
registries (scope ``mmdet``).
"""
from .compat import apply_all
from .version import __version__

apply_all()

from . import engine, evaluation, models  # noqa: E402,F401  register modules
from . import mini  # noqa: E402,F401  the mini reproduction's dataset, model and metric

__all__ = ['__version__']
