"""mmfrozen.evaluation: modules registered in MMDetection's registries."""
from .annotation_ids import AnnotationIdError  # noqa: F401
from .lvis_stratified_metric import LVISStratifiedMetric  # noqa: F401
from .coco_stratified_metric import CocoStratifiedMetric  # noqa: F401
from .plots import plot_per_class_delta  # noqa: F401
