"""LVIS evaluation at LVIS-val scale: lvis-api's LVISEval against LVISStratifiedMetric's default
backend, on the same seeded synthetic ground truth and detections.

    python benchmarks/lvis_eval.py                       # 19,809, 1,000 and 5,000 images
    python benchmarks/lvis_eval.py --sizes 1000 --reference-max 1000

Each measurement runs in a fresh process: the data set is generated there
(benchmarks/lvis_synthetic.py: 1,203 classes with LVIS v1's r/c/f split, ~12 annotations and up
to 300 detections per image, ``neg_category_ids``, ``not_exhaustive_category_ids``), then the
evaluation is timed:

- lvis-api: ``LVISResults`` + ``LVISEval.run()`` on the detections as COCO-format results (what
  lvis-api alone costs; mmdet's ``LVISMetric`` adds writing and reading the JSON);
- lvis-api in category chunks (above ``--reference-max``): ``LVISResults`` once, then lvis-api's
  ``evaluate()`` + ``accumulate()`` on ``--reference-chunks`` slices of the category ids, the
  chunks' precision and recall concatenated in the full category order and lvis-api's own
  ``summarize()`` on them (:func:`lvis_eval_chunked`). Every category is evaluated by the same
  lvis-api code on the same detections (the top 300 per image of one ``LVISResults``), so the
  metrics are bitwise those of a whole run (the tests check it) in a fraction of the memory;
- default: ``LVISStratifiedMetric.evaluate()`` (backend ``faster-coco-eval``) on the per-image
  predictions, i.e. everything the metric does: the evaluation, per-class AP, bins, report.

Time is wall and CPU time (user + system, workers included) of the evaluation: on a machine
shared with other jobs the CPU time is the steadier measure. Peak memory is the process's peak
RSS during the evaluation (inputs included; Linux VmHWM reset just before). Whole lvis-api is
run only up to ``--reference-max`` images; above, its time and memory are extrapolated linearly
from the two largest sizes it ran (marked est.), and the largest difference is measured against
lvis-api in category chunks, whose own time and memory are reported in a table of their own
(``--reference-chunks 0``: not run, no difference there). The largest difference between two
evaluations is taken over AP, AP50, AP75, APs/m/l, APr/c/f and every class's AP (the bins are
means of the classes' APs).
"""
import argparse
import json
import os
import os.path as osp
import platform
import resource
import subprocess
import sys
import tempfile
import time
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

HERE = osp.dirname(osp.abspath(__file__))
REPO = osp.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, REPO)

HEADLINE = ('AP', 'AP50', 'AP75', 'APs', 'APm', 'APl', 'APr', 'APc', 'APf')


def _reset_peak() -> None:
    with open('/proc/self/clear_refs', 'w') as f:
        f.write('5')


def _peak_gib() -> float:
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith('VmHWM:'):
                return int(line.split()[1]) / 1024**2
    raise RuntimeError('no VmHWM in /proc/self/status')


