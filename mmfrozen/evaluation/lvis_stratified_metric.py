"""LVISStratifiedMetric: mmdet's LVISMetric with per-class, per-bin results and a subset fix.

Use it in place of ``LVISMetric``::

    val_evaluator = dict(
        type='LVISStratifiedMetric',
        ann_file='data/lvis_v1/annotations/lvis_v1_val.json',
        metric=['bbox', 'segm'])

An annotation file without ``frequency`` works: it is computed from ``image_count`` (or the
training annotations) with a warning.
"""
import os.path as osp
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence, Union

import torch

from mmdet.evaluation.metrics import LVISMetric
from mmdet.registry import METRICS
from mmdet.structures.mask import encode_mask_results
from mmengine.fileio import load
from mmengine.logging import print_log

from .annotation_stats import CategoryStats, check_lvis_images, ensure_frequency
from .detections import Detections
from .fast_eval import FAST_BACKEND, Progress, lvis_eval_fast
from .mmdet_results import (LVIS_DEFAULT_ITEMS, LVIS_PROPOSAL_ITEMS, class_ap, classwise_table,
                            classwise_values, lvis_values)
from .reference_eval import ReferenceResult, run_lvis_eval
from .stratified_metric_base import (StratifiedMetricMixin, check_labels, evaluated_img_ids,
                                     extra_values, missing_fields_named)
from .stratified_result import stratify_result

DETECTION_METRICS = ('bbox', 'segm')


