"""Re-evaluate saved predictions, stratified by training annotations, without the model.

    python tools/test.py CONFIG CHECKPOINT --out results.pkl
    python tools/analysis/stratified_eval.py results.pkl ANN_FILE [--train-ann TRAIN_ANN]

prints lvis-api's / pycocotools' metrics, AP per bin of training instances and per frequency
group, and writes ``summary.json``, ``{bbox,segm}_per_class.{csv,json}`` and the per-class
plot to ``--out-dir`` (default: ``stratified_eval`` next to the results file). The data set
(LVIS or COCO format) is told from ANN_FILE. Predicted labels index ANN_FILE's categories in
the file's order, as mmdet's LVIS and COCO data sets number them.
"""
import argparse
import os.path as osp
import sys
from typing import Any, Dict, List, Optional, Sequence, Tuple

# Runs from a clone without installing: the repository root on the path.
sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

import mmfrozen  # noqa: E402,F401  registers the metrics, applies the stack fixes
from mmdet.registry import METRICS  # noqa: E402
from mmengine.utils import track_iter_progress  # noqa: E402

from mmfrozen.evaluation.annotation_stats import load_annotation_file  # noqa: E402
from mmfrozen.fileio import load_results  # noqa: E402


def parse_bin(text: str) -> Tuple[int, Optional[int]]:
    """``'1-10'`` -> (1, 10); ``'1001-'`` -> (1001, None)."""
    low, sep, high = text.partition('-')
    try:
        if not sep:
            raise ValueError
        return int(low), (int(high) if high else None)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f'bad bin {text!r}: write LOW-HIGH (e.g. 11-100) or LOW- (e.g. 1001-)')


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Evaluate a tools/test.py --out pickle, stratified by the number of '
                    'training annotations per class (LVIS or COCO format).')
    parser.add_argument('results', help='predictions saved by tools/test.py --out (.pkl; '
                        'or the same as .json); read without running pickled code')
    parser.add_argument('ann_file', help='annotation file of the evaluated images')
    parser.add_argument('--train-ann',
                        help='training annotation file (per-class counts for the bins come from '
                        'it); LVIS categories carry their own image_count/instance_count; '
                        'without counts the bins are left out')
    parser.add_argument('--backend', choices=['faster-coco-eval', 'reference'],
                        default='faster-coco-eval',
                        help='faster-coco-eval (default) or the reference, lvis-api / '
                        'pycocotools: the same numbers')
    parser.add_argument('--nproc', type=int, default=1,
                        help='worker processes of the faster-coco-eval backend')
    parser.add_argument('--out-dir', help='where to write the report (default: '
                        'stratified_eval/ next to the results file)')
    parser.add_argument('--metric', nargs='+', choices=['bbox', 'segm'],
                        help='IoU types (default: bbox, and segm if there are masks)')
    parser.add_argument('--dataset', choices=['auto', 'lvis', 'coco'], default='auto',
                        help='evaluate with lvis-api or pycocotools (default: told from '
                        'the annotation file)')
    parser.add_argument('--bins', nargs='+', type=parse_bin,
                        help='bins of training instances, e.g. 1-10 11-100 101-1000 1001-')
    parser.add_argument('--no-plot', action='store_true', help='do not draw the plots')
    return parser.parse_args(argv)


def is_lvis(ann: Dict[str, Any]) -> bool:
    """Whether an annotation file is LVIS-format (federated image fields or frequencies)."""
    images, cats = ann['images'], ann['categories']
    return bool((images and 'neg_category_ids' in images[0])
                or (cats and ('frequency' in cats[0] or 'image_count' in cats[0])))


def _as_tensors(pred: Dict[str, Any]) -> Dict[str, Any]:
    """A JSON results item's boxes, scores and labels as tensors, as a pickle holds them."""
    import torch
    out = dict(pred)
    for key, dtype in (('bboxes', torch.float32), ('scores', torch.float32),
                       ('labels', torch.int64), ('mask_scores', torch.float32)):
        if key in out and not torch.is_tensor(out[key]):
            out[key] = torch.as_tensor(out[key], dtype=dtype)
    if 'bboxes' in out:
        out['bboxes'] = out['bboxes'].reshape(-1, 4)
    return out


def load_predictions(path: str) -> List[Dict[str, Any]]:
    """Read and check a ``tools/test.py --out`` pickle (mmdet's DumpDetResults format), or the
    same as JSON, without running any code a pickle may hold (:func:`mmfrozen.fileio.load_results`).
    """
    results = load_results(path)
    if not isinstance(results, list) or not results:
        raise ValueError(f'{path!r}: expected a non-empty list of per-image results, as '
                         'tools/test.py --out writes.')
    for i, item in enumerate(results):
        if not isinstance(item, dict):
            raise ValueError(f'{path!r}: item {i} is a {type(item).__name__}, not a dict.')
        for field in ('img_id', 'ori_shape', 'pred_instances'):
            if field not in item:
                raise ValueError(f'{path!r}: item {i} has no field "{field}"; was it written '
                                 'by tools/test.py --out from a detector?')
        item['pred_instances'] = _as_tensors(item['pred_instances'])
    return results


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, float]:
    args = parse_args(argv)
    ann = load_annotation_file(args.ann_file)
    dataset = args.dataset if args.dataset != 'auto' else ('lvis' if is_lvis(ann) else 'coco')
    predictions = load_predictions(args.results)
    metric = args.metric or (['bbox', 'segm'] if 'masks' in predictions[0]['pred_instances']
                             else ['bbox'])
    out_dir = args.out_dir or osp.join(osp.dirname(osp.abspath(args.results)),
                                       'stratified_eval')
    evaluator = METRICS.build(dict(
        type='LVISStratifiedMetric' if dataset == 'lvis' else 'CocoStratifiedMetric',
        ann_file=args.ann_file, train_ann_file=args.train_ann, metric=metric,
        bins=args.bins, out_dir=out_dir, plot=not args.no_plot,
        backend=args.backend if args.backend != 'reference' else
        ('lvis-api' if dataset == 'lvis' else 'pycocotools'), nproc=args.nproc))
    evaluator.dataset_meta = dict(classes=[c['name'] for c in ann['categories']])
    for item in track_iter_progress(predictions):
        evaluator.process({}, [item])
    scalars = evaluator.evaluate(len(predictions))
    print(f'Stratified evaluation written to {out_dir}')
    return scalars


if __name__ == '__main__':
    main()
