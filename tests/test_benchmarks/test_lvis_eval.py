"""benchmarks/lvis_eval.py: lvis-api in category chunks is lvis-api, and the script's chunked route.

Above ``--reference-max`` images whole lvis-api does not fit in memory, so the benchmark measures
its largest difference there against lvis-api run over slices of the categories
(``lvis_eval_chunked``). These tests check that the chunked run gives bitwise the metrics, the
accumulated arrays and the per-class APs of a whole ``LVISEval.run()``, and that the script takes
the chunked route end to end on tiny sizes.
"""
import copy
import importlib.util
import json
import os.path as osp

import numpy as np
import pytest

import mmfrozen  # noqa: F401  lvis-api's NumPy fix, before lvis.eval is used
from lvis import LVIS, LVISEval, LVISResults

pytestmark = pytest.mark.benchmarks
BENCHMARKS = osp.join(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))),
                      'benchmarks')


def _load(name: str):
    path = osp.join(BENCHMARKS, f'{name}.py')
    spec = importlib.util.spec_from_file_location(f'_bench_{name}', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bench = _load('lvis_eval')
lvis_synthetic = _load('lvis_synthetic')


@pytest.fixture(scope='module')
def synthetic_lvis(tmp_path_factory):
    """Ground truth (as ``LVIS``) and COCO-format results of 200 synthetic LVIS-val-like images,
    up to 340 detections per image (lvis-api keeps the top 300)."""
    gt, preds = lvis_synthetic.make_dataset(200, seed=3, max_dets=340)
    results = lvis_synthetic.to_results(preds, [c['id'] for c in gt['categories']])
    path = str(tmp_path_factory.mktemp('lvis_synthetic') / 'gt.json')
    with open(path, 'w') as f:
        json.dump(gt, f)
    return LVIS(path), results


def test_chunked_lvis_api_equals_a_whole_run(synthetic_lvis):
    lvis_gt, results = synthetic_lvis
    # the top-300 cap must be the whole run's
    per_image = np.bincount([r['image_id'] for r in results])
    assert (per_image > 300).sum() > 20
    # LVISResults adds keys to the result dicts it is given: each run gets its own
    whole = LVISEval(lvis_gt, LVISResults(lvis_gt, copy.deepcopy(results)), 'bbox')
    whole.run()
    # 7 uneven slices of the 1,203 categories
    chunked = bench.lvis_eval_chunked(lvis_gt, LVISResults(lvis_gt, copy.deepcopy(results)), 7,
                                      'bbox')

    assert chunked.params.cat_ids == whole.params.cat_ids
    assert chunked.freq_groups == whole.freq_groups
    assert chunked.eval['counts'] == whole.eval['counts']
    for key in ('precision', 'recall'):
        assert chunked.eval[key].shape == whole.eval[key].shape
        assert np.array_equal(chunked.eval[key], whole.eval[key]), key
    # every metric of summarize(): AP, AP50, AP75, APs/m/l, APr/c/f and the ARs
    assert list(chunked.results) == list(whole.results)
    for key, value in whole.results.items():
        assert chunked.results[key] == value, key
    assert set(bench.HEADLINE) <= set(whole.results)
    # the three frequency groups all have defined APs here, so APr/c/f are really compared
    assert all(whole.results[k] > 0 for k in ('APr', 'APc', 'APf'))
    per_class = bench.lvis_api_per_class_ap(whole)
    assert bench.lvis_api_per_class_ap(chunked) == per_class
    assert len(per_class) == 1203 and sum(v is not None for v in per_class.values()) > 100


def test_chunked_lvis_api_refuses_empty_slices(synthetic_lvis):
    lvis_gt, results = synthetic_lvis
    lvis_dt = LVISResults(lvis_gt, copy.deepcopy(results[:2000]))
    # an empty params.cat_ids means all categories to lvis-api
    for num_chunks in (0, 1204):
        with pytest.raises(ValueError, match='num_chunks'):
            bench.lvis_eval_chunked(lvis_gt, lvis_dt, num_chunks)


def test_script_measures_the_difference_with_chunked_lvis_api_above_reference_max(tmp_path,
                                                                                  run_tool):
    out = tmp_path / 'rows.json'
    proc = run_tool([
        'benchmarks/lvis_eval.py', '--sizes', '60', '20', '40', '--reference-max', '40',
        '--reference-chunks', '3', '--out',
        str(out)
    ], timeout=600)
    assert '60 images, lvis-api in 3 category chunks:' in proc.stdout
    assert '60 images, lvis-api:' not in proc.stdout
    rows = {r['size']: r for r in json.loads(out.read_text())}
    assert sorted(rows) == [20, 40, 60]
    for size in (20, 40):
        assert not rows[size]['estimated'] and rows[size]['chunked'] is None
        assert rows[size]['diff'] < 1e-6
    big = rows[60]
    assert big['estimated'] and big['ref'] is not None  # whole lvis-api's extrapolation
    assert big['chunked']['chunks'] == 3 and big['chunked']['peak_eval_gib'] > 0
    assert big['diff'] < 1e-6
    table = [line for line in proc.stdout.splitlines() if line.startswith('| 60 |')]
    assert len(table) == 2, proc.stdout
    assert '(est.)' in table[0] and f'{big["diff"]:.1e} (chunked)' in table[0]
    assert table[1].startswith('| 60 | 3 |') and table[1].endswith(f'| {big["diff"]:.1e} |')
    assert '(chunked): measured against lvis-api run in category chunks' in proc.stdout


def test_script_without_chunks_leaves_the_difference_unmeasured(tmp_path, run_tool):
    out = tmp_path / 'rows.json'
    proc = run_tool([
        'benchmarks/lvis_eval.py', '--sizes', '30', '20', '--reference-max', '20',
        '--reference-chunks', '0', '--out',
        str(out)
    ], timeout=600)
    assert 'category chunks' not in proc.stdout
    rows = {r['size']: r for r in json.loads(out.read_text())}
    assert rows[30]['diff'] is None and rows[30]['chunked'] is None
    assert rows[30]['ref'] is None  # one whole lvis-api size: nothing to extrapolate from
    assert any(line.startswith('| 30 |') and line.endswith('| not run |')
               for line in proc.stdout.splitlines())