def _cpu_s() -> float:
    """CPU seconds of this process and its finished workers (less sensitive than wall time to
    other jobs on a shared machine)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    workers = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + workers.ru_utime + workers.ru_stime


def lvis_eval_chunked(lvis_gt: Any, lvis_dt: Any, num_chunks: int, iou_type: str = 'bbox') -> Any:
    """lvis-api's ``LVISEval`` run over slices of the categories, merged into one evaluation.

    lvis-api evaluates and accumulates every category independently of the others, and
    ``summarize()`` only averages the accumulated arrays. So each slice of the (sorted) category
    ids gets its own ``LVISEval`` with ``params.cat_ids`` set to the slice, ``evaluate()`` and
    ``accumulate()``, and is dropped before the next one: only one slice's per-image state
    (IoUs, per-image matches) is in memory at a time. The slices' ``eval['precision']`` and
    ``eval['recall']`` are concatenated along the category axis, in the full category order, into
    an ``LVISEval`` over all categories whose ``freq_groups`` come from lvis-api's
    ``_prepare_freq_group()``, and lvis-api's ``summarize()`` fills its ``results``. All slices
    share ``lvis_dt``, so lvis-api's cap of 300 detections per image (applied when the
    ``LVISResults`` is built) is the whole run's.

    Args:
        lvis_gt (lvis.LVIS): The ground truth.
        lvis_dt (lvis.LVISResults): The detections, loaded once for all slices.
        num_chunks (int): How many slices of the categories (at most one per category).
        iou_type (str): ``'bbox'`` or ``'segm'``.

    Returns:
        lvis.LVISEval: Over all categories, with ``eval['precision']``, ``eval['recall']`` and
        ``results`` as ``LVISEval.run()`` leaves them; no per-image state (``eval_imgs``,
        ``ious``) and no ``eval['dt_pointers']``.
    """
    import mmfrozen  # noqa: F401  lvis-api's NumPy fix, before lvis.eval is used
    from lvis import LVISEval

    merged = LVISEval(lvis_gt, lvis_dt, iou_type)
    cat_ids = list(merged.params.cat_ids)
    if not 1 <= num_chunks <= len(cat_ids):
        # an empty params.cat_ids means "all categories" to lvis-api
        raise ValueError(f'num_chunks must be in [1, {len(cat_ids)}], not {num_chunks}')
    precisions, recalls = [], []
    for chunk in np.array_split(np.arange(len(cat_ids)), num_chunks):
        part = LVISEval(lvis_gt, lvis_dt, iou_type)
        part.params.cat_ids = [cat_ids[k] for k in chunk]
        part.evaluate()
        part.accumulate()
        precisions.append(part.eval['precision'])
        recalls.append(part.eval['recall'])
        del part  # before the next slice's evaluate(): its per-image state is most of the memory
    precision = np.concatenate(precisions, axis=2)
    recall = np.concatenate(recalls, axis=1)
    merged.params.img_ids = list(np.unique(merged.params.img_ids))  # as evaluate() leaves it
    merged.eval = dict(
        params=merged.params,
        counts=list(precision.shape),
        date=time.strftime('%Y-%m-%d %H:%M:%S'),
        precision=precision,
        recall=recall)
    merged.freq_groups = merged._prepare_freq_group()
    merged.summarize()
    return merged


def lvis_api_per_class_ap(lvis_eval: Any) -> Dict[str, Optional[float]]:
    """Each class's AP from an accumulated ``LVISEval``: the mean of its precision over the IoU
    thresholds and recall points where it is defined (area 'all'), None where it never is.

    Args:
        lvis_eval (lvis.LVISEval): After ``accumulate()`` (or from :func:`lvis_eval_chunked`).

    Returns:
        dict: Category id (as a string) to AP.
    """
    precision = lvis_eval.eval['precision'][:, :, :, 0]
    per_class: Dict[str, Optional[float]] = {}
    for k, cat_id in enumerate(lvis_eval.params.cat_ids):
        p = precision[:, :, k]
        per_class[str(cat_id)] = float(p[p > -1].mean()) if (p > -1).any() else None
    return per_class


def child(mode: str, num_images: int, seed: int, out_json: str, nproc: int,
          chunks: int = 0) -> None:
    """Generate the data, evaluate with ``mode``, write time, memory and metrics.

    Args:
        mode (str): ``'lvis-api'``, ``'lvis-api-chunked'`` (with ``chunks`` slices of the
            categories) or ``'default'``.
        num_images (int): Size of the synthetic data set.
        seed (int): Its seed.
        out_json (str): Where to write the measurement.
        nproc (int): Worker processes of the default backend.
        chunks (int): Category slices of ``'lvis-api-chunked'``.
    """
    import lvis_synthetic
    import mmfrozen  # noqa: F401  lvis-api's NumPy fix, registers the metric

    gt, preds = lvis_synthetic.make_dataset(num_images, seed=seed)
    cat_ids = [c['id'] for c in gt['categories']]
    work = tempfile.mkdtemp(prefix='lvis_eval_')
    gt_path = osp.join(work, 'gt.json')
    with open(gt_path, 'w') as f:
        json.dump(gt, f)
    num_dets = sum(len(p['labels']) for p in preds)
    del gt
    out: Dict[str, Any] = dict(mode=mode, num_images=num_images, num_dets=num_dets)
    if mode in ('lvis-api', 'lvis-api-chunked'):
        from lvis import LVIS, LVISEval, LVISResults
        results = lvis_synthetic.to_results(preds, cat_ids)
        del preds
        lvis_gt = LVIS(gt_path)
        _reset_peak()
        start, cpu_start = time.perf_counter(), _cpu_s()
        lvis_dt = LVISResults(lvis_gt, results)
        if mode == 'lvis-api':
            lvis_eval = LVISEval(lvis_gt, lvis_dt, 'bbox')
            lvis_eval.run()
        else:
            lvis_eval = lvis_eval_chunked(lvis_gt, lvis_dt, chunks, 'bbox')
            out['chunks'] = chunks
        out['time_s'] = time.perf_counter() - start
        out['cpu_s'] = _cpu_s() - cpu_start
        out['peak_eval_gib'] = _peak_gib()
        out['headline'] = {k: float(lvis_eval.results[k]) for k in HEADLINE}
        out['per_class'] = lvis_api_per_class_ap(lvis_eval)
    else:
        import torch
        from mmdet.registry import METRICS
        metric = METRICS.build(
            dict(
                type='LVISStratifiedMetric',
                ann_file=gt_path,
                metric='bbox',
                out_dir=osp.join(work, 'report'),
                plot=False,
                nproc=nproc))
        for p in preds:
            metric.process({}, [
                dict(
                    img_id=p['img_id'],
                    ori_shape=(480, 640),
                    pred_instances=dict(
                        bboxes=torch.from_numpy(p['bboxes']),
                        scores=torch.from_numpy(p['scores']),
                        labels=torch.from_numpy(p['labels'])))
            ])
        del preds
        _reset_peak()
        start, cpu_start = time.perf_counter(), _cpu_s()
        metrics = metric.evaluate(num_images)
        out['time_s'] = time.perf_counter() - start
        out['cpu_s'] = _cpu_s() - cpu_start
        out['peak_eval_gib'] = _peak_gib()
        out['headline'] = {k: metrics.get(f'lvis/bbox_{k}_exact', -1.0) for k in HEADLINE}
        with open(osp.join(work, 'report', 'bbox_per_class.json')) as f:
            out['per_class'] = {str(r['category_id']): r['AP'] for r in json.load(f)}
        out['workers'] = nproc
    out['peak_process_gib'] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    out['load_avg'] = os.getloadavg()[0]
    with open(out_json, 'w') as f:
        json.dump(out, f)


def run_child(mode: str, num_images: int, seed: int, nproc: int, chunks: int = 0) -> Dict[str, Any]:
    """Run :func:`child` in a fresh process and return its measurement."""
    with tempfile.TemporaryDirectory() as tmp:
        out_json = osp.join(tmp, 'out.json')
        env = dict(os.environ, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1')
        proc = subprocess.run([
            sys.executable, __file__, '--child', mode, '--sizes',
            str(num_images), '--seed',
            str(seed), '--out', out_json, '--nproc',
            str(nproc), '--reference-chunks',
            str(chunks)
        ],
                              env=env,
                              capture_output=True,
                              text=True)
        if proc.returncode != 0:
            raise RuntimeError(f'{mode} at {num_images} images failed:\n{proc.stderr[-4000:]}')
        with open(out_json) as f:
            return json.load(f)


def largest_difference(a: Dict[str, Any], b: Dict[str, Any]) -> float:
    """The largest difference over the headline metrics and every class's AP."""
    diffs = [abs(a['headline'][k] - b['headline'][k]) for k in HEADLINE]
    for cat, value in a['per_class'].items():
        other = b['per_class'][cat]
        if (value is None) != (other is None):
            return float('inf')
        if value is not None:
            diffs.append(abs(value - other))
    return max(diffs)


