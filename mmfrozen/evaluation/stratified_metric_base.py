"""What the LVIS and COCO stratified metrics share: arguments, evaluation loop, outputs."""
import contextlib
import io
import logging
import math
import os.path as osp
import sys
import tempfile
from collections import OrderedDict
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Sequence

from mmengine.dist import broadcast_object_list, is_main_process
from mmengine.evaluator.metric import _to_cpu
from mmengine.logging import MMLogger, print_log
from mmengine.utils import ProgressBar

from .annotation_stats import (CategoryStats, category_stats, ensure_frequency,
                               stats_from_categories)
from .collect import collect_to_rank0
from .detections import Detections
from .fast_eval import FAST_BACKEND, Progress
from .per_class_report import build_summary, format_tables, write_per_class, write_summary
from .plots import plot_per_class_ap
from .reference_eval import ReferenceResult
from .resources import measure
from .stratified_result import StratifiedResult, stratify_result
from .stratify import DEFAULT_BINS, Bin, normalize_bins

OUT_SUBDIR = 'stratified_eval'
# From this many evaluated images on, the fast backend shows a progress bar.
PROGRESS_MIN_IMAGES = 2000


def runner_work_dir() -> Optional[str]:
    """The work dir of the running MMEngine runner, or None outside a runner.

    The runner logs to ``<work_dir>/<timestamp>/<timestamp>.log`` through the current
    :class:`~mmengine.logging.MMLogger`, so its work dir is two levels above the log file.
    """
    log_file = getattr(MMLogger.get_current_instance(), 'log_file', None)
    if not log_file:
        return None
    return osp.dirname(osp.dirname(osp.abspath(log_file)))


