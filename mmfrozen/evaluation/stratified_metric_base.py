"""What the LVIS and COCO stratified metrics share: arguments, evaluation loop, outputs."""
import contextlib
import io
import logging
import math
import os.path as osp
import sys
import tempfile
from collections import OrderedDict
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

from mmengine.dist import broadcast_object_list, is_main_process
from mmengine.evaluator.metric import _to_cpu
from mmengine.logging import MMLogger, print_log
from mmengine.utils import ProgressBar

from .annotation_ids import renumber_api_annotation_ids
from .annotation_stats import (CategoryStats, categories_have_counts, category_stats,
                               stats_from_categories)
from .class_groups import check_class_groups, resolve_class_groups
from .collect import collect_to_rank0
from .detections import Detections
from .fast_eval import FAST_BACKEND, Progress
from .per_class_report import build_summary, format_tables, write_per_class, write_summary
from .plots import plot_per_class_ap
from .reference_eval import ReferenceResult
from .resources import measure
from .stratified_result import StratifiedResult
from .stratify import DEFAULT_BINS, Bin, normalize_bins

OUT_SUBDIR = 'stratified_eval'
# From this many evaluated images on, the fast backend shows a progress bar.
PROGRESS_MIN_IMAGES = 2000
#: the fields pycocotools and lvis-api index an annotation file by.
INDEXED_FIELDS = ('id', 'image_id', 'category_id')


def runner_work_dir() -> Optional[str]:
    """The work dir of the running MMEngine runner, or None outside a runner.

    The runner logs to ``<work_dir>/<timestamp>/<timestamp>.log`` through the current
    :class:`~mmengine.logging.MMLogger`, so its work dir is two levels above the log file.
    """
    log_file = getattr(MMLogger.get_current_instance(), 'log_file', None)
    if not log_file:
        return None
    return osp.dirname(osp.dirname(osp.abspath(log_file)))


def check_labels(preds: Sequence[dict], num_classes: int, ann_file: str) -> None:
    """Check that every predicted label indexes a category of the annotation file.

    Raises:
        ValueError: naming the label, the image and the annotation file's ``categories``.
    """
    for pred in preds:
        labels = pred['labels']
        if len(labels) and (labels.max() >= num_classes or labels.min() < 0):
            raise ValueError(
                f'Prediction for image {pred.get("img_id")}: field "labels" has label '
                f'{int(labels.max())}, but the ground truth {ann_file!r} has '
                f'{num_classes} "categories" (labels 0-{num_classes - 1}). Does the model\'s '
                'num_classes match the annotation file?')


@contextlib.contextmanager
def missing_fields_named(owner: str, ann_file: Optional[str]) -> Iterator[None]:
    """Name the file and the field where reading an annotation file fails on a missing field.

    pycocotools and lvis-api index every image, annotation and category by fields they take
    for granted (:data:`INDEXED_FIELDS`) and fail with a bare ``KeyError``; other errors pass
    unchanged.

    Raises:
        KeyError: naming the owner, the file and the field (the parent's type of error).
    """
    try:
        yield
    except KeyError as err:
        if err.args[:1] not in [(f, ) for f in INDEXED_FIELDS]:
            raise
        raise KeyError(f'{owner}: ann_file {ann_file!r}: an entry of its "images", '
                       f'"annotations" or "categories" has no field "{err.args[0]}", which '
                       'every one needs.') from err


def evaluated_img_ids(gts: Sequence[dict]) -> List[int]:
    """The ids of the images that were evaluated, in order, without repeats."""
    return list(OrderedDict.fromkeys(gt['img_id'] for gt in gts))


