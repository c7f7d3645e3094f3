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
- default: ``LVISStratifiedMetric.evaluate()`` (backend ``faster-coco-eval``) on the per-image
  predictions, i.e. everything the metric does: the evaluation, per-class AP, bins, report.

Time is wall and CPU time (user + system, workers included) of the evaluation: on a machine
shared with other jobs the CPU time is the steadier measure. Peak memory is the process's peak
RSS during the evaluation (inputs included; Linux VmHWM reset just before). lvis-api is run
only up to ``--reference-max`` images; above, its time and memory are extrapolated linearly
from the two largest sizes it ran (said so in the output). The largest difference between the
two is taken over AP, AP50, AP75, APs/m/l, APr/c/f and every class's AP (the bins are means of
the classes' APs).
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


def child(mode: str, num_images: int, seed: int, out_json: str, nproc: int) -> None:
    """Generate the data, evaluate with ``mode``, write time, memory and metrics."""
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
    if mode == 'lvis-api':
        from lvis import LVIS, LVISEval, LVISResults
        results = lvis_synthetic.to_results(preds, cat_ids)
        del preds
        lvis_gt = LVIS(gt_path)
        _reset_peak()
        start, cpu_start = time.perf_counter(), _cpu_s()
        lvis_eval = LVISEval(lvis_gt, LVISResults(lvis_gt, results), 'bbox')
        lvis_eval.run()
        out['time_s'] = time.perf_counter() - start
        out['cpu_s'] = _cpu_s() - cpu_start
        out['peak_eval_gib'] = _peak_gib()
        out['headline'] = {k: float(lvis_eval.results[k]) for k in HEADLINE}
        precision = lvis_eval.eval['precision'][:, :, :, 0]
        out['per_class'] = {}
        for k, cat_id in enumerate(lvis_eval.params.cat_ids):
            p = precision[:, :, k]
            out['per_class'][str(cat_id)] = float(p[p > -1].mean()) if (p > -1).any() else None
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
        out['headline'] = {k: metrics.get(f'lvis/bbox_{k}', -1.0) for k in HEADLINE}
        with open(osp.join(work, 'report', 'bbox_per_class.json')) as f:
            out['per_class'] = {str(r['category_id']): r['AP'] for r in json.load(f)}
        out['workers'] = nproc
    out['peak_process_gib'] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    out['load_avg'] = os.getloadavg()[0]
    with open(out_json, 'w') as f:
        json.dump(out, f)


def run_child(mode: str, num_images: int, seed: int, nproc: int) -> Dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        out_json = osp.join(tmp, 'out.json')
        env = dict(os.environ, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1')
        proc = subprocess.run([
            sys.executable, __file__, '--child', mode, '--sizes',
            str(num_images), '--seed',
            str(seed), '--out', out_json, '--nproc',
            str(nproc)
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
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--sizes', type=int, nargs='+', default=[19809, 1000, 5000])
    parser.add_argument(
        '--reference-max',
        type=int,
        default=5000,
        help='run lvis-api up to this many images, extrapolate above')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument(
        '--nproc', type=int, default=1, help='worker processes of the default backend')
    parser.add_argument(
        '--out', help='(with --child) where the child writes; else a JSON of '
        'all measurements')
    parser.add_argument('--child', help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child, args.sizes[0], args.seed, args.out, args.nproc)
        return

    print(f'machine: {machine()}; default backend with {args.nproc} worker process(es)')
    ours_runs, reference_runs = {}, {}
    for size in args.sizes:  # in the order given: the largest first shows the key number early
        for mode, runs in (('default', ours_runs), ('lvis-api', reference_runs)):
            if mode == 'lvis-api' and size > args.reference_max:
                continue
            runs[size] = run_child(mode, size, args.seed, args.nproc)
            r = runs[size]
            print(f'{size} images, {mode}: {r["time_s"]:.1f} s wall, {r["cpu_s"]:.1f} s CPU, '
                  f'peak RSS {r["peak_eval_gib"]:.2f} GiB (load average {r["load_avg"]:.1f})',
                  flush=True)
    measured = [reference_runs[n] for n in sorted(reference_runs)]
    rows = []
    for size in sorted(args.sizes):
        ours = ours_runs[size]
        if size in reference_runs:
            ref, estimated = reference_runs[size], False
            diff = largest_difference(ours, ref)
        elif len(measured) >= 2:
            keys = ('time_s', 'cpu_s', 'peak_eval_gib')
            ref = {k: extrapolate(measured, size, k) for k in keys}
            estimated, diff = True, None
        else:
            ref, estimated, diff = None, True, None
        rows.append(dict(size=size, dets=ours['num_dets'], ours=ours, ref=ref,
                         estimated=estimated, diff=diff))

    print()
    print('| images | detections | lvis-api: wall / CPU time | lvis-api peak RSS | default: '
          'wall / CPU time | default peak RSS | speed-up (wall / CPU) | largest difference |')
    print('|---|---|---|---|---|---|---|---|')
    for r in rows:
        ours, ref = r['ours'], r['ref']
        est = ' (est.)' if r['estimated'] else ''
        diff = 'not run' if r['diff'] is None else f'{r["diff"]:.1e}'
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
        print(f'\n(est.): lvis-api not run at that size (it needs about 21 GB there); '
              f'extrapolated linearly from its runs at {sizes} images.')
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(rows, f, indent=1)


if __name__ == '__main__':
    main()