class StratifiedMetricMixin:
    """Training statistics, bins, the evaluation loop and the report, for a CocoMetric-like
    metric.

    Args:
        train_ann_file: the training annotation file, where per-class counts come from; may be
            None where the evaluated file's categories carry the counts (LVIS).
        bins: bins of training instances per class, ``(low, high)`` inclusive.
        out_dir: folder of the report files; None: ``<work_dir>/stratified_eval`` of the
            running runner.
        plot: whether to draw ``{iou_type}_per_class_ap.png``.
        backend: ``'faster-coco-eval'`` or the reference (``reference_backend``).
        nproc: worker processes of the ``faster-coco-eval`` backend.
    """
    reference_backend = 'lvis-api'
    counts_in_ann_file = False

    def _init_stratified(self,
                         train_ann_file: Optional[str],
                         bins: Optional[Sequence[Sequence[Optional[int]]]],
                         out_dir: Optional[str],
                         plot: bool,
                         backend: str = FAST_BACKEND,
                         nproc: int = 1) -> None:
        name = type(self).__name__
        if not train_ann_file and not self.counts_in_ann_file:
            raise ValueError(
                f'{name}: field "train_ann_file" is required: per-class '
                'training counts (for the bins) come from the training annotation file, e.g. '
                "train_ann_file='data/coco/annotations/instances_train2017.json'.")
        if train_ann_file and not osp.isfile(train_ann_file):
            raise FileNotFoundError(f'{name}: train_ann_file {train_ann_file!r} does not '
                                    'exist.')
        backends = (FAST_BACKEND, self.reference_backend)
        if backend not in backends:
            raise ValueError(f'{name}: field "backend" is {backend!r}; use one of '
                             f'{list(backends)}.')
        if int(nproc) < 1:
            raise ValueError(f'{name}: field "nproc" must be at least 1, got {nproc!r}.')
        self.train_ann_file = train_ann_file
        self.bins: List[Bin] = normalize_bins(DEFAULT_BINS if bins is None else bins)
        self.out_dir = out_dir
        self.plot = plot
        self.backend = backend
        self.nproc = int(nproc)
        self._category_stats: Optional[Dict[int, CategoryStats]] = None

    def _check_metrics(self, allowed: Sequence[str] = ('bbox', 'segm')) -> None:
        for metric in self.metrics:  # type: ignore[attr-defined]
            if metric not in allowed:
                raise KeyError(f'{type(self).__name__}: metric {metric!r} is not stratified; '
                               f'use one of {list(allowed)} (proposals: use mmdet\'s metric).')

    def category_stats(self,
                       categories: List[Dict[str, Any]],
                       gt_source: str,
                       fill_frequency: bool = False) -> Dict[int, CategoryStats]:
        """Training statistics of the evaluated categories (read once, then cached).

        From ``train_ann_file`` when given, else from the categories' ``image_count`` and
        ``instance_count`` (LVIS v1's files count them on the training set, for the same
        category list in train and val); the log says which.

        Args:
            categories: the ground truth's categories (edited in place when
                ``fill_frequency``: a missing LVIS ``frequency`` is computed, with a warning).
            gt_source: the ground-truth file, for messages.
            fill_frequency: whether the categories need ``frequency`` (LVIS).

        Raises:
            ValueError: no ``train_ann_file`` and the categories lack the counts.
        """
        if self._category_stats is None:
            name = type(self).__name__
            if self.train_ann_file:
                stats = category_stats(self.train_ann_file, categories)
                source = f'the training annotation file {self.train_ann_file!r}'
            else:
                stats = stats_from_categories(categories, gt_source, owner=name)
                source = (f'the "image_count" and "instance_count" of the categories of '
                          f'ann_file {gt_source!r}')
            print_log(f'{name}: per-class training counts from {source}.', logger='current')
            if fill_frequency:
                ensure_frequency(
                    categories,
                    gt_source,
                    train_images={
                        k: s.train_images
                        for k, s in stats.items()
                    })
                for cat in categories:
                    stats[cat['id']].frequency = cat['frequency']
            self._category_stats = stats
        return self._category_stats

    @contextlib.contextmanager
    def result_file_prefix(self) -> Iterator[str]:
        """``outfile_prefix``, or a prefix in a temporary folder removed afterwards."""
        if self.outfile_prefix is not None:  # type: ignore[attr-defined]
            yield self.outfile_prefix  # type: ignore[attr-defined]
            return
        with tempfile.TemporaryDirectory() as tmp_dir:
            yield osp.join(tmp_dir, 'results')

    def evaluate(self, size: int) -> dict:
        """MMEngine's ``BaseMetric.evaluate``, collecting on rank 0 without a second copy.

        With ``collect_device='cpu'`` (the default) rank 0 keeps its own results and loads
        only the other ranks' (:func:`~mmfrozen.evaluation.collect.collect_to_rank0`); the
        metrics are computed there and broadcast, as MMEngine does.

        Args:
            size: the length of the data set (the sampler's padding is dropped).

        Returns:
            dict: the metrics, prefixed.
        """
        if self.collect_device != 'cpu':  # type: ignore[attr-defined]
            return super().evaluate(size)  # type: ignore[misc]
        if not self.results:  # type: ignore[attr-defined]
            print_log(
                f'{type(self).__name__} got empty `self.results`.',
                logger='current',
                level=logging.WARNING)
        results = collect_to_rank0(
            self.results,
            size,  # type: ignore[attr-defined]
            self.collect_dir)  # type: ignore[attr-defined]
        self.results.clear()  # type: ignore[attr-defined]
        if is_main_process():
            metrics = self.compute_metrics(_to_cpu(results))  # type: ignore[attr-defined]
            del results
            if self.prefix:  # type: ignore[attr-defined]
                metrics = {
                    f'{self.prefix}/{k}': v  # type: ignore[attr-defined]
                    for k, v in metrics.items()
                }
            box = [metrics]
        else:
            box = [None]
        broadcast_object_list(box)
        return box[0]

    def stratify_each_metric(self, preds: Sequence[dict], stats: Mapping[int, CategoryStats],
                             reference: Callable[[str, str], ReferenceResult],
                             fast: Callable[[str, Detections, Optional[Progress]], ReferenceResult],
                             num_images: int) -> Optional[List[StratifiedResult]]:
        """Evaluate each metric with the chosen backend, and stratify.

        The reference backend reads the result files ``results2json`` writes (in
        ``outfile_prefix`` or a temporary folder); the fast one reads the predictions' arrays
        (and the files are written only where ``outfile_prefix`` asks for them).

        Args:
            preds: the predictions collected by :meth:`process`.
            stats: training statistics of the evaluated categories.
            reference: ``reference(metric, result_file)`` runs lvis-api / pycocotools.
            fast: ``fast(metric, detections, progress)`` runs the fast backend.
            num_images: how many images are evaluated.

        Returns:
            list: one result per metric; None with ``format_only`` (the files are kept).
        """
        name = type(self).__name__
        if self.format_only:  # type: ignore[attr-defined]
            self.results2json(preds, self.outfile_prefix)  # type: ignore[attr-defined]
            print_log(
                f'results are saved in {osp.dirname(self.outfile_prefix)}',  # type: ignore
                logger='current')
            return None
        for metric in self.metrics:  # type: ignore[attr-defined]
            if metric == 'segm' and preds and 'masks' not in preds[0]:
                raise ValueError(f'{name}: metric "{metric}" asked for, but the predictions '
                                 'have no "masks".')
        num_dets = sum(len(p['labels']) for p in preds)
        stratified: List[StratifiedResult] = []
        with contextlib.ExitStack() as stack:
            result_files: Dict[str, str] = {}
            if self.backend != FAST_BACKEND or self.outfile_prefix:  # type: ignore[attr-defined]
                prefix = stack.enter_context(self.result_file_prefix())
                result_files = self.results2json(preds, prefix)  # type: ignore[attr-defined]
            for metric in self.metrics:  # type: ignore[attr-defined]
                what = (f'{name} {metric} ({self.backend}): {num_images} images, '
                        f'{num_dets} detections')
                printed = io.StringIO()
                with measure(what):
                    if self.backend == FAST_BACKEND:
                        ref = self._run_fast(fast, metric, preds, num_images, num_dets)
                    else:
                        # pycocotools prints as it goes: route it into the log file.
                        with contextlib.redirect_stdout(printed):
                            ref = reference(metric, result_files[metric])
                print_log('\n' + printed.getvalue() + ref.summary, logger='current')
                stratified.append(stratify_result(ref, stats, self.bins))
        return stratified

    def _run_fast(self, fast: Callable, metric: str, preds: Sequence[dict], num_images: int,
                  num_dets: int) -> ReferenceResult:
        dets = Detections.from_predictions(
            preds,
            self.cat_ids,  # type: ignore[attr-defined]
            metric)
        if num_images < PROGRESS_MIN_IMAGES:
            return fast(metric, dets, None)
        bars: List[ProgressBar] = []

        def progress(done: int, total: int) -> None:
            if not bars:
                bars.append(ProgressBar(total, file=sys.stdout))  # today's stdout
            bars[0].update(done)

        ref = fast(metric, dets, progress)
        if bars:
            bars[0].file.write('\n')
        return ref

    def resolve_out_dir(self) -> Optional[str]:
        """Where the report goes: ``out_dir``, else ``<work_dir>/stratified_eval``."""
        if self.out_dir:
            return self.out_dir
        work_dir = runner_work_dir()
        return osp.join(work_dir, OUT_SUBDIR) if work_dir else None

    def report(self, results: Sequence[StratifiedResult], dataset: str,
               num_images: int) -> Dict[str, float]:
        """Print the tables, write the files, and return the bin scalars to log.

        Returns:
            dict: ``{'{iou_type}_AP_bin_{label}': AP}`` for bins with an AP.
        """
        for result in results:
            print_log('\n' + format_tables(result), logger='current')
        out_dir = self.resolve_out_dir()
        if out_dir is None:
            print_log(
                f'{type(self).__name__}: no out_dir and no running runner; the '
                'stratified report is printed but not written.',
                logger='current',
                level=logging.WARNING)
        else:
            for result in results:
                write_per_class(result.rows, out_dir, result.iou_type)
                if self.plot:
                    plot_per_class_ap(
                        result.rows,
                        osp.join(out_dir, f'{result.iou_type}_per_class_ap.png'),
                        title=f'{dataset} {result.iou_type}: per-class AP')
            path = write_summary(build_summary(results, dataset, num_images), out_dir)
            print_log(f'Stratified evaluation written to {osp.dirname(path)}', logger='current')
        scalars: Dict[str, float] = {}
        for result in results:
            scalars.update({f'{result.iou_type}_{k}': v for k, v in result.scalars().items()})
        return scalars

    def collect_results(self,
                        results: Sequence[StratifiedResult],
                        dataset: str,
                        num_images: int,
                        key_names: Optional[Mapping[str, str]] = None) -> Dict[str, float]:
        """The metrics to return to MMEngine: headline values, then the report's bin scalars.

        Args:
            results: one stratified result per IoU type.
            dataset: ``'lvis'`` or ``'coco'``, for the report.
            num_images: how many images were evaluated.
            key_names: renames of headline keys (e.g. COCO's ``AP`` -> ``mAP``).

        Returns:
            dict: ``{'{iou_type}_{name}': value}``; values the reference leaves undefined
            (NaN) are left out.
        """
        eval_results: Dict[str, float] = OrderedDict()
        for result in results:
            for key, value in result.headline.items():
                if not math.isnan(value):
                    name = key_names.get(key, key) if key_names else key
                    eval_results[f'{result.iou_type}_{name}'] = value
        eval_results.update(self.report(results, dataset, num_images))
        return eval_results