@METRICS.register_module()
class LVISStratifiedMetric(StratifiedMetricMixin, LVISMetric):
    """mmdet's ``LVISMetric``, plus AP per bin of training instances and per class, on the
    evaluated images only, computed fast.

    Everything ``LVISMetric`` accepts works as there (``classwise``, ``metric_items``,
    ``format_only``, ``outfile_prefix``, ``iou_thrs`` and ``proposal_nums`` for
    ``proposal_fast``, ...), and every key it returns is returned with its value (lvis-api's,
    rounded to 3 decimals; -1 where lvis-api has none, e.g. ``bbox_APr`` without rare
    classes). ``proposal_fast`` and ``format_only`` run ``LVISMetric``'s own code;
    ``proposal`` is, as there, lvis-api's box evaluation (lvis-api reads neither the
    ``useCats`` nor the ``maxDets`` ``LVISMetric`` sets), and returns its ``AR@300``, ...
    Beside them, for ``bbox`` and ``segm``:

    - ``{iou}_AP_exact``, ..., ``{iou}_APf_exact``: lvis-api's values unrounded, as
      ``summary.json`` holds them (left out where lvis-api has no value);
    - with training counts: ``{iou}_AP_bin_{label}``, AP per bin of training instances. The
      counts come from ``train_ann_file``, else from the categories' ``image_count`` and
      ``instance_count`` (LVIS v1's files count them on the training set); without either
      the bins are left out and the log says so once;
    - the report in ``<work_dir>/stratified_eval`` (``summary.json``, per-class tables, plot).

    The numbers are computed by faster-coco-eval's C++ matching, in chunks of classes, from
    the predictions' arrays (``backend='faster-coco-eval'``, the default: on LVIS-val-sized
    data 13.5x less CPU time than lvis-api, 1.6 GiB instead of ~21 GB;
    ``benchmarks/RESULTS.md``), or by lvis-api itself (``backend='lvis-api'``): the same
    numbers. The log has each evaluation's time and peak memory, and a progress bar shows
    from 2,000 images. Masks may come RLE-encoded (a ``tools/test.py --out`` pickle).

    The deliberate differences. Only the evaluated images count: ``LVISMetric`` sets
    ``params.imgIds``, but lvis-api reads ``params.img_ids``, so evaluating part of an
    annotation file scores every image of it (the others as misses); here
    ``params.img_ids`` is the evaluated images (and ``proposal_fast`` pairs each image's
    proposals with its own ground truth). Annotation id 0 is scored right: lvis-api reads an
    annotation id as a match marker, 0 meaning unmatched, so ``LVISMetric`` counts an
    annotation with id 0 as never found. Where any annotation id of ``ann_file`` is 0 or below,
    ours renumbers them all 1..N in file order, in memory, for both backends, and says so in
    one log line; its values are ``LVISMetric``'s on the renumbered file. Ids that are not
    integers or not unique raise :class:`~mmfrozen.evaluation.annotation_ids.AnnotationIdError`
    naming the file; a missing id, or an image without ``neg_category_ids`` or
    ``not_exhaustive_category_ids``, a ``KeyError`` naming the file and the field (where
    lvis-api's names neither). On a whole annotation file numbered from 1 the values are
    ``LVISMetric``'s. (One more fix, of a slip: with ``classwise``, ``LVISMetric`` names
    lvis-api's k-th class by sorted id after the file's k-th category; where a file lists its
    categories out of id order, ours names each class's AP after its own class. LVIS v1's
    files list them in order.)

    Args:
        ann_file: the LVIS annotation file of the evaluated images (``bbox``, ``segm`` and
            ``proposal`` need one: LVIS's federated rules read its ``neg_category_ids``);
            None: the ground truth converted from the data set, as ``LVISMetric`` does.
        train_ann_file: the LVIS training annotation file, where per-class counts come from;
            None: the ``image_count`` and ``instance_count`` of ``ann_file``'s categories.
        metric: ``'bbox'``, ``'segm'``, ``'proposal'``, ``'proposal_fast'`` or a list.
        bins: bins of training instances per class, ``(low, high)`` inclusive, ``high=None``
            open; default ``[(1, 10), (11, 100), (101, 1000), (1001, None)]``. Classes with no
            training annotations are bin ``'0'``.
        out_dir: folder of the report files; None: ``<work_dir>/stratified_eval``.
        plot: whether to draw ``{iou_type}_per_class_ap.png``.
        backend: ``'faster-coco-eval'`` (default) or ``'lvis-api'``; the same numbers.
        nproc: worker processes sharing the ``faster-coco-eval`` backend's chunks.
        class_groups: named groups of class names to score on their own (e.g. few-shot
            detection's ``novel`` and ``base``): ``{iou}_AP_{group}``, ``{iou}_AP50_{group}``,
            ``{iou}_AP75_{group}``, each lvis-api's AP with ``params.cat_ids`` the group's
            (:mod:`~mmfrozen.evaluation.class_groups`).
        **kwargs: the other arguments of mmdet's ``LVISMetric``.
    """
    reference_backend = 'lvis-api'

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
            raise FileNotFoundError(f'LVISStratifiedMetric: ann_file {ann_file!r} does not '
                                    'exist.')
        with missing_fields_named('LVISStratifiedMetric', ann_file):
            super().__init__(ann_file=ann_file, metric=metric, **kwargs)
        self.ann_file = ann_file
        self._init_stratified(train_ann_file, bins, out_dir, plot, backend, nproc, class_groups)
        self.renumber_ground_truth(self._lvis_api, ann_file)
        # set by each evaluation: the categories' training counts and frequency groups
        self._stats: Optional[Dict[int, CategoryStats]] = None
        self._frequencies: Dict[int, str] = {}
        self._class_group_ids: Optional[Dict[str, List[int]]] = None

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        """Keep each image's predictions and size, as ``LVISMetric`` does.

        Unlike ``LVISMetric`` (and like ``CocoMetric``), masks may come RLE-encoded, as in a
        ``tools/test.py --out`` pickle, so that saved results can be evaluated again.

        Args:
            data_batch: the batch from the dataloader (unused).
            data_samples: the model's outputs, with ``pred_instances``, ``img_id`` and
                ``ori_shape`` (and ``instances`` without ``ann_file``).
        """
        for data_sample in data_samples:
            pred = data_sample['pred_instances']
            result = dict(
                img_id=data_sample['img_id'],
                bboxes=pred['bboxes'].cpu().numpy(),
                scores=pred['scores'].cpu().numpy(),
                labels=pred['labels'].cpu().numpy())
            if 'masks' in pred:
                masks = pred['masks']
                result['masks'] = encode_mask_results(masks.detach().cpu().numpy()) \
                    if isinstance(masks, torch.Tensor) else masks
            if 'mask_scores' in pred:
                result['mask_scores'] = pred['mask_scores'].cpu().numpy()
            gt = dict(
                width=data_sample['ori_shape'][1],
                height=data_sample['ori_shape'][0],
                img_id=data_sample['img_id'])
            if self._lvis_api is None:
                assert 'instances' in data_sample, \
                    'ground truth is required for evaluation when `ann_file` is not provided'
                gt['anns'] = data_sample['instances']
            self.results.append((gt, result))

    def compute_metrics(self, results: list) -> Dict[str, float]:
        """``LVISMetric``'s metrics on the evaluated images, then ours; the report.

        Args:
            results: ``(gt, prediction)`` pairs from :meth:`process`.

        Returns:
            dict: ``LVISMetric``'s keys (``bbox_AP``, ..., ``bbox_APf``), then ours
            (``bbox_AP_exact``, ..., ``bbox_AP_bin_1-10``, ...); the evaluator adds the
            ``lvis/`` prefix.
        """
        if self.format_only:
            return self.parent_compute_metrics(results, self.metrics, None)
        if not results:
            raise ValueError(f'LVISStratifiedMetric: no images were evaluated '
                             f'(ann_file {self.ann_file!r}).')
        gts, preds = zip(*results)
        img_ids = evaluated_img_ids(gts)
        iou_types = [m for m in self.metrics if m in DETECTION_METRICS]
        evaluated = iou_types + (['bbox'] if 'proposal' in self.metrics
                                 and 'bbox' not in iou_types else [])
        refs: Dict[str, ReferenceResult] = {}
        if evaluated:
            refs = self._evaluate(preds, img_ids, evaluated)
        eval_results: Dict[str, float] = OrderedDict()
        extras: Dict[str, float] = OrderedDict()
        stratified = []
        for metric in self.metrics:
            if metric == 'proposal':
                eval_results.update(
                    lvis_values('', refs['bbox'].stats, self._items(LVIS_PROPOSAL_ITEMS)))
            elif metric in DETECTION_METRICS:
                ref = refs[metric]
                if self.classwise:
                    eval_results.update(self._classwise(ref))
                eval_results.update(
                    lvis_values(f'{metric}_', ref.stats, self._items(LVIS_DEFAULT_ITEMS)))
                result = stratify_result(
                    ref, self._stats, self.bins, frequencies=self._frequencies,
                    class_groups=self._class_group_ids)
                stratified.append(result)
                extras.update(extra_values(result, groups=False))
        if 'proposal_fast' in self.metrics:
            eval_results.update(self.parent_compute_metrics(results, ['proposal_fast'], img_ids))
        if stratified:
            self.report(stratified, 'lvis', len(img_ids))
        eval_results.update(extras)
        return eval_results

    def _items(self, default: Sequence[str]) -> Sequence[str]:
        return default if self.metric_items is None else self.metric_items

    def _evaluate(self, preds: Sequence[dict], img_ids: List[int],
                  iou_types: List[str]) -> Dict[str, ReferenceResult]:
        """lvis-api's evaluation of each IoU type (by the chosen backend), logged."""
        if self._lvis_api is None:
            # LVISMetric fails here too (lvis-api's KeyError 'neg_category_ids')
            raise KeyError('LVISStratifiedMetric: metrics "bbox", "segm" and "proposal" need '
                           'ann_file, an LVIS annotation file (its images\' '
                           '"neg_category_ids" and "not_exhaustive_category_ids", its '
                           'categories\' "frequency"); ground truth converted from the data '
                           'set has none. Set ann_file, or use format_only / proposal_fast.')
        if self.cat_ids is None:
            self.cat_ids = self._lvis_api.get_cat_ids()
        check_labels(preds, len(self.cat_ids), self.ann_file)
        check_lvis_images(self._lvis_api.dataset['images'], self.ann_file,
                          'LVISStratifiedMetric')
        categories = self._lvis_api.dataset['categories']
        stats = self.category_stats(categories, self.ann_file)
        ensure_frequency(
            categories,
            self.ann_file,
            train_images={k: s.train_images
                          for k, s in stats.items()} if stats else None)
        self._stats = stats
        self._frequencies = {cat['id']: cat['frequency'] for cat in categories}
        self._class_group_ids = self.class_group_ids(categories, self.ann_file)

        def reference(metric: str, result_file: str) -> ReferenceResult:
            return run_lvis_eval(
                self._lvis_api,
                load(result_file),
                metric,
                img_ids,
                gt_source=self.ann_file,
                pred_source=f'of the model ({result_file})')

        def fast(metric: str, dets: Detections, progress: Optional[Progress]) -> ReferenceResult:
            return lvis_eval_fast(
                self._lvis_api,
                dets,
                metric,
                img_ids,
                gt_source=self.ann_file,
                pred_source='of the model',
                nproc=self.nproc,
                progress=progress)

        refs = {}
        for metric, (ref, printed) in zip(iou_types,
                                          self.evaluate_each(preds, iou_types, reference, fast,
                                                             len(img_ids))):
            print_log(f'Evaluating {metric}...\n' + printed + ref.summary, logger='current')
            refs[metric] = ref
        return refs

    def _classwise(self, ref: ReferenceResult) -> Dict[str, float]:
        """``{name}_precision`` per class (in ``self.cat_ids`` order) and the log's table."""
        order = [ref.cat_ids.index(c) for c in self.cat_ids]
        names = [cat['name'] for cat in self._lvis_api.load_cats(self.cat_ids)]
        precision = ref.precision[:, :, order]
        ap = [class_ap(precision[:, :, k, 0]) for k in range(len(order))]
        print_log('\n' + classwise_table(names, dict(AP=ap), pairs_per_row=3), logger='current')
        return classwise_values(names, precision)
