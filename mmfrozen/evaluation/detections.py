"""All detections of an evaluation as a few flat arrays, instead of one dict per detection.

A full LVIS val evaluation has 5.45M detections. As COCO-format dicts (what
``results2json`` writes and lvis-api / pycocotools read) they take several GB and are copied
more than once; here they are ~60 bytes each, and the fast backend turns only one chunk of
categories at a time into dicts. The numbers are the ones the reference sees after
``results2json`` and a JSON round trip: boxes become ``xywh`` in float64 from the model's
float32 ``xyxy``, scores float64 from float32.
"""
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from .reference_eval import check_predictions


@dataclass
class Detections:
    """Detections as parallel arrays, in the order the reference would number them.

    Attributes:
        image_id: (N,) int64.
        category_id: (N,) int64, the annotation file's category ids.
        score: (N,) float64.
        bbox: (N, 4) float64 ``xywh``; None for mask results without boxes.
        segm: N compressed RLE dicts (``size``, ``counts``), or None for box results.
    """
    image_id: np.ndarray
    category_id: np.ndarray
    score: np.ndarray
    bbox: Optional[np.ndarray] = None
    segm: Optional[List[Dict[str, Any]]] = None

    def __len__(self) -> int:
        return len(self.score)

    @classmethod
    def empty(cls, iou_type: str) -> 'Detections':
        """No detections."""
        return cls(
            np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float64),
            np.zeros((0, 4), np.float64), [] if iou_type == 'segm' else None)

    @classmethod
    def from_predictions(cls, preds: Sequence[Dict[str, Any]], cat_ids: Sequence[int],
                         iou_type: str) -> 'Detections':
        """From mmdet's per-image predictions (what ``LVISMetric.process`` keeps).

        Args:
            preds: dicts with ``img_id``, ``bboxes`` (xyxy), ``scores``, ``labels`` and for
                ``segm`` ``masks`` (RLE dicts) and optionally ``mask_scores``.
            cat_ids: the category id of each label.
            iou_type: ``'bbox'`` or ``'segm'`` (mask results use ``mask_scores`` when given,
                as ``results2json`` does).

        Raises:
            ValueError: ``segm`` asked for but a prediction has no ``masks``.
        """
        if not preds:
            return cls.empty(iou_type)
        cat_ids = np.asarray(cat_ids, dtype=np.int64)
        counts = [len(p['labels']) for p in preds]
        image_id = np.repeat(np.array([p['img_id'] for p in preds], dtype=np.int64), counts)
        labels = np.concatenate([np.asarray(p['labels'], dtype=np.int64) for p in preds])
        xyxy = np.concatenate([np.asarray(p['bboxes']).reshape(-1, 4) for p in preds])
        # float64 of the float32 values, then the difference in float64: as xyxy2xywh does.
        xyxy = xyxy.astype(np.float64)
        bbox = np.stack([xyxy[:, 0], xyxy[:, 1], xyxy[:, 2] - xyxy[:, 0], xyxy[:, 3] - xyxy[:, 1]],
                        axis=1)
        segm = None
        score_key = 'scores'
        if iou_type == 'segm':
            segm = []
            for p in preds:
                if 'masks' not in p:
                    raise ValueError('metric "segm" asked for, but the predictions have no '
                                     '"masks".')
                segm.extend(p['masks'])
            score_key = 'mask_scores' if 'mask_scores' in preds[0] else 'scores'
        score = np.concatenate([np.asarray(p[score_key]) for p in preds]).astype(np.float64)
        return cls(
            image_id=image_id,
            category_id=cat_ids[labels] if len(labels) else labels,
            score=score,
            bbox=bbox,
            segm=segm)

    @classmethod
    def from_results(cls, results: Sequence[Dict[str, Any]], iou_type: str) -> 'Detections':
        """From COCO-format results (a ``results2json`` file, loaded).

        Args:
            results: dicts with ``image_id``, ``category_id``, ``score`` and ``bbox``
                (``xywh``) and/or ``segmentation`` (compressed RLE).
            iou_type: ``'bbox'`` or ``'segm'``.
        """
        if not results:
            return cls.empty(iou_type)
        has_bbox = 'bbox' in results[0]
        return cls(
            image_id=np.array([r['image_id'] for r in results], dtype=np.int64),
            category_id=np.array([r['category_id'] for r in results], dtype=np.int64),
            score=np.array([r['score'] for r in results], dtype=np.float64),
            bbox=np.array([r['bbox'] for r in results], dtype=np.float64).reshape(-1, 4)
            if has_bbox else None,
            segm=[r['segmentation'] for r in results] if iou_type == 'segm' else None)

    def select(self, index: np.ndarray) -> 'Detections':
        """The detections at ``index`` (an integer array), in that order."""
        return Detections(
            image_id=self.image_id[index],
            category_id=self.category_id[index],
            score=self.score[index],
            bbox=None if self.bbox is None else self.bbox[index],
            segm=None if self.segm is None else [self.segm[i] for i in index])

    def check(self, gt_cat_ids: Sequence[int], gt_img_ids: Sequence[int], gt_source: str,
              pred_source: str) -> None:
        """Check categories and images against the ground truth (see
        :func:`~mmfrozen.evaluation.reference_eval.check_predictions`)."""
        bad_cats = np.setdiff1d(self.category_id, np.asarray(list(gt_cat_ids)))
        bad_imgs = np.setdiff1d(self.image_id, np.asarray(list(gt_img_ids)))
        if bad_cats.size or bad_imgs.size:
            # one detection of each kind is enough for the message
            items = []
            if bad_cats.size:
                i = int(np.flatnonzero(self.category_id == bad_cats[0])[0])
                items.append(
                    dict(image_id=int(self.image_id[i]), category_id=int(bad_cats[0]), score=0.0))
            if bad_imgs.size:
                i = int(np.flatnonzero(self.image_id == bad_imgs[0])[0])
                items.append(
                    dict(
                        image_id=int(bad_imgs[0]), category_id=int(self.category_id[i]), score=0.0))
            check_predictions(items, gt_cat_ids, gt_img_ids, gt_source, pred_source)

    def top_per_image(self, max_dets: int) -> np.ndarray:
        """Indices of the ``max_dets`` highest-scoring detections of each image.

        The same as lvis-api's ``LVISResults.limit_dets_per_image``: a stable sort by score,
        so ties keep their order. Returned in the original order.
        """
        if len(self) == 0:
            return np.zeros(0, dtype=np.int64)
        order = np.lexsort((-self.score, self.image_id))  # by image, then score; stable
        sorted_img = self.image_id[order]
        starts = np.flatnonzero(np.r_[True, sorted_img[1:] != sorted_img[:-1]])
        rank = np.arange(len(order)) - np.repeat(starts, np.diff(np.r_[starts, len(order)]))
        return np.sort(order[rank < max_dets])
