"""Shared fixtures: the repository, a tiny COCO data set, a runner for the tools, and a run of a
stratified metric against its reference evaluator."""
import json
import os
import os.path as osp
import subprocess
import sys
from typing import Any, Callable, List, NamedTuple, Sequence, Tuple

import pytest

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, osp.dirname(osp.abspath(__file__)))

from tiny_coco import coco_cfg_dict, coco_cfg_options, write_tiny_coco  # noqa: E402

TINY_FASTER_RCNN = osp.join(REPO, 'tests', 'configs', 'faster-rcnn_r18-tiny_fpn_coco.py')


def tool_env(**extra: str) -> dict:
    """Environment for a tool subprocess: one torch thread each, the repo importable."""
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS='1', MKL_NUM_THREADS='1', PYTHONPATH=REPO)
    env.update(extra)
    return env


def run_tool(args: Sequence[str], *, env: dict = None, check: bool = True,
             timeout: int = 900) -> subprocess.CompletedProcess:
    """Run ``python <args>`` from the repository root and return the finished process."""
    proc = subprocess.run([sys.executable, *args], cwd=REPO, env=env or tool_env(),
                          capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f'{" ".join(args)} exited {proc.returncode}:\n'
                             f'{proc.stdout[-4000:]}\n{proc.stderr[-8000:]}')
    return proc


@pytest.fixture(scope='session')
def repo_root() -> str:
    return REPO


@pytest.fixture(scope='session')
def tiny_coco(tmp_path_factory) -> str:
    """Root of a small COCO-layout data set: 24 train and 15 val images, boxes and masks."""
    return write_tiny_coco(str(tmp_path_factory.mktemp('tiny_coco')))


@pytest.fixture(scope='session')
def tiny_coco_options(tiny_coco) -> List[str]:
    """``--cfg-options`` values that point a stock COCO config at :func:`tiny_coco`."""
    return coco_cfg_options(tiny_coco)


@pytest.fixture(scope='session')
def trained_tiny(tmp_path_factory, tiny_coco_options) -> str:
    """Work dir of TINY_FASTER_RCNN trained for 2 epochs through tools/train.py.

    Holds ``epoch_1.pth`` and ``epoch_2.pth`` (6 iterations per epoch).
    """
    work_dir = str(tmp_path_factory.mktemp('trained_tiny'))
    run_tool(['tools/train.py', TINY_FASTER_RCNN, '--work-dir', work_dir,
              '--cfg-options', *tiny_coco_options])
    return work_dir


@pytest.fixture(scope='session')
def tiny_coco_cfg(tiny_coco) -> dict:
    """The same as :func:`tiny_coco_options`, as a dict for ``Config.merge_from_dict``."""
    return coco_cfg_dict(tiny_coco)


def free_port() -> int:
    """A TCP port nobody listens on, for a torchrun rendezvous."""
    import socket
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def find_metrics_json(work_dir: str) -> dict:
    """The metrics mmengine's test loop logged: ``<work_dir>/<timestamp>/<timestamp>.json``."""
    import glob
    import json
    found = sorted(glob.glob(osp.join(work_dir, '*', '*.json')))
    assert found, f'no metrics json under {work_dir}'
    with open(found[-1]) as f:
        return json.load(f)


#: The mini reproduction's four detectors: the default three, then one given with --extra-configs.
MINI_DETECTORS = ('faster-rcnn_r18-finetune_fpn_mini-lvis', 'faster-rcnn_r18-frozen_fpn_mini-lvis',
                  'faster-rcnn_r18-frozen_wide-fpn_mini-lvis',
                  'faster-rcnn_r18-finetune_wide-fpn_mini-lvis')
MINI_EXTRA = ['--extra-configs', 'configs/mini/faster-rcnn_r18-finetune_wide-fpn_mini-lvis.py']


@pytest.fixture(scope='session')
def tiny_mini_reproduction(tmp_path_factory):
    """``tools/mini_reproduction.py`` at tiny scale, 2 seeds, the four detectors: its work dir
    and finished process (shared by the mini reproduction's and the classifier sweep's tests)."""
    work_dir = str(tmp_path_factory.mktemp('mini_reproduction'))
    proc = run_tool(['tools/mini_reproduction.py', '--scale', 'tiny', '--work-dir', work_dir,
                     '--threads', '1', '--jobs', '2', '--seeds', '2', *MINI_EXTRA], timeout=600)
    return work_dir, proc


class StratifiedRun(NamedTuple):
    """One evaluation of the hand-made predictions by a stratified metric and its reference."""
    results: dict  # the metric's evaluate()
    summary: dict  # its summary.json
    rows: list  # its <iou_type>_per_class.json
    reference: Any  # the reference evaluator run on the same images (COCOeval, LVISEval)
    preds: dict  # the predictions, by image
    preds_list: list  # the same as the reference took them


def run_stratified(metric_type: str, reference: Callable, files: Tuple[str, str], out_dir,
                   iou_type: str, backend: str, img_ids=None,
                   metric=('bbox', 'segm')) -> StratifiedRun:
    """``metric_type`` (CocoStratifiedMetric, LVISStratifiedMetric) with ``backend`` on the
    hand-made ``files`` (val, train) and predictions for ``img_ids`` (every image by default),
    evaluating ``metric``, and ``reference`` (stratified_helpers' coco_reference,
    lvis_reference) on the same images, for ``iou_type``."""
    from stratified_helpers import make_predictions, reference_json, run_metric
    val_path, train_path = files
    preds = make_predictions(val_path, img_ids=img_ids)
    results, summary = run_metric(val_path, train_path, preds, str(out_dir), metric=metric,
                                  metric_type=metric_type, backend=backend)
    with open(osp.join(out_dir, f'{iou_type}_per_class.json')) as f:
        rows = json.load(f)
    preds_list = reference_json(preds, val_path, iou_type)
    return StratifiedRun(results, summary, rows,
                         reference(val_path, preds_list, iou_type, img_ids=img_ids), preds,
                         preds_list)