def extrapolate(points: Sequence[Dict[str, Any]], num_images: int, key: str) -> float:
    """Linear in the number of images, through the two largest measured sizes."""
    (n0, y0), (n1, y1) = [(p['num_images'], p[key]) for p in points[-2:]]
    return y0 + (y1 - y0) * (num_images - n0) / (n1 - n0)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open('/proc/cpuinfo') as f:
            cpu = next(line.split(':', 1)[1].strip() for line in f if line.startswith('model name'))
    except (OSError, StopIteration):
        pass
    mem = os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 1024**3
    return f'{os.cpu_count()} CPUs ({cpu}), {mem:.0f} GiB RAM'


def main(argv: Optional[List[str]] = None) -> None:
    """Measure each size (see the module's docstring) and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--sizes', type=int, nargs='+', default=[19809, 1000, 5000])
    parser.add_argument(
        '--reference-max',
        type=int,
        default=5000,
        help='run whole lvis-api up to this many images, extrapolate its time and memory above')
    parser.add_argument(
        '--reference-chunks',
        type=int,
        default=16,
        help='above --reference-max, run lvis-api in this many category chunks to measure the '
        'largest difference there (0: do not); 16 keeps 19,809 images to about 6-7 GiB')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument(
        '--nproc', type=int, default=1, help='worker processes of the default backend')
    parser.add_argument(
        '--out', help='(with --child) where the child writes; else a JSON of '
        'all measurements')
    parser.add_argument('--child', help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.reference_chunks < 0:
        parser.error('--reference-chunks must be >= 0')
    if args.child:
        child(args.child, args.sizes[0], args.seed, args.out, args.nproc, args.reference_chunks)
        return

    print(f'machine: {machine()}; default backend with {args.nproc} worker process(es)')
    ours_runs, reference_runs, chunked_runs = {}, {}, {}
    for size in args.sizes:  # in the order given: the largest first shows the key number early
        if size <= args.reference_max:
            modes = (('default', ours_runs), ('lvis-api', reference_runs))
        elif args.reference_chunks:
            modes = (('default', ours_runs), ('lvis-api-chunked', chunked_runs))
        else:
            modes = (('default', ours_runs), )
        for mode, runs in modes:
            runs[size] = run_child(mode, size, args.seed, args.nproc, args.reference_chunks)
            r = runs[size]
            label = (f'lvis-api in {r["chunks"]} category chunks'
                     if mode == 'lvis-api-chunked' else mode)
            print(f'{size} images, {label}: {r["time_s"]:.1f} s wall, {r["cpu_s"]:.1f} s CPU, '
                  f'peak RSS {r["peak_eval_gib"]:.2f} GiB (load average {r["load_avg"]:.1f})',
                  flush=True)
    measured = [reference_runs[n] for n in sorted(reference_runs)]
    rows = []
    for size in sorted(args.sizes):
        ours = ours_runs[size]
        chunked = chunked_runs.get(size)
        if size in reference_runs:
            ref, estimated = reference_runs[size], False
            diff = largest_difference(ours, ref)
        else:
            estimated = True
            diff = None if chunked is None else largest_difference(ours, chunked)
            if len(measured) >= 2:
                keys = ('time_s', 'cpu_s', 'peak_eval_gib')
                ref = {k: extrapolate(measured, size, k) for k in keys}
            else:
                ref = None
        if chunked is not None:
            chunked = {k: chunked[k] for k in ('chunks', 'time_s', 'cpu_s', 'peak_eval_gib')}
        rows.append(dict(size=size, dets=ours['num_dets'], ours=ours, ref=ref,
                         estimated=estimated, diff=diff, chunked=chunked))

    print()
    print('| images | detections | lvis-api: wall / CPU time | lvis-api peak RSS | default: '
          'wall / CPU time | default peak RSS | speed-up (wall / CPU) | largest difference |')
    print('|---|---|---|---|---|---|---|---|')
    for r in rows:
        ours, ref = r['ours'], r['ref']
        est = ' (est.)' if r['estimated'] else ''
        if r['diff'] is None:
            diff = 'not run'
        else:
            diff = f'{r["diff"]:.1e}' + (' (chunked)' if r['chunked'] else '')
        if ref is None:
            ref_cells = ['not run', 'not run', '-']
        else:
            ref_cells = [f'{ref["time_s"]:.1f} s / {ref["cpu_s"]:.1f} s{est}',
                         f'{ref["peak_eval_gib"]:.2f} GiB{est}',
                         f'{ref["time_s"] / ours["time_s"]:.1f}x / '
                         f'{ref["cpu_s"] / ours["cpu_s"]:.1f}x{est}']
        print(f'| {r["size"]:,} | {r["dets"]:,} | {ref_cells[0]} | {ref_cells[1]} | '
              f'{ours["time_s"]:.1f} s / {ours["cpu_s"]:.1f} s | '
              f'{ours["peak_eval_gib"]:.2f} GiB | {ref_cells[2]} | {diff} |')
    if any(r['estimated'] and r['ref'] for r in rows):
        sizes = ' and '.join(f'{p["num_images"]:,}' for p in measured[-2:])
        print(f'\n(est.): whole lvis-api not run at that size (above --reference-max); '
              f'extrapolated linearly\nfrom its runs at {sizes} images.')
    chunked_rows = [r for r in rows if r['chunked']]
    if chunked_rows:
        print('\n(chunked): measured against lvis-api run in category chunks: one LVISResults '
              '(its top 300\ndetections per image), lvis-api\'s evaluate() + accumulate() per '
              'chunk of the category ids,\nthe chunks\' precision and recall merged in category '
              'order, lvis-api\'s summarize(): bitwise\nthe metrics of a whole run. Its own time '
              'and memory (not whole lvis-api\'s, which the speed-up\nis against):\n')
        print('| images | category chunks | chunked lvis-api: wall / CPU time | '
              'chunked lvis-api peak RSS | largest difference |')
        print('|---|---|---|---|---|')
        for r in chunked_rows:
            c = r['chunked']
            print(f'| {r["size"]:,} | {c["chunks"]} | {c["time_s"]:.1f} s / {c["cpu_s"]:.1f} s | '
                  f'{c["peak_eval_gib"]:.2f} GiB | {r["diff"]:.1e} |')
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(rows, f, indent=1)


if __name__ == '__main__':
    main()
