"""mmfrozen: frozen-backbone object detection for MMDetection 3.x.

``import mmfrozen`` (or ``custom_imports = dict(imports=['mmfrozen'])`` in a config) does exactly
two things:

1. It applies the fixes of :mod:`mmfrozen.compat` (all of them are listed in
   :data:`mmfrozen.compat.FIXES`), each only where the installed versions are inside the range
   its entry states and its feature check finds the problem in the installed code;
   ``MMFROZEN_NO_COMPAT`` turns them off.
2. It registers mmfrozen's modules in MMDetection's registries (scope ``mmdet``; the runner, the
   loop and the checkpoint hook in MMEngine's root registries too, where MMEngine's own tools
   look):

   * ``MODELS``: ``FrozenModule`` (:mod:`mmfrozen.models.freeze`), ``TimmViT``,
     ``SimpleFeaturePyramid``, ``LN2d``, ``LoRAAdapters``, ``ResidualAdapters``,
     ``DetectorGroup`` (:mod:`mmfrozen.models`);
   * ``OPTIM_WRAPPER_CONSTRUCTORS``: ``ViTLayerDecayOptimizerConstructor``,
     ``DetectorGroupOptimWrapperConstructor`` (:mod:`mmfrozen.engine.optimizers`);
   * ``RUNNERS``: ``FrozenBackboneRunner``; ``LOOPS``: ``ExactResumeEpochBasedTrainLoop``
     (:mod:`mmfrozen.engine`);
   * ``HOOKS``: ``FrozenBackboneCheckHook``, ``CostReportHook``, ``RNGStateHook``,
     ``WorkerRNGStateHook``, ``AtomicCheckpointHook``, ``NonFiniteLossHook``,
     ``ClassBalancedLossHook``, ``DetectorGroupHook``, ``DetectorGroupNonFiniteLossHook``
     (:mod:`mmfrozen.engine.hooks`);
   * ``METRICS``: ``LVISStratifiedMetric``, ``CocoStratifiedMetric``; ``EVALUATOR``:
     ``DetectorGroupEvaluator`` (:mod:`mmfrozen.evaluation`);
   * ``DATASETS``: ``CheckedCocoDataset``, ``CheckedLVISV1Dataset``, ``CheckedLVISV05Dataset``
     (:mod:`mmfrozen.datasets`);
   * MMEngine's checkpoint loaders: the ``timm://`` scheme (:mod:`mmfrozen.models.timm_weights`).

Nothing else of mmfrozen's own: no global setting changes but the fixes, and no file is written;
the only files read are what the fixes' checks read (package metadata, the source of the
installed mmengine and lvis, and, where torchvision's operators are not defined yet, its C++
library, loaded to see whether it loads). No experiment (``projects/``) is imported, nor
:mod:`mmfrozen.testing` or :mod:`mmfrozen.torchvision_ops` until asked for. (The libraries it
imports, mmdet, mmcv, matplotlib and theirs, do what importing them does.)
"""
from .compat import apply_all
from .version import __version__

apply_all()

from . import datasets, engine, evaluation, models  # noqa: E402,F401  register modules

__all__ = ['__version__']