class StratifiedMetricMixin:
    """Training statistics, bins, the evaluation loop and the report, for a CocoMetric-like
    metric.

    Args:
        train_ann_file: the training annotation file, where per-class counts come from; None:
            the evaluated file's categories' ``image_count`` and ``instance_count`` where they
            have them (LVIS v1), else no bins (said once in the log).
        bins: bins of training instances per class, ``(low, high)`` inclusive.
        out_dir: folder of the report files; None: ``<work_dir>/stratified_eval`` of the
            running runner.
        plot: whether to draw ``{iou_type}_per_class_ap.png``.
        backend: ``'faster-coco-eval'`` or the reference (``reference_backend``).
        nproc: worker processes of the ``faster-coco-eval`` backend.
        class_groups: named groups of class names scored on their own
            (:mod:`~mmfrozen.evaluation.class_groups`: few-shot detection's ``novel`` and
            ``base``); None: none.
    """
    reference_backend = 'lvis-api'

    def _init_stratified(self,
                         train_ann_file: Optional[str],
                         bins: Optional[Sequence[Sequence[Optional[int]]]],
                         out_dir: Optional[str],
                         plot: bool,
                         backend: str = FAST_BACKEND,
                         nproc: int = 1,
                         class_groups: Optional[Dict[str, Sequence[str]]] = None) -> None:
        name = type(self).__name__
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
        self.class_groups = check_class_groups(class_groups, name)
        self._category_stats: Optional[Dict[int, CategoryStats]] = None
        self._stats_read = False

    def renumber_ground_truth(self, api: Any, source: Optional[str]) -> None:
        """Renumber the ground truth's annotation ids where any is 0 or below (one log line).

        The one place the ids are fixed: every backend, and the parent's own code
        (``proposal``, ``proposal_fast``), reads this api object. See
        :mod:`~mmfrozen.evaluation.annotation_ids`.

        Args:
            api: the metric's ``COCO`` / ``LVIS`` object (None: nothing to do).
            source: its annotation file, for messages.

        Raises:
            AnnotationIdError: annotation ids that are not unique integers.
        """
        if api is None:
            return
        line = renumber_api_annotation_ids(api, source or 'the converted ground truth',
                                           type(self).__name__)
        if line is not None:
            print_log(line, logger='current', level=logging.WARNING)

    def category_stats(self, categories: List[Dict[str, Any]],
                       gt_source: str) -> Optional[Dict[int, CategoryStats]]:
        """Training statistics of the evaluated categories (read once, then cached).

        From ``train_ann_file`` when given, else from the categories' ``image_count`` and
        ``instance_count`` (LVIS v1's files count them on the training set, for the same
        category list in train and val), else none; the log says which, once.

        Args:
            categories: the ground truth's categories.
            gt_source: the ground-truth file, for messages.

        Returns:
            dict or None: :class:`CategoryStats` per category id; None without counts (the
            bins are left out).
        """
        if not self._stats_read:
            name = type(self).__name__
            stats: Optional[Dict[int, CategoryStats]] = None
            if self.train_ann_file:
                stats = category_stats(self.train_ann_file, categories)
                print_log(f'{name}: per-class training counts from the training annotation '
                          f'file {self.train_ann_file!r}.', logger='current')
            elif categories_have_counts(categories):
                stats = stats_from_categories(categories, gt_source, owner=name)
                print_log(f'{name}: per-class training counts from the "image_count" and '
                          f'"instance_count" of the categories of ann_file {gt_source!r}.',
                          logger='current')
            else:
                print_log(
                    f'{name}: no per-class training counts (no train_ann_file, and the '
                    f'categories of {gt_source} have no "image_count" and "instance_count"): '
                    'the AP by bins of training annotations is left out; set train_ann_file '
                    'to have it.',
                    logger='current',
                    level=logging.WARNING)
            self._category_stats, self._stats_read = stats, True
        return self._category_stats

    def class_group_ids(self, categories: Sequence[Dict[str, Any]],
                        gt_source: str) -> Optional[Dict[str, List[int]]]:
        """``class_groups`` as category ids of the evaluated ground truth (None: no groups).

        Raises:
            ValueError: a group names a class that is not an evaluated category.
        """
        return resolve_class_groups(self.class_groups, categories, type(self).__name__,
                                    gt_source)

    def parent_compute_metrics(self, results: list, metrics: Sequence[str],
                               img_ids: Optional[Sequence[int]]) -> Dict[str, float]:
        """Run ``metrics`` with the parent metric's own ``compute_metrics``.

        For what the parent computes and we add nothing to (``format_only``, the proposal
        metrics): its numbers, its files and its log, unchanged.

        Args:
            results: ``(gt, prediction)`` pairs from :meth:`process`.
            metrics: the metrics the parent runs.
            img_ids: the images the parent evaluates; None: every image of its annotation
                file (the parent's own choice).

        Returns:
            dict: the parent's metrics (unprefixed).
        """
        saved = self.metrics, self.img_ids  # type: ignore[attr-defined]
        self.metrics = list(metrics)  # type: ignore[attr-defined]
        self.img_ids = None if img_ids is None else list(img_ids)  # type: ignore[attr-defined]
        try:
            return super().compute_metrics(results)  # type: ignore[misc]
        finally:
            self.metrics, self.img_ids = saved  # type: ignore[attr-defined]

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

    def evaluate_each(self, preds: Sequence[dict], iou_types: Sequence[str],
                      reference: Callable[[str, str], ReferenceResult],
                      fast: Callable[[str, Detections, Optional[Progress]], ReferenceResult],
                      num_images: int) -> List[Tuple[ReferenceResult, str]]:
        """Evaluate each IoU type with the chosen backend.

        The reference backend reads the result files ``results2json`` writes (in
        ``outfile_prefix`` or a temporary folder); the fast one reads the predictions' arrays
        (and the files are written only where ``outfile_prefix`` asks for them, as the parent
        writes them). The log has each evaluation's time and peak memory.

        Args:
            preds: the predictions collected by :meth:`process`.
            iou_types: ``'bbox'`` and/or ``'segm'``.
            reference: ``reference(iou_type, result_file)`` runs lvis-api / pycocotools.
            fast: ``fast(iou_type, detections, progress)`` runs the fast backend.
            num_images: how many images are evaluated.

        Returns:
            list: per IoU type, the result and what the reference printed on the way.
        """
        name = type(self).__name__
        for iou_type in iou_types:
            if iou_type == 'segm' and preds and 'masks' not in preds[0]:
                raise ValueError(f'{name}: metric "{iou_type}" asked for, but the predictions '
                                 'have no "masks".')
        num_dets = sum(len(p['labels']) for p in preds)
        out: List[Tuple[ReferenceResult, str]] = []
        with contextlib.ExitStack() as stack:
            result_files: Dict[str, str] = {}
            if self.backend != FAST_BACKEND or self.outfile_prefix:  # type: ignore[attr-defined]
                prefix = stack.enter_context(self.result_file_prefix())
                result_files = self.results2json(preds, prefix)  # type: ignore[attr-defined]
            for iou_type in iou_types:
                what = (f'{name} {iou_type} ({self.backend}): {num_images} images, '
                        f'{num_dets} detections')
                printed = io.StringIO()
                with measure(what):
                    if self.backend == FAST_BACKEND:
                        ref = self._run_fast(fast, iou_type, preds, num_images, num_dets)
                    else:
                        # pycocotools prints as it goes: route it into the log file.
                        with contextlib.redirect_stdout(printed):
                            ref = reference(iou_type, result_files[iou_type])
                out.append((ref, printed.getvalue()))
        return out

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

    def report(self, results: Sequence[StratifiedResult], dataset: str, num_images: int) -> None:
        """Print the tables and write the files: ``summary.json``, the per-class tables and,
        with training counts, the per-class plot."""
        for result in results:
            print_log('\n' + format_tables(result), logger='current')
        out_dir = self.resolve_out_dir()
        if out_dir is None:
            print_log(
                f'{type(self).__name__}: no out_dir and no running runner; the '
                'stratified report is printed but not written.',
                logger='current',
                level=logging.WARNING)
            return
        for result in results:
            write_per_class(result.rows, out_dir, result.iou_type)
            if self.plot and result.has_counts:
                plot_per_class_ap(
                    result.rows,
                    osp.join(out_dir, f'{result.iou_type}_per_class_ap.png'),
                    title=f'{dataset} {result.iou_type}: per-class AP')
        path = write_summary(build_summary(results, dataset, num_images), out_dir)
        print_log(f'Stratified evaluation written to {osp.dirname(path)}', logger='current')


def extra_values(result: StratifiedResult, groups: bool) -> Dict[str, float]:
    """Our keys beside the parent's, for one IoU type (values the reference leaves undefined
    are left out).

    Args:
        result: the stratified evaluation.
        groups: whether to add the frequency groups' ``APr``/``APc``/``APf`` (COCO: the
            parent has no such keys; LVIS: they are the parent's).

    Returns:
        dict: ``{iou}_{AP,AP50,...}_exact`` (the reference's unrounded values at its default
        parameters), ``{iou}_APr``... when ``groups``, ``{iou}_AP_bin_{label}``, and per
        class group ``{iou}_AP_{group}``, ``{iou}_AP50_{group}``, ``{iou}_AP75_{group}``.
    """
    iou = result.iou_type
    out: Dict[str, float] = OrderedDict(
        (f'{iou}_{key}_exact', value) for key, value in result.headline.items()
        if not math.isnan(value))
    if groups:
        out.update((f'{iou}_{k}', v) for k, v in result.group_scalars().items())
    out.update((f'{iou}_{k}', v) for k, v in result.scalars().items())
    out.update((f'{iou}_{k}', v) for k, v in result.class_group_scalars().items())
    return out
