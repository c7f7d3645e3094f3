"""CocoStratifiedMetric: mmdet's CocoMetric, plus AP per bin of training annotations and per
class, computed fast.

Use it in place of ``CocoMetric``::

    val_evaluator = dict(
        type='CocoStratifiedMetric',
        ann_file='data/coco/annotations/instances_val2017.json',
        train_ann_file='data/coco/annotations/instances_train2017.json',  # for the bins
        metric=['bbox', 'segm'])

PASCAL VOC: evaluate VOC through its COCO-format conversion. mmdet's
``tools/dataset_converters/pascal_voc.py`` writes ``voc0712_trainval.json`` and
``voc07_test.json``, and mmdet's ``pascal_voc/faster-rcnn_r50_fpn_1x_voc0712-cocofmt.py``
trains and tests on them; set ``val_evaluator.type='CocoStratifiedMetric'`` and
``train_ann_file=<root>/annotations/voc0712_trainval.json``. Why not a ``VOCMetric``
subclass: VOC's 11-point/area AP has no reference implementation with a per-class precision
array, and the instance counts need an annotation file; the COCO conversion gives both, and
pycocotools stays the arithmetic of record.
"""
import os.path as osp
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence, Union

from mmdet.datasets.api_wrappers import COCO
from mmdet.evaluation.metrics import CocoMetric
from mmdet.registry import METRICS
from mmengine.fileio import load
from mmengine.logging import print_log

from .coco_summary import summarize
from .detections import Detections
from .fast_eval import FAST_BACKEND, Progress, coco_eval_fast
from .mmdet_results import (check_coco_items, class_ap, classwise_table, classwise_values,
                            coco_copypaste, coco_values)
from .reference_eval import ReferenceResult, run_coco_eval
from .stratified_metric_base import (StratifiedMetricMixin, check_labels, evaluated_img_ids,
                                     extra_values, missing_fields_named)
from .stratified_result import StratifiedResult, stratify_result

DETECTION_METRICS = ('bbox', 'segm')


