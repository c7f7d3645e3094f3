"""mmfrozen: frozen-backbone object detection for MMDetection 3.x.

``import mmfrozen`` (or ``custom_imports = dict(imports=['mmfrozen'])`` in a config) does exactly
two things:

1. It applies the fixes of :mod:`mmfrozen.compat` that the installed versions need, each only
   inside the version range its entry in :data:`mmfrozen.compat.FIXES` names (all of them are
   listed there; ``MMFROZEN_NO_COMPAT`` turns them off).
2. It registers mmfrozen's modules in MMDetection's registries (scope ``mmdet``; the runner and
   the loop in MMEngine's root registries too, where MMEngine's own tools look):

   * ``MODELS``: ``FrozenModule`` (:mod:`mmfrozen.models.freeze`);
   * ``RUNNERS``: ``FrozenBackboneRunner``; ``LOOPS``: ``ExactResumeEpochBasedTrainLoop``
     (:mod:`mmfrozen.engine`);
   * ``HOOKS``: ``FrozenBackboneCheckHook``, ``CostReportHook``, ``RNGStateHook``,
     ``NonFiniteLossHook``, ``ClassBalancedLossHook`` (:mod:`mmfrozen.engine.hooks`);
   * ``METRICS``: ``LVISStratifiedMetric``, ``CocoStratifiedMetric``
     (:mod:`mmfrozen.evaluation`);
   * ``DATASETS``: ``CheckedCocoDataset``, ``CheckedLVISV1Dataset``, ``CheckedLVISV05Dataset``
     (:mod:`mmfrozen.datasets`);
   * MMEngine's checkpoint loaders: the ``timm://`` scheme (:mod:`mmfrozen.models.timm_weights`).

Nothing else: no global setting changes, no file is read or written, no experiment
(``projects/``) is imported. :mod:`mmfrozen.testing` and :mod:`mmfrozen.torchvision_ops` are
imported only when asked for.
"""
from .compat import apply_all
from .version import __version__

apply_all()

from . import datasets, engine, evaluation, models  # noqa: E402,F401  register modules

__all__ = ['__version__']
