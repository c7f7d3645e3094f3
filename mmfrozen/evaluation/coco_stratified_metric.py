"""CocoStratifiedMetric: mmdet's CocoMetric with per-class and per-bin results (pycocotools).

Use it in place of ``CocoMetric``::

    val_evaluator = dict(
        type='CocoStratifiedMetric',
        ann_file='data/coco/annotations/instances_val2017.json',
        train_ann_file='data/coco/annotations/instances_train2017.json',
        metric=['bbox', 'segm'])

PASCAL VOC: evaluate VOC through its COCO-format conversion. mmdet's
``tools/dataset_converters/pascal_voc.py`` writes ``voc0712_trainval.json`` and
``voc07_test.json``, and mmdet's ``pascal_voc/faster-rcnn_r50_fpn_1x_voc0712-cocofmt.py``
trains and tests on them; set ``val_evaluator.type='CocoStratifiedMetric'`` and
``train_ann_file=<root>/annotations/voc0712_trainval.json``. Why not a ``VOCMetric``
subclass: VOC's 11-point/area AP has no reference implementation with a per-class precision
array, and the instance counts need an annotation file; the COCO conversion gives both, and
pycocotools stays the arithmetic of record.

Differences from mmdet 3.3's ``CocoMetric``:

- Fast: by default (``backend='faster-coco-eval'``) pycocotools' numbers are computed by
  faster-coco-eval in chunks of classes from the predictions' arrays; ``backend='pycocotools'``
  runs pycocotools itself. The log has each evaluation's time and peak memory.

- pycocotools' default parameters (max 100 detections per image for every AP), so the values
  equal what pycocotools prints on the same files; mmdet uses 1000 for AP50 and APs/m/l, which
  differs only for models giving more than 100 detections per image.
- Only the evaluated images count (mmdet scores every image of the annotation file).
- Values are not rounded; a value pycocotools lacks (its -1) is left out and written as null.
- Adds ``coco/bbox_AP_bin_1-10``, ... and the report in ``<work_dir>/stratified_eval``.
"""
import os.path as osp
from typing import Dict, List, Optional, Sequence, Union

from mmdet.datasets.api_wrappers import COCO
from mmdet.evaluation.metrics import CocoMetric
from mmdet.registry import METRICS
from mmengine.fileio import load
from mmengine.logging import print_log

from .detections import Detections
from .fast_eval import FAST_BACKEND, Progress, coco_eval_fast
from .lvis_stratified_metric import check_labels, evaluated_img_ids
from .reference_eval import ReferenceResult, run_coco_eval
from .stratified_metric_base import StratifiedMetricMixin

HEADLINE_KEYS = dict(AP='mAP', AP50='mAP_50', AP75='mAP_75', APs='mAP_s', APm='mAP_m', APl='mAP_l')


@METRICS.register_module()
class CocoStratifiedMetric(StratifiedMetricMixin, CocoMetric):
    """COCO AP (pycocotools), AP per bin of training instances and per class, on the
    evaluated images only.

    Args:
        ann_file: the COCO-format annotation file of the evaluated images; None: the ground
            truth is converted from the data set, as ``CocoMetric`` does.
        train_ann_file: the COCO-format training annotation file (per-class counts).
        metric: ``'bbox'``, ``'segm'`` or both.
        bins: bins of training instances per class, ``(low, high)`` inclusive; default
            ``[(1, 10), (11, 100), (101, 1000), (1001, None)]``; no annotations: bin ``'0'``.
        out_dir: folder of the report files; None: ``<work_dir>/stratified_eval``.
        plot: whether to draw ``{iou_type}_per_class_ap.png``.
        backend: ``'faster-coco-eval'`` (default) or ``'pycocotools'``; the same numbers.
        nproc: worker processes sharing the ``faster-coco-eval`` backend's chunks.
        **kwargs: the other arguments of mmdet's ``CocoMetric``.
    """
    reference_backend = 'pycocotools'

    def __init__(self,
                 ann_file: Optional[str] = None,
                 train_ann_file: Optional[str] = None,
                 metric: Union[str, List[str]] = 'bbox',
                 bins: Optional[Sequence[Sequence[Optional[int]]]] = None,
                 out_dir: Optional[str] = None,
                 plot: bool = True,
                 backend: str = FAST_BACKEND,
                 nproc: int = 1,
                 **kwargs) -> None:
        if ann_file is not None and not osp.isfile(ann_file):
            raise FileNotFoundError(f'CocoStratifiedMetric: ann_file {ann_file!r} does not '
                                    'exist.')
        super().__init__(ann_file=ann_file, metric=metric, **kwargs)
        self.ann_file = ann_file
        self._check_metrics()
        self._init_stratified(train_ann_file, bins, out_dir, plot, backend, nproc)

    def compute_metrics(self, results: list) -> Dict[str, float]:
        """Evaluate with pycocotools on the evaluated images, then stratify and report.

        Args:
            results: ``(gt, prediction)`` pairs from :meth:`process`.

        Returns:
            dict: ``bbox_mAP``, ``bbox_mAP_50``, ... (mmdet's names), ``bbox_AP_bin_1-10``,
            ... (the evaluator adds the ``coco/`` prefix).
        """
        if not results:
            raise ValueError('CocoStratifiedMetric: no images were evaluated.')
        gts, preds = zip(*results)
        img_ids = evaluated_img_ids(gts)
        gt_source = self.ann_file or 'the ground truth converted from the data set'
        with self.result_file_prefix() as outfile_prefix:
            if self._coco_api is None:
                print_log('Converting ground truth to coco format...', logger='current')
                self._coco_api = COCO(
                    self.gt_to_coco_json(gt_dicts=gts, outfile_prefix=outfile_prefix))
            if self.cat_ids is None:
                self.cat_ids = self._coco_api.get_cat_ids(cat_names=self.dataset_meta['classes'])
            check_labels(preds, len(self.cat_ids), gt_source)
            stats = self.category_stats(self._coco_api.load_cats(self.cat_ids), gt_source)

        def reference(metric: str, result_file: str) -> ReferenceResult:
            return run_coco_eval(
                self._coco_api,
                load(result_file),
                metric,
                img_ids,
                gt_source=gt_source,
                pred_source=f'of the model ({result_file})',
                cat_ids=self.cat_ids)

        def fast(metric: str, dets: Detections, progress: Optional[Progress]) -> ReferenceResult:
            return coco_eval_fast(
                self._coco_api,
                dets,
                metric,
                img_ids,
                gt_source=gt_source,
                pred_source='of the model',
                cat_ids=self.cat_ids,
                nproc=self.nproc,
                progress=progress)

        stratified = self.stratify_each_metric(preds, stats, reference, fast, len(img_ids))
        if stratified is None:
            return {}
        return self.collect_results(stratified, 'coco', len(img_ids), HEADLINE_KEYS)
