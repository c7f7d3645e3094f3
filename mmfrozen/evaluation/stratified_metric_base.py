"""What the LVIS and COCO stratified metrics share: arguments, evaluation loop, outputs."""
import contextlib
import io
import logging
import math
import os.path as osp
import tempfile
from collections import OrderedDict
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Sequence

from mmengine.logging import MMLogger, print_log

from .annotation_stats import CategoryStats, category_stats, ensure_frequency
from .per_class_report import build_summary, format_tables, write_per_class, write_summary
from .plots import plot_per_class_ap
from .reference_eval import ReferenceResult
from .stratified_result import StratifiedResult, stratify_result
from .stratify import DEFAULT_BINS, Bin, normalize_bins

OUT_SUBDIR = 'stratified_eval'


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
    """Training statistics, bins and the written report, for a CocoMetric-like metric.

    Args:
        train_ann_file: the training annotation file, where per-class counts come from.
        bins: bins of training instances per class, ``(low, high)`` inclusive.
        out_dir: folder of the report files; None: ``<work_dir>/stratified_eval`` of the
            running runner.
        plot: whether to draw ``{iou_type}_per_class_ap.png``.
    """

    def _init_stratified(self, train_ann_file: Optional[str],
                         bins: Optional[Sequence[Sequence[Optional[int]]]],
                         out_dir: Optional[str], plot: bool) -> None:
        if not train_ann_file:
            raise ValueError(
                f'{type(self).__name__}: field "train_ann_file" is required: per-class '
                'training counts (for the bins) come from the training annotation file, e.g. '
                "train_ann_file='data/lvis_v1/annotations/lvis_v1_train.json'.")
        if not osp.isfile(train_ann_file):
            raise FileNotFoundError(f'{type(self).__name__}: train_ann_file '
                                    f'{train_ann_file!r} does not exist.')
        self.train_ann_file = train_ann_file
        self.bins: List[Bin] = normalize_bins(DEFAULT_BINS if bins is None else bins)
        self.out_dir = out_dir
        self.plot = plot
        self._category_stats: Optional[Dict[int, CategoryStats]] = None

    def _check_metrics(self, allowed: Sequence[str] = ('bbox', 'segm')) -> None:
        for metric in self.metrics:  # type: ignore[attr-defined]
            if metric not in allowed:
                raise KeyError(f'{type(self).__name__}: metric {metric!r} is not stratified; '
                               f'use one of {list(allowed)} (proposals: use mmdet\'s metric).')

    def category_stats(self, categories: List[Dict[str, Any]], gt_source: str,
                       fill_frequency: bool = False) -> Dict[int, CategoryStats]:
        """Training statistics of the evaluated categories (read once, then cached).

        Args:
            categories: the ground truth's categories (edited in place when
                ``fill_frequency``: a missing LVIS ``frequency`` is computed, with a warning).
            gt_source: the ground-truth file, for messages.
            fill_frequency: whether the categories need ``frequency`` (LVIS).
        """
        if self._category_stats is None:
            stats = category_stats(self.train_ann_file, categories)
            if fill_frequency:
                ensure_frequency(categories, gt_source,
                                 train_images={k: s.train_images for k, s in stats.items()})
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

    def stratify_each_metric(
            self, preds: Sequence[dict], outfile_prefix: str,
            stats: Mapping[int, CategoryStats],
            evaluate: Callable[[str, str], ReferenceResult]) -> Optional[List[StratifiedResult]]:
        """Write the predictions as result files, evaluate each metric, and stratify.

        Args:
            preds: the predictions collected by :meth:`process`.
            outfile_prefix: where ``results2json`` writes the result files.
            stats: training statistics of the evaluated categories.
            evaluate: ``evaluate(metric, result_file)`` runs the reference evaluation.

        Returns:
            list: one result per metric; None with ``format_only`` (the files are kept).
        """
        result_files = self.results2json(preds, outfile_prefix)  # type: ignore[attr-defined]
        if self.format_only:  # type: ignore[attr-defined]
            print_log(f'results are saved in {osp.dirname(outfile_prefix)}', logger='current')
            return None
        stratified: List[StratifiedResult] = []
        for metric in self.metrics:  # type: ignore[attr-defined]
            if metric not in result_files:
                raise ValueError(f'{type(self).__name__}: metric "{metric}" asked for, but '
                                 'the predictions have no "masks".')
            summary_text = io.StringIO()
            # lvis-api and pycocotools print their summaries: route them into the log file.
            try:
                with contextlib.redirect_stdout(summary_text):
                    ref = evaluate(metric, result_files[metric])
            finally:
                print_log('\n' + summary_text.getvalue(), logger='current')
            stratified.append(stratify_result(ref, stats, self.bins))
        return stratified

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
            print_log(f'{type(self).__name__}: no out_dir and no running runner; the '
                      'stratified report is printed but not written.', logger='current',
                      level=logging.WARNING)
        else:
            for result in results:
                write_per_class(result.rows, out_dir, result.iou_type)
                if self.plot:
                    plot_per_class_ap(
                        result.rows, osp.join(out_dir, f'{result.iou_type}_per_class_ap.png'),
                        title=f'{dataset} {result.iou_type}: per-class AP')
            path = write_summary(build_summary(results, dataset, num_images), out_dir)
            print_log(f'Stratified evaluation written to {osp.dirname(path)}',
                      logger='current')
        scalars: Dict[str, float] = {}
        for result in results:
            scalars.update({f'{result.iou_type}_{k}': v for k, v in result.scalars().items()})
        return scalars

    def collect_results(self, results: Sequence[StratifiedResult], dataset: str,
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
