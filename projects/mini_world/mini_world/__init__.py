"""The mini world: the mini reproduction, on a visual world this project renders itself.

Upstream, a classifier learns the world's classes (:mod:`.classification_data`,
:mod:`.classifier`); its backbone is exported for detectors (:mod:`.backbone_export`).
Downstream, detectors train on a long-tailed LVIS v1-format set of the same world
(:mod:`.lvis_data`). :mod:`.pipeline` runs the steps
(``projects/mini_world/tools/mini_reproduction.py``).
"""
from . import classification_data, classifier  # noqa: F401  register dataset, model, metric
