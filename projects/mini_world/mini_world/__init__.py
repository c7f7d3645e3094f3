"""The mini world: the mini reproduction, on a visual world this project renders itself.

Upstream, a classifier learns the world's classes (:mod:`.classification_data`,
:mod:`.classifier`); its backbone is exported for detectors (:mod:`.backbone_export`).
Downstream, detectors train on a long-tailed LVIS v1-format set of the same world
(:mod:`.lvis_data`). :mod:`.pipeline` runs the steps
(``projects/mini_world/tools/mini_reproduction.py``); :mod:`.seed_spread` holds how far the
seed alone moves its numbers.

Beside it, three experiments on the same world, each a module and its plot: the classifier sweep
(:mod:`.classifier_sweep`, :mod:`.sweep_results`), the schedule and capacity sweep, NAS-FPN and
Cascade heads over longer schedules (:mod:`.schedule_sweep`), and few-shot detection
(:mod:`.few_shot`). :mod:`.cli` holds the options their tools share.
"""
from . import classification_data, classifier  # noqa: F401  register dataset, model, metric