@METRICS.register_module()
class CocoStratifiedMetric(StratifiedMetricMixin, CocoMetric):
    """mmdet's ``CocoMetric``, plus AP per bin of training instances, per frequency group
    and per class, on the evaluated images only.

    Everything ``CocoMetric`` accepts works as there (``classwise``, ``metric_items``,
    ``iou_thrs``, ``proposal_nums``, ``format_only``, ``outfile_prefix``, ...), and every key
    it returns is returned with its value (rounded to 3 decimals, at its ``iou_thrs`` and
    ``maxDets = proposal_nums``), with its ``bbox_mAP_copypaste`` log line. ``proposal``,
    ``proposal_fast`` and ``format_only`` run ``CocoMetric``'s own code. Beside them, for
    ``bbox`` and ``segm``:

    - ``{iou}_AP_exact``, ``{iou}_AP50_exact``, ..., ``{iou}_APl_exact``: pycocotools'
      values unrounded, with its default parameters (IoU 0.50:0.95, 100 detections per
      image), as ``summary.json`` holds them (left out where pycocotools has no value);
    - with training counts (``train_ann_file``): ``{iou}_APr``, ``{iou}_APc``, ``{iou}_APf``
      (classes seen in 1-10, 11-100, >100 training images) and ``{iou}_AP_bin_{label}`` (AP
      per bin of training instances); without, the bins are left out and the log says so
      once;
    - the report in ``<work_dir>/stratified_eval`` (``summary.json``, per-class tables, plot).

    The numbers are computed by faster-coco-eval (``backend='faster-coco-eval'``, the
    default), or by pycocotools (``backend='pycocotools'``): the same numbers, in one
    evaluation for both parameter sets. ``use_mp_eval`` has no effect on ``bbox`` and ``segm``.

    The deliberate differences. Only the evaluated images count: ``CocoMetric`` sets
    ``params.imgIds`` to every image of the annotation file, so evaluating part of it scores
    the others as misses; here ``params.imgIds`` is the evaluated images, for the proposal
    metrics too. Annotation id 0 is scored right: pycocotools reads an annotation id as a
    match marker, 0 meaning unmatched, so ``CocoMetric`` counts an annotation with id 0 as
    never found (two perfect detections of boxes with ids 0 and 1 score 0.252, not 1.0);
    mmdet's Pascal VOC converter numbers annotations from 0. Where any annotation id of
    ``ann_file`` is 0 or below, ours renumbers them all 1..N in file order, in memory, for
    both backends and the proposal metrics, and says so in one log line; its values are
    ``CocoMetric``'s on the renumbered file. Ids that are not integers or not unique raise
    :class:`~mmfrozen.evaluation.annotation_ids.AnnotationIdError` naming the file, a missing
    one a ``KeyError`` naming the file and the field (where pycocotools' names neither). On a
    whole annotation file numbered from 1 the values are ``CocoMetric``'s. (One more fix, of a
    slip: with ``classwise``, ``CocoMetric`` names pycocotools' k-th class by sorted id after
    the k-th of ``cat_ids``; where an annotation file lists its categories out of id order,
    ours names each class's AP after its own class. COCO's files list them in order.)

    Args:
        ann_file: the COCO-format annotation file of the evaluated images; None: the ground
            truth is converted from the data set, as ``CocoMetric`` does.
        train_ann_file: the COCO-format training annotation file (per-class counts, for the
            bins); None: no bins.
        metric: ``'bbox'``, ``'segm'``, ``'proposal'``, ``'proposal_fast'`` or a list.
        bins: bins of training instances per class, ``(low, high)`` inclusive; default
            ``[(1, 10), (11, 100), (101, 1000), (1001, None)]``; no annotations: bin ``'0'``.
        out_dir: folder of the report files; None: ``<work_dir>/stratified_eval``.
        plot: whether to draw ``{iou_type}_per_class_ap.png``.
        backend: ``'faster-coco-eval'`` (default) or ``'pycocotools'``; the same numbers.
        nproc: worker processes sharing the ``faster-coco-eval`` backend's chunks.
        class_groups: named groups of class names to score on their own, e.g. few-shot
            detection's ``dict(novel=[...], base=[...])``: ``{iou}_AP_{group}``,
            ``{iou}_AP50_{group}``, ``{iou}_AP75_{group}``, each equal to ``CocoMetric`` on a
            data set of the group's classes (:mod:`~mmfrozen.evaluation.class_groups`).
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
                 class_groups: Optional[Dict[str, Sequence[str]]] = None,
                 **kwargs) -> None:
        if ann_file is not None and not osp.isfile(ann_file):
            raise FileNotFoundError(f'CocoStratifiedMetric: ann_file {ann_file!r} does not '
                                    'exist.')
        with missing_fields_named('CocoStratifiedMetric', ann_file):
            super().__init__(ann_file=ann_file, metric=metric, **kwargs)
        self.ann_file = ann_file
        self._init_stratified(train_ann_file, bins, out_dir, plot, backend, nproc, class_groups)
        self.renumber_ground_truth(self._coco_api, ann_file)

    def compute_metrics(self, results: list) -> Dict[str, float]:
        """``CocoMetric``'s metrics on the evaluated images, then ours; the report.

        Args:
            results: ``(gt, prediction)`` pairs from :meth:`process`.

        Returns:
            dict: ``CocoMetric``'s keys (``bbox_mAP``, ...), then ours (``bbox_AP_exact``,
            ..., ``bbox_AP_bin_1-10``, ...); the evaluator adds the ``coco/`` prefix.
        """
        if self.format_only:
            return self.parent_compute_metrics(results, self.metrics, None)
        if not results:
            raise ValueError('CocoStratifiedMetric: no images were evaluated.')
        gts, preds = zip(*results)
        img_ids = evaluated_img_ids(gts)
        iou_types = [m for m in self.metrics if m in DETECTION_METRICS]
        others = [m for m in self.metrics if m not in DETECTION_METRICS]
        eval_results: Dict[str, float] = OrderedDict()
        extras: Dict[str, float] = OrderedDict()
        if iou_types:
            check_coco_items(self.metric_items)
            stratified = self._evaluate_detections(gts, preds, img_ids, iou_types, eval_results,
                                                   extras)
        if others:
            # the parent converts no ground truth twice: _coco_api is set by now, or by it
            eval_results.update(self.parent_compute_metrics(results, others, img_ids))
        if iou_types:
            self.report(stratified, 'coco', len(img_ids))
        eval_results.update(extras)
        return eval_results

    def _evaluate_detections(self, gts: Sequence[dict], preds: Sequence[dict],
                             img_ids: List[int], iou_types: List[str],
                             eval_results: Dict[str, float],
                             extras: Dict[str, float]) -> List[StratifiedResult]:
        """Evaluate ``bbox``/``segm``; fill the parent's keys and ours; return the strata."""
        gt_source = self.ann_file or 'the ground truth converted from the data set'
        if self._coco_api is None:
            print_log('Converting ground truth to coco format...', logger='current')
            with self.result_file_prefix() as outfile_prefix:
                self._coco_api = COCO(
                    self.gt_to_coco_json(gt_dicts=gts, outfile_prefix=outfile_prefix))
            self.renumber_ground_truth(self._coco_api, None)
        if self.cat_ids is None:
            self.cat_ids = self._coco_api.get_cat_ids(cat_names=self.dataset_meta['classes'])
        check_labels(preds, len(self.cat_ids), gt_source)
        stats = self.category_stats(self._coco_api.load_cats(self.cat_ids), gt_source)
        names = {c['id']: c['name'] for c in self._coco_api.load_cats(self.cat_ids)}
        groups = self.class_group_ids(self._coco_api.load_cats(self.cat_ids), gt_source)

        def reference(metric: str, result_file: str) -> ReferenceResult:
            return run_coco_eval(
                self._coco_api,
                load(result_file),
                metric,
                img_ids,
                gt_source=gt_source,
                pred_source=f'of the model ({result_file})',
                cat_ids=self.cat_ids,
                iou_thrs=self.iou_thrs,
                max_dets=self.proposal_nums)

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
                progress=progress,
                iou_thrs=self.iou_thrs,
                max_dets=self.proposal_nums)

        stratified = []
        for metric, (ref, printed) in zip(iou_types,
                                          self.evaluate_each(preds, iou_types, reference, fast,
                                                             len(img_ids))):
            # CocoMetric's parameters: its IoU thresholds, maxDets = proposal_nums
            stats12, summary, precision = summarize(ref.arrays, metric, self.iou_thrs,
                                                    self.proposal_nums)
            print_log(f'Evaluating {metric}...\n' + printed + summary, logger='current')
            if self.classwise:
                eval_results.update(self._classwise(ref.cat_ids, names, precision[..., -1]))
            eval_results.update(coco_values(metric, stats12, self.metric_items))
            print_log(coco_copypaste(metric, stats12), logger='current')
            result = stratify_result(ref, stats, self.bins, names=names, class_groups=groups)
            stratified.append(result)
            extras.update(extra_values(result, groups=True))
        return stratified

    def _classwise(self, cat_ids: List[int], names: Dict[int, str],
                   precision) -> Dict[str, float]:
        """``{name}_precision`` per class (in ``self.cat_ids`` order) and the log's table."""
        order = [cat_ids.index(c) for c in self.cat_ids]
        class_names = [names[c] for c in self.cat_ids]
        precision = precision[:, :, order]
        columns = OrderedDict(mAP=[class_ap(precision[:, :, k, 0]) for k in range(len(order))])
        for area, title in ((1, 'mAP_s'), (2, 'mAP_m'), (3, 'mAP_l')):
            columns[title] = [class_ap(precision[:, :, k, area]) for k in range(len(order))]
        print_log('\n' + classwise_table(class_names, columns), logger='current')
        return classwise_values(class_names, precision)
