"""The base / novel class splits of the standard few-shot detection protocol.

The protocol of Wang et al., "Frustratingly Simple Few-Shot Object Detection" (ICML 2020, TFA),
following Kang et al. (ICCV 2019), and used since:

* **Pascal VOC**, three splits of its 20 classes into 15 base and 5 novel ones, trained on VOC
  2007+2012 trainval, scored on VOC 2007 test (novel AP50, base AP50), K in 1, 2, 3, 5, 10;
* **COCO**, its 20 classes that are also VOC classes as novel, the other 60 as base, scored on
  val2017 (novel AP, AP50, AP75 and base AP), K in 10, 30.

Every class list here is in the order of the data set's own category list (MMDetection's
``VOCDataset`` / ``CocoDataset`` ``METAINFO``, which its VOC converter and COCO's annotation
files follow): MMDetection's ``CocoDataset`` and ``CocoMetric`` number the classes in the file's
category order whatever order ``metainfo['classes']`` gives, so a list in another order would
name the classes wrongly. (TFA lists VOC's base classes first; the weight surgery,
:mod:`mmfrozen.models.few_shot_surgery`, maps classes by name, so the order of the rows is the
data set's.)
"""
from dataclasses import dataclass
from typing import Dict, List, Tuple

#: Pascal VOC's classes, in MMDetection's order (its ``VOCDataset`` and VOC-to-COCO converter).
VOC_CLASSES: Tuple[str, ...] = (
    'aeroplane', 'bicycle', 'bird', 'boat', 'bottle', 'bus', 'car', 'cat', 'chair', 'cow',
    'diningtable', 'dog', 'horse', 'motorbike', 'person', 'pottedplant', 'sheep', 'sofa', 'train',
    'tvmonitor')

#: The novel classes of VOC splits 1-3 (TFA, after Kang et al.).
VOC_NOVEL_CLASSES: Dict[int, Tuple[str, ...]] = {
    1: ('bird', 'bus', 'cow', 'motorbike', 'sofa'),
    2: ('aeroplane', 'bottle', 'cow', 'horse', 'sofa'),
    3: ('boat', 'cat', 'motorbike', 'sheep', 'sofa'),
}

#: COCO's 80 classes as its annotation files name them, in category-id order (MMDetection's
#: ``CocoDataset.METAINFO``).
COCO_CLASSES: Tuple[str, ...] = (
    'person', 'bicycle', 'car', 'motorcycle', 'airplane', 'bus', 'train', 'truck', 'boat',
    'traffic light', 'fire hydrant', 'stop sign', 'parking meter', 'bench', 'bird', 'cat', 'dog',
    'horse', 'sheep', 'cow', 'elephant', 'bear', 'zebra', 'giraffe', 'backpack', 'umbrella',
    'handbag', 'tie', 'suitcase', 'frisbee', 'skis', 'snowboard', 'sports ball', 'kite',
    'baseball bat', 'baseball glove', 'skateboard', 'surfboard', 'tennis racket', 'bottle',
    'wine glass', 'cup', 'fork', 'knife', 'spoon', 'bowl', 'banana', 'apple', 'sandwich',
    'orange', 'broccoli', 'carrot', 'hot dog', 'pizza', 'donut', 'cake', 'chair', 'couch',
    'potted plant', 'bed', 'dining table', 'toilet', 'tv', 'laptop', 'mouse', 'remote',
    'keyboard', 'cell phone', 'microwave', 'oven', 'toaster', 'sink', 'refrigerator', 'book',
    'clock', 'vase', 'scissors', 'teddy bear', 'hair drier', 'toothbrush')

#: COCO's novel classes: the 20 VOC classes under COCO's names (category ids 1-7, 9, 16-21, 44,
#: 62-64, 67, 72), in COCO's order.
COCO_NOVEL_CLASSES: Tuple[str, ...] = (
    'person', 'bicycle', 'car', 'motorcycle', 'airplane', 'bus', 'train', 'boat', 'bird', 'cat',
    'dog', 'horse', 'sheep', 'cow', 'bottle', 'chair', 'couch', 'potted plant', 'dining table',
    'tv')

#: The K of each benchmark.
VOC_SHOTS: Tuple[int, ...] = (1, 2, 3, 5, 10)
COCO_SHOTS: Tuple[int, ...] = (10, 30)


@dataclass(frozen=True)
class FewShotSplit:
    """One base / novel split of a data set's classes.

    Attributes:
        name: ``'voc-split1'``, ``'voc-split2'``, ``'voc-split3'`` or ``'coco'``.
        classes: every class, in the data set's order (the K-shot stage's model predicts these).
        novel: the novel classes, in the same order.
        shots: the protocol's K for this data set.
    """
    name: str
    classes: Tuple[str, ...]
    novel: Tuple[str, ...]
    shots: Tuple[int, ...]

    @property
    def base(self) -> Tuple[str, ...]:
        """The base classes (every class that is not novel), in the data set's order."""
        return tuple(c for c in self.classes if c not in self.novel)

    def groups(self) -> Dict[str, List[str]]:
        """``{'novel': [...], 'base': [...]}``, the ``class_groups`` of the stratified metrics."""
        return dict(novel=list(self.novel), base=list(self.base))


SPLITS: Dict[str, FewShotSplit] = {
    **{f'voc-split{k}': FewShotSplit(f'voc-split{k}', VOC_CLASSES, novel, VOC_SHOTS)
       for k, novel in VOC_NOVEL_CLASSES.items()},
    'coco': FewShotSplit('coco', COCO_CLASSES, COCO_NOVEL_CLASSES, COCO_SHOTS),
}


def few_shot_split(name: str) -> FewShotSplit:
    """The split called ``name``.

    Args:
        name: one of :data:`SPLITS` (``'voc-split1'`` ... ``'voc-split3'``, ``'coco'``).

    Returns:
        FewShotSplit: its classes.

    Raises:
        KeyError: no such split (the message lists them).
    """
    if name not in SPLITS:
        raise KeyError(f'few-shot split {name!r} does not exist; the splits are '
                       f'{", ".join(SPLITS)}.')
    return SPLITS[name]
