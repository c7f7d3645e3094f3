"""Run by test_distributed_evaluation.py under torchrun: the stratified metrics on 2 gloo
ranks, and rank 0's memory while collecting.

    torchrun --nproc_per_node 2 tests/test_evaluation/dist_eval_script.py \\
        LVIS_VAL COCO_VAL COCO_TRAIN OUT WORK

Each rank processes the images a distributed sampler (shuffle off) gives it, padding included,
then evaluates; rank 0 writes the metrics of every case and the collection's measurements.
"""
import gc
import json
import math
import os.path as osp
import sys
import tracemalloc

import numpy as np
import torch.distributed as dist
from mmengine.dist import collect_results_cpu

from mmfrozen.evaluation.collect import collect_to_rank0
from mmfrozen.testing.stratified import build_metric, data_samples, make_predictions

CASES = [('LVISStratifiedMetric', 'faster-coco-eval'), ('LVISStratifiedMetric', 'lvis-api'),
         ('CocoStratifiedMetric', 'faster-coco-eval')]
SUBSET = list(range(1, 12))  # 11 images: the sampler pads the second rank


def sampler_indices(size: int, rank: int, world_size: int):
    """mmengine's DefaultSampler(shuffle=False): padded to a multiple, then strided."""
    indices = list(range(size))
    total = math.ceil(size / world_size) * world_size
    indices += indices[:total - size]
    return indices[rank:total:world_size]


def measure_collect(collect, rank: int, world_size: int):
    """Peak new allocations on rank 0 while ``collect`` gathers 400 images per rank."""
    rng = np.random.RandomState(rank)
    part = [
        dict(
            bboxes=rng.rand(300, 4).astype(np.float32),
            scores=rng.rand(300),
            labels=rng.randint(0, 1203, 300)) for _ in range(400)
    ]
    size = 400 * world_size
    tracemalloc.start()
    tracemalloc.reset_peak()
    gathered = collect(part, size)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    if rank != 0:
        return None
    total = sum(a.nbytes for item in gathered for a in item.values())
    return dict(
        peak=peak,
        total=total,
        own_items_kept=all(gathered[k * world_size] is part[k] for k in range(len(part))))


def main() -> None:
    val_lvis, val_coco, train_coco, out_json, work_dir = sys.argv[1:6]
    dist.init_process_group('gloo')
    rank, world_size = dist.get_rank(), dist.get_world_size()
    out = dict(metrics={})
    for metric_type, backend in CASES:
        val_path = val_lvis if metric_type == 'LVISStratifiedMetric' else val_coco
        preds = make_predictions(val_path, img_ids=set(SUBSET))
        samples = data_samples({i: preds[i] for i in SUBSET})
        train_path = None if metric_type == 'LVISStratifiedMetric' else train_coco
        metric = build_metric(
            metric_type,
            val_path,
            train_path, ['bbox', 'segm'],
            backend=backend,
            out_dir=osp.join(work_dir, f'{metric_type}-{backend}'))
        for i in sampler_indices(len(samples), rank, world_size):
            metric.process({}, [samples[i]])
        out['metrics'][f'{metric_type}-{backend}'] = metric.evaluate(len(samples))
    out['ours'] = measure_collect(collect_to_rank0, rank, world_size)
    out['mmengine'] = measure_collect(
        lambda part, size: collect_results_cpu(part, size, osp.join(work_dir, 'mmengine')), rank,
        world_size)
    if rank == 0:
        with open(out_json, 'w') as f:
            json.dump(out, f)
    dist.destroy_process_group()
    gc.collect()


if __name__ == '__main__':
    main()
